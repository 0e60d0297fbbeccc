"""Healthy-tissue risk model.

The embedded reference gives, per gene and healthy context (a cell type or a tissue), a
mean expression ``mu`` in nTPM-like units (HPA nTPM, or CPM for the marrow pseudobulk).
What matters for on-target, off-tumour toxicity is the *fraction of cells* that carry
enough antigen to be engaged. We use the same threshold ``lambda0`` as the single-cell
positivity model (CP10k, times 100 to reach nTPM/CPM units) and assume that, within a
context, per-cell expression rates follow a Gamma distribution with shape ``k`` and
mean ``mu``. The positive fraction is then

    f(mu) = P(lambda >= lambda0) = Q(k, k * lambda0 / mu)

(``Q`` the regularised upper incomplete gamma function); with ``k = 1`` this is
``exp(-lambda0 / mu)``. Where HPA immunohistochemistry with a reliable antibody (reliability
*Enhanced* or *Supported*) detects the protein in a tissue, the tissue's fraction is raised
to at least ``IHC_MAX_FLOOR * level / 3`` times the reliability weight: protein seen in a
tissue is reachable whatever the RNA says, but a staining intensity says nothing about
what fraction of the tissue's cells carry it, hence the cap. Approved/Uncertain calls
(single antibodies, unconfirmed by RNA) are reported as evidence only.

Whole-tissue RNA mixes a tissue's own cells with its immune infiltrate (CD19 in the small
intestine comes from Peyer's patches, not enterocytes), and the infiltrate is already
represented, at its own vital weight, by the immune cell-type contexts. Each tissue's immune
fraction ``phi`` is estimated from PTPRC (CD45): tissue PTPRC over the median PTPRC of the
immune cell types. For every gene the most the infiltrate could contribute,
``phi * max(immune cell-type expression)``, is subtracted before the fraction is computed,
and IHC calls on immune cell types (germinal centres, lymphoid and haematopoietic cells,
macrophages, Langerhans cells) do not raise a tissue's floor.

For single-cell-derived contexts (the healthy marrow), the reference stores the
*measured* fraction of cells called positive by the same positivity model; it replaces
the mean-based model whenever the run's threshold is the one it was measured at.

Risk in a context is ``vital_weight * f``; a tissue's or system's risk is the maximum
over its contexts. For TCR-T and vaccines (peptide presented on HLA) immune-privileged
contexts are discounted by ``IMMUNE_PRIVILEGE_DISCOUNT``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import special

if TYPE_CHECKING:
    from ..reference import Reference

__all__ = [
    "IHC_MAX_FLOOR",
    "IHC_RELIABILITY_WEIGHT",
    "IMMUNE_PRIVILEGE_DISCOUNT",
    "HealthyRisk",
    "healthy_risk",
    "positive_fraction_from_mean",
]

#: Weight of an HPA IHC call by its reliability class.
IHC_RELIABILITY_WEIGHT: dict[str, float] = {"Enhanced": 1.0, "Supported": 0.8}
#: Largest positive fraction an IHC call alone can imply (High, Enhanced).
IHC_MAX_FLOOR = 0.5
#: Factor applied to the vital weight of immune-privileged contexts for HLA-presented targets.
IMMUNE_PRIVILEGE_DISCOUNT = 0.1
#: Systems whose cell types form the immune infiltrate of whole tissues.
IMMUNE_SYSTEMS = frozenset({"immune (lymphoid)", "immune (myeloid)"})
#: HPA IHC cell types that belong to the immune infiltrate, not the tissue itself.
IHC_IMMUNE_CELL_TYPES = frozenset(
    {
        "germinal center cells",
        "non-germinal center cells",
        "mucosal lymphoid cells",
        "lymphoid tissue",
        "cells in red pulp",
        "cells in white pulp",
        "hematopoietic cells",
        "macrophages",
        "Langerhans",
    }
)
#: nTPM / CPM per CP10k.
CP10K_TO_NTPM = 100.0


def positive_fraction_from_mean(
    mean: np.ndarray, threshold_ntpm: float, shape: float = 1.0
) -> np.ndarray:
    """Fraction of cells above ``threshold_ntpm`` given a context's mean expression.

    Parameters
    ----------
    mean
        Mean expression per context (nTPM-like units); any shape.
    threshold_ntpm
        Positivity threshold in the same units.
    shape
        Shape ``k`` of the Gamma distribution of per-cell rates (1 = exponential).

    Returns
    -------
    Array of fractions in [0, 1] with the shape of ``mean``; 0 where ``mean <= 0``.

    Examples
    --------
    >>> positive_fraction_from_mean(np.array([0.0, 50.0, 500.0]), 50.0).round(3)
    array([0.   , 0.368, 0.905])
    """
    mean = np.asarray(mean, dtype=np.float64)
    out = np.zeros_like(mean)
    pos = mean > 0
    out[pos] = special.gammaincc(shape, shape * threshold_ntpm / mean[pos])
    return out


@dataclass(frozen=True)
class HealthyRisk:
    """Per-gene healthy risk over all reference contexts.

    Attributes
    ----------
    fraction
        Genes × contexts positive fraction in [0, 1] (RNA model, IHC floor applied).
    weight
        Vital weight per context after the modality's immune-privilege discount.
    contexts
        The reference's context table (index context id).
    """

    fraction: pd.DataFrame
    weight: pd.Series
    contexts: pd.DataFrame

    @property
    def risk(self) -> pd.DataFrame:
        """Genes × contexts vital-weighted risk, ``weight * fraction``."""
        return self.fraction * self.weight.to_numpy()[None, :]

    def summary(self, genes: pd.Index | list[str]) -> pd.DataFrame:
        """Worst cell type, tissue and system for each gene.

        Returns
        -------
        DataFrame indexed by gene with ``worst_healthy_cell_type``, ``worst_healthy_risk``
        (weighted), ``worst_healthy_fraction``, ``vital_risk`` (max weighted risk over
        all contexts), ``worst_tissue``, ``worst_system`` and ``n_contexts_engaged``
        (contexts with fraction >= 0.5).
        """
        genes = pd.Index(genes)
        frac = self.fraction.reindex(genes).to_numpy(dtype=np.float64)
        frac = np.nan_to_num(frac, nan=0.0)
        w = self.weight.to_numpy()
        risk = frac * w[None, :]
        ctx = self.contexts
        names = ctx["name"].to_numpy()
        is_ct = (ctx["kind"] == "cell_type").to_numpy()
        ct_risk = np.where(is_ct[None, :], risk, -1.0)
        worst_ct = ct_risk.argmax(axis=1)
        worst_any = risk.argmax(axis=1)
        rows = np.arange(len(genes))
        return pd.DataFrame(
            {
                "worst_healthy_cell_type": names[worst_ct],
                "worst_healthy_risk": risk[rows, worst_ct],
                "worst_healthy_fraction": frac[rows, worst_ct],
                "vital_risk": risk[rows, worst_any],
                "worst_context": names[worst_any],
                "worst_tissue": ctx["tissue"].to_numpy()[worst_any],
                "worst_system": ctx["system"].to_numpy()[worst_any],
                "n_contexts_engaged": (frac >= 0.5).sum(axis=1),
            },
            index=genes,
        )

    def long(self, genes: list[str]) -> pd.DataFrame:
        """Tidy table ``target, context, name, kind, tissue, system, positive_fraction,
        vital_weight, risk`` for ``genes`` (rows with zero fraction dropped)."""
        frac = self.fraction.reindex(genes).fillna(0.0)
        out = frac.stack().rename("positive_fraction").reset_index()
        out.columns = ["target", "context", "positive_fraction"]
        out = out[out["positive_fraction"] > 0]
        meta = self.contexts[["name", "kind", "tissue", "system"]]
        out = out.join(meta, on="context")
        out["vital_weight"] = self.weight.reindex(out["context"]).to_numpy()
        out["risk"] = out["positive_fraction"] * out["vital_weight"]
        order = ["target", "context", "name", "kind", "tissue", "system"]
        order += ["positive_fraction", "vital_weight", "risk"]
        return out[order].sort_values(["target", "risk"], ascending=[True, False])

    def rollup(self, genes: list[str], level: str) -> pd.DataFrame:
        """Genes × ``level`` ('tissue' or 'system') maximum weighted risk."""
        risk = self.risk.reindex(genes).fillna(0.0)
        return risk.T.groupby(self.contexts[level].to_numpy()).max().T


def healthy_risk(
    reference: Reference,
    *,
    threshold_cp10k: float,
    modality: str | None = None,
    shape: float = 1.0,
    use_ihc: bool = True,
) -> HealthyRisk:
    """Positive fraction and vital weight of every reference context for every gene.

    Parameters
    ----------
    reference
        The healthy reference (see :func:`antigenscout.reference.load_reference`).
    threshold_cp10k
        Positivity threshold in CP10k (the single-cell model's ``lambda0``).
    modality
        Therapy modality; ``'tcr-t'`` and ``'vaccine'`` discount immune-privileged contexts.
    shape
        Shape of the within-context Gamma distribution of expression.
    use_ihc
        Raise tissue fractions to the IHC protein level where HPA detects the protein.

    Returns
    -------
    :class:`HealthyRisk`
    """
    return _healthy_risk_cached(reference, threshold_cp10k, modality, shape, use_ihc)


@lru_cache(maxsize=8)
def _healthy_risk_cached(
    reference: Reference,  # hashed by identity (Reference is eq=False)
    threshold_cp10k: float,
    modality: str | None,
    shape: float,
    use_ihc: bool,
) -> HealthyRisk:
    contexts = reference.contexts
    expr = tissue_minus_infiltrate(reference)
    frac = positive_fraction_from_mean(
        expr.to_numpy(dtype=np.float64), threshold_cp10k * CP10K_TO_NTPM, shape
    )
    fraction = pd.DataFrame(frac, index=expr.index, columns=contexts.index)
    measured = measured_fraction(reference, threshold_cp10k)
    if measured is not None:
        cols = [c for c in measured.columns if c in fraction.columns]
        m = measured[cols].reindex(fraction.index).fillna(0.0)
        fraction[cols] = m.to_numpy(dtype=np.float64)
    if use_ihc and len(reference.ihc):
        floor = _ihc_floor(reference.ihc, fraction.index, contexts.index)
        fraction = fraction.where(fraction >= floor, floor)
    weight = contexts["vital_weight"].astype(float).copy()
    if modality in {"tcr-t", "vaccine"}:
        privileged = contexts["immune_privileged"].astype(bool)
        weight[privileged] *= IMMUNE_PRIVILEGE_DISCOUNT
    return HealthyRisk(fraction=fraction, weight=weight, contexts=contexts)


def tissue_minus_infiltrate(reference: Reference) -> pd.DataFrame:
    """Expression with each tissue context's immune-infiltrate share removed.

    Returns
    -------
    Genes × contexts expression; cell-type contexts unchanged, tissue contexts reduced by
    ``phi_t * max_immune(g)`` (floored at 0), ``phi_t`` = tissue PTPRC / median immune PTPRC.
    """
    ctx = reference.contexts
    expr = reference.expression[ctx.index]
    immune = ctx.index[
        (ctx["kind"] == "cell_type")
        & ctx["system"].isin(IMMUNE_SYSTEMS)
        & ~ctx.index.str.startswith("marrow:")
    ]
    tissues = ctx.index[ctx["kind"] == "tissue"]
    if len(immune) == 0 or len(tissues) == 0 or "PTPRC" not in expr.index:
        return expr
    ptprc_ref = float(np.nanmedian(expr.loc["PTPRC", immune].to_numpy(dtype=float)))
    phi = np.clip(expr.loc["PTPRC", tissues].to_numpy(dtype=float) / ptprc_ref, 0.0, 1.0)
    phi = np.nan_to_num(phi, nan=0.0)
    immune_max = np.nan_to_num(expr[immune].to_numpy(dtype=float)).max(axis=1)
    out = expr.astype(np.float64)
    tissue_vals = out[tissues].to_numpy()
    out[tissues] = np.maximum(0.0, tissue_vals - immune_max[:, None] * phi[None, :])
    return out


def measured_fraction(reference: Reference, threshold_cp10k: float) -> pd.DataFrame | None:
    """The reference's measured single-cell fractions, if taken at ``threshold_cp10k``."""
    measured = getattr(reference, "measured_fraction", None)
    if measured is None:
        return None
    at = reference.metadata.get("measured_fraction", {}).get("threshold_cp10k")
    if at is None or not np.isclose(float(at), threshold_cp10k):
        return None
    return measured


def _ihc_floor(ihc: pd.DataFrame, genes: pd.Index, contexts: pd.Index) -> pd.DataFrame:
    """Genes × contexts lower bound on the positive fraction from IHC detection."""
    ihc = ihc.dropna(subset=["context"])
    ihc = ihc[ihc["symbol"].isin(genes) & ihc["context"].isin(contexts)]
    ihc = ihc[~ihc["cell_type"].astype(str).isin(IHC_IMMUNE_CELL_TYPES)]
    rel = ihc["reliability"].astype(str).map(IHC_RELIABILITY_WEIGHT).fillna(0.0)
    value = IHC_MAX_FLOOR * ihc["level"].to_numpy(dtype=float) / 3.0 * rel.to_numpy()
    floor = (
        pd.DataFrame(
            {"symbol": ihc["symbol"].astype(str), "context": ihc["context"].astype(str), "v": value}
        )
        .groupby(["symbol", "context"])["v"]
        .max()
        .unstack(fill_value=0.0)
    )
    return floor.reindex(index=genes, columns=contexts, fill_value=0.0)
