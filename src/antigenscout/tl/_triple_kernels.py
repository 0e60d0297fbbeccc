"""Triple bounds: which extensions ``parent op c`` of a pair gate can still win.

Upper bounds on the tumour count and lower bounds on the worst healthy risk of every child of a
pair parent, from the pair counts alone (:func:`_ext_bounds`) and per healthy type
(:func:`parent_type_terms`, :func:`child_risk_lower`), and the parallel enumeration of the
children that survive them (:func:`triple_candidates`, :func:`or_child_bound_max`). The bounds
are proved in docs/gates.md ("Triple bounds").
"""

from __future__ import annotations

import numba
import numpy as np
from numba import prange

__all__ = ["child_risk_lower", "or_child_bound_max", "parent_type_terms"]


@numba.njit(cache=True)
def _lit_pair(pxc, sx, sc, n, pos_x, pos_c):  # pragma: no cover - numba  # noqa: PLR0913, PLR0917
    # |x^± ∧ c^±| from |x ∧ c|, |x|, |c| and n
    if pos_x and pos_c:
        return pxc
    if pos_x:
        return sx - pxc
    if pos_c:
        return sc - pxc
    return n - sx - sc + pxc


@numba.njit(cache=True)
def _ext_bounds(kind, a, b, covp, riskp, c, mode, P, s, n, r_single, r_and, r_or, r_an):  # noqa: PLR0913, PLR0917
    """Upper bound on the tumour count and lower bound on the worst risk of one extension.

    ``kind``: 0 = a ∧ b, 1 = a ∧ ¬b, 2 = a ∨ b; ``mode``: 0 = ∧ c, 1 = ∧ ¬c, 2 = ∨ c.
    The bounds are proved in docs/gates.md (section "Triple bounds").
    """  # pragma: no cover - numba
    sa = float(s[a])
    sb = float(s[b])
    sc = float(s[c])
    pac = float(P[a, c])
    pbc = float(P[b, c])
    pos_b = kind != 1
    if mode <= 1:
        pos_c = mode == 0
        cnt_c = sc if pos_c else n - sc
        if kind == 2:  # noqa: PLR2004
            ub = min(
                covp,
                cnt_c,
                _lit_pair(pac, sa, sc, n, True, pos_c) + _lit_pair(pbc, sb, sc, n, True, pos_c),
            )
            rlb = max(r_and[a, c], r_and[b, c]) if pos_c else max(r_an[a, c], r_an[b, c])
        else:
            ub = min(
                covp,
                _lit_pair(pac, sa, sc, n, True, pos_c),
                _lit_pair(pbc, sb, sc, n, pos_b, pos_c),
            )
            rlb = 0.0
    else:
        if kind == 2:  # noqa: PLR2004
            lb3 = max(pac, pbc)
            rlb = max(riskp, r_single[c], r_or[a, c], r_or[b, c])
        else:
            nb = sb if pos_b else n - sb
            x = _lit_pair(pac, sa, sc, n, True, True)
            y = _lit_pair(pbc, sb, sc, n, pos_b, True)
            lb3 = max(0.0, x + y - sc, covp + x - sa, covp + y - nb)
            rlb = max(riskp, r_single[c])
        ub = covp + sc - lb3
    return ub, rlb


@numba.njit(parallel=True, cache=True)
def parent_type_terms(kind, pa, pb, par_cnt, sizes, w_cells, frac_t, w_bulk, order):  # noqa: PLR0913, PLR0917
    """Per-parent healthy-type terms of pair parents ``a kind b`` for :func:`child_risk_lower`.

    ``par_u[p, b]`` is the Fréchet upper fraction of the parent in pseudobulk type ``b``
    (``min(f_a, f_b)``, ``min(f_a, 1 − f_b)``, ``min(1, f_a + f_b)`` for kinds 0, 1, 2;
    ``frac_t`` is ``(n_genes, n_bulk)``); the parent's weighted terms are
    ``par_cnt / n_t × w_t`` (single-cell types first) then ``w_b × par_u``. With ``order`` the
    types are sorted by decreasing term (stable, as ``np.argsort(-terms, kind="stable")``);
    without, ``t_order`` has no columns. Returns ``(t_order, t_wpar, par_u)``.
    """  # pragma: no cover - numba
    n_par = kind.shape[0]
    n_ct = sizes.shape[0]
    n_b = w_bulk.shape[0]
    n_t = n_ct + n_b
    par_u = np.empty((n_par, n_b))
    n_cols = n_t if order else 0
    t_order = np.empty((n_par, n_cols), dtype=np.int64)
    t_wpar = np.empty((n_par, n_cols))
    for p in prange(n_par):
        a = pa[p]
        b = pb[p]
        k = kind[p]
        for j in range(n_b):
            fa = frac_t[a, j]
            fb = frac_t[b, j]
            if k == 0:
                par_u[p, j] = min(fa, fb)
            elif k == 1:
                par_u[p, j] = min(fa, 1.0 - fb)
            else:
                par_u[p, j] = min(1.0, fa + fb)
        if order:
            terms = np.empty(n_t)
            for t in range(n_ct):
                terms[t] = np.float64(par_cnt[p, t]) / np.float64(sizes[t]) * w_cells[t]
            for j in range(n_b):
                terms[n_ct + j] = w_bulk[j] * par_u[p, j]
            o = np.argsort(-terms, kind="mergesort")
            for t in range(n_t):
                t_order[p, t] = o[t]
                t_wpar[p, t] = terms[o[t]]
    return t_order, t_wpar, par_u


@numba.njit(cache=True)
def child_risk_lower(  # noqa: PLR0913, PLR0917
    p,
    c,
    mode,
    rl,
    cap,
    t_order,
    t_wpar,
    par_cnt,
    h_counts,
    cell_sizes,
    w_cells,
    par_u,
    frac,
    w_bulk,
):  # pragma: no cover - numba
    """Raise ``rl``, a lower bound on the reported worst risk of ``P ∧ c`` / ``P ∧ ¬c``.

    Per healthy type ``t`` of the parent ``P`` (row ``p`` of the per-parent arrays):

    * single-cell type (``t < n_ct``, exact counts, ``n_t`` cells): ``|P ∧ ¬c|_t ≥ |P|_t − |c|_t``
      and ``|P ∧ c|_t ≥ |P|_t + |c|_t − n_t``; the bound is ``w_t × max(0, that) / n_t``;
    * pseudobulk type (``t ≥ n_ct``): the reported (upper Fréchet) fraction of the child is
      exactly ``min(U_t(P), 1 − f_t(c))`` (``min(U_t(P), f_t(c))`` for ``∧ c``).

    ``t_order[p]`` lists the types by decreasing ``t_wpar[p]`` (``w_t`` × the parent's reported
    fraction), which bounds every child term from above; the loop stops once no remaining type can
    raise ``rl`` or ``rl`` exceeds ``cap + 1e-12`` (pass ``cap = inf`` for the full maximum).
    ``mode``: 0 = ``∧ c``, 1 = ``∧ ¬c``. Proof in docs/gates.md ("Triple bounds", case 5).
    """
    n_ct = par_cnt.shape[1]
    for j in range(t_order.shape[1]):
        if t_wpar[p, j] <= rl or rl > cap + 1e-12:
            break
        t = t_order[p, j]
        v = 0.0
        if t < n_ct:
            if mode == 0:
                k = par_cnt[p, t] + h_counts[t, c] - cell_sizes[t]
            else:
                k = par_cnt[p, t] - h_counts[t, c]
            if k > 0:
                # same float operations as the exact risk (count / n × w): monotone in the count
                v = np.float64(k) / np.float64(cell_sizes[t]) * w_cells[t]
        else:
            b = t - n_ct
            f = frac[b, c]
            v = w_bulk[b] * min(par_u[p, b], 1.0 - f if mode == 1 else f)
        rl = max(rl, v)
    return rl


@numba.njit(cache=True)
def _candidate_obj(  # noqa: PLR0913, PLR0917
    p,
    c,
    m,
    kind,
    pa,
    pb,
    covp,
    riskp,
    P,
    s,
    n,
    r_single,
    r_and,
    r_or,
    r_an,
    cap,
    tau,
    score,
    t_order,
    t_wpar,
    par_cnt,
    h_counts,
    cell_sizes,
    w_cells,
    par_u,
    frac,
    w_bulk,
):  # pragma: no cover - numba
    # objective upper bound of parent p op c, or -1.0 when the child is pruned
    # cheap necessary conditions first: an AND-child never exceeds its parent's
    # coverage; a feasible OR-child needs a feasible parent and a feasible gene
    if m <= 1 and covp[p] / n <= tau:
        return -1.0
    if m == 2 and (riskp[p] > cap + 1e-12 or r_single[c] > cap + 1e-12):  # noqa: PLR2004
        return -1.0
    ub, rlb = _ext_bounds(
        kind[p], pa[p], pb[p], covp[p], riskp[p], c, m, P, s, n, r_single, r_and, r_or, r_an
    )
    cov_ub = min(ub / n, 1.0)
    obj = cov_ub
    if score:
        obj *= 1.0 - rlb
    if obj <= tau or rlb > cap + 1e-12:
        return -1.0
    if m <= 1 and t_order.shape[1] > 0:
        rlb = child_risk_lower(
            p,
            c,
            m,
            rlb,
            cap,
            t_order,
            t_wpar,
            par_cnt,
            h_counts,
            cell_sizes,
            w_cells,
            par_u,
            frac,
            w_bulk,
        )
        if rlb > cap + 1e-12:
            return -1.0
        if score:
            obj = cov_ub * (1.0 - rlb)
            if obj <= tau:
                return -1.0
    return obj


@numba.njit(cache=True)
def _kmax(n_t, w, lim):  # pragma: no cover - numba
    # largest k >= 0 with float(k) / n_t × w <= lim (the float operations of child_risk_lower)
    if w <= 0.0:
        return np.int64(n_t)
    k = np.int64(max(0.0, min(float(n_t), lim * n_t / w)))
    while k < n_t and np.float64(k + 1) / np.float64(n_t) * w <= lim:
        k += 1
    while k > 0 and np.float64(k) / np.float64(n_t) * w > lim:
        k -= 1
    return k


@numba.njit(cache=True)
def _child_ranges(  # noqa: PLR0912, PLR0913, PLR0915, PLR0917
    p, cap, t_order, t_wpar, par_cnt, cell_sizes, par_u, w_bulk, val_c, val_b, kmax, chk, rng
):  # pragma: no cover - numba
    """Where the children ``P ∧ c`` (mode 0) and ``P ∧ ¬c`` (mode 1) that can pass the cap lie.

    For each healthy type ``t`` in which the parent ``P`` itself breaks the cap (the prefix of
    ``t_order[p]`` with ``t_wpar > cap``), the per-type bound of :func:`child_risk_lower` keeps a
    child only if ``c``'s count (fraction) in ``t`` is high enough (``∧ ¬c`` must remove cells of
    ``t``) or low enough (``∧ c``): a suffix or prefix of the candidates sorted by their value in
    ``t`` (``val_c``: counts per single-cell type, ``val_b``: fractions per pseudobulk type, rows
    sorted ascending). For mode ``m`` this writes ``rng[m] = (source, t, lo, hi)``, the shortest
    such range (``source`` 0 = single-cell type, 1 = pseudobulk type, -1 = no type constrains
    the children), and ``chk[m, :n]`` = every constraining type as ``(column, threshold)`` with
    the enumerated one first (columns index ``[single-cell types, pseudobulk types]``; a child
    needs a value ≥ threshold for ``∧ ¬c``, ≤ threshold for ``∧ c``); returns ``n``. Every child
    outside the range, or failing a row, is pruned by :func:`child_risk_lower`, so checking
    these first gives the same candidates (docs/gates.md, "Triple bounds", case 5).
    """
    lim = cap + 1e-12
    n_ct = val_c.shape[0]
    n_cand = val_c.shape[1] if n_ct > 0 else val_b.shape[1]
    for m in range(2):
        rng[m, 0] = -1
        rng[m, 1] = 0
        rng[m, 2] = 0
        rng[m, 3] = n_cand
    best = np.zeros(2, dtype=np.int64)
    n_chk = 0
    for j in range(t_order.shape[1]):
        if t_wpar[p, j] <= lim:
            break  # sorted: no later type breaks the cap, and a child term is ≤ the parent's
        t = t_order[p, j]
        for m in range(2):
            if t < n_ct:
                n_t = cell_sizes[t]
                pc = par_cnt[p, t]
                km = kmax[t]
                if m == 1:  # k = |P|_t − |c|_t ≤ km
                    thr = np.float64(pc - km)
                    lo = np.searchsorted(val_c[t], pc - km, side="left")
                    hi = n_cand
                else:  # k = |P|_t + |c|_t − n_t ≤ km
                    thr = np.float64(km - pc + n_t)
                    lo = 0
                    hi = np.searchsorted(val_c[t], km - pc + n_t, side="right")
                src, row = 0, t
            else:
                b = t - n_ct
                w = w_bulk[b]
                if m == 1:  # w (1 − f) ≤ lim; the 1e-9 slack keeps a superset
                    thr = 1.0 - lim / w - 1e-9
                    lo = np.searchsorted(val_b[b], thr, side="left")
                    hi = n_cand
                else:  # w f ≤ lim
                    thr = lim / w + 1e-9
                    lo = 0
                    hi = np.searchsorted(val_b[b], thr, side="right")
                src, row = 1, b
            chk[m, n_chk, 0] = t
            chk[m, n_chk, 1] = thr
            if rng[m, 0] < 0 or hi - lo < rng[m, 3] - rng[m, 2]:
                rng[m, 0] = src
                rng[m, 1] = row
                rng[m, 2] = lo
                rng[m, 3] = hi
                best[m] = n_chk
        n_chk += 1
    for m in range(2):  # the enumerated type goes first: it holds by construction
        q = best[m]
        if q > 0:
            for x in range(2):
                tmp = chk[m, 0, x]
                chk[m, 0, x] = chk[m, q, x]
                chk[m, q, x] = tmp
    return n_chk


@numba.njit(cache=True)
def _passes_checks(c, m, chk, r0, n_chk, type_val):  # pragma: no cover - numba  # noqa: PLR0913, PLR0917
    # rows r0:n_chk of chk (see _child_range); type_val[c] = [count in each single-cell type,
    # fraction in each pseudobulk type]
    row = type_val[c]
    for r in range(r0, n_chk):
        v = row[np.int64(chk[r, 0])]
        if m == 1:
            if v < chk[r, 1]:
                return False
        elif v > chk[r, 1]:
            return False
    return True


@numba.njit(cache=True)
def _parent_children(  # noqa: PLR0912, PLR0913, PLR0917
    p, emit, o_gene, o_mode, o_ub, k0, kind, pa, pb, covp, riskp, cand, modes, P, s, n,
    r_single, r_and, r_or, r_an, cap, tau, score, t_order, t_wpar, par_cnt, h_counts,
    cell_sizes, w_cells, par_u, frac, w_bulk, ord_c, val_c, ord_b, val_b, ord_s, n_cov,
    type_val, kmax,
):  # fmt: skip  # pragma: no cover - numba
    # count (emit=False) or write (emit=True, from k0) the surviving children of parent p
    k = k0
    use_range = t_order.shape[1] > 0
    chk = np.empty((2, t_order.shape[1], 2), dtype=np.float64)
    rng = np.empty((2, 4), dtype=np.int64)
    n_chk = 0
    if use_range:
        n_chk = _child_ranges(
            p, cap, t_order, t_wpar, par_cnt, cell_sizes, par_u, w_bulk, val_c, val_b, kmax,
            chk, rng,
        )  # fmt: skip
    for m in modes:
        src, t, lo, hi = -1, 0, 0, cand.shape[0]
        if m <= 1 and n_chk > 0:
            src, t, lo, hi = rng[m, 0], rng[m, 1], rng[m, 2], rng[m, 3]
        if m == 0 and n_cov < hi - lo:
            # an AND child has coverage ≤ |c| / N: only the n_cov most frequent genes can pass
            src, lo, hi = 2, 0, n_cov
        for pos in range(lo, hi):
            if src < 0:
                c = cand[pos]
            elif src == 0:
                c = ord_c[t, pos]
            elif src == 1:
                c = ord_b[t, pos]
            else:
                c = ord_s[pos]
            if c == pa[p] or c == pb[p]:
                continue
            # row 0 is the type whose range is enumerated (src 0 / 1): it holds already
            r0 = 1 if src == 0 or src == 1 else 0  # noqa: PLR1714
            if m <= 1 and n_chk > r0 and not _passes_checks(c, m, chk[m], r0, n_chk, type_val):
                continue
            obj = _candidate_obj(
                p, c, m, kind, pa, pb, covp, riskp, P, s, n, r_single, r_and, r_or, r_an,
                cap, tau, score, t_order, t_wpar, par_cnt, h_counts, cell_sizes, w_cells,
                par_u, frac, w_bulk,
            )  # fmt: skip
            if obj >= 0.0:
                if emit:
                    o_gene[k] = c
                    o_mode[k] = m
                    o_ub[k] = obj
                k += 1
    return k - k0


@numba.njit(parallel=True, cache=True)
def or_child_bound_max(  # noqa: PLR0913, PLR0917
    kind, pa, pb, covp, riskp, cand, P, s, n, r_single, r_and, r_or, r_an, cap, score
):  # pragma: no cover - numba
    """Return per parent the largest objective bound of its OR children ``parent ∨ c``.

    The bound is the one :func:`triple_candidates` prunes with (docs/gates.md "Triple bounds"
    cases 3–4), over the candidates; ``-1`` when no child can pass the cap. Nothing is counted:
    this states what a beam that did not expand these children could have missed. Parents run in
    parallel.
    """
    n_par = kind.shape[0]
    out = np.full(n_par, -1.0)
    e_i = np.zeros((n_par, 0), dtype=np.int64)
    e_f = np.zeros((n_par, 0))
    e_c = np.zeros((0, 0), dtype=np.int64)
    e_n = np.zeros(0, dtype=np.int64)
    e_1 = np.zeros(0)
    for p in prange(n_par):
        best = -1.0
        for q in range(cand.shape[0]):
            c = cand[q]
            if c == pa[p] or c == pb[p]:
                continue
            obj = _candidate_obj(
                p, c, 2, kind, pa, pb, covp, riskp, P, s, n, r_single, r_and, r_or, r_an,
                cap, -np.inf, score, e_i, e_f, e_c, e_c, e_n, e_1, e_f, e_f, e_1,
            )  # fmt: skip
            best = max(best, obj)
        out[p] = best
    return out


@numba.njit(parallel=True, cache=True)
def triple_candidates(  # noqa: PLR0913, PLR0917
    kind, pa, pb, covp, riskp, cand, modes, P, s, n, r_single, r_and, r_or, r_an, cap, tau,
    score, t_order, t_wpar, par_cnt, h_counts, cell_sizes, w_cells, par_u, frac, w_bulk,
    ord_c, val_c, ord_b, val_b, ord_s, type_val,
):  # fmt: skip  # pragma: no cover - numba
    """Extensions ``parent op c`` whose bounds can still beat ``tau`` under the risk cap.

    The per-parent type arrays (``t_order`` … ``w_bulk``) feed :func:`child_risk_lower`, the
    per-type risk lower bound of AND / AND NOT children; pass ``t_order`` with zero columns to
    skip it. ``ord_c``/``val_c`` (``ord_b``/``val_b``) hold, per single-cell (pseudobulk) type,
    the candidate genes sorted by their count (fraction) in that type and those values: AND /
    AND NOT children are enumerated only over the range :func:`_child_range` returns, which
    holds every child that can pass the cap, so a parent that breaks the cap in some type costs
    a few binary searches instead of a pass over all candidates. ``ord_s`` lists the candidates
    by decreasing tumour count ``s``; an AND child (coverage ≤ ``s_c / N``) is looked for only
    among those with ``s_c / N > tau``. ``type_val`` is ``(n_genes, n_types)``: each gene's count
    per single-cell type then fraction per pseudobulk type (see :func:`_passes_checks`). Parents
    run in parallel.
    Returns ``(parent index, gene, mode, objective upper bound)`` arrays, by parent, then mode,
    then the enumeration order. Two passes (count, then fill) keep the output exact-sized and
    deterministic.
    """
    n_par = kind.shape[0]
    n_cov = 0
    while n_cov < ord_s.shape[0] and s[ord_s[n_cov]] / n > tau:
        n_cov += 1
    kmax = np.empty(cell_sizes.shape[0], dtype=np.int64)
    for t in range(cell_sizes.shape[0]):
        kmax[t] = _kmax(cell_sizes[t], w_cells[t], cap + 1e-12)
    counts = np.zeros(n_par, dtype=np.int64)
    dummy_i = np.zeros(0, dtype=np.int64)
    dummy_f = np.zeros(0, dtype=np.float64)
    for p in prange(n_par):
        counts[p] = _parent_children(
            p, False, dummy_i, dummy_i, dummy_f, 0, kind, pa, pb, covp, riskp, cand, modes, P,
            s, n, r_single, r_and, r_or, r_an, cap, tau, score, t_order, t_wpar, par_cnt,
            h_counts, cell_sizes, w_cells, par_u, frac, w_bulk, ord_c, val_c, ord_b, val_b,
            ord_s, n_cov, type_val, kmax,
        )  # fmt: skip
    start = np.zeros(n_par + 1, dtype=np.int64)
    for p in range(n_par):
        start[p + 1] = start[p] + counts[p]
    tot = start[n_par]
    o_par = np.empty(tot, dtype=np.int64)
    o_gene = np.empty(tot, dtype=np.int64)
    o_mode = np.empty(tot, dtype=np.int64)
    o_ub = np.empty(tot, dtype=np.float64)
    for p in prange(n_par):
        if counts[p] == 0:
            continue  # most parents have no surviving child: do not enumerate them twice
        o_par[start[p] : start[p + 1]] = p
        _parent_children(
            p, True, o_gene, o_mode, o_ub, start[p], kind, pa, pb, covp, riskp, cand, modes, P,
            s, n, r_single, r_and, r_or, r_an, cap, tau, score, t_order, t_wpar, par_cnt,
            h_counts, cell_sizes, w_cells, par_u, frac, w_bulk, ord_c, val_c, ord_b, val_b,
            ord_s, n_cov, type_val, kmax,
        )  # fmt: skip
    return o_par, o_gene, o_mode, o_ub
