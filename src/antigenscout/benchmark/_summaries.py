"""Metrics assembly: per-method blocks with bootstrap intervals, ties and paired differences.

The scored rows of :mod:`antigenscout.benchmark._targets` and
:mod:`antigenscout.benchmark._toxicity` become the blocks of ``metrics.json``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ._baselines import METHODS
from ._evaluations import decoy_block, target_clusters
from ._metrics import KS, TOP_QS, paired_bootstrap, summarise_percentiles
from ._targets import _top_col


def _differences(tblocks: dict[str, Any], xblocks: dict[str, Any], key: str) -> dict[str, Any]:
    """Return the paired differences stored under ``key``, per baseline.

    The result is
    ``{baseline: {'targets': ..., 'toxicity': {'on_target', 'negative_controls'}}}``; ``key`` is
    ``paired`` or ``paired_by_target``.
    """
    return {
        b: {
            "targets": tblocks[key][b],
            "toxicity": {c: xblocks[key][c][b] for c in ("on_target", "negative_controls")},
        }
        for b in METHODS[1:]
    }


def _toxicity_metrics(df: pd.DataFrame, method: str) -> dict[str, Any]:
    scored = df[df["status"] == "scored"] if len(df) else df
    out: dict[str, Any] = {"n_rows": len(df)}
    for cls, key, name in (
        ("on_target", "recall", "on_target"),
        ("negative_control", "flag_rate", "negative_controls"),
        ("uncertain", "hit_rate", "uncertain"),
    ):
        block_all = df[df["class"] == cls] if len(df) else df
        block = scored[scored["class"] == cls] if len(scored) else scored
        res: dict[str, Any] = {"n_rows": len(block_all), "n_scored": len(block)}
        if len(block_all):  # rows naming a body site the reference has no context for
            res["n_not_represented"] = int(block_all["status"].eq("not_represented").sum())
        for k in KS:
            col = f"{method}_hit_at_{k}"
            res[f"{key}_at_{k}"] = float(block[col].mean()) if len(block) else None
        if cls == "on_target" and len(block):
            clin = block[block["clinical_evidence"].astype(bool)]
            res["clinical_only"] = {
                "n_scored": len(clin),
                **{
                    f"recall_at_{k}": (
                        float(clin[f"{method}_hit_at_{k}"].mean()) if len(clin) else None
                    )
                    for k in KS
                },
            }
        out[name] = res
    return out


def _ties_summary(ties: pd.Series) -> dict[str, Any]:
    t = pd.Series(ties, dtype=float).dropna()
    return {
        "n_rows": len(t),
        "rows_with_ties": int((t > 0).sum()),
        "median_tied": float(t.median()) if len(t) else None,
        "max_tied": int(t.max()) if len(t) else None,
    }


_TARGET_STATS = {
    "median_percentile": ("percentile", lambda a: np.median(a, axis=1), True),
    "mean_percentile": ("percentile", lambda a: a.mean(axis=1), True),
    **{key: (_top_col(key), lambda a: a.mean(axis=1), True) for key in TOP_QS},
}


def _target_blocks(tdf: pd.DataFrame, n_boot: int, seed: int) -> dict[str, Any]:
    """Per-method target metrics with ``ci95`` and ``ties``, and the paired differences."""
    scored = tdf[tdf["status"] == "scored"] if len(tdf) else tdf
    cols = [f"{m}_{c}" for m in METHODS for c in ("percentile", *(_top_col(k) for k in TOP_QS))]
    both = scored.dropna(subset=cols) if len(scored) else scored
    values = {
        m: {c: both[f"{m}_{c}"].to_numpy(dtype=float) for c in ("percentile",
            *(_top_col(k) for k in TOP_QS))}
        for m in METHODS
    }  # fmt: skip
    boot = paired_bootstrap(values, _TARGET_STATS, n_boot=n_boot, seed=seed)
    by_target = paired_bootstrap(
        values, _TARGET_STATS, n_boot=n_boot, seed=seed, clusters=target_clusters(both)
    )
    out: dict[str, Any] = {}
    for m in METHODS:
        p = scored[f"{m}_percentile"] if len(scored) else pd.Series(dtype=float)
        tops = {k: scored[f"{m}_{_top_col(k)}"] for k in TOP_QS} if len(scored) else None
        out[m] = {
            "n_rows": len(tdf),
            **summarise_percentiles(p, tops),
            "ci95": boot["ci95"][m],
            "ties": _ties_summary(scored[f"{m}_ties"] if len(scored) else pd.Series()),
        }
    out["paired"] = boot["paired"]
    out["paired_by_target"] = by_target["paired"]
    out["decoy"] = decoy_block(scored, METHODS, n_boot=n_boot, seed=seed)
    return out


def _toxicity_blocks(xdf: pd.DataFrame, n_boot: int, seed: int) -> dict[str, Any]:
    """Per-method toxicity metrics with ``ci95`` and ``ties``, and the paired differences."""
    scored = xdf[xdf["status"] == "scored"] if len(xdf) and "status" in xdf else xdf.iloc[0:0]
    out: dict[str, Any] = {m: _toxicity_metrics(xdf, m) for m in METHODS}
    out["paired"] = {}
    out["paired_by_target"] = {}
    for cls, name, key, hib in (
        ("on_target", "on_target", "recall", True),
        ("negative_control", "negative_controls", "flag_rate", False),
    ):
        block = scored[scored["class"] == cls] if len(scored) else scored
        values = {
            m: {f"hit_at_{k}": (block[f"{m}_hit_at_{k}"].to_numpy(dtype=float) if len(block)
                                else np.array([])) for k in KS}
            for m in METHODS
        }  # fmt: skip
        stats = {f"{key}_at_{k}": (f"hit_at_{k}", lambda a: a.mean(axis=1), hib) for k in KS}
        boot = paired_bootstrap(values, stats, n_boot=n_boot, seed=seed)
        clustered = paired_bootstrap(
            values, stats, n_boot=n_boot, seed=seed, clusters=target_clusters(block)
        )
        out["paired_by_target"][name] = clustered["paired"]
        for m in METHODS:
            out[m][name]["ci95"] = boot["ci95"][m]
            ties_col = f"{m}_ties"
            ties = block[ties_col] if len(block) and ties_col in block else pd.Series()
            out[m][name]["ties"] = _ties_summary(ties)
        out["paired"][name] = boot["paired"]
    return out


def _by_modality(tdf: pd.DataFrame) -> dict[str, Any]:
    """Scored rows and medians per engine modality (point estimates only)."""
    if not len(tdf) or "modality" not in tdf:
        return {}
    scored = tdf[tdf["status"] == "scored"]
    out: dict[str, Any] = {}
    for mod, g in scored.groupby("modality"):
        out[str(mod)] = {
            "n_scored": len(g),
            **{f"{m}_median_percentile": float(g[f"{m}_percentile"].median()) for m in METHODS},
            **{f"{m}_top5_fraction": float(g[f"{m}_top5"].mean()) for m in METHODS},
        }
    return out
