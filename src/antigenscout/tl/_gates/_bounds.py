"""Pair statistics and the pair values the search ranks on.

Exact co-positive counts, or Fréchet bounds for pseudobulk contexts; docs/gates.md, "Bounds".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

from .._kernels import as_csc_bool
from .._pair_kernels import (
    frechet_pair_risk,
    gram_counts,
    pair_layout,
    pair_stats_fused,
    update_pair_risk,
)
from ._gate import (
    _EPS,
)
from ._problem import (
    _Problem,
)

#: Candidates (the most frequent in the tumour) whose pairs seed the top-k cut of a 2-gene search.
_SEED_GENES = 256
#: Genes per parallel block of the pair kernel and words per cache slice (see pair_stats_fused).
_PAIR_BLOCK = 64
_PAIR_CHUNK = 512


@dataclass
class _PairStats:
    """Exact pair statistics for every gene pair."""

    P: np.ndarray  # tumour |i ∧ j| (genes × genes, int64), diagonal = singles
    r_and: np.ndarray  # worst risk of i ∧ j
    r_or: np.ndarray  # worst risk of i ∨ j
    r_andnot: np.ndarray  # worst risk of i ∧ ¬j (ordered)
    #: when set, the matrices are over these genes only, in this order (a 2-gene search);
    #: pairs it skipped hold P = −1
    rows: np.ndarray | None = None


def _pair_stats(prob: _Problem, pair_method: str) -> _PairStats:
    g = prob.genes.size
    r_and = np.zeros((g, g))
    r_or = np.zeros((g, g))
    r_an = np.zeros((g, g))
    # both kernels fold into running maxima, so a mixed input gets the max of its two parts
    if prob.frac is not None:
        frechet_pair_risk(prob.frac, prob.frac_shown, prob.w_bulk, r_and, r_or, r_an)
    if pair_method == "gram":
        P = gram_counts(as_csc_bool(prob.T, "T"))
        if prob.healthy is not None:
            Hr = sparse.csr_array(as_csc_bool(prob.H, "H"))
            ct = np.searchsorted(prob.htypes, prob.h_labels)
            for k in range(prob.cell_sizes.size):
                counts = gram_counts(Hr, np.flatnonzero(ct == k))
                update_pair_risk(
                    r_and,
                    r_or,
                    r_an,
                    counts,
                    prob.h_counts[k],
                    float(prob.cell_sizes[k]),
                    float(prob.w_cells[k]),
                )
        return _PairStats(P, r_and, r_or, r_an)
    P = np.empty((g, g), dtype=np.int64)
    _pair_stats_rows(prob, np.arange(g), P, r_and, r_or, r_an)
    return _PairStats(P, r_and, r_or, r_an)


def _pair_stats_rows(  # noqa: PLR0913, PLR0917
    prob: _Problem,
    rows: np.ndarray,
    P: np.ndarray,
    r_and: np.ndarray,
    r_or: np.ndarray,
    r_an: np.ndarray,
    cut: float = 0.0,
    kinds: int = 7,
) -> None:
    """Fill ``P`` and fold the cell-type risks for the genes ``rows`` (in that order) in one pass.

    The pass goes over the tumour and every healthy type (docs/gates.md, "Pair statistics").
    With ``cut > 0`` the rows must be sorted by decreasing tumour count; see
    :func:`pair_stats_fused` for the tiles it skips.
    """
    g = rows.size
    segments = [prob.tumour.words[rows]]
    h_single = np.zeros((0, g), dtype=np.int64)
    h_scale = np.zeros(0)
    if prob.healthy is not None:
        wp = prob.healthy.word_ptr
        hw = prob.healthy.words[rows]
        segments += [hw[:, wp[k] : wp[k + 1]] for k in range(wp.size - 1)]
        h_single = np.ascontiguousarray(prob.h_counts[:, rows])
        h_scale = prob.w_cells.astype(np.float64) / prob.cell_sizes.astype(np.float64)
    words, seg_ptr = pair_layout(segments)
    del segments
    s_rows = np.zeros(words.shape[0], dtype=np.int64)
    s_rows[:g] = prob.s[rows]
    pair_stats_fused(
        words, seg_ptr, g, h_single, h_scale, P, r_and, r_or, r_an, _PAIR_BLOCK, _PAIR_CHUNK,
        s_rows, float(cut), kinds,
    )  # fmt: skip


def _pair_stats_top(  # noqa: PLR0913, PLR0917
    prob: _Problem,
    cand: np.ndarray,
    ops: frozenset[str],
    cap: float,
    objective: str,
    top_k: int,
    min_genes: int,
) -> _PairStats:
    """Pair statistics for a search of at most 2 genes: only pairs that can enter the top k.

    The candidates are sorted by decreasing tumour count; the pairs among the first
    :data:`_SEED_GENES` are counted exactly, and the ``top_k``-th best objective among them
    (and the single genes when ``min_genes`` is 1) is a cut ``τ₀`` that the final top k cannot
    fall below (they are gates of the search space). The kernel then skips every tile whose
    coverage bound ``b`` (a count) has ``b / N < τ₀`` (a pair's objective is at most its
    coverage); skipped pairs keep ``P = −1``, which :meth:`_Search._pairs_counted` treats as
    absent. The matrices are over the candidates only, in that sorted order (``rows``). The
    result equals the full search's.
    """
    N = prob.n_tumor
    order = cand[np.argsort(-prob.s[cand], kind="stable")]
    kinds = (1 if "and" in ops else 0) | (2 if "or" in ops else 0) | (4 if "not" in ops else 0)
    cut = 0.0
    m = min(order.size, _SEED_GENES)
    if order.size > m:
        seed = order[:m]
        sub = [np.zeros((m, m)) for _ in range(3)]
        if prob.frac is not None:
            frechet_pair_risk(
                np.ascontiguousarray(prob.frac[:, seed]),
                np.ascontiguousarray(prob.frac_shown[:, seed]),
                prob.w_bulk,
                *sub,
            )
        Ps = np.empty((m, m), dtype=np.int64)
        _pair_stats_rows(prob, seed, Ps, *sub)
        vals = [_pair_values(Ps, prob.s[seed], prob.miss[seed], sub, N, ops, cap, objective)]
        if min_genes <= 1:
            vals.append(_objective(prob.s[cand] / N, prob.r_single[cand], cap, objective))
        allv = np.concatenate(vals)
        allv = allv[allv > -np.inf]
        if allv.size >= top_k:
            tau0 = float(np.partition(allv, allv.size - top_k)[allv.size - top_k])
            # the smallest count b with b / N >= tau0: tiles whose bound is below it are skipped
            b = max(0, int(np.floor(tau0 * N)) - 2)
            while b / N < tau0:
                b += 1
            cut = float(b)
    r = [np.zeros((order.size, order.size)) for _ in range(3)]
    if prob.frac is not None:
        frechet_pair_risk(
            np.ascontiguousarray(prob.frac[:, order]),
            np.ascontiguousarray(prob.frac_shown[:, order]),
            prob.w_bulk,
            *r,
        )
    Po = np.full((order.size, order.size), -1, dtype=np.int64)
    _pair_stats_rows(prob, order, Po, *r, cut=cut, kinds=kinds)
    return _PairStats(Po, *r, rows=order)


def _pair_values(  # noqa: PLR0913, PLR0917
    P: np.ndarray,
    s: np.ndarray,
    miss: np.ndarray,
    risks: list[np.ndarray],
    N: int,
    ops: frozenset[str],
    cap: float,
    objective: str,
) -> np.ndarray:
    """Objectives of every pair gate among a set of genes (as in ``singles_and_pairs``)."""
    r_and, r_or, r_an = risks
    g = s.size
    iu = np.triu(np.ones((g, g), dtype=bool), 1)
    out = []
    if "and" in ops:
        out.append(_objective(P / N, r_and, cap, objective)[iu])
    if "or" in ops:
        out.append(_objective((s[:, None] + s[None, :] - P) / N, r_or, cap, objective)[iu])
    if "not" in ops:
        off = ~np.eye(g, dtype=bool)
        cov_an = np.maximum(0.0, s[:, None] - P - miss[None, :])
        out.append(_objective(cov_an / N, r_an, cap, objective)[off])
    return np.concatenate(out) if out else np.zeros(0)


def _objective(cov: np.ndarray, risk: np.ndarray, cap: float, objective: str) -> np.ndarray:
    val = cov * (1.0 - risk) if objective == "score" else cov.astype(np.float64)
    return np.where(risk <= cap + _EPS, val, -np.inf)
