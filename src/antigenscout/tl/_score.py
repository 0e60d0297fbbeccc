"""Score single-antigen targets: tumour coverage against healthy risk.

Coverage comes from per-cell positivity calls on the malignant cells (single cells) or
from per-sample expression (bulk); healthy risk comes from the reference through
:mod:`antigenscout.tl._risk`. Every number carries its denominator: ``n_tumor_cells``
(or samples) and ``n_patients``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._errors import InputError
from .._types import (
    DEFAULT_GRAPH_KEY,
    DEFAULT_MODALITY,
    DEFAULT_PATIENT_THRESHOLD,
    DEFAULT_POSITIVITY,
    DEFAULT_ROUTE,
    TARGETS_KEY,
    KindOption,
    Modality,
    Positivity,
    ProgressCallback,
    Route,
    no_progress,
)
from ._evidence import (  # bulk tumours with cancer=: protein evidence
    CPTAC_EDGES,
    EVIDENCE_MODEL,
    IHC_CLASSES,
    RNA_EDGES,
    _cptac_evidence,
    _ihc_coverage_genes,
    fused_coverage,
    pathology_coverage,
)
from ._exposure import check_route, exposure_summary
from ._groups import (  # the tumour's grouping, shared with the rate model
    TumorGroups,
)
from ._measured import _wilson
from ._organs import DOSING_INTERVAL_DAYS
from ._risk import CP10K_TO_NTPM, healthy_risk
from ._risk_table import HealthyRisk
from ._targetability import MODALITY_PROFILES, ModalityProfile, targetability
from ._tumor import (
    TumorInput,
    _count_positive,
    _Counts,
    _tumor_mean_cp10k,
    check_positivity_args,
    prepare_tumor,
)

if TYPE_CHECKING:
    from ..reference import Reference

__all__ = [
    "pareto_rank",
    "score_targets",
]

#: Malignant cells a patient needs for its coverage to be known to ±0.1 (Wilson 90%
#: half-width at coverage 0.5: 1.645 × 0.5 / sqrt(n) ≤ 0.1 gives n ≥ 68).
MIN_CELLS_PER_PATIENT = 68


def pareto_rank(coverage: np.ndarray, risk: np.ndarray) -> np.ndarray:
    """Non-dominated sorting level (1 = Pareto front) maximising coverage, minimising risk.

    ``j`` dominates ``i`` when ``coverage[j] >= coverage[i]`` and ``risk[j] <= risk[i]``
    with one inequality strict; identical points share a level. One sweep in order of
    decreasing coverage keeps, per level, the lowest risk seen so far (increasing with
    the level), so each point's level is found by bisection: O(n log n).
    """
    from bisect import bisect_right  # noqa: PLC0415

    coverage = np.asarray(coverage, dtype=np.float64)
    risk = np.asarray(risk, dtype=np.float64)
    pts, inverse = np.unique(np.column_stack([-coverage, risk]), axis=0, return_inverse=True)
    # np.unique sorts lexicographically: coverage descending, then risk ascending
    level_min: list[float] = []
    levels = np.empty(len(pts), dtype=np.int64)
    for i, r in enumerate(pts[:, 1]):
        lv = bisect_right(level_min, r)
        if lv == len(level_min):
            level_min.append(r)
        else:
            level_min[lv] = r
        levels[i] = lv + 1
    return levels[np.asarray(inverse).ravel()]


def score_targets(  # noqa: PLR0913
    adata: AnnData,
    *,
    malignant_key: str | None,
    patient_key: str | None = None,
    compartment_key: str | None = None,
    modality: Modality | None = DEFAULT_MODALITY,
    reference: Reference | None = None,
    positivity: Positivity = DEFAULT_POSITIVITY,
    threshold: float | None = None,
    layer: str | None = None,
    kind: KindOption = "auto",
    patient_threshold: float = DEFAULT_PATIENT_THRESHOLD,
    n_neighbors: int | None = None,
    graph_key: str | None = DEFAULT_GRAPH_KEY,
    min_reach: float = 0.0,
    cancer: str | None = None,
    ambient: bool = True,
    pregnancy: bool = False,
    route: Route = DEFAULT_ROUTE,
    progress: ProgressCallback | None = None,
    rate_stats: dict[str, Any] | None = None,
    key_added: str = TARGETS_KEY,
    copy: bool = False,
) -> AnnData | None:
    """Rank single antigens by tumour coverage against healthy risk.

    Parameters
    ----------
    adata
        Tumour cells (or bulk samples) × genes with raw counts in ``X`` or ``layer``
        (bulk: TPM/FPKM-like expression); gene names harmonised
        (:func:`antigenscout.pp.harmonise_genes`).
    malignant_key
        ``COLUMN=VALUE`` selecting malignant cells; ``None`` uses all rows.
    patient_key
        obs column naming patients (per-patient coverage); ``None`` = one patient.
    compartment_key
        obs column whose values define compartments (e.g. stem/progenitor-like).
    modality
        Therapy modality, which decides the candidate filter (see :func:`candidate_genes`).
    reference
        Healthy reference; the embedded default when ``None``.
    positivity
        Positivity model for single cells (see :func:`antigenscout.pp.positivity_methods`).
    threshold
        Positivity threshold in CP10k; the calibrated default when ``None``.
    layer
        Layer holding raw counts; ``X`` when ``None``.
    kind
        ``'single_cell'`` or ``'bulk'``; ``'auto'`` reads ``adata.uns['antigenscout']['kind']``.
    patient_threshold
        A patient counts as covered when its coverage is at least this.
    n_neighbors
        Neighbours pooled by the ``knn`` model when the graph is built here.
    graph_key
        ``adata.obsp`` key of a precomputed cell graph (e.g. scanpy's ``connectivities``)
        used by the ``knn`` model; when absent a kNN graph is built within each patient.
    min_reach
        Binder modalities: candidates need a reachability above this (see
        :func:`candidate_genes`).
    cancer
        Bulk tumours: the HPA cancer type (e.g. ``'breast cancer'``; see
        :func:`antigenscout.tl.pathology_coverage`). Coverage becomes the fraction of that
        cancer's patients whose tumour carries the antigen at High/Medium level, fused from
        HPA tumour IHC, CPTAC detection and the input's RNA (one bulk level per patient) by
        each source's fitted reliability and sample size
        (:func:`antigenscout.tl.fused_coverage`): its posterior mean (``tumor_coverage``,
        also ``patients_covered_fraction``, used by the score for every modality), 90%
        interval (``coverage_low``, ``coverage_high``), ``coverage_source``,
        ``protein_present_fraction`` and ``ihc_validity_prior`` /
        ``ihc_validity_posterior``; ``params['coverage']`` records the rule and the fitted
        reliabilities. The sources' own columns stay: ``stained_*`` (IHC High/Medium),
        ``cptac_*`` (:func:`antigenscout.tl.cptac_detection`) and
        ``protein_evidence_conflict`` / ``protein_evidence_note``
        (:func:`antigenscout.tl.protein_evidence_conflict`).
    ambient
        Single cells, ``knn``: estimate each patient's soup from all its rows (tumour and
        normal cells; :mod:`antigenscout.pp._ambient`) and call a cell positive only where
        its pooled counts exceed what the soup explains. ``False`` counts every read.
    pregnancy
        Keep the healthy contexts of pregnancy (placenta, trophoblasts), which are out of the
        default adult body (:func:`antigenscout.tl._exposure.exposure`).
    route
        How the agent is given: ``'systemic'`` (default), ``'intrathecal'`` (a protein agent
        reaches the CNS as it reaches blood) or ``'intravesical'`` (the bladder fully, the rest
        of the body across the urothelium); :func:`antigenscout.tl._exposure.exposure`.
    progress
        Called as ``progress(step, done, total)`` as each step starts and while cells are
        streamed (:data:`antigenscout._types.ProgressCallback`): ``'ambient RNA'``,
        ``'neighbour graph'``, ``'positivity calls'``, ``'healthy risk'``.
    rate_stats
        An empty dict to receive the per-patient rate model's sufficient statistics of
        every candidate (``'genes'``, ``'stats'``), summed in the positivity pass itself, so
        that :func:`antigenscout.tl.patient_rate_coverage` (``stats=``) need not read the
        matrix again. Left empty for bulk tumours, a graph from ``obsp`` and where the sums
        would exceed ``RATE_SUMS_MAX_BYTES``.
    key_added
        ``adata.uns`` key receiving the results.
    copy
        Return a copy instead of writing into ``adata``.

    Returns
    -------
    Sets ``adata.uns[key_added]`` with ``'targets'`` (DataFrame, one row per candidate,
    sorted by rank), ``'patient_coverage'`` (targets × patients), ``'params'``,
    ``'denominators'`` and, with the ambient model, ``'ambient'`` (one row per patient: its
    contamination with interval and top soup genes); returns the AnnData when ``copy=True``.
    """
    adata = adata.copy() if copy else adata
    if not 0 < float(patient_threshold) <= 1:  # also refuses NaN
        msg = f"patient_threshold must be in (0, 1]; got {patient_threshold}"
        raise InputError(msg, param="patient_threshold")
    check_route(route)
    check_positivity_args(positivity, n_neighbors)
    tumour = prepare_tumor(
        adata,
        reference=reference,
        malignant_key=malignant_key,
        patient_key=patient_key,
        compartment_key=compartment_key,
        modality=modality,
        threshold=threshold,
        layer=layer,
        kind=kind,
        min_reach=min_reach,
        cancer=cancer,
    )
    measured = _count_positive(
        tumour,
        positivity=positivity,
        n_neighbors=n_neighbors,
        graph_key=graph_key,
        ambient=ambient,
        progress=progress,
        rate_stats=rate_stats,
    )
    table, patient_cov = _coverage_table(
        measured.counts,
        np.bincount(measured.codes, minlength=measured.n_groups).astype(float),
        tumour.groups,
        tumour.cands,
        patient_threshold,
        covered_samples=measured.covered,
    )
    profile = MODALITY_PROFILES[modality or "any"]
    table, hr, fused = _annotate(
        table, patient_cov, tumour, measured, modality, cancer, pregnancy, route, progress
    )
    table, formula = _rank(table, profile)
    params = {
        **tumour.groups.params,
        "modality": modality,
        "kind": tumour.kind,
        "positivity": measured.params,
        "patient_threshold": patient_threshold,
        "min_reach": min_reach,
        "cancer": cancer,
        "reference": tumour.reference.metadata.get("name", "embedded"),
        "exposure": _exposure_params(hr, pregnancy, route),
        "consequence": _consequence_params(hr),
        "score": formula,
    }
    if fused:
        params["coverage"] = _fused_params()
    adata.uns[key_added] = {
        "targets": table,
        "patient_coverage": patient_cov.loc[table.index],
        "params": params,
        "denominators": {
            "n_tumor_cells": int(tumour.groups.n),
            "n_patients": len(tumour.groups.patient.categories),
            "n_candidates": len(tumour.cands),
            "n_genes_input": len(tumour.var),
        },
    }
    if measured.ambient is not None:
        adata.uns[key_added]["ambient"] = measured.ambient.table
    return adata if copy else None


def _annotate(  # noqa: PLR0913, PLR0917
    table: pd.DataFrame,
    patient_cov: pd.DataFrame,
    tumour: TumorInput,
    measured: _Counts,
    modality: str | None,
    cancer: str | None,
    pregnancy: bool,
    route: str,
    progress: ProgressCallback | None,
) -> tuple[pd.DataFrame, HealthyRisk, bool]:
    """Add the tumour mean, the healthy risk, the evidence and the targetability columns.

    Returns the table, the healthy risk it was judged by, and whether coverage is the fused
    protein coverage of a bulk cancer (then a fraction of patients already).
    """
    reference, cands, groups = tumour.reference, tumour.cands, tumour.groups
    profile = MODALITY_PROFILES[modality or "any"]
    fused = tumour.kind == "bulk" and cancer is not None
    if tumour.kind == "bulk":
        table["coverage_source"] = "RNA model (bulk level)"
        if fused:
            table = _bulk_protein_coverage(
                table,
                reference,
                str(cancer),
                cands,
                tumour.X,
                groups,
                tumour.lib_obs,
                tumour.col_idx,
            )
    if measured.cp10k_sums is not None:
        mean = measured.cp10k_sums / max(groups.n, 1)
    else:
        mean = _tumor_mean_cp10k(
            tumour.X, groups.rows, tumour.lib_obs, tumour.col_idx, kind=tumour.kind
        )
    table["tumor_mean_cp10k"] = np.round(mean, 4)
    # the agent's kill threshold: binders that kill act from the detection threshold up;
    # signalling agonists and presented peptides (TCR-T, vaccines) at any level a cell makes
    floor = profile.engage_floor_cp10k
    engage_at = np.full(len(cands), floor if profile.any_level else max(floor, tumour.threshold))
    table["engagement_threshold_cp10k"] = np.round(engage_at, 4)
    (progress or no_progress)("healthy risk", 0, None)
    hr = healthy_risk(
        reference,
        threshold_cp10k=tumour.threshold,
        modality=modality,
        gene_threshold_cp10k=pd.Series(engage_at, index=cands),
        pregnancy=pregnancy,
        route=route,
    )
    table = table.join(hr.summary(cands))
    table["binds_most"] = hr.localisation(cands)
    table = table.join(_protein_evidence(reference, cands))
    surf = reference.surface.reindex(cands)
    table["surface_evidence"] = surf["surface_evidence"].fillna(0.0).to_numpy()
    table["is_surface"] = surf["is_surface"].astype("boolean").fillna(False).to_numpy(bool)
    table = table.join(
        targetability(
            cands,
            reference,
            profile.name,
            healthy_fraction=hr.fraction,
            tumor_mean_cp10k=mean,
            # bulk with cancer=: the fused coverage is a fraction of patients already
            patient_coverage=None if fused else patient_cov,
        )
    )
    return table, hr, fused


def _rank(table: pd.DataFrame, profile: ModalityProfile) -> tuple[pd.DataFrame, str]:
    """Score each candidate, sort best first and number the ranks.

    ``score = cover × (1 − harm_factor × vital_risk) × modality_factor``, with ``cover`` the
    patients' lower quartile where the modality asks for it (``coverage_q25``), else the
    tumour coverage; ``pareto_rank`` orders coverage against vital risk. Returns the table
    and the formula as applied, for ``params['score']``.
    """
    cover = "coverage_q25" if "coverage_q25" in table else "tumor_coverage"
    harm = np.clip(table["vital_risk"] * profile.harm_factor, 0.0, 1.0)
    table["score"] = table[cover] * (1.0 - harm) * table["modality_factor"]
    formula = f"{cover} * (1 - {profile.harm_factor:g} * vital_risk) * modality_factor"
    table["pareto_rank"] = pareto_rank(
        table["tumor_coverage"].to_numpy(), table["vital_risk"].to_numpy()
    )
    table = table.sort_values(["score", "tumor_coverage"], ascending=False, kind="stable")
    table["rank"] = np.arange(1, len(table) + 1)
    table.index.name = "target"
    return table, formula


def _consequence_params(hr: HealthyRisk) -> dict[str, Any]:
    """Say how the consequence columns are computed (reported, not in the score)."""
    return {
        "reported": "targets.tsv consequence, consequence_context; risk.tsv consequence",
        "in_score": False,
        "lasting_loss": (
            "engagement"
            if hr.over_organs
            else "engagement * exp(-dosing_interval_days / renewal_days)"
        ),
        "dosing_interval_days": None if hr.over_organs else DOSING_INTERVAL_DAYS,
        "table": "reference/annotations/organ_reserve.tsv",
        "rule": "docs/engagement.md, Consequence: reserve and renewal",
    }


def _bulk_protein_coverage(  # noqa: PLR0913, PLR0917
    table: pd.DataFrame,
    reference: Reference,
    cancer: str,
    cands: pd.Index,
    X: Any,
    groups: TumorGroups,
    lib_obs: np.ndarray | None,
    col_idx: np.ndarray,
) -> pd.DataFrame:
    """Return IHC and CPTAC columns for bulk with ``cancer=``, and the fused coverage.

    Coverage is fused from IHC, CPTAC and the input's RNA (one bulk level per patient;
    :func:`antigenscout.tl.fused_coverage`).
    """
    path_cov = pathology_coverage(reference, cancer, cands)
    table = table.join(path_cov)
    table = table.join(
        _cptac_evidence(reference, cancer, cands, path_cov, _ihc_coverage_genes(path_cov))
    )
    level = _tumor_mean_cp10k(
        X, groups.rows, lib_obs, col_idx, kind="bulk", codes=groups.patient.codes
    )
    fused = fused_coverage(reference, cancer, cands, rna_level=level.T * CP10K_TO_NTPM)
    table["tumor_coverage"] = fused["coverage"]
    table["coverage_low"] = np.round(fused["coverage_low"], 4)
    table["coverage_high"] = np.round(fused["coverage_high"], 4)
    table["patients_covered_fraction"] = fused["coverage"]
    table["coverage_source"] = fused["coverage_source"]
    for col in ("protein_present_fraction", "ihc_validity_prior", "ihc_validity_posterior"):
        table[col] = fused[col]
    return table


def _fused_params() -> dict[str, Any]:
    """Return the fused-coverage rule and the fitted reliabilities it used, for ``params``."""
    m = EVIDENCE_MODEL
    return {
        "rule": "posterior mean of x*q: x = patients carrying the protein (population prior, "
        "IHC any level if the antibody reads the antigen, CPTAC and RNA reading bins), "
        "q = High/Medium share (IHC; Uniform otherwise); 90% posterior interval",
        "ihc_validity": dict(zip(IHC_CLASSES, m["ihc_validity"], strict=True)),
        "cptac_bins_upper": list(CPTAC_EDGES),
        "cptac_carrier": m["cptac_carrier"],
        "cptac_non_carrier": m["cptac_non_carrier"],
        "rna_bins_upper": list(RNA_EDGES),
        "rna_carrier": m["rna_carrier"],
        "rna_non_carrier": m["rna_non_carrier"],
        "presence_prior": m["presence_prior"],
        "fit": m["fit"],
    }


def _coverage_table(  # noqa: PLR0913, PLR0917
    counts: np.ndarray,
    group_sizes: np.ndarray,
    groups: TumorGroups,
    genes: pd.Index,
    patient_threshold: float,
    covered_samples: np.ndarray | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    patients = list(groups.patient.categories)
    n_p = len(patients)
    n_c = 1 if groups.compartment is None else len(groups.compartment.categories)
    c3 = counts.reshape(n_p, n_c, -1)
    s3 = group_sizes.reshape(n_p, n_c)
    pos_patient = c3.sum(axis=1)  # patients × genes
    size_patient = s3.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        pcov = pos_patient / size_patient[:, None]
    total = group_sizes.sum()
    table = pd.DataFrame(index=genes)
    table["tumor_coverage"] = pos_patient.sum(axis=0) / total
    table["n_tumor_cells"] = int(total)
    table["n_positive_cells"] = pos_patient.sum(axis=0)
    table["patient_coverage_median"] = np.median(pcov, axis=0)
    table["patient_coverage_min"] = pcov.min(axis=0)
    table["patients_covered_fraction"] = (pcov >= patient_threshold).mean(axis=0)
    # a patient is *confidently* covered when the lower end of the Wilson 90% interval of
    # its coverage (from its number of malignant cells) reaches the threshold
    lo, _ = _wilson(np.nan_to_num(pcov), size_patient[:, None])
    table["patients_confidently_covered_fraction"] = (lo >= patient_threshold).mean(axis=0)
    table["n_patients_few_cells"] = int((size_patient < MIN_CELLS_PER_PATIENT).sum())
    table["n_patients"] = n_p
    if covered_samples is not None:
        table["samples_covered_fraction"] = covered_samples.sum(axis=0) / total
    if groups.compartment is not None:
        for j, comp in enumerate(groups.compartment.categories):
            size = s3[:, j].sum()
            table[f"coverage__{comp}"] = c3[:, j, :].sum(axis=0) / size if size else np.nan
            table[f"n_cells__{comp}"] = int(size)
    patient_cov = pd.DataFrame(pcov.T, index=genes, columns=patients)
    return table, patient_cov


def _protein_evidence(reference: Reference, genes: pd.Index) -> pd.DataFrame:
    """Return the IHC summary per gene: the highest HPA staining level and its tissues.

    The highest HPA staining level (0–3) over every tissue and antibody, and the number of
    tissues where it is detected.
    """
    ihc = reference.ihc
    ihc = ihc[ihc["symbol"].isin(genes)]
    out = pd.DataFrame(index=genes)
    if ihc.empty:
        out["ihc_max_level"] = np.nan
        out["ihc_tissues_detected"] = 0
        return out
    by_gene = ihc.groupby("symbol", observed=True)
    out["ihc_max_level"] = by_gene["level"].max().reindex(genes)
    detected = ihc[ihc["level"] > 0].groupby("symbol", observed=True)["tissue"].nunique()
    out["ihc_tissues_detected"] = detected.reindex(genes).fillna(0).astype(int)
    return out


def _exposure_params(hr: HealthyRisk, pregnancy: bool, route: str = "systemic") -> dict[str, Any]:
    """Return what the agent was taken to reach, for ``params`` (and ``run.json``)."""
    return {
        **exposure_summary(hr.exposure, pregnancy, route),
        "rule": "docs/engagement.md, Exposure",
        "n_contexts": len(hr.contexts),
    }
