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

HPA's single-cell clusters of parenchymal cells carry the same infiltrate (macrophage
transcripts in the hepatocyte and myocyte clusters, Langerhans cells' in the keratinocyte and
melanocyte clusters) and capillary endothelium (in the myocyte and adipocyte clusters). For each
such cluster the share ``a_k`` of each immune cell type ``k``
(:data:`~antigenscout.tl._healthy_expression.INFILTRATE_MARKERS`: HPA's own immune single-cell
profiles) and of the endothelium (:data:`~antigenscout.tl._healthy_expression.ENDOTHELIUM_MARKERS`)
is the median, over ``k``'s marker genes (made by that cell type and by no parenchymal cell), of
the cluster's level over ``k``'s level; ``sum_k a_k * profile_k(g)`` is subtracted from every gene
(floored at 0), before the fraction is computed
(:func:`~antigenscout.tl._healthy_expression.immune_admixture`,
:func:`~antigenscout.tl._healthy_expression.minus_infiltrate`).

For single-cell-derived contexts (the healthy marrow), the reference stores the
*measured* fraction of cells called positive by the same positivity model; it replaces
the mean-based model whenever the run's threshold is the one it was measured at.

Where the reference's curated isoform table (``reference/annotations/isoforms.tsv``) says a
context's RNA is another isoform of the gene than the one an agent binds (soluble sIL-1RAcP in
the liver, CLDN18.1 in the lung), that (gene, context) is engaged at 0, its ``source`` says so
and ``HealthyRisk.isoform`` keeps the engagement it had (docs/engagement.md, "Isoforms").

Risk in a context is ``vital_weight * f``; a tissue's or system's risk is the maximum
over its contexts. For TCR-T and vaccines (peptide presented on HLA) immune-privileged
contexts are discounted by ``IMMUNE_PRIVILEGE_DISCOUNT``.

An agent reaches a context only if it is exposed to it
(:func:`~antigenscout.tl._exposure.exposure`): contexts of pregnancy (placenta, trophoblasts) are
not part of the default adult body (``pregnancy=True`` adds them), and a protein agent (antibody,
ADC, bispecific, radioligand, agonist) reaches cells behind the blood–brain, blood–retina and
blood–testis barriers at a fraction of its plasma level, so their engagement is multiplied by
:data:`~antigenscout.tl._exposure.BARRIER_EXPOSURE`; cell therapies cross
(``ModalityProfile.crosses_barriers``).

A gene's ``vital_risk`` is its worst context's risk for a dosed agent (given at the dose its most
sensitive organ tolerates). For a living drug that persists (``ModalityProfile.persists``: CAR-T,
TCR-T, vaccines) it weighs breadth as well: each organ system
(:data:`~antigenscout.tl._organs.ORGAN_SYSTEMS`: the reference's systems, with blood, marrow and
the immune cells taken as one) is harmed with the probability of its worst context's risk,
independently of the others, and ``vital_risk`` is the probability that at least one is,
``1 - prod_s (1 - max_{c in s} risk_c)`` (:func:`~antigenscout.tl._organs.organ_system_risk`): a
gene engaged in every organ is not safer than one engaged in a single organ because no single
context is fully engaged.

This module holds the model's entry point, :func:`healthy_risk`, and the Gamma model of the
positive fraction at one threshold or at each gene's own; its parts live beside it: the
:class:`~antigenscout.tl._risk_table.HealthyRisk` result and its tables (``_risk_table``), the
RNA levels less the infiltrate (``_healthy_expression``), measured fractions, protein, IHC and
their intervals (``_measured``), isoforms (``_isoforms``), exposure (``_exposure``) and organ
systems, reserve and consequence (``_organs``).
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import special

from ._exposure import _exposed, _exposure_table, apply_apical
from ._gamma import INTERVAL_SHAPES
from ._healthy_expression import healthy_expression
from ._isoforms import apply_isoforms
from ._measured import _ihc_floor, _wilson, measured_fraction, protein_fraction, shallow_upper
from ._risk_table import HealthyRisk
from ._targetability import MODALITY_PROFILES

if TYPE_CHECKING:
    from ..reference import Reference

__all__ = [
    "IMMUNE_PRIVILEGE_DISCOUNT",
    "INTERVAL_SHAPES",
    "healthy_risk",
    "positive_fraction_from_mean",
]


#: Factor applied to the vital weight of immune-privileged contexts for HLA-presented targets.
IMMUNE_PRIVILEGE_DISCOUNT = 0.1


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


def healthy_risk(  # noqa: PLR0913
    reference: Reference,
    *,
    threshold_cp10k: float,
    modality: str | None = None,
    shape: float = 1.0,
    use_ihc: bool = True,
    gene_threshold_cp10k: pd.Series | None = None,
    pregnancy: bool = False,
    route: str = "systemic",
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
    gene_threshold_cp10k
        Per-gene antigen level a cell needs to be engaged (the agent's kill threshold);
        those genes' fractions are recomputed at their own
        thresholds, with intervals (``HealthyRisk.low``/``high``).
    pregnancy
        Keep the contexts of pregnancy (placenta, trophoblasts); out of the default adult body.
    route
        How the agent is given (:data:`ROUTES`): ``'systemic'``, ``'intrathecal'`` or
        ``'intravesical'`` (:func:`exposure`).

    Returns
    -------
    :class:`HealthyRisk`, with every engagement multiplied by the agent's :func:`exposure`.
    """
    if gene_threshold_cp10k is None:
        hr = _healthy_risk_isoforms(reference, threshold_cp10k, modality, shape, use_ihc)
    else:
        base = _healthy_risk_cached(reference, threshold_cp10k, modality, shape, use_ihc)
        hr = apply_isoforms(
            _rethreshold(base, reference, gene_threshold_cp10k, threshold_cp10k, shape, use_ihc),
            reference,
        )
    hr = apply_apical(hr, reference, modality, route)
    return _exposed(hr, _exposure_table(reference.contexts, modality, pregnancy, route))


def _rethreshold(  # noqa: PLR0913, PLR0915, PLR0917
    base: HealthyRisk,
    reference: Reference,
    thresholds: pd.Series,
    measured_at: float,
    shape: float,
    use_ihc: bool,
) -> HealthyRisk:
    """Engagement of ``thresholds.index`` genes at their own antigen thresholds (CP10k).

    Modelled contexts: the Gamma model at the gene's threshold, with an interval spanning
    shapes :data:`INTERVAL_SHAPES`. Measured single-cell contexts: the fraction ``f0``
    measured at ``measured_at`` carried to threshold ``t`` by the exponential model through
    the same data, ``f0 ** (t / measured_at)``, with a Wilson 90% interval on ``f0``; where
    the context's cells are too shallow to call a cell at ``t``, or ``t`` lies below
    ``measured_at`` (``f0`` then stands, as a lower bound), the interval's upper end is what
    the context's mean allows (:func:`shallow_upper`).
    """
    genes = pd.Index(thresholds.index).intersection(base.fraction.index)
    t = thresholds.reindex(genes).to_numpy(dtype=np.float64)[:, None] * CP10K_TO_NTPM
    reads_at = None
    expr = healthy_expression(reference)[0].reindex(genes)[base.contexts.index]
    mu = np.nan_to_num(expr.to_numpy(dtype=np.float64), posinf=np.inf)
    est = np.zeros_like(mu)
    pos = mu > 0
    tt = np.broadcast_to(t, mu.shape)
    est[pos] = special.gammaincc(shape, shape * tt[pos] / mu[pos])
    lo, hi = est.copy(), est.copy()
    for k in INTERVAL_SHAPES:
        alt = np.zeros_like(mu)
        alt[pos] = special.gammaincc(k, k * tt[pos] / mu[pos])
        lo, hi = np.minimum(lo, alt), np.maximum(hi, alt)
    measured = measured_fraction(reference, measured_at)
    if measured is not None:
        cols = [c for c in measured.columns if c in base.contexts.index]
        idx = base.contexts.index.get_indexer(cols)
        f0 = measured[cols].reindex(genes).fillna(0.0).to_numpy(dtype=np.float64)
        n = base.contexts["n_cells"].reindex(cols).astype(float).fillna(0).to_numpy()
        f_lo, f_hi = _wilson(f0, n[None, :])
        # carried only upwards: below the level it was measured at, pooled single-cell
        # data cannot tell more positives apart, so the measured fraction stands
        power = np.maximum(t / (measured_at * CP10K_TO_NTPM), 1.0)
        est[:, idx] = np.power(np.clip(f0, 0.0, 1.0), power)
        lo[:, idx] = np.power(f_lo, power)
        hi[:, idx] = np.power(f_hi, power)
        lib = (
            base.contexts["mean_library"].reindex(cols).astype(float).to_numpy()
            if "mean_library" in base.contexts
            else np.full(len(cols), np.nan)
        )
        bound, reads = shallow_upper(
            np.nan_to_num(
                reference.expression.reindex(index=genes, columns=cols).to_numpy(dtype=np.float64)
            ),
            np.broadcast_to(t, (len(genes), len(cols))),
            n,
            lib,
            measured_at_cpm=measured_at * CP10K_TO_NTPM,
        )
        hi[:, idx] = np.fmax(hi[:, idx], bound)
        reads_at = pd.DataFrame(np.nan, index=genes, columns=base.contexts.index)
        reads_at[cols] = reads
    prot = protein_fraction(reference)
    mask = None
    if prot is not None:
        f0_p, n_p, at = prot
        like = pd.DataFrame(index=genes, columns=base.contexts.index)
        mask = n_p.reindex_like(like).astype(np.float64)
        m = mask.notna().to_numpy()
        f0 = f0_p.reindex_like(like).to_numpy(dtype=np.float64)
        n = n_p.reindex_like(like).to_numpy(dtype=np.float64)
        f_lo, f_hi = _wilson(np.nan_to_num(f0), np.nan_to_num(n))
        power = np.broadcast_to(np.maximum(t / (at * CP10K_TO_NTPM), 1.0), mu.shape)
        est[m] = np.power(f0[m], power[m])
        lo[m] = np.power(f_lo[m], power[m])
        hi[m] = np.power(f_hi[m], power[m])
    frames = [pd.DataFrame(a, index=genes, columns=base.contexts.index) for a in (est, lo, hi)]
    if use_ihc and len(reference.ihc):
        floor = _ihc_floor(reference.ihc, genes, base.contexts.index)
        frames = [f.where(f >= floor, floor) for f in frames]
    fraction = base.fraction.copy()
    low = base.fraction.copy()
    high = base.fraction.copy()
    fraction.loc[genes] = frames[0]
    low.loc[genes] = frames[1]
    high.loc[genes] = frames[2]
    thr = pd.Series(measured_at, index=base.fraction.index, dtype=float)
    thr.loc[genes] = thresholds.reindex(genes).to_numpy(dtype=float)
    protein = base.protein
    if mask is not None:
        protein = (
            base.protein.copy()
            if base.protein is not None
            else pd.DataFrame(np.nan, index=fraction.index, columns=fraction.columns)
        )
        protein.loc[genes] = mask.to_numpy()
    return HealthyRisk(
        fraction=fraction,
        weight=base.weight,
        contexts=base.contexts,
        low=low,
        high=high,
        threshold_cp10k=thr,
        protein=protein,
        rna_missing=base.rna_missing,
        reads_at_threshold=reads_at,
        over_organs=base.over_organs,
    )


@lru_cache(maxsize=8)
def _healthy_risk_cached(
    reference: Reference,  # hashed by identity (Reference is eq=False)
    threshold_cp10k: float,
    modality: str | None,
    shape: float,
    use_ihc: bool,
) -> HealthyRisk:
    contexts = reference.contexts
    expr, filled = healthy_expression(reference)
    frac = positive_fraction_from_mean(
        expr.to_numpy(dtype=np.float64), threshold_cp10k * CP10K_TO_NTPM, shape
    )
    fraction = pd.DataFrame(frac, index=expr.index, columns=contexts.index)
    measured = measured_fraction(reference, threshold_cp10k)
    if measured is not None:
        cols = [c for c in measured.columns if c in fraction.columns]
        m = measured[cols].reindex(fraction.index).fillna(0.0)
        fraction[cols] = m.to_numpy(dtype=np.float64)
    mask = None
    prot = protein_fraction(reference)
    if prot is not None:
        f0, n_p, at = prot
        mask = n_p.reindex_like(fraction).astype(np.float64)
        power = max(threshold_cp10k / at, 1.0)
        fraction = fraction.where(mask.isna(), np.power(f0.reindex_like(fraction), power))
    if use_ihc and len(reference.ihc):
        floor = _ihc_floor(reference.ihc, fraction.index, contexts.index)
        fraction = fraction.where(fraction >= floor, floor)
    weight = contexts["vital_weight"].astype(float).copy()
    if modality in {"tcr-t", "vaccine"}:
        privileged = contexts["immune_privileged"].astype(bool)
        weight[privileged] *= IMMUNE_PRIVILEGE_DISCOUNT
    profile = MODALITY_PROFILES.get(str(modality))
    return HealthyRisk(
        fraction=fraction,
        weight=weight,
        contexts=contexts,
        protein=mask,
        rna_missing=filled,
        over_organs=bool(profile is not None and profile.persists),
    )


@lru_cache(maxsize=8)
def _healthy_risk_isoforms(
    reference: Reference,
    threshold_cp10k: float,
    modality: str | None,
    shape: float,
    use_ihc: bool,
) -> HealthyRisk:
    raw = _healthy_risk_cached(reference, threshold_cp10k, modality, shape, use_ihc)
    return apply_isoforms(raw, reference)
