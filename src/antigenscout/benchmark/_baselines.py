"""The methods compared, and the two anchor baselines beside the engine.

Pooled fold change, and LogiCAR-style sensitivity at pooled specificity, both judged on the
pooled-normal summaries of the reference (:class:`_Healthy`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import sparse

if TYPE_CHECKING:
    from ..reference import Reference
    from ._tumors import _Tumor

__all__ = ["METHODS"]

#: Rankers compared; the first is the engine.
METHODS = ("antigenscout", "fold_change", "sens_at_spec")
#: Pseudobulk analogue of "count > 0": HPA's detection limit, 1 nTPM (or TPM / FPKM).
DETECTED_NTPM = 1.0
#: Pooled-specificity floor of the LogiCAR-style baseline (fitness 0 below it).
MIN_SPECIFICITY = 0.9
#: Pseudocount (nTPM-like units) of the fold-change baseline.
FC_PSEUDOCOUNT = 1.0


@dataclass
class _Healthy:
    """Pooled-normal summaries of the reference (shared by the baselines)."""

    expression: pd.DataFrame  # genes × contexts, NaN kept
    mean: pd.Series  # pooled normal mean per gene
    detected: pd.DataFrame  # genes × contexts bool (>= DETECTED_NTPM)
    measured: pd.Series  # contexts with a value per gene

    @classmethod
    def from_reference(cls, reference: Reference) -> _Healthy:
        expr = reference.expression
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = expr.mean(axis=1, skipna=True).fillna(0.0)
        return cls(expr, mean, expr >= DETECTED_NTPM, expr.notna().sum(axis=1))

    def expressed_fraction(self, genes: list[str], op: str) -> float:
        det = self.detected.reindex(genes).fillna(False).to_numpy(dtype=bool)
        hit = det.all(axis=0) if op == "and" else det.any(axis=0)
        n = int(self.measured.reindex(genes).fillna(0).max())
        return float(hit.sum() / n) if n else 0.0


def _baseline_scores(tum: _Tumor, cands: pd.Index, healthy: _Healthy) -> dict[str, pd.Series]:
    """Fold change and LogiCAR-style fitness of every single candidate."""
    t = tum.mean_ntpm.reindex(cands).fillna(0.0)
    n = healthy.mean.reindex(cands).fillna(0.0)
    fc = (t + FC_PSEUDOCOUNT) / (n + FC_PSEUDOCOUNT)
    # sensitivity of each candidate
    X = tum.adata.X
    var = pd.Index(tum.adata.var_names.astype(str))
    idx = var.get_indexer(cands)
    if tum.kind == "single_cell":
        mask = (tum.adata.obs["malignant"].astype(str) == "malignant").to_numpy()
        Xm = sparse.csr_matrix(X[mask])[:, idx]
        sens = np.asarray((Xm > 0).mean(axis=0)).ravel()
    else:
        Xd = X.toarray() if sparse.issparse(X) else np.asarray(X)
        sens = (np.nan_to_num(np.asarray(Xd, dtype=np.float64)[:, idx]) >= DETECTED_NTPM).mean(0)
    det = healthy.detected.reindex(cands).fillna(False).to_numpy(dtype=bool)
    measured = healthy.measured.reindex(cands).fillna(0).to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        normal_frac = np.where(measured > 0, det.sum(axis=1) / measured, 0.0)
    spec_ok = (1.0 - normal_frac) >= MIN_SPECIFICITY
    fit = pd.Series(np.where(spec_ok, sens, 0.0), index=cands)
    return {"fold_change": fc, "sens_at_spec": fit}


def _baseline_gate(tum: _Tumor, genes: list[str], op: str, healthy: _Healthy) -> dict[str, float]:
    t = tum.mean_ntpm.reindex(genes).fillna(0.0).to_numpy()
    n = healthy.mean.reindex(genes).fillna(0.0).to_numpy()
    if op == "and":
        fc = (t.min() + FC_PSEUDOCOUNT) / (n.min() + FC_PSEUDOCOUNT)
    else:
        fc = (t.sum() + FC_PSEUDOCOUNT) / (n.sum() + FC_PSEUDOCOUNT)
    sens = tum.positive(genes, op)
    spec = 1.0 - healthy.expressed_fraction(genes, op)
    return {"fold_change": float(fc), "sens_at_spec": sens if spec >= MIN_SPECIFICITY else 0.0}
