"""Evaluations fold change cannot match by construction (issue #21, item 5).

* **Decoys** (5b): each known target among the candidates of its class whose tumour level is
  nearest its own, so that only the healthy side (and reach) can move it (:func:`decoys`,
  :func:`decoy_block`).
* **Clusters** (5c): one bootstrap cluster per target, so several rows of one target move
  together (:func:`target_clusters`, for ``paired_bootstrap(clusters=)``).
* **Within-tissue cross-target ranking** (5a), below.

Within-tissue cross-target ranking of the toxicity record.

For one tissue, every on-target row of the record is a (target, agent) pair; the tissue was
damaged for some of them. A ranker that knows where each agent binds should place the damaged
pairs above the others *within that tissue*: the area under the ROC curve of its per-tissue
value, one tissue at a time, then averaged over the tissues that have both damaged and spared
pairs. Fold change's raw expression competes on the same pairs. Intervals: the rows are
resampled with replacement, the same resample for every method (paired).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..tl._organs import organ_systems
from ._metrics import paired_bootstrap

__all__ = [
    "N_DECOYS",
    "WITHIN_TISSUES",
    "auroc",
    "decoy_block",
    "decoys",
    "target_clusters",
    "within_tissue",
]

#: Decoys per known target: the candidates nearest to it in tumour level.
N_DECOYS = 100


def decoys(table: pd.DataFrame, gene: str) -> pd.Index:
    """Return the :data:`N_DECOYS` candidates whose tumour level is nearest the target's.

    The candidates are the modality's class (the table's rows); levels are compared on the log
    scale (``tumor_mean_cp10k``; ties by name).

    Examples
    --------
    >>> t = pd.DataFrame({"tumor_mean_cp10k": [10.0, 9.0, 12.0, 0.0]}, index=["G", "a", "b", "c"])
    >>> list(decoys(t, "G"))
    ['a', 'b', 'c']
    >>> t.loc["b", "tumor_mean_cp10k"] = float("nan")  # an unknown level is no decoy
    >>> list(decoys(t, "G"))
    ['a', 'c']
    """
    if "tumor_mean_cp10k" not in table:
        return pd.Index([])
    level = np.log1p(table["tumor_mean_cp10k"].astype(float).clip(lower=0.0))
    if not np.isfinite(level[gene]):  # no tumour level: nothing to match on
        return pd.Index([])
    dist = (level - level[gene]).abs().drop(index=gene).dropna()
    order = sorted(dist.index, key=lambda k: (dist[k], str(k)))
    return pd.Index(order[:N_DECOYS])


_DECOY_STATS = {
    "median_decoy_percentile": ("p", lambda a: np.median(a, axis=1), True),
    "mean_decoy_percentile": ("p", lambda a: a.mean(axis=1), True),
}


def decoy_block(
    scored: pd.DataFrame, methods: Sequence[str], *, n_boot: int, seed: int
) -> dict[str, Any] | None:
    """Return each known target's percentile among its decoys, per method.

    That is ``<method>_decoy_percentile`` of the scored target rows, with row intervals and
    paired differences by row and by target; ``None`` without such rows.
    """
    cols = [f"{m}_decoy_percentile" for m in methods]
    if not len(scored) or not set(cols) <= set(scored.columns):
        return None
    rows = scored.dropna(subset=cols)
    if not len(rows):
        return None
    values = {m: {"p": rows[f"{m}_decoy_percentile"].to_numpy(dtype=float)} for m in methods}
    boot = paired_bootstrap(values, _DECOY_STATS, n_boot=n_boot, seed=seed)
    by_target = paired_bootstrap(
        values, _DECOY_STATS, n_boot=n_boot, seed=seed, clusters=target_clusters(rows)
    )
    return {
        "n_rows": len(rows),
        "n_decoys": N_DECOYS,
        **{
            m: {
                "median_decoy_percentile": float(np.median(values[m]["p"])),
                "mean_decoy_percentile": float(np.mean(values[m]["p"])),
                "ci95": boot["ci95"][m],
            }
            for m in methods
        },
        "paired": boot["paired"],
        "paired_by_target": by_target["paired"],
    }


def target_clusters(rows: pd.DataFrame) -> np.ndarray:
    """Return one bootstrap cluster per target: the row's genes, sorted (``EGFR``, ``EGFR;MET``).

    A row without genes is its own cluster.

    Examples
    --------
    >>> target_clusters(pd.DataFrame({"genes": ["EGFR", "MET;EGFR", "EGFR", None]})).tolist()
    ['EGFR', 'EGFR;MET', 'EGFR', 'row3']
    """
    if not len(rows) or "genes" not in rows:
        return np.arange(len(rows)).astype(str)
    genes = rows["genes"].astype(object).where(rows["genes"].notna(), None)
    return np.array(
        [";".join(sorted(str(g).split(";"))) if g else f"row{i}" for i, g in enumerate(genes)],
        dtype=object,
    )


#: The tissues of issue #21 and the organ system each stands for (the reference's systems
#: through ``organ_systems``): marrow is blood, marrow and immune cells, as for severity.
WITHIN_TISSUES: dict[str, str] = {
    "skin": "skin",
    "lung": "respiratory",
    "liver": "hepatobiliary",
    "gut": "gastrointestinal",
    "marrow": "blood and immune",
    "kidney": "renal/urinary",
}


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: P(a damaged pair scores above a spared one), ties 1/2.

    Examples
    --------
    >>> auroc(np.array([0.9, 0.5, 0.5, 0.1]), np.array([1, 1, 0, 0]))
    0.875
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    pos, neg = scores[labels], scores[~labels]
    if not len(pos) or not len(neg):
        return float("nan")
    diff = pos[:, None] - neg[None, :]
    return float(((diff > 0) + 0.5 * (diff == 0)).mean())


def within_tissue(  # noqa: PLR0913
    rows: pd.DataFrame,
    contexts: pd.DataFrame,
    values: Callable[[pd.Series], Mapping[str, pd.Series]],
    methods: Sequence[str],
    *,
    n_boot: int,
    seed: int,
    engine: str = "antigenscout",
) -> dict[str, Any]:
    """Per-tissue and mean AUROC of each method on the scored on-target rows.

    Parameters
    ----------
    rows
        Toxicity rows (``status``, ``class``, ``mapped_contexts``, and what ``values`` needs).
    contexts
        The reference's context table (``system``).
    values
        ``values(row)`` → ``{method: per-context value}`` for that row's agent.
    methods
        The methods to compare; ``engine`` is compared with every other.
    n_boot, seed
        Paired row resamples and their seed.

    Returns
    -------
    ``{'tissues': {tissue: {'n_damaged', 'n_spared', method: auroc}}, 'mean_auroc':
    {method: {'estimate', 'ci95'}}, 'paired': {baseline: {'estimate', 'ci95', 'verdict'}},
    'n_rows', 'n_pairs', 'tissues_used'}``: rows of one (genes, gate, modality) pair are one
    pair, damaged in every tissue any of them names, and pairs are what is resampled; tissues
    with no damaged or no spared pair are listed with their counts and left out of the mean.
    """
    scored = rows[(rows["status"] == "scored") & (rows["class"] == "on_target")]
    organ = pd.Series(organ_systems(contexts["system"]), index=contexts.index)
    # one (target, agent) pair per genes, gate and modality: a pair the record names for two
    # tissues (one row each) is damaged in both, not damaged in one and spared in the other
    key = [
        scored.get(c, pd.Series("", index=scored.index)).astype(str)
        for c in ("genes", "gate", "modality")
    ]
    pairs = list(scored.groupby(key, sort=False).groups.values()) if len(scored) else []
    n = len(pairs)
    names = list(WITHIN_TISSUES)
    score = {m: np.zeros((n, len(names))) for m in methods}
    label = np.zeros((n, len(names)), dtype=bool)
    for i, idx in enumerate(pairs):
        row = scored.loc[idx[0]]
        vals = values(row)
        named = ";".join(scored.loc[idx, "mapped_contexts"].astype(str)).split(";")
        hit = set(organ.reindex(named).dropna())
        for j, t in enumerate(names):
            where = organ.index[organ.eq(WITHIN_TISSUES[t]).to_numpy()]
            label[i, j] = WITHIN_TISSUES[t] in hit
            for m in methods:
                v = vals[m].reindex(where).fillna(0.0).to_numpy(dtype=np.float64)
                score[m][i, j] = float(v.max()) if len(v) else 0.0
    used = [j for j in range(len(names)) if 0 < label[:, j].sum() < n]

    def mean_auc(idx: np.ndarray) -> dict[str, float]:
        out = {}
        for m in methods:
            aucs = [auroc(score[m][idx, j], label[idx, j]) for j in used]
            aucs = [a for a in aucs if not math.isnan(a)]
            out[m] = float(np.mean(aucs)) if aucs else float("nan")
        return out

    tissues: dict[str, Any] = {}
    for j, t in enumerate(names):
        entry: dict[str, Any] = {
            "n_damaged": int(label[:, j].sum()),
            "n_spared": int((~label[:, j]).sum()),
        }
        if j in used:
            for m in methods:
                entry[m] = auroc(score[m][:, j], label[:, j])
        tissues[t] = entry
    point = mean_auc(np.arange(n))
    rng = np.random.default_rng(seed)
    boots = [mean_auc(rng.integers(0, n, size=n)) for _ in range(n_boot if used else 0)]
    mean: dict[str, Any] = {}
    for m in methods:
        b = np.array([x[m] for x in boots], dtype=np.float64)
        b = b[~np.isnan(b)]
        ci = [float(v) for v in np.percentile(b, [2.5, 97.5])] if len(b) else None
        mean[m] = {"estimate": point[m], "ci95": ci}
    paired: dict[str, Any] = {}
    for m in methods:
        if m == engine:
            continue
        d = np.array([x[engine] - x[m] for x in boots], dtype=np.float64)
        d = d[~np.isnan(d)]
        ci = [float(v) for v in np.percentile(d, [2.5, 97.5])] if len(d) else None
        verdict = None
        if ci is not None:
            verdict = "better" if ci[0] > 0 else "worse" if ci[1] < 0 else "not distinguishable"
        paired[m] = {"estimate": point[engine] - point[m], "ci95": ci, "verdict": verdict}
    return {
        "n_rows": len(scored),
        "n_pairs": n,
        "tissues_used": [names[j] for j in used],
        "tissues": tissues,
        "mean_auroc": mean,
        "paired": paired,
    }
