"""Metric definitions shared by antigenscout and the baselines.

Percentile (validated targets)
    Among the ``n`` other candidates of the row's modality, with the row's value ``v``
    (higher is better): ``percentile = (#{others < v} + 0.5 * #{others == v}) / n``. A
    perfect ranker (target strictly best) gives 1, a reversed one 0; ties share credit.
    Values are compared lexicographically when a ranker has a tie-break key.
    *Top q* means ``percentile >= 1 - q`` (top 1%: >= 0.99; top 5%: >= 0.95; top 10%:
    >= 0.90). With ties the reported top-q hit is its expectation when ties are broken at
    random (:func:`expected_top_hit`), so a ranker gains nothing by tying candidates; the
    number of candidates tied with the target is reported per row.

Top-k (toxicity)
    Contexts are ranked by a per-context value (higher = more at risk); a context's rank is
    ``1 + #{contexts with a strictly higher value}`` (ties share the better rank), and only
    values > 0 can be flagged. A row is a hit at ``k`` when one of its mapped contexts has
    rank <= ``k`` (again in expectation under random tie-breaking).

Intervals (:func:`paired_bootstrap`)
    Rows are resampled with replacement (``n_boot`` times, seeded); every method is
    evaluated on the same resampled rows, so the difference engine − baseline is paired.
    Intervals are the 2.5 and 97.5 percentiles of the resampled statistic.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

__all__ = [
    "TOP_QS",
    "competition_rank",
    "expected_top_hit",
    "paired_bootstrap",
    "percentile_of",
    "percentile_parts",
    "summarise_percentiles",
    "topk_hits",
]

KS = (1, 3, 5)
#: Top-q fractions reported for validated targets (key → q).
TOP_QS = {"top1_fraction": 0.01, "top5_fraction": 0.05, "top10_fraction": 0.10}
#: Default bootstrap resamples and seed.
N_BOOT = 2000
SEED = 20240601


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
    below, tied, n = percentile_parts(value, others)
    return float((below + 0.5 * tied) / n) if n else float("nan")


def percentile_parts(value: np.ndarray | float, others: np.ndarray) -> tuple[int, int, int]:
    """Return ``(#others below, #others tied, n)`` of ``value`` among ``others``.

    Keys compare lexicographically, as in :func:`percentile_of`.
    """
    others = np.asarray(others, dtype=np.float64)
    v = np.atleast_1d(np.asarray(value, dtype=np.float64))
    if others.ndim == 1:
        others = others[:, None]
    n = others.shape[0]
    others = np.nan_to_num(others, nan=-np.inf)
    v = np.nan_to_num(v, nan=-np.inf)
    below = np.zeros(n, dtype=bool)
    tied = np.ones(n, dtype=bool)
    for j in range(others.shape[1]):
        below |= tied & (others[:, j] < v[j])
        tied &= others[:, j] == v[j]
    return int(below.sum()), int(tied.sum()), n


def expected_top_hit(below: int, tied: int, n: int, q: float) -> float:
    """P(percentile >= 1 - q) when the target's ties are broken at random.

    The target beats ``below + j`` others with ``j`` uniform on ``0..tied``.

    Examples
    --------
    >>> expected_top_hit(99, 0, 100, 0.01)
    1.0
    >>> expected_top_hit(98, 1, 100, 0.01)  # one tie at the top: half the time first
    0.5
    """
    if n <= 0:
        return float("nan")
    need = (1.0 - q) * n - 1e-9
    js = np.arange(below, below + tied + 1)
    return float((js >= need).mean())


def summarise_percentiles(
    p: pd.Series | np.ndarray, top_hits: Mapping[str, pd.Series | np.ndarray] | None = None
) -> dict[str, float | int | None]:
    """Summarise the non-missing percentiles: their number, median, mean and top-q fractions.

    The keys are ``n_scored``, ``median_percentile``, ``mean_percentile`` and the top-q
    fractions (:data:`TOP_QS`).

    ``top_hits`` maps a :data:`TOP_QS` key to per-row expected hits (aligned with ``p``);
    without it a row is a hit when its percentile is at least ``1 - q``.
    """
    ser = pd.Series(p, dtype=float)
    keep = ser.notna().to_numpy()
    arr = np.asarray(ser[keep], dtype=np.float64)
    if arr.size == 0:
        return {
            "n_scored": 0,
            "median_percentile": None,
            "mean_percentile": None,
            **dict.fromkeys(TOP_QS),
        }
    out: dict[str, float | int | None] = {
        "n_scored": int(arr.size),
        "median_percentile": float(np.median(arr)),
        "mean_percentile": float(arr.mean()),
    }
    for key, q in TOP_QS.items():
        if top_hits is not None and key in top_hits:
            h = np.asarray(pd.Series(top_hits[key], dtype=float), dtype=np.float64)[keep]
            out[key] = float(np.nanmean(h))
        else:
            out[key] = float((arr >= 1.0 - q - 1e-12).mean())
    return out


def _verdict(lo: float, hi: float, higher_is_better: bool) -> str:
    if higher_is_better:
        return "better" if lo > 0 else ("worse" if hi < 0 else "not distinguishable")
    return "better" if hi < 0 else ("worse" if lo > 0 else "not distinguishable")


def paired_bootstrap(  # noqa: PLR0913
    values: Mapping[str, Mapping[str, np.ndarray]],
    stats: Mapping[str, tuple[str, Callable[[np.ndarray], np.ndarray], bool]],
    *,
    engine: str = "antigenscout",
    n_boot: int = N_BOOT,
    seed: int = SEED,
    clusters: np.ndarray | None = None,
) -> dict[str, Any]:
    """Percentile-bootstrap intervals per method and paired differences engine − baseline.

    Parameters
    ----------
    values
        ``{method: {column: per-row values}}``; every array has the same rows, in order.
    stats
        ``{name: (column, f, higher_is_better)}``: ``f`` maps a ``(n_boot, n_rows)``
        array of resampled rows to ``n_boot`` statistics.
    engine
        The method whose difference to every other method is reported.
    n_boot, seed
        Resamples and the seed of ``numpy.random.default_rng``.
    clusters
        Optional label per row (the target gene): whole clusters are resampled with
        replacement, so that several rows of one target (four EGFR rows) move together and
        cannot carry a result alone; each resample holds as many clusters as there are.

    Returns
    -------
    ``{'ci95': {method: {stat: [lo, hi]}}, 'paired': {baseline: {stat: {'estimate': d,
    'ci95': [lo, hi], 'higher_is_better': bool, 'verdict': 'better' | 'worse' |
    'not distinguishable'}}}}``; ``None`` in place of numbers when there are no rows.

    Examples
    --------
    >>> v = {"a": {"x": np.ones(20)}, "b": {"x": np.zeros(20)}}
    >>> st = {"mean": ("x", lambda m: m.mean(axis=1), True)}
    >>> res = paired_bootstrap(v, st, engine="a", n_boot=200)
    >>> res["paired"]["b"]["mean"]["verdict"]
    'better'
    """
    methods = list(values)
    n = len(next(iter(next(iter(values.values())).values()))) if methods else 0
    ci: dict[str, dict[str, list[float] | None]] = {m: {} for m in methods}
    paired: dict[str, dict[str, Any]] = {m: {} for m in methods if m != engine}
    if n == 0:
        for m in methods:
            ci[m] = dict.fromkeys(stats)
        for m in paired:
            paired[m] = {
                s: {"estimate": None, "ci95": None, "higher_is_better": hib, "verdict": None}
                for s, (_c, _f, hib) in stats.items()
            }
        return {"ci95": ci, "paired": paired}
    rng = np.random.default_rng(seed)
    full = np.arange(n)[None, :]
    if clusters is None:
        idx = rng.integers(0, n, size=(n_boot, n))

        def resampled(arr: np.ndarray, f: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
            return f(arr[idx])
    else:
        codes, uniq = pd.factorize(np.asarray(clusters, dtype=object))
        if codes.shape != (n,):
            msg = f"clusters must hold one label per row ({n}); got {codes.shape}."
            raise ValueError(msg)
        members = [np.flatnonzero(codes == k) for k in range(len(uniq))]
        draws = rng.integers(0, len(uniq), size=(n_boot, len(uniq)))
        rows = [np.concatenate([members[k] for k in d]) for d in draws]

        def resampled(arr: np.ndarray, f: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
            return np.array([f(arr[r][None, :])[0] for r in rows])

    for s, (col, f, hib) in stats.items():
        boot = {}
        point = {}
        for m in methods:
            arr = np.asarray(values[m][col], dtype=np.float64)
            boot[m] = resampled(arr, f)
            point[m] = float(f(arr[full])[0])
            lo, hi = np.percentile(boot[m], [2.5, 97.5])
            ci[m][s] = [float(lo), float(hi)]
        for m in paired:  # noqa: PLC0206
            d = boot[engine] - boot[m]
            lo, hi = (float(x) for x in np.percentile(d, [2.5, 97.5]))
            paired[m][s] = {
                "estimate": point[engine] - point[m],
                "ci95": [lo, hi],
                "higher_is_better": hib,
                "verdict": _verdict(lo, hi, hib),
            }
    return {"ci95": ci, "paired": paired}


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
    are broken at random (1 or 0 without ties), so a ranker gains nothing by tying contexts;
    ``ties`` is the number of other contexts sharing the best named context's value (NaN
    when none has a positive value).

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
    # contexts sharing the best named context's value, that context excluded
    out["ties"] = float((v == hit_level).sum() - 1) if hit_level is not None else float("nan")
    for k in KS:
        out[f"hit_at_{k}"] = _expected_hit(v, named, hit_level, k)
    return out


def _expected_hit(v: pd.Series, named: np.ndarray, level: float | None, k: int) -> float:
    """P(a named context is in the top ``k``) under random tie-breaking."""
    from math import comb  # noqa: PLC0415

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
    """Return the ``n`` highest-valued contexts with value > 0 (stable order on ties)."""
    v = values.astype(float).fillna(0.0)
    v = v[v > 0].sort_values(ascending=False, kind="stable")
    return list(v.index[:n])
