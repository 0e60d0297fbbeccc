"""The exact gate search (:func:`search_gate_matrix`).

Singles and pairs are searched exhaustively, triples by branch and bound, larger gates by beam
search.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from antigenscout._errors import InputError
from antigenscout._types import GATE_OPS, OBJECTIVES, GateOp, Objective

from .._kernels import MODE_AND, MODE_ANDNOT, MODE_OR, count_ext, pair_group_counts
from .._pair_kernels import pair_values_counted
from .._triple_kernels import or_child_bound_max, parent_type_terms, triple_candidates
from ._bounds import (
    _objective,
    _pair_stats,
    _pair_stats_top,
    _PairStats,
)
from ._evaluate import (
    _pareto,
    _row,
)
from ._gate import (
    _EPS,
    Gate,
    _negated,
)
from ._problem import (
    HealthyInput,
    _healthy_mode,
    _Problem,
    _threads,
)

# --------------------------------------------------------------------------------------------
# Search
# --------------------------------------------------------------------------------------------


class _TopK:
    """The ``k`` best feasible gates seen so far (min-heap on the objective)."""

    def __init__(self, k: int) -> None:
        self.k = k
        self.heap: list[tuple[float, tuple, Gate]] = []
        self.members: set[Gate] = set()

    @property
    def tau(self) -> float:
        """Value a new gate must exceed to enter (``-inf`` until ``k`` gates are held)."""
        return self.heap[0][0] if len(self.heap) >= self.k else -math.inf

    def push(self, value: float, gate: Gate) -> None:
        if gate in self.members:
            return
        # ties: fewer genes, then canonical order, are preferred (kept)
        item = (value, (-gate.n_genes, _tie_key(gate)), gate)
        if len(self.heap) < self.k:
            heapq.heappush(self.heap, item)
            self.members.add(gate)
        elif item[:2] > self.heap[0][:2]:
            old = heapq.heapreplace(self.heap, item)
            self.members.discard(old[2])
            self.members.add(gate)

    def sorted(self) -> list[tuple[float, Gate]]:
        return [(v, g) for v, _, g in sorted(self.heap, key=lambda x: x[:2], reverse=True)]


def _tie_key(gate: Gate) -> tuple[int, ...]:
    # larger for canonically earlier gates, so ties keep them (deterministic)
    return tuple(-ord(ch) for ch in repr(gate.sort_key()))


#: Default OR-child work of an exact triple search (see ``search_gate_matrix(triple_budget=...)``):
#: 10^8 (e.g. 100,000 feasible parents × 1,000 feasible genes): 35–45 s on the 1,000-gene
#: benchmark on the development machine (docs/benchmarks.md); docs/gates.md, "OR triples".
TRIPLE_BUDGET = 100_000_000


class _Search:
    """Branch and bound over gates of 1–3 genes; beam search with a stated gap for 4–5."""

    def __init__(  # noqa: PLR0913, PLR0917
        self,
        prob: _Problem,
        stats: _PairStats,
        cand: np.ndarray,
        ops: frozenset[str],
        cap: float,
        objective: str,
    ) -> None:
        self.prob = prob
        self.st = stats
        self.cand = cand
        self.ops = ops
        self.cap = cap
        self.objective = objective
        self.N = prob.n_tumor
        self.s = prob.s
        self.n_evaluated = 0
        self.triple_work = 0  # OR-child work estimate of the last triple search
        self.triple_beam = False  # whether a triple search beamed its OR children

    # ---- exact evaluation of many one-literal extensions of one base gate --------------
    def _extend_exact(self, base: Gate, genes: np.ndarray, mode: int) -> np.ndarray:
        """Exact tumour coverage of ``base op gene`` for each gene."""
        tb = base.bits(self.prob.tumour)
        counts = count_ext(
            tb,
            self.prob.tumour.words,
            genes,
            mode,
            self.prob.tumour.valid,
            self.prob.tumour.word_ptr,
        )  # (genes, patients)
        self.n_evaluated += genes.size
        if not self.prob.any_miss:
            return counts.sum(1) / self.N
        mpg = self.prob.miss_pg
        off = mpg[:, _negated(base)].sum(1)[None, :]
        if mode == MODE_ANDNOT:
            off = off + mpg[:, genes].T
        return np.maximum(0.0, counts - off).sum(1) / self.N

    def _risk_exact(self, base: Gate, genes: np.ndarray, mode: int) -> np.ndarray:
        """Return the worst risk of ``base op gene`` over the healthy types.

        It is exact over single-cell types, a Fréchet upper bound over pseudobulk types, the
        maximum of both for mixed input (0 without types).
        """
        prob = self.prob
        risk = np.zeros(genes.size)
        if genes.size == 0:
            return risk
        if prob.frac is not None and prob.w_bulk.size:
            _, u = base.frechet(prob.frac, prob.frac_shown)
            f = prob.frac[:, genes]
            if mode == MODE_AND:
                uu = np.minimum(u[:, None], f)
            elif mode == MODE_ANDNOT:
                uu = np.minimum(u[:, None], 1.0 - prob.frac_shown[:, genes])
            else:
                uu = np.minimum(1.0, u[:, None] + f)
            risk = np.maximum(risk, (prob.w_bulk[:, None] * uu).max(0))
        if prob.healthy is not None and prob.w_cells.size:
            hb = base.bits(prob.healthy)
            counts = count_ext(
                hb, prob.healthy.words, genes, mode, prob.healthy.valid, prob.healthy.word_ptr
            )
            risk = np.maximum(risk, (counts / prob.cell_sizes[None, :] * prob.w_cells).max(1))
        return risk

    # ---- singles and pairs (exhaustive) --------------------------------------------------
    def singles_and_pairs(self, top: _TopK, max_genes: int, min_genes: int) -> None:
        c = self.cand
        s, N = self.s, self.N
        if min_genes <= 1:
            vals = _objective(s[c] / N, self.prob.r_single[c], self.cap, self.objective)
            for i in _top_indices(vals, top.k):
                top.push(float(vals[i]), Gate.lit(int(c[i])))
        if max_genes < 2 or min_genes > 2:  # noqa: PLR2004
            return
        if self.st.rows is not None:
            self._pairs_counted(top)
            return
        P = self.st.P[np.ix_(c, c)]
        sc = s[c]
        iu = np.triu(np.ones((c.size, c.size), dtype=bool), 1)
        kinds: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []
        if "and" in self.ops:
            kinds.append(("and", P, self.st.r_and[np.ix_(c, c)], iu))
        if "or" in self.ops:
            kinds.append(("or", sc[:, None] + sc[None, :] - P, self.st.r_or[np.ix_(c, c)], iu))
        if "not" in self.ops:
            off = ~np.eye(c.size, dtype=bool)
            kinds.append(("andnot", sc[:, None] - P, self.st.r_andnot[np.ix_(c, c)], off))
        counted = P >= 0  # pairs a 2-gene search skipped (cannot enter the top k) hold −1
        for kind, cov, risk, mask in kinds:
            vals = _objective(cov / N, risk, self.cap, self.objective)
            vals[~(mask & counted)] = -np.inf
            if kind == "andnot" and self.prob.any_miss:
                i, j = np.divmod(np.arange(vals.size), c.size)
                self._andnot_pairs_exact(top, vals.ravel(), c[i], c[j], risk.ravel())
                continue
            flat = vals.ravel()
            for f in _top_indices(flat, top.k):
                i, j = divmod(int(f), c.size)
                top.push(float(flat[f]), _pair_gate(kind, int(c[i]), int(c[j])))

    def _andnot_pairs_exact(
        self, top: _TopK, ub: np.ndarray, a: np.ndarray, b: np.ndarray, risk: np.ndarray
    ) -> None:
        """Push the best ``a AND NOT b`` pairs by their per-patient adjusted coverage.

        ``ub`` is each pair's objective on its per-cell count (an upper bound of the adjusted
        one), ``a``/``b`` its gene indices and ``risk`` its worst risk; pairs are counted per
        patient in decreasing ``ub`` order until the bound cannot beat the running top-k cut.
        """
        prob = self.prob
        order = np.argsort(-ub, kind="stable")
        order = order[ub[order] > -np.inf]
        batch = 1024
        for p0 in range(0, order.size, batch):
            f = order[p0 : p0 + batch]
            if len(top.heap) >= top.k and ub[f[0]] <= top.tau:
                return
            fa, fb = a[f].astype(np.int64), b[f].astype(np.int64)
            cnt = pair_group_counts(
                np.full(f.size, _KIND_CODE["andnot"], dtype=np.int64),
                fa,
                fb,
                prob.tumour.words,
                prob.tumour.valid,
                prob.tumour.word_ptr,
            )
            cov = np.maximum(0.0, cnt - prob.miss_pg[:, fb].T).sum(1) / self.N
            vals = _objective(cov, risk[f], self.cap, self.objective)
            for q in np.flatnonzero(vals > -np.inf):
                top.push(float(vals[q]), _pair_gate("andnot", int(fa[q]), int(fb[q])))

    def _pairs_counted(self, top: _TopK) -> None:
        """Find the top pair gates of a 2-gene search from its counted pairs (``st.rows``).

        They go into ``top``, by one compiled pass per kind instead of genes × genes numpy
        arrays; the values are the same float operations as :func:`_objective`, so the table is
        the same.
        """
        st, rows = self.st, self.st.rows
        assert rows is not None
        s_rows = np.ascontiguousarray(self.s[rows])
        score = self.objective == "score"
        for kind in ("and", "or", "andnot"):
            if (kind == "andnot" and "not" not in self.ops) or (
                kind != "andnot" and kind not in self.ops
            ):
                continue
            risk = {"and": st.r_and, "or": st.r_or, "andnot": st.r_andnot}[kind]
            vals, ii, jj = pair_values_counted(
                st.P, s_rows, risk, _KIND_CODE[kind], float(self.N), float(self.cap) + _EPS, score
            )
            if kind == "andnot" and self.prob.any_miss:  # values are per-cell upper bounds
                self._andnot_pairs_exact(top, vals, rows[ii], rows[jj], risk[ii, jj])
                continue
            for f in _top_indices(vals, top.k):
                top.push(float(vals[f]), _pair_gate(kind, int(rows[ii[f]]), int(rows[jj[f]])))

    # ---- triples: exact branch and bound -------------------------------------------------
    def triples(self, top: _TopK, budget: int | None = None) -> float:  # noqa: PLR0912, PLR0915
        """Search all 3-gene gates: exact, or with OR children beamed when over ``budget``.

        The OR work is estimated before any child is looked at: the parents whose OR children
        can pass the parent bound (feasible pair gates with ``min(1, cov + best feasible
        single) > τ``) times the feasible candidate genes, each a child the kernel must bound
        and possibly count. Within ``budget`` (or with ``budget=None``) the search is exact
        (docs/gates.md). Above it, OR children are expanded only for the parents with the
        highest bounds until the budget is spent; AND / AND NOT children of every parent are
        still searched exactly. Returns an upper bound on the objective of every 3-gene gate
        that may have been missed: the largest objective bound of an OR child of a parent whose
        OR children were not expanded (bounded by :func:`or_child_bound_max`, not counted), or
        ``-inf`` when the search was exact. Sets :attr:`triple_work` (the estimate) and
        :attr:`triple_beam`.
        """
        c = self.cand
        s, N, P = self.s, self.N, self.st.P
        cap = self.cap
        feas_single = c[self.prob.r_single[c] <= cap + _EPS]
        smax_feas = float(s[feas_single].max()) if feas_single.size else -math.inf
        tau = top.tau
        sub = np.ix_(c, c)
        Pc = P[sub]
        sc = s[c]
        kinds = []
        if "and" in self.ops:
            kinds.append(("and", Pc, self.st.r_and[sub], True))
            if "not" in self.ops:
                kinds.append(("andnot", sc[:, None] - Pc, self.st.r_andnot[sub], False))
        if "or" in self.ops:
            kinds.append(("or", sc[:, None] + sc[None, :] - Pc, self.st.r_or[sub], True))
        cols: list[list[np.ndarray]] = [[], [], [], [], [], [], []]
        for kid, (_kind, cov, risk, sym) in enumerate(kinds):
            covf = cov / N
            # parent-level bounds: an AND-child has coverage ≤ cov(P); a feasible OR-child needs
            # a feasible P and a feasible gene, so coverage ≤ cov(P) + max feasible single.
            ub = covf.copy() if "and" in self.ops else np.full_like(covf, -np.inf)
            ub_or = np.full_like(covf, -np.inf)
            if "or" in self.ops and smax_feas > -math.inf:
                ub_or = np.where(risk <= cap + _EPS, np.minimum(1.0, covf + smax_feas / N), -np.inf)
                if self.objective == "score":
                    ub_or = ub_or * (1.0 - risk)
                ub = np.maximum(ub, ub_or)
            mask = np.triu(np.ones_like(ub, dtype=bool), 1) if sym else ~np.eye(c.size, dtype=bool)
            ii, jj = np.nonzero(mask & (ub > tau))
            for col, arr in zip(
                cols,
                [
                    ub[ii, jj],
                    np.full(ii.size, kid),
                    c[ii],
                    c[jj],
                    covf[ii, jj],
                    risk[ii, jj],
                    ub_or[ii, jj],
                ],
                strict=True,
            ):
                col.append(arr)
        self.triple_work = 0
        if not cols[0]:
            return -math.inf
        ub_all, kid_all, a_all, b_all, cov_all, risk_all, ub_or_all = (
            np.concatenate(x) for x in cols
        )
        if ub_all.size == 0:
            return -math.inf
        order = np.lexsort((b_all, a_all, kid_all, -cov_all, -ub_all))
        kind_code = np.array([_KIND_CODE[k[0]] for k in kinds], dtype=np.int64)[kid_all[order]]
        a_all, b_all = a_all[order].astype(np.int64), b_all[order].astype(np.int64)
        ub_all, cov_all, risk_all = ub_all[order], cov_all[order] * N, risk_all[order]
        ub_or_all = ub_or_all[order]
        modes = np.array(self._modes(), dtype=np.int64)
        # OR work: parents whose OR children can pass × feasible genes (each child is bounded,
        # many are counted); beyond the budget only the first parents (best bound) get them
        or_cost = np.where(ub_or_all > tau, feas_single.size, 0).astype(np.int64)
        cum = np.cumsum(or_cost)
        self.triple_work = int(cum[-1])
        n_or = ub_all.size
        if budget is not None and self.triple_work > budget:
            self.triple_beam = True
            n_or = int(np.searchsorted(cum, budget, side="right"))
        modes_no_or = modes[modes != MODE_OR]
        orders = self._type_orders()
        seen: set[Gate] = set()
        # the parents before n_or get every mode (best bound first); the rest only AND / AND
        # NOT children, whose bound is the parent's coverage: those that can still beat τ, by
        # decreasing coverage
        segments = [(np.arange(n_or), modes, ub_all)]
        if n_or < ub_all.size and modes_no_or.size:
            segments.append((np.arange(n_or, ub_all.size), modes_no_or, cov_all / N))
        for k_seg, (idx0, m_use, bound_all) in enumerate(segments):
            idx = idx0
            if k_seg == 1:
                idx = idx0[bound_all[idx0] > top.tau]
                idx = idx[np.argsort(-bound_all[idx], kind="stable")]
            if not self._expand(top, idx, m_use, bound_all, kind_code, a_all, b_all, cov_all,
                                risk_all, orders, seen):  # fmt: skip
                break
        if n_or == ub_all.size:
            return -math.inf
        # the OR children the beam did not expand: bound them (nothing is counted) where the
        # parent's own OR bound can still beat the final τ; the largest child bound is stated
        rest = n_or + np.flatnonzero(ub_or_all[n_or:] > top.tau)
        if rest.size == 0:
            return -math.inf
        child_ub = or_child_bound_max(
            kind_code[rest], a_all[rest], b_all[rest], cov_all[rest], risk_all[rest], c,
            P, s, float(N), self.prob.r_single, self.st.r_and, self.st.r_or, self.st.r_andnot,
            float(cap), self.objective == "score",
        )  # fmt: skip
        return float(child_ub.max())

    def _expand(  # noqa: PLR0913, PLR0917
        self,
        top: _TopK,
        idx: np.ndarray,
        modes: np.ndarray,
        bound_all: np.ndarray,
        kind_code: np.ndarray,
        a_all: np.ndarray,
        b_all: np.ndarray,
        cov_all: np.ndarray,
        risk_all: np.ndarray,
        orders: tuple[np.ndarray, ...],
        seen: set[Gate],
    ) -> bool:
        """Expand the parents ``idx`` by the ``modes`` children, in batches.

        The parents are sorted by decreasing ``bound_all``; returns False once a parent's bound
        is ``≤ τ`` (the rest cannot contribute), True when every parent was expanded.
        """
        batch = 2048
        N = self.N
        for p0 in range(0, idx.size, batch):
            sel = idx[p0 : p0 + batch]
            if bound_all[sel[0]] <= top.tau:
                return False
            kc, pa, pb = kind_code[sel], a_all[sel], b_all[sel]
            tv = self._parent_types(kc, pa, pb)
            par, gene, mode, obj_ub = triple_candidates(
                kc,
                pa,
                pb,
                cov_all[sel],
                risk_all[sel],
                self.cand,
                modes,
                self.st.P,
                self.s,
                float(N),
                self.prob.r_single,
                self.st.r_and,
                self.st.r_or,
                self.st.r_andnot,
                float(self.cap),
                float(top.tau),
                self.objective == "score",
                *tv,
                *orders,
            )
            # evaluate parent by parent (bits of the parent computed once), best parents first
            bounds = np.searchsorted(par, np.arange(sel.size + 1))
            for q in range(sel.size):
                if bound_all[sel[q]] <= top.tau:
                    return False
                lo, hi = bounds[q], bounds[q + 1]
                if lo == hi:
                    continue
                self._evaluate_ext(
                    top,
                    _KIND_NAME[int(kc[q])],
                    int(pa[q]),
                    int(pb[q]),
                    gene[lo:hi],
                    mode[lo:hi],
                    obj_ub[lo:hi],
                    seen,
                )
        return True

    def _type_orders(self) -> tuple[np.ndarray, ...]:
        """Return the candidates' per-type orders and values for :func:`triple_candidates`.

        Candidates sorted by their count in each single-cell type, their fraction in each
        pseudobulk type and (decreasing) tumour count, and every gene's per-type values:
        ``(ord_c, val_c, ord_b, val_b, ord_s, type_val)``.
        """
        prob, c = self.prob, self.cand
        if prob.healthy is not None and prob.w_cells.size:
            hc = prob.h_counts[:, c]
        else:
            hc = np.zeros((0, c.size), dtype=np.int64)
        fb = prob.frac[:, c] if prob.frac is not None else np.zeros((0, c.size))
        oc = np.argsort(hc, axis=1, kind="stable")
        ob = np.argsort(fb, axis=1, kind="stable")
        return (
            np.ascontiguousarray(c[oc], dtype=np.int64),
            np.ascontiguousarray(np.take_along_axis(hc, oc, axis=1), dtype=np.int64),
            np.ascontiguousarray(c[ob], dtype=np.int64),
            np.ascontiguousarray(np.take_along_axis(fb, ob, axis=1), dtype=np.float64),
            np.ascontiguousarray(c[np.argsort(-self.s[c], kind="stable")], dtype=np.int64),
            np.ascontiguousarray(
                np.concatenate(
                    [
                        prob.h_counts.T.astype(np.float64)
                        if prob.healthy is not None
                        else np.zeros((prob.genes.size, 0)),
                        prob.frac.T if prob.frac is not None else np.zeros((prob.genes.size, 0)),
                    ],
                    axis=1,
                )
            ),
        )

    def _parent_types(self, kind: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple:
        """Per-parent healthy-type arrays for :func:`child_risk_lower` (see its docstring).

        For pair parents ``a kind b``: exact per-type counts (single-cell types) by popcount,
        the Fréchet upper fraction ``U_t`` (pseudobulk types) as ``Gate.frechet`` computes it,
        and the types ordered by ``w_t`` × the parent's reported fraction, largest first. Returns
        ``(t_order, t_wpar, par_cnt, h_counts, cell_sizes, w_cells, par_u, frac, w_bulk)``;
        ``t_order`` has no columns when the bound cannot prune (coverage objective, cap ≥ 1).
        """
        prob = self.prob
        n_par = kind.size
        g = prob.genes.size
        has_c = prob.healthy is not None and prob.w_cells.size > 0
        has_b = prob.frac is not None and prob.w_bulk.size > 0
        if has_c:
            h = prob.healthy
            par_cnt = pair_group_counts(kind, a, b, h.words, h.valid, h.word_ptr)
            h_counts = prob.h_counts
            sizes = prob.cell_sizes.astype(np.int64)
            w_cells = prob.w_cells.astype(np.float64)
        else:
            par_cnt = np.zeros((n_par, 0), dtype=np.int64)
            h_counts = np.zeros((0, g), dtype=np.int64)
            sizes = np.zeros(0, dtype=np.int64)
            w_cells = np.zeros(0)
        if has_b:
            frac, w_bulk = prob.frac, prob.w_bulk.astype(np.float64)
            if getattr(self, "_frac_t", None) is None:
                self._frac_t = np.ascontiguousarray(frac.T)
            frac_t = self._frac_t
        else:
            frac = np.zeros((0, g))
            w_bulk = np.zeros(0)
            frac_t = np.zeros((g, 0))
        order = not (self.objective != "score" and self.cap >= 1.0)
        t_order, t_wpar, par_u = parent_type_terms(
            kind.astype(np.int64),
            a.astype(np.int64),
            b.astype(np.int64),
            np.ascontiguousarray(par_cnt),
            sizes,
            w_cells,
            frac_t,
            w_bulk,
            order,
        )
        return (
            np.ascontiguousarray(t_order),
            t_wpar,
            np.ascontiguousarray(par_cnt),
            np.ascontiguousarray(h_counts),
            sizes,
            w_cells,
            np.ascontiguousarray(par_u),
            np.ascontiguousarray(frac),
            w_bulk,
        )

    def _evaluate_ext(  # noqa: PLR0913, PLR0917
        self,
        top: _TopK,
        kind: str,
        a: int,
        b: int,
        genes: np.ndarray,
        modes: np.ndarray,
        obj_ub: np.ndarray,
        seen: set[Gate],
    ) -> None:
        base = _pair_gate(kind, a, b)
        for mode in np.unique(modes).tolist():
            sel = (modes == mode) & (obj_ub > top.tau)
            if not sel.any():
                continue
            gates = [_combine(base, int(x), mode) for x in genes[sel]]
            fresh = np.array([gt not in seen for gt in gates], dtype=bool)
            if not fresh.any():
                continue
            gs = genes[sel][fresh]
            gts = [gt for gt, f in zip(gates, fresh, strict=True) if f]
            seen.update(gts)
            cov = self._extend_exact(base, gs, mode)
            # risk ≥ 0, so coverage alone bounds both objectives
            go = cov > top.tau
            if not go.any():
                continue
            risk = self._risk_exact(base, gs[go], mode)
            vals = _objective(cov[go], risk, self.cap, self.objective)
            for v, gt in zip(vals, [g for g, k in zip(gts, go, strict=True) if k], strict=True):
                if v > -math.inf:
                    top.push(float(v), gt)

    # ---- 4–5 genes: beam search with an upper bound on what it skipped ------------------
    def beam(self, top: _TopK, max_genes: int, beam_width: int, budget: int | None = None) -> float:
        """Extend the best gates one literal at a time (AND, AND NOT, OR).

        Parents of each level are the ``beam_width`` gates of the previous level with the highest
        coverage (whatever their risk, since AND NOT can lower risk) and the ``beam_width``
        feasible ones with the highest coverage. Returns an upper bound on the objective of any
        4–``max_genes``-gene chain gate that was not evaluated (``-inf`` if none was skipped).
        """
        cap, B, N = self.cap, beam_width, self.N
        with_or = "or" in self.ops
        cand = self.cand
        feas_single = cand[self.prob.r_single[cand] <= cap + _EPS]
        smax_feas = float(self.s[feas_single].max()) / N if feas_single.size else -math.inf
        smax_all = float(self.s[cand].max()) / N
        # level 3 is searched exactly: its top B+1 by coverage (no cap) and top B+1 feasible
        free = _Search(self.prob, self.st, cand, self.ops, math.inf, "coverage")
        by_cov = _TopK(B + 1)
        miss_free = free.triples(by_cov, budget)
        capped = _Search(self.prob, self.st, cand, self.ops, cap, "coverage")
        by_feas = _TopK(B + 1)
        miss_capped = capped.triples(by_feas, budget)
        self.n_evaluated += free.n_evaluated + capped.n_evaluated
        self.triple_beam = self.triple_beam or free.triple_beam or capped.triple_beam
        cov_list = [(v, g) for v, g in by_cov.sorted()]
        feas_list = [(v, g) for v, g in by_feas.sorted()]
        # a triple the (possibly beamed) level-3 searches missed has coverage ≤ their bound
        c_skip = max(cov_list[B][0] if len(cov_list) > B else -math.inf, miss_free)
        f_skip = max(feas_list[B][0] if len(feas_list) > B else -math.inf, miss_capped)
        parents = [g for _, g in cov_list[:B]] + [g for _, g in feas_list[:B]]
        ub_skipped = -math.inf
        for _level in range(4, max_genes + 1):
            # a skipped child has a skipped parent: AND-children have coverage ≤ the parent's
            # (≤ c_skip); a feasible OR-child needs a feasible parent (≤ f_skip) and gene.
            ub_level = c_skip
            if with_or and f_skip > -math.inf and smax_feas > -math.inf:
                ub_level = max(ub_level, min(1.0, f_skip + smax_feas))
            ub_level = min(ub_level, 1.0)
            ub_skipped = max(ub_skipped, ub_level)
            pool_cov: dict[Gate, float] = {}
            pool_feas: dict[Gate, float] = {}
            for base in dict.fromkeys(parents):
                used = set(base.genes)
                genes = np.array([x for x in cand.tolist() if x not in used], dtype=np.int64)
                if genes.size == 0:
                    continue
                for mode in self._modes():
                    cov = self._extend_exact(base, genes, mode)
                    risk = self._risk_exact(base, genes, mode)
                    ok = risk <= cap + _EPS
                    vals = np.where(
                        ok, cov * (1.0 - risk) if self.objective == "score" else cov, -np.inf
                    )
                    for i in _top_indices(vals, top.k):
                        top.push(float(vals[i]), _combine(base, int(genes[i]), mode))
                    for i in _top_indices(cov.astype(np.float64), B + 1):
                        pool_cov[_combine(base, int(genes[i]), mode)] = float(cov[i])
                    for i in _top_indices(np.where(ok, cov, -np.inf), B + 1):
                        pool_feas[_combine(base, int(genes[i]), mode)] = float(cov[i])
            ev_cov = sorted(pool_cov.items(), key=lambda x: (-x[1], _tie_key(x[0])))
            ev_feas = sorted(pool_feas.items(), key=lambda x: (-x[1], _tie_key(x[0])))
            # children of skipped parents were never evaluated: coverage ≤ c_skip (AND) or
            # ≤ min(1, c_skip + best single) (OR, any risk); feasible ones ≤ ub_level.
            unev_cov = min(1.0, c_skip + smax_all) if with_or else c_skip
            c_skip = max(ev_cov[B][1] if len(ev_cov) > B else -math.inf, unev_cov)
            f_skip = max(ev_feas[B][1] if len(ev_feas) > B else -math.inf, ub_level)
            parents = [g for g, _ in ev_cov[:B]] + [g for g, _ in ev_feas[:B]]
        return ub_skipped

    def _modes(self) -> list[int]:
        modes = []
        if "and" in self.ops:
            modes.append(MODE_AND)
            if "not" in self.ops:
                modes.append(MODE_ANDNOT)
        if "or" in self.ops:
            modes.append(MODE_OR)
        return modes


def _top_indices(vals: np.ndarray, k: int) -> np.ndarray:
    finite = np.flatnonzero(vals > -np.inf)
    if finite.size > k:
        part = np.argpartition(-vals[finite], k - 1)[:k]
        # keep every value tied with the k-th so tie-breaking is by the gate, not by position
        kth = vals[finite[part]].min()
        finite = finite[vals[finite] >= kth]
    return finite


_KIND_CODE = {"and": 0, "andnot": 1, "or": 2}
_KIND_NAME = {v: k for k, v in _KIND_CODE.items()}


def _pair_gate(kind: str, a: int, b: int) -> Gate:
    if kind == "and":
        return Gate.and_(Gate.lit(a), Gate.lit(b))
    if kind == "or":
        return Gate.or_(Gate.lit(a), Gate.lit(b))
    return Gate.and_(Gate.lit(a), Gate.lit(b, negated=True))


def _combine(base: Gate, gene: int, mode: int) -> Gate:
    if mode == MODE_AND:
        return Gate.and_(base, Gate.lit(gene))
    if mode == MODE_ANDNOT:
        return Gate.and_(base, Gate.lit(gene, negated=True))
    return Gate.or_(base, Gate.lit(gene))


def _resolve_candidates(genes: np.ndarray, candidates: Sequence[str] | None) -> np.ndarray:
    if candidates is None:
        return np.arange(genes.size, dtype=np.int64)
    index = {g: i for i, g in enumerate(genes.tolist())}
    missing = [c for c in candidates if str(c) not in index]
    if missing:
        msg = f"candidates not among genes: {missing[:5]}; pass names from the gene list."
        raise InputError(msg)
    return np.array(sorted({index[str(c)] for c in candidates}), dtype=np.int64)


#: Most genes a gate may combine.
MAX_GATE_GENES = 5


def check_gate_shape(
    ops: Sequence[str] | str, max_genes: int, min_genes: int = 1
) -> tuple[str, ...]:
    """Check the operators and gene counts a gate search is asked for, before any work.

    Parameters
    ----------
    ops
        Operators, a non-empty subset of ``and``, ``or``, ``not``; ``not`` needs ``and``
        (NOT is used as A AND NOT B), and gates of 2+ genes need ``and`` or ``or``.
    max_genes, min_genes
        Genes per gate, ``1 ≤ min_genes ≤ max_genes ≤ 5``.

    Returns
    -------
    The operators, as a tuple.
    """
    whole = isinstance(max_genes, int) and not isinstance(max_genes, bool)
    if not (whole and 1 <= max_genes <= MAX_GATE_GENES):
        msg = f"max_genes must be an integer from 1 to {MAX_GATE_GENES}; got {max_genes!r}"
        raise InputError(msg, param="max_genes")
    if not isinstance(min_genes, int) or not 1 <= min_genes <= max_genes:
        msg = f"min_genes must be an integer from 1 to max_genes ({max_genes}); got {min_genes!r}"
        raise InputError(msg, param="min_genes")
    ops = (ops,) if isinstance(ops, str) else tuple(ops)
    if not ops or any(o not in GATE_OPS for o in ops):
        msg = (
            f"ops must be a comma-separated subset of {', '.join(GATE_OPS)}; got {','.join(ops)!r}"
        )
        raise InputError(msg, param="ops")
    if "not" in ops and "and" not in ops:
        msg = "ops with 'not' also needs 'and' (NOT is used as A AND NOT B); add 'and'"
        raise InputError(msg, param="ops")
    if max_genes >= 2 and not set(ops) & {"and", "or"}:  # noqa: PLR2004
        msg = "ops must include 'and' or 'or' to build gates of 2+ genes"
        raise InputError(msg, param="ops")
    return ops


def search_gate_matrix(  # noqa: PLR0912, PLR0913, PLR0915
    T: object,
    patients: np.ndarray,
    healthy: HealthyInput,
    *,
    genes: Sequence[str],
    max_genes: int = 2,
    min_genes: int = 1,
    ops: Sequence[GateOp] = GATE_OPS,  # type: ignore[assignment]
    max_vital_risk: float = 0.1,
    coverage_threshold: float = 0.8,
    top_k: int = 50,
    objective: Objective = "coverage",
    compartments: np.ndarray | None = None,
    candidates: Sequence[str] | None = None,
    beam_width: int = 64,
    triple_budget: int | None = TRIPLE_BUDGET,
    pair_method: Literal["bits", "gram"] = "bits",
    n_jobs: int | None = None,
    not_missed: np.ndarray | None = None,
) -> pd.DataFrame:
    """Find the gates with the highest tumour coverage whose worst vital healthy risk is capped.

    Gates of 1–3 genes are searched exactly (every pair via exact pair counts; triples by branch
    and bound, OR triples only while their estimated work is within ``triple_budget``, else by
    a beam that states a bound on what it skipped); 4–5 genes by a beam search that reports an
    upper bound on what it skipped.

    Parameters
    ----------
    T
        Tumour cells × genes positivity (dense bool, or scipy sparse CSR/CSC bool or 0/1).
    patients
        Patient label per tumour cell.
    healthy
        :class:`HealthyCells` (exact per-type co-positivity), :class:`HealthyPseudobulk`
        (per-type fractions; risk is the Fréchet upper bound and ``risk_is_bound`` is True) or
        :class:`HealthyMixed` (single cells of some types, pseudobulk for the rest; also
        accepted as a pair ``(cells, pseudobulk)``): the worst risk is the maximum over the
        types of both parts and ``risk_is_bound`` is True when it comes from a pseudobulk type.
    genes
        Gene names, one per column of ``T`` (and of the healthy matrix).
    max_genes
        Largest gate, 1–5.
    min_genes
        Smallest gate reported (1 includes single genes as baselines).
    ops
        Operators allowed, from ``("and", "or", "not")``; ``"not"`` needs ``"and"`` (a gate is
        never a bare ``NOT``).
    max_vital_risk
        Cap on the worst weighted healthy risk ``max_c w_c × fraction_c``.
    coverage_threshold
        Per-patient coverage that counts a patient as covered.
    top_k
        Number of feasible gates returned.
    objective
        ``"coverage"`` (maximise tumour coverage) or ``"score"`` (coverage × (1 − risk)).
    compartments
        Optional compartment label per tumour cell; adds ``coverage_<label>`` columns.
    candidates
        Restrict the search to these gene names (default: all genes).
    beam_width
        Gates kept per level in the 4–5-gene beam search.
    triple_budget
        Work allowed for the OR children of the triple search, estimated before they are
        looked at as (pair gates whose OR children can pass the bound) × (feasible candidate
        genes). Within it triples are exact; above it OR children are expanded only for the
        parents with the highest bounds until the budget is spent (AND / AND NOT children stay
        exact), and rows that a skipped OR triple could beat get ``optimal=False`` and their
        ``optimality_gap``. ``None``: always exact (can take very long with OR on thousands
        of genes). The estimate and whether the beam ran are in ``df.attrs``
        (``triple_or_work``, ``triple_beam``).
    pair_method
        ``"bits"`` (popcount; the faster on the development machine) or ``"gram"`` (BLAS).
    n_jobs
        Threads for the numba kernels (``None``: numba's default, ``-1``: all cores).
    not_missed
        Tumour cells that may hide each gene, per patient: as in :func:`evaluate_gates`.

    Returns
    -------
    pandas.DataFrame
        One row per gate, best first, with columns ``gate``, ``n_genes``, ``genes``, ``ops``,
        ``tumor_coverage``, ``tumor_n_positive``, ``tumor_coverage_cells``,
        ``patients_covered_fraction``,
        ``patient_coverage_median``, ``patient_coverage_min``, ``worst_healthy_cell_type``,
        ``worst_healthy_risk``, ``worst_healthy_risk_lower``, ``risk_is_bound``, ``feasible``,
        ``score``, ``objective``, ``rank``, ``optimal``, ``optimality_gap``, ``pareto`` and one
        ``coverage_<compartment>`` per compartment. ``optimal`` is True when no gate in the
        searched space outside the table can beat the row (``optimality_gap`` = 0);
        otherwise ``optimality_gap`` bounds by how much a skipped gate could exceed the row's
        ``objective``. ``pareto`` marks rows not dominated in (coverage ↑, risk ↓) by another row.
        ``risk_is_bound`` is per row: True when the row's worst risk is a Fréchet upper bound
        (it comes from a pseudobulk type). ``df.attrs`` holds the parameters (with
        ``healthy_mode``: ``"cells"``, ``"pseudobulk"`` or ``"mixed"``, and ``risk_is_bound``:
        whether any risk may be a bound) and ``n_evaluated`` (gates counted exactly beyond pairs).
    """
    opset = frozenset(check_gate_shape(ops, max_genes, min_genes))
    if not 0 <= max_vital_risk <= 1 or not 0 <= coverage_threshold <= 1:
        msg = "max_vital_risk and coverage_threshold must lie in [0, 1]."
        raise InputError(msg)
    if not isinstance(top_k, int) or top_k < 1:
        msg = f"top_k must be a positive int; got {top_k!r}."
        raise InputError(msg)
    if objective not in OBJECTIVES:
        msg = f"objective must be 'coverage' or 'score'; got {objective!r}."
        raise InputError(msg)
    if pair_method not in ("bits", "gram"):
        msg = f"pair_method must be 'bits' or 'gram'; got {pair_method!r}."
        raise InputError(msg)
    if not isinstance(beam_width, int) or beam_width < 1:
        msg = f"beam_width must be a positive int; got {beam_width!r}."
        raise InputError(msg)
    if triple_budget is not None and (
        not isinstance(triple_budget, int | np.integer) or triple_budget < 0
    ):
        msg = f"triple_budget must be an int ≥ 0 or None; got {triple_budget!r}."
        raise InputError(msg)

    with _threads(n_jobs):
        prob = _Problem(T, patients, healthy, genes, compartments, not_missed)
        cand = _resolve_candidates(prob.genes, candidates)
        if max_genes >= 3 or pair_method == "gram":  # noqa: PLR2004
            stats = _pair_stats(prob, pair_method)
        elif max_genes == 2:  # noqa: PLR2004
            stats = _pair_stats_top(prob, cand, opset, max_vital_risk, objective, top_k, min_genes)
        else:
            stats = _PairStats(
                np.diag(prob.s), np.zeros((0, 0)), np.zeros((0, 0)), np.zeros((0, 0))
            )
        search = _Search(prob, stats, cand, opset, max_vital_risk, objective)
        top = _TopK(top_k)
        search.singles_and_pairs(top, max_genes, min_genes)
        skipped = -math.inf
        if max_genes >= 3 and min_genes <= 3:  # noqa: PLR2004
            skipped = search.triples(top, triple_budget)
        if max_genes >= 4:  # noqa: PLR2004
            skipped = max(skipped, search.beam(top, max_genes, beam_width, triple_budget))
        best = [(v, g) for v, g in top.sorted() if g.n_genes >= min_genes]
        rows = []
        for v, g in best:
            row = _row(prob, g, coverage_threshold, max_vital_risk)
            row["objective"] = v
            rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        df = pd.DataFrame(columns=["gate", "n_genes", "genes", "ops", "tumor_coverage", "rank"])
    else:
        df["rank"] = np.arange(1, len(df) + 1)
        gap = np.maximum(0.0, skipped - df["objective"].to_numpy())
        df["optimality_gap"] = gap
        df["optimal"] = gap <= 0.0
        df["pareto"] = _pareto(df["tumor_coverage"].to_numpy(), df["worst_healthy_risk"].to_numpy())
    df.attrs["params"] = {
        "max_genes": max_genes,
        "min_genes": min_genes,
        "ops": sorted(opset),
        "max_vital_risk": max_vital_risk,
        "coverage_threshold": coverage_threshold,
        "top_k": top_k,
        "objective": objective,
        "beam_width": beam_width,
        "triple_budget": triple_budget,
        "risk_is_bound": prob.has_bulk,
        "healthy_mode": _healthy_mode(prob),
    }
    df.attrs["n_evaluated"] = search.n_evaluated
    df.attrs["skipped_upper_bound"] = skipped
    df.attrs["triple_or_work"] = search.triple_work
    df.attrs["triple_beam"] = search.triple_beam
    return df
