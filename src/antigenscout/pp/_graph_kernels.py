"""Numba kernels of the default positivity: projection sweep, leaf neighbours, pooling."""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = [
    "gather_select",
    "knn_count_block",
    "knn_positive_block",
    "leaf_knn_update",
    "soup_tail",
    "soup_tail_many",
]


@njit(cache=True, nogil=True)
def gather_select(  # noqa: PLR0913, PLR0917
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    scale: np.ndarray,
    gene_row: np.ndarray,
    keep: np.ndarray,
    keep_sums: np.ndarray,
    zidx: np.ndarray,
    zval: np.ndarray,
    sidx: np.ndarray,
    sval: np.ndarray,
    lib: np.ndarray,
    lib_given: bool,
) -> tuple[np.ndarray, np.ndarray, int]:
    """One sweep over CSR counts: scaled informative entries and the ``keep`` columns.

    ``gene_row[g]`` is ``g``'s row of the PCA axes (-1: not informative); ``keep[g]`` its
    output column (-1: dropped). Fills ``zidx, zval`` with the CSR entries of ``x_g * scale``
    over the informative genes (column ``gene_row[g]``; ``log1p`` and the product with the
    axes are left to vectorised numpy/scipy) and ``sidx, sval`` with the raw counts of the
    ``keep`` columns (explicit zeros dropped); ``keep_sums[1 + keep[g]]`` gains ``x_g *
    scale`` (slot 0 collects the dropped genes), the CP10k sums of the tumour mean. The four
    buffers need room for ``indptr[-1]`` entries; every entry is written and the positions
    advance only for the wanted ones, so the loop has no data-dependent branches (3x faster
    than branching on real counts). ``lib`` holds each row's library size when ``lib_given``,
    else it is filled with the row sums; ``scale`` is ``1e4 / lib`` (0 where ``lib`` is 0)
    and is filled here too. Returns the two ``indptr`` arrays and the number of negative or
    non-finite entries (the caller refuses them).
    Serial: numba parallel regions stall on a shared, loaded machine (measured 6-13x slower).
    """
    n = indptr.size - 1
    zptr = np.zeros(n + 1, dtype=np.int64)
    sptr = np.zeros(n + 1, dtype=np.int64)
    pz = 0
    ps = 0
    bad = 0
    for r in range(n):
        if not lib_given:
            t = 0.0
            for j in range(indptr[r], indptr[r + 1]):
                t += data[j]
            lib[r] = t
        s = 1e4 / lib[r] if lib[r] > 0.0 else 0.0
        scale[r] = s
        for j in range(indptr[r], indptr[r + 1]):
            x = data[j]
            bad += (x < 0) | np.isnan(x) | (x == np.inf)
            g = indices[j]
            row = gene_row[g]
            zidx[pz] = row
            zval[pz] = x * s
            pz += row >= 0
            col = keep[g]
            sidx[ps] = col
            sval[ps] = x
            ps += (col >= 0) & (x != 0)
            keep_sums[col + 1] += x * s
        zptr[r + 1] = pz
        sptr[r + 1] = ps
    return zptr, sptr, bad


@njit(cache=True, nogil=True, inline="always")
def _pool_row(  # noqa: PLR0913, PLR0917
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    lib: np.ndarray,
    nbr: np.ndarray,
    r: int,
    acc: np.ndarray,
    mark: np.ndarray,
    touched: np.ndarray,
) -> tuple[int, float]:
    """Pool row ``r`` with its neighbours into ``acc``, listing the genes met in ``touched``.

    ``acc[g]`` = summed count of each gene ``g`` met, listed once in ``touched[:nt]``
    (first-touch order; ``mark`` flags them). Returns ``nt`` and the pooled library. The caller
    reads and resets ``acc`` and ``mark``.
    """
    nt = 0
    s = lib[r]
    for q in range(-1, nbr.shape[1]):
        c = r if q < 0 else nbr[r, q]
        if c < 0:
            continue
        if q >= 0:
            s += lib[c]
        for j in range(indptr[c], indptr[c + 1]):
            g = indices[j]
            if not mark[g]:
                mark[g] = True
                touched[nt] = g
                nt += 1
            acc[g] += data[j]
    return nt, s


@njit(cache=True, nogil=True)
def soup_tail(y: int, b: float, x: float, q0: float, t0: float, a0: float, r: float) -> float:  # noqa: PLR0913, PLR0917
    """P(λ ≥ λ0 | y) when the pooled count holds soup reads: ``y ~ Poisson(λ s' + b)``.

    ``λ ~ Gamma(a0, a0/λ0)`` is the native rate, ``s'`` the native pooled library and ``b``
    the expected soup reads. Expanding ``(λ s' + b)^y`` makes the posterior a mixture over
    the native count ``k`` (``y - k`` soup reads) of ``Gamma(a0 + k, a0/λ0 + s')`` with
    weights ``C(y, k) r^k b^(y-k) Γ(a0 + k)`` (``r = s'/(a0/λ0 + s')``), so

        P(λ ≥ λ0 | y) = Σ_k w_k Q(a0 + k, x),   x = a0 + λ0 s'.

    ``q0 = Q(a0, x)`` and ``t0 = x^a0 e^-x / Γ(a0 + 1)`` are the caller's (one per pool);
    ``Q(a + 1, x) = Q(a, x) + x^a e^-x / Γ(a + 1)`` gives the rest, and the weights follow
    by their ratio ``w_k / w_(k-1) = (y - k + 1) / k · r / b · (a0 + k - 1)``. Every ``k``
    is summed: the weights can have two modes (the prior's spike at zero makes "all soup"
    a second explanation), so no window around one mode is safe. Tested against the
    posterior integrated numerically.
    """
    q = q0
    t = t0
    w = 1.0
    tot = 0.0
    acc = 0.0
    rb = r / b
    for k in range(y + 1):
        if k > 0:
            w *= (y - k + 1) / k * rb * (a0 + k - 1)
        tot += w
        acc += w * q
        if t > 1e-17 * q:  # Q(a0 + k, x) still moving
            q += t
            t *= x / (a0 + k + 1)
        if tot > 1e250:  # noqa: PLR2004
            tot *= 1e-250
            acc *= 1e-250
            w *= 1e-250
    return acc / tot


@njit(cache=True, nogil=True)
def soup_tail_many(  # noqa: PLR0913, PLR0917
    y: np.ndarray,
    b: np.ndarray,
    x: np.ndarray,
    q0: np.ndarray,
    t0: np.ndarray,
    a0: float,
    r: np.ndarray,
) -> np.ndarray:
    """:func:`soup_tail` of each entry (NaN where ``b <= 0`` or ``y < 0``)."""
    out = np.full(y.size, np.nan)
    for i in range(y.size):
        if b[i] > 0.0 and y[i] >= 0:
            out[i] = soup_tail(y[i], b[i], x[i], q0[i], t0[i], a0, r[i])
    return out


@njit(cache=True, nogil=True, inline="always")
def _call(  # noqa: PLR0913, PLR0917
    y: float,
    r: int,
    g: int,
    s: float,
    median: np.ndarray,
    pool: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    a0: float,
) -> bool:
    """Make one pooled call, discounting the pool's soup where it carries any.

    The call is positive when ``x[r] <= median[y]`` (the posterior median of the native rate
    reaches the threshold) and, where the pool carries soup, when :func:`soup_tail` is at least
    1/2 (never above the soup-free probability, so the first test already rules out every call
    the soup could not make).
    """
    x, q0, t0, rr, soup, soup_code = pool
    yi = int(y)
    if x[r] > median[yi]:
        return False
    c = soup_code[r]
    if c < 0:
        return True
    b = soup[c, g] * s
    if b <= 0.0:
        return True
    return soup_tail(yi, b, x[r], q0[r], t0[r], a0, rr[r]) >= 0.5  # noqa: PLR2004


@njit(cache=True, nogil=True)
def knn_positive_block(  # noqa: PLR0913, PLR0917
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    lib: np.ndarray,
    nbr: np.ndarray,
    start: int,
    stop: int,
    median: np.ndarray,
    a0: float,
    pool: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    n_genes: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Knn positivity of rows ``start:stop`` on a binary neighbour list (self weight 1).

    For a binary kNN graph the pooled count is the plain sum ``y`` over the cell and its
    neighbours (``nbr``, -1 = none) and the pooled library the sum ``s`` of their libraries;
    without soup the cell is positive for a gene when ``P(λ ≥ λ0) = Q(a0 + y, x) ≥ 0.5``,
    ``x = a0 + s' λ0`` (``s'`` the native library), i.e. when ``x ≤ median[y]`` with
    ``median[y]`` the median of Gamma(a0 + y, 1) (whole counts); with soup, see
    :func:`_call`. ``pool = (x, q0, t0, rr, soup, soup_code)`` per row / per sample (see
    :func:`antigenscout.pp._neighbors._pool_terms`). Returns the CSR ``indptr`` and sorted
    column ``indices`` of the positive entries.
    """
    nb = stop - start
    k = nbr.shape[1]
    bound = np.zeros(nb + 1, dtype=np.int64)  # most entries a row can have: its pooled nnz
    for r in range(start, stop):
        c = indptr[r + 1] - indptr[r]
        for q in range(k):
            if nbr[r, q] >= 0:
                c += indptr[nbr[r, q] + 1] - indptr[nbr[r, q]]
        bound[r - start + 1] = bound[r - start] + min(c, n_genes)
    out = np.empty(bound[nb], dtype=np.int32)
    count = np.zeros(nb, dtype=np.int64)
    acc = np.zeros(n_genes)
    mark = np.zeros(n_genes, dtype=np.bool_)
    touched = np.empty(n_genes, dtype=np.int64)
    for i in range(nb):
        r = start + i
        nt, s = _pool_row(indptr, indices, data, lib, nbr, r, acc, mark, touched)
        p = bound[i]
        for t in range(nt):
            g = touched[t]
            y = acc[g]
            if lib[r] > 0.0 and y > 0.0 and _call(y, r, g, s, median, pool, a0):
                out[p] = g
                p += 1
            acc[g] = 0.0
            mark[g] = False
        out[bound[i] : p].sort()
        count[i] = p - bound[i]
    ptr = np.zeros(nb + 1, dtype=np.int64)
    ptr[1:] = np.cumsum(count)
    res = np.empty(ptr[nb], dtype=np.int32)
    for i in range(nb):
        res[ptr[i] : ptr[i + 1]] = out[bound[i] : bound[i] + count[i]]
    return ptr, res


@njit(cache=True, nogil=True)
def knn_count_block(  # noqa: PLR0913, PLR0917
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    lib: np.ndarray,
    nbr: np.ndarray,
    start: int,
    stop: int,
    median: np.ndarray,
    a0: float,
    pool: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    codes: np.ndarray,
    counts: np.ndarray,
) -> None:
    """Count :func:`knn_positive_block`'s calls of rows ``start:stop`` instead of listing them.

    ``counts[codes[r], g]`` gains 1 for each positive (row ``r``, gene ``g``) (in place).

    No entry list is built, sorted or copied (2.2x faster than listing, measured on 100,000
    AML cells), for callers that need only the number of positive cells per group.
    """
    n_genes = counts.shape[1]
    acc = np.zeros(n_genes)
    mark = np.zeros(n_genes, dtype=np.bool_)
    touched = np.empty(n_genes, dtype=np.int64)
    for r in range(start, stop):
        nt, s = _pool_row(indptr, indices, data, lib, nbr, r, acc, mark, touched)
        cr = codes[r]
        for t in range(nt):
            g = touched[t]
            y = acc[g]
            if lib[r] > 0.0 and y > 0.0 and _call(y, r, g, s, median, pool, a0):
                counts[cr, g] += 1
            acc[g] = 0.0
            mark[g] = False


@njit(cache=True, fastmath=True, nogil=True)
def leaf_knn_update(
    Y: np.ndarray,
    order: np.ndarray,
    leaf_ptr: np.ndarray,
    best_d: np.ndarray,
    best_i: np.ndarray,
) -> None:
    """Exact neighbours within each leaf, merged into the running best lists (in place).

    ``order[leaf_ptr[L]:leaf_ptr[L + 1]]`` are the points of leaf ``L``; each point lies in one
    leaf. The leaf's points are copied dimension-major into one block, and each point's
    squared Euclidean distances (float32) to all of the leaf are computed together, one
    dimension at a time over a contiguous row (vectorised; 2x faster than a pair at a time);
    then the point's current worst distance, held in a register, filters them. Lists stay
    sorted by distance; a point already listed is not added twice; on equal distances the
    earlier candidate is kept.
    """
    k = best_d.shape[1]
    dims = Y.shape[1]
    for leaf in range(leaf_ptr.size - 1):
        a = leaf_ptr[leaf]
        m = leaf_ptr[leaf + 1] - a
        P = np.empty((dims, m), dtype=np.float32)
        for ii in range(m):
            for q in range(dims):
                P[q, ii] = Y[order[a + ii], q]
        dist = np.empty(m, dtype=np.float32)
        for ii in range(m):
            i = order[a + ii]
            dist[:] = 0.0
            for q in range(dims):
                c = P[q, ii]
                row = P[q]
                for jj in range(m):
                    t = row[jj] - c
                    dist[jj] += t * t
            worst = best_d[i, k - 1]
            for jj in range(m):
                d = dist[jj]
                if d >= worst or jj == ii:
                    continue
                j = order[a + jj]
                seen = False
                for u in range(k):
                    if best_i[i, u] == j:
                        seen = True
                        break
                if seen:
                    continue
                u = k - 1
                while u > 0 and best_d[i, u - 1] > d:
                    best_d[i, u] = best_d[i, u - 1]
                    best_i[i, u] = best_i[i, u - 1]
                    u -= 1
                best_d[i, u] = d
                best_i[i, u] = j
                worst = best_d[i, k - 1]
