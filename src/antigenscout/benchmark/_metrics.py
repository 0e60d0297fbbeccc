"""Metric definitions shared by antigenscout and the baselines.

Percentile (validated targets)
    Among the ``n`` other candidates of the row's modality, with the row's value ``v``
    (higher is better): ``percentile = (#{others < v} + 0.5 * #{others == v}) / n``. A
    perfect ranker (target strictly best) gives 1, a reversed one 0; ties share credit.
    Values are compared lexicographically when a ranker has a tie-break key.
    *Top q* means ``percentile >= 1 - q`` (top 1%: >= 0.99; top 5%: >= 0.95).

Top-k (toxicity)
    Contexts are ranked by a per-context value (higher = more at risk); a context's rank is
    ``1 + #{contexts with a strictly higher value}`` (ties share the better rank), and only
    values > 0 can be flagged. A row is a hit at ``k`` when one of its mapped contexts has
    rank <= ``k``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["competition_rank", "percentile_of", "summarise_percentiles", "topk_hits"]

KS = (1, 3, 5)


def percentile_of(value: np.ndarray | float, others: np.ndarray) -> float:
    """Percentile of ``value`` among ``others`` (see module docstring).

    Parameters
    ----------
    value
        The target's key: a scalar, or a 1-D array of keys compared lexicographically.
    others
        The other candidates' keys: shape ``(n,)`` or ``(n, n_keys)``.

    Returns
    -------
    Percentile in [0, 1]; NaN when there are no other candidates.

    Examples
    --------
    >>> percentile_of(3.0, np.array([1.0, 2.0]))
    1.0
    >>> percentile_of(1.0, np.array([1.0, 2.0]))
    0.25
    """
    others = np.asarray(others, dtype=np.float64)
    v = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if others.ndim == 1:
        others = others[:, None]
    n = others.shape[0]
    if n == 0:
        return float("nan")
    others = np.nan_to_num(others, nan=-np.inf)
    v = np.nan_to_num(v, nan=-np.inf)
    below = np.zeros(n, dtype=bool)
    tied = np.ones(n, dtype=bool)
    for j in range(others.shape[1]):
        below |= tied & (others[:, j] < v[j])
        tied &= others[:, j] == v[j]
    return float((below.sum() + 0.5 * tied.sum()) / n)


def summarise_percentiles(p: pd.Series | np.ndarray) -> dict[str, float | int | None]:
    """``n_scored``, ``median_percentile``, ``mean_percentile``, ``top1_fraction``,
    ``top5_fraction`` of the non-missing percentiles."""
    arr = np.asarray(pd.Series(p, dtype=float).dropna(), dtype=np.float64)
    if arr.size == 0:
        return {
            "n_scored": 0,
            "median_percentile": None,
            "mean_percentile": None,
            "top1_fraction": None,
            "top5_fraction": None,
        }
    return {
        "n_scored": int(arr.size),
        "median_percentile": float(np.median(arr)),
        "mean_percentile": float(arr.mean()),
        "top1_fraction": float((arr >= 0.99).mean()),
        "top5_fraction": float((arr >= 0.95).mean()),
    }


def competition_rank(values: pd.Series) -> pd.Series:
    """``1 + #{strictly higher}`` per entry; entries with value <= 0 or NaN get NaN."""
    v = values.astype(float).fillna(0.0)
    rank = v.rank(method="min", ascending=False)
    return rank.where(v > 0)


def topk_hits(values: pd.Series, contexts: list[str] | tuple[str, ...]) -> dict[str, float]:
    """Best rank among ``contexts`` and the hit flags at k = 1, 3, 5.

    Parameters
    ----------
    values
        Per-context value (index context id); higher = more at risk.
    contexts
        The contexts the clinical record names.

    Returns
    -------
    ``{'best_rank': r, 'hit_at_1': p, 'hit_at_3': ..., 'hit_at_5': ...}``: ``best_rank`` is the
    competition rank of the best named context (NaN when none has a positive value);
    ``hit_at_k`` is the probability that a named context is among the top ``k`` when ties
    are broken at random (1 or 0 without ties), so a ranker gains nothing by tying contexts.

    Examples
    --------
    >>> s = pd.Series([0.9, 0.5, 0.1], index=["a", "b", "c"])
    >>> topk_hits(s, ["b"])["hit_at_1"], topk_hits(s, ["b"])["hit_at_3"]
    (0.0, 1.0)
    """
    rank = competition_rank(values)
    sel = rank.reindex(list(contexts)).dropna()
    best = float(sel.min()) if len(sel) else float("nan")
    out = {"best_rank": best}
    v = values.astype(float).fillna(0.0)
    named = v.index.isin(list(contexts))
    hit_level = v[named & (v > 0)].max() if (named & (v > 0)).any() else None
    for k in KS:
        out[f"hit_at_{k}"] = _expected_hit(v, named, hit_level, k)
    return out


def _expected_hit(v: pd.Series, named: np.ndarray, level: float | None, k: int) -> float:
    """P(a named context is in the top ``k``) under random tie-breaking."""
    from math import comb

    if level is None:
        return 0.0
    above = int((v > level).sum())
    slots = k - above
    if slots <= 0:
        return 0.0
    at = (v == level).to_numpy()
    m, d = int(at.sum()), int((at & named).sum())
    if slots >= m:
        return 1.0
    return 1.0 - comb(m - d, slots) / comb(m, slots)


def top_contexts(values: pd.Series, n: int = 3) -> list[str]:
    """The ``n`` highest-valued contexts with value > 0 (stable order on ties)."""
    v = values.astype(float).fillna(0.0)
    v = v[v > 0].sort_values(ascending=False, kind="stable")
    return list(v.index[:n])
