"""Score single-antigen targets: tumour coverage against healthy risk.

Coverage comes from per-cell positivity calls on the malignant cells (single cells) or
from per-sample expression (bulk); healthy risk comes from the reference through
:mod:`antigenscout.tl._risk`. Every number carries its denominator: ``n_tumor_cells``
(or samples) and ``n_patients``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import numba
import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from .._errors import InputError
from .._types import (
    MODALITIES,
    POSITIVITY_MODELS,
    Positivity,
    ProgressCallback,
    counted,
    no_progress,
)
from ..io._validate import check_counts
from ._evidence import (  # bulk protein evidence lives in _evidence; re-exported here
    CPTAC_EDGES,
    EVIDENCE_MODEL,
    IHC_CLASSES,
    RNA_EDGES,
    _cancer_key,
    _cptac_evidence,
    _ihc_coverage_genes,
    _pathology,
    _values,
    cptac_detection,
    fused_coverage,
    pathology_coverage,
    protein_evidence_conflict,
)
from ._groups import (  # the tumour's grouping, shared with the rate model
    UNASSIGNED,
    TumourGroups,
    _group_codes,
    _labels,
    counts_matrix,
    tumour_groups,
)
from ._rate import JACKKNIFE_BLOCKS, RateSums
from ._risk import (
    CP10K_TO_NTPM,
    DOSING_INTERVAL_DAYS,
    HealthyRisk,
    _wilson,
    check_route,
    exposure_summary,
    healthy_risk,
    positive_fraction_from_mean,
)
from ._targetability import MODALITY_PROFILES, targetability

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..pp._ambient import Ambient, Soup
    from ..reference import Reference

__all__ = [
    "TumourGroups",
    "candidate_genes",
    "cptac_detection",
    "pareto_rank",
    "pathology_coverage",
    "protein_evidence_conflict",
    "score_targets",
    "tumour_groups",
]

KEY_ADDED = "antigenscout_targets"
#: Rows read at a time when streaming per-cell positivity.
STREAM_CHUNK = 32768
#: Largest rate-model sums (jackknife blocks × groups × candidates × 3 floats) gathered in
#: the positivity pass; above, patient_rate_coverage reads the matrix again.
RATE_SUMS_MAX_BYTES = 256 * 2**20
#: Malignant cells a patient needs for its coverage to be known to ±0.1 (Wilson 90%
#: half-width at coverage 0.5: 1.645 × 0.5 / sqrt(n) ≤ 0.1 gives n ≥ 68).
MIN_CELLS_PER_PATIENT = 68


def candidate_genes(
    genes: pd.Index,
    reference: Reference,
    modality: str | None,
    *,
    min_reach: float = 0.0,
) -> pd.Index:
    """Genes eligible as targets of ``modality``.

    Binder modalities (CAR-T/NK, antibody, ADC, bispecific, radioligand, agonist) need a
    protein a binder can reach: ``reach > min_reach`` (a membrane anchor and some surface
    evidence; see :func:`antigenscout.tl.reachability`). TCR-T and vaccines accept any
    protein-coding gene (peptides are presented on HLA); ``'any'`` accepts every
    protein-coding gene whatever its location, and features the reference does not know
    (antibody-panel names, non-human genes), but not the non-coding RNAs, pseudogenes and
    unnamed loci it knows (XIST, snoRNAs, lncRNAs, HLA-H: no therapy can aim at them);
    ``None`` applies no filter at all. Every modality takes nuclear protein-coding loci
    only (the reference's ``protein_coding`` column, which excludes the mitochondrially
    encoded inner-membrane proteins such as MT-ND2).
    """
    from ._targetability import MODALITY_PROFILES, reachability  # noqa: PLC0415

    if modality is None:
        return genes
    if modality == "any":  # every protein, and features the reference does not know
        surface = reference.surface
        coding = surface.index[surface["protein_coding"].fillna(False).to_numpy(dtype=bool)]
        known = reference.genes.index
        return genes[genes.isin(coding) | ~genes.isin(known)]
    if modality not in MODALITIES:
        msg = f"--modality must be one of {', '.join(MODALITIES)}; got {modality!r}"
        raise InputError(msg)
    surface = reference.surface
    if "protein_coding" in surface.columns:
        surface = surface[surface["protein_coding"].fillna(False).to_numpy(dtype=bool)]
    if MODALITY_PROFILES[modality].binder:
        reach = reachability(surface)["reach"]
        ok = reach.index[reach.to_numpy() > min_reach]
    else:
        ok = surface.index
    return genes[genes.isin(ok)]


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


def score_targets(  # noqa: PLR0912, PLR0913, PLR0915
    adata: AnnData,
    *,
    malignant_key: str | None,
    patient_key: str | None = None,
    compartment_key: str | None = None,
    modality: str | None = "car-t",
    reference: Reference | None = None,
    positivity: Positivity = "knn",
    threshold: float | None = None,
    layer: str | None = None,
    kind: Literal["auto", "single_cell", "bulk"] = "auto",
    patient_threshold: float = 0.8,
    n_neighbors: int | None = None,
    graph_key: str | None = "connectivities",
    min_reach: float = 0.0,
    cancer: str | None = None,
    ambient: bool = True,
    pregnancy: bool = False,
    route: str = "systemic",
    progress: ProgressCallback | None = None,
    rate_stats: dict[str, Any] | None = None,
    key_added: str = KEY_ADDED,
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
        :func:`pathology_coverage`). Coverage becomes the fraction of that cancer's patients
        whose tumour carries the antigen at High/Medium level, fused from HPA tumour IHC,
        CPTAC detection and the input's RNA (one bulk level per patient) by each source's
        fitted reliability and sample size (:func:`antigenscout.tl.fused_coverage`): its
        posterior mean (``tumor_coverage``, also ``patients_covered_fraction``, used by the
        score for every modality), 90% interval (``coverage_low``, ``coverage_high``),
        ``coverage_source``, ``protein_present_fraction`` and ``ihc_validity_prior`` /
        ``ihc_validity_posterior``; ``params['coverage']`` records the rule and the fitted
        reliabilities. The sources' own columns stay: ``stained_*`` (IHC High/Medium),
        ``cptac_*`` (:func:`cptac_detection`) and ``protein_evidence_conflict`` /
        ``protein_evidence_note`` (:func:`protein_evidence_conflict`).
    ambient
        Single cells, ``knn``: estimate each patient's soup from all its rows (tumour and
        normal cells; :mod:`antigenscout.pp._ambient`) and call a cell positive only where
        its pooled counts exceed what the soup explains. ``False`` counts every read.
    pregnancy
        Keep the healthy contexts of pregnancy (placenta, trophoblasts), which are out of the
        default adult body (:func:`antigenscout.tl._risk.exposure`).
    route
        How the agent is given: ``'systemic'`` (default), ``'intrathecal'`` (a protein agent
        reaches the CNS as it reaches blood) or ``'intravesical'`` (the bladder fully, the rest
        of the body across the urothelium); :func:`antigenscout.tl._risk.exposure`.
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
    from ..pp import _positivity as pos  # noqa: PLC0415
    from ..reference import load_reference  # noqa: PLC0415

    adata = adata.copy() if copy else adata
    reference = load_reference() if reference is None else reference
    if not 0 < float(patient_threshold) <= 1:  # also refuses NaN
        msg = f"patient_threshold must be in (0, 1]; got {patient_threshold}"
        raise InputError(msg)
    check_route(route)
    check_positivity_args(positivity, n_neighbors)
    if kind == "auto":
        kind = adata.uns.get("antigenscout", {}).get("kind", "single_cell")
    threshold = pos.DEFAULT_THRESHOLD if threshold is None else float(threshold)
    if not (np.isfinite(threshold) and threshold > 0):
        msg = f"threshold must be a finite number > 0 (CP10k); got {threshold}"
        raise InputError(msg)

    if cancer is not None:  # checked before any work, as the CLI does
        if kind != "bulk":
            msg = "cancer= applies to bulk tumours only; single cells are measured directly"
            raise InputError(msg)
        _cancer_key(cancer, _values(_pathology(reference)["cancer"]))

    groups = tumour_groups(
        adata, malignant_key=malignant_key, patient_key=patient_key, compartment_key=compartment_key
    )
    amb = None
    var = pd.Index(adata.var_names.astype(str))
    cands = candidate_genes(var, reference, modality, min_reach=min_reach)
    if len(cands) == 0:
        msg = (
            f"none of the input's {len(var)} genes is a candidate for modality {modality!r}; "
            "check that gene names are symbols or Ensembl ids (run harmonise_genes first)"
        )
        raise InputError(msg)
    col_idx = var.get_indexer(cands)
    X, lib_obs = counts_matrix(adata, layer)
    check_counts(X, "the AnnData", kind, where="X" if layer is None else f"layers[{layer!r}]")
    say = progress or no_progress

    codes, group_names = _group_codes(groups)
    n_groups = len(group_names)
    covered = None
    rate = None  # the rate model's sums, added by the positivity pass (one read of X)
    sums_bytes = JACKKNIFE_BLOCKS * n_groups * len(cands) * 3 * 8
    if rate_stats is not None and kind != "bulk" and sums_bytes <= RATE_SUMS_MAX_BYTES:
        if positivity == "knn":  # its chunks hold the candidate columns only
            rate = RateSums(codes, n_groups, np.arange(len(cands)), len(cands))
        else:
            rate = RateSums(codes, n_groups, col_idx, X.shape[1])
    # single cells: Σ count / library × 1e4 per candidate, filled by the positivity pass
    # itself where it reads the matrix (no second pass over X for the tumour mean)
    cp10k_sums = np.zeros(len(cands)) if kind != "bulk" else None
    if kind == "bulk":
        frac = _bulk_fraction(_take_rows(X, groups.rows), col_idx, threshold)
        counts = np.zeros((n_groups, len(cands)))
        np.add.at(counts, codes, frac)
        covered = np.zeros_like(counts)
        np.add.at(covered, codes, (frac >= 0.5).astype(float))  # noqa: PLR2004
        params_pos: dict[str, Any] = {"model": "bulk-gamma", "threshold_cp10k": threshold}
    elif positivity == "knn":
        if ambient:
            say("ambient RNA", 0, None)
            soup, amb = tumour_soup(adata, X, groups, lib_obs, col_idx)
        else:
            soup, amb = None, None
        counts, params_pos = _knn_counts(
            adata,
            X,
            groups,
            lib_obs,
            col_idx,
            codes,
            n_groups,
            threshold=threshold,
            n_neighbors=n_neighbors,
            graph_key=graph_key,
            column_sums=cp10k_sums,
            on_chunk=None if rate is None else rate.add,
            progress=progress,
            soup=soup,
        )
        params_pos["ambient"] = None if amb is None else amb.summary()
        if params_pos["graph"].startswith("obsp"):  # a given graph: no streamed pass
            cp10k_sums = rate = None
    else:
        counts, cp10k_sums = _count_streamed(
            X,
            groups.rows,
            codes,
            lib_obs,
            method=positivity,
            threshold=threshold,
            genes=col_idx,
            n_groups=n_groups,
            progress=counted(progress, "positivity calls"),
            on_chunk=None if rate is None else rate.add,
        )
        counts = counts.astype(np.float64)
        params_pos = {"model": positivity, "threshold_cp10k": threshold}

    if rate is not None and rate_stats is not None:
        rate_stats.update(genes=cands, stats=rate.stats())
    group_sizes = np.bincount(codes, minlength=len(group_names)).astype(float)
    table, patient_cov = _coverage_table(
        counts, group_sizes, groups, cands, patient_threshold, covered_samples=covered
    )
    fused = kind == "bulk" and cancer is not None
    if kind == "bulk":
        table["coverage_source"] = "RNA model (bulk level)"
        if fused:
            table = _bulk_protein_coverage(
                table, reference, str(cancer), cands, X, groups, lib_obs, col_idx
            )
    profile = MODALITY_PROFILES[modality or "any"]
    if cp10k_sums is not None:
        mean = cp10k_sums / max(groups.n, 1)
    else:
        mean = _tumour_mean_cp10k(X, groups.rows, lib_obs, col_idx, kind=str(kind))
    table["tumor_mean_cp10k"] = np.round(mean, 4)
    # the agent's kill threshold: binders that kill act from the detection threshold up;
    # signalling agonists and presented peptides (TCR-T, vaccines) at any level a cell makes
    floor = profile.engage_floor_cp10k
    engage_at = np.full(len(cands), floor if profile.any_level else max(floor, threshold))
    table["engagement_threshold_cp10k"] = np.round(engage_at, 4)
    say("healthy risk", 0, None)
    hr = healthy_risk(
        reference,
        threshold_cp10k=threshold,
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
    cover = table["coverage_q25"] if "coverage_q25" in table else table["tumor_coverage"]
    harm = np.clip(table["vital_risk"] * profile.harm_factor, 0.0, 1.0)
    table["score"] = cover * (1.0 - harm) * table["modality_factor"]
    table["pareto_rank"] = pareto_rank(
        table["tumor_coverage"].to_numpy(), table["vital_risk"].to_numpy()
    )
    table = table.sort_values(["score", "tumor_coverage"], ascending=False, kind="stable")
    table["rank"] = np.arange(1, len(table) + 1)
    table.index.name = "target"

    params = {
        **groups.params,
        "modality": modality,
        "kind": kind,
        "positivity": params_pos,
        "patient_threshold": patient_threshold,
        "min_reach": min_reach,
        "cancer": cancer,
        "reference": reference.metadata.get("name", "embedded"),
        "exposure": _exposure_params(hr, pregnancy, route),
        "consequence": {
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
        },
        "score": (
            ("coverage_q25" if profile.patient_heterogeneity and not fused else "tumor_coverage")
            + f" * (1 - {profile.harm_factor:g} * vital_risk) * modality_factor"
        ),
    }
    if fused:
        params["coverage"] = _fused_params()
    adata.uns[key_added] = {
        "targets": table,
        "patient_coverage": patient_cov.loc[table.index],
        "params": params,
        "denominators": {
            "n_tumor_cells": int(groups.n),
            "n_patients": len(groups.patient.categories),
            "n_candidates": len(cands),
            "n_genes_input": len(var),
        },
    }
    if amb is not None:
        adata.uns[key_added]["ambient"] = amb.table
    return adata if copy else None


def check_positivity_args(positivity: str, n_neighbors: int | None = None) -> None:
    """Refuse a positivity model that does not exist and a neighbour count below 1 (the
    API, as the CLI's choices do), instead of recording them as something else.
    """  # noqa: D205
    if positivity not in POSITIVITY_MODELS:
        msg = f"positivity={positivity!r} is not a model; choose one of {POSITIVITY_MODELS}"
        raise InputError(msg)
    if n_neighbors is not None and (
        isinstance(n_neighbors, bool)
        or not isinstance(n_neighbors, int | np.integer)
        or n_neighbors < 1
    ):
        msg = f"n_neighbors must be an integer >= 1 (or None for the default); got {n_neighbors!r}"
        raise InputError(msg)


def _given_graph(adata: AnnData, groups: TumourGroups, graph_key: str | None) -> Any:
    """The malignant cells' block of ``adata.obsp[graph_key]`` with every edge across a
    patient or compartment removed, or ``None`` (build one).
    """  # noqa: D205, D401
    from ..pp._positivity import cut_graph  # noqa: PLC0415

    if graph_key is not None and graph_key in adata.obsp:
        return cut_graph(adata.obsp[graph_key][groups.rows][:, groups.rows], _pool_batches(groups))
    return None


def _knn_params(
    groups: TumourGroups, threshold: float, n_neighbors: int | None, graph_key: str | None
) -> dict[str, Any]:
    from ..pp._positivity import DEFAULT_N_NEIGHBORS  # noqa: PLC0415

    labels = [
        name
        for name, on in (
            ("patient", groups.params.get("patient_key") is not None),
            ("compartment", groups.compartment is not None),
        )
        if on
    ]
    where = f"within {' and '.join(labels)}" if labels else "over all cells"
    source = (
        f"obsp[{graph_key!r}], edges {where} only"
        if graph_key is not None
        else f"shared PCA of informative genes; neighbours {where}"
    )
    return {
        "model": "knn",
        "threshold_cp10k": threshold,
        "n_neighbors": n_neighbors or DEFAULT_N_NEIGHBORS,
        "graph": source,
    }


def _pool_batches(groups: TumourGroups) -> np.ndarray:
    """Integer pooling batch of each malignant cell: its patient and, where compartments are
    labelled, its compartment (neighbours are never pooled across a label boundary).
    """  # noqa: D205
    by_patient = groups.params.get("patient_key") is not None
    code = groups.patient.codes.astype(np.int64) if by_patient else np.zeros(groups.n, np.int64)
    if groups.compartment is not None:
        code = code * len(groups.compartment.categories) + groups.compartment.codes
    return np.asarray(code, dtype=np.int64)


def _streamed_kwargs(
    groups: TumourGroups, lib_obs: np.ndarray | None, n_neighbors: int | None
) -> dict[str, Any]:
    """Arguments of the streamed pass: neighbours within each patient and compartment."""
    kw: dict[str, Any] = {
        "batches": _pool_batches(groups),
        "library": None if lib_obs is None else lib_obs[groups.rows],
    }
    if n_neighbors is not None:
        kw["n_neighbors"] = n_neighbors
    return kw


def cell_states(adata: AnnData, groups: TumourGroups) -> np.ndarray:
    """Labelled state of every row, for the ambient model: the malignant column's value and,
    where a compartment key is given, the row's compartment (``'malignant:HSC-like'``).
    """  # noqa: D205
    n = adata.n_obs
    col = groups.params.get("malignant_key")
    state = (
        adata.obs[col].astype(str).to_numpy(dtype=object)
        if col is not None
        else np.full(n, "tumour", dtype=object)
    )
    key = groups.params.get("compartment_key")
    if key is not None:
        comp, missing = _labels(adata.obs[key], np.arange(n))
        comp[missing] = UNASSIGNED
        state = np.char.add(np.char.add(state.astype(str), ":"), comp.astype(str))
    return np.asarray(state, dtype=object)


def tumour_soup(
    adata: AnnData,
    X: Any,
    groups: TumourGroups,
    lib_obs: np.ndarray | None,
    col_idx: np.ndarray,
) -> tuple[Soup, Ambient]:
    """The ambient model of every sample (patient) of ``adata``, from all its rows, and the
    soup the malignant cells' calls discount for the ``col_idx`` genes.
    """  # noqa: D205, D401
    from ..pp._ambient import estimate_ambient  # noqa: PLC0415

    key = groups.params.get("patient_key")
    sample = (
        adata.obs[key].to_numpy(dtype=object)
        if key is not None
        else np.full(adata.n_obs, "all", dtype=object)
    )
    amb, codes = estimate_ambient(
        X,
        sample,
        cell_states(adata, groups),
        library=lib_obs,
        gene_names=pd.Index(adata.var_names.astype(str)),
    )
    return amb.soup(col_idx, codes[groups.rows]), amb


def _malignant_library(
    X: Any, groups: TumourGroups, lib_obs: np.ndarray | None
) -> tuple[Any, np.ndarray]:
    """The malignant rows of ``X`` and their library sizes."""  # noqa: D401
    Xm = _take_rows(X, groups.rows)
    lib = lib_obs[groups.rows] if lib_obs is not None else np.asarray(Xm.sum(axis=1)).ravel()
    return Xm, lib


def _knn_blocks(  # noqa: PLR0913
    adata: AnnData,
    X: Any,
    groups: TumourGroups,
    lib_obs: np.ndarray | None,
    col_idx: np.ndarray,
    *,
    threshold: float,
    n_neighbors: int | None,
    graph_key: str | None,
    soup: Soup | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Dropout-aware positivity blocks of the malignant cells (graph within each patient and
    compartment), discounting ``soup``.
    """  # noqa: D205
    from ..pp import _positivity, _streamed  # noqa: PLC0415

    graph = _given_graph(adata, groups, graph_key)
    if graph is not None:
        Xm, lib = _malignant_library(X, groups, lib_obs)
        blocks = _positivity.positive_blocks(
            Xm, lib, method="knn", threshold=threshold, graph=graph, genes=col_idx, soup=soup
        )
    else:  # streamed: one shared PCA, neighbours within each patient and compartment
        kw = _streamed_kwargs(groups, lib_obs, n_neighbors)
        blocks = _streamed.knn_blocks_streamed(
            X,
            groups.rows,
            genes=col_idx,
            threshold=threshold,
            soup=soup,
            progress=counted(progress, "neighbour graph"),
            **kw,
        )
    params = _knn_params(groups, threshold, n_neighbors, None if graph is None else graph_key)
    return blocks, params


def _knn_counts(  # noqa: PLR0913, PLR0917
    adata: AnnData,
    X: Any,
    groups: TumourGroups,
    lib_obs: np.ndarray | None,
    col_idx: np.ndarray,
    codes: np.ndarray,
    n_groups: int,
    *,
    threshold: float,
    n_neighbors: int | None,
    graph_key: str | None,
    column_sums: np.ndarray | None = None,
    on_chunk: Any = None,
    progress: ProgressCallback | None = None,
    soup: Soup | None = None,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Dropout-aware positive malignant cells per (group, gene), float64, discounting
    ``soup``.

    Streamed (no graph in ``obsp``): one pass (:func:`~antigenscout.pp._streamed.
    knn_neighbours_streamed`, which fills ``column_sums`` and calls ``on_chunk``), then the
    pooled calls counted by the kernel. With a graph from ``obsp`` its blocks are counted and
    ``column_sums``/``on_chunk`` are left unused.
    """  # noqa: D205
    from ..pp import _neighbours, _positivity, _streamed  # noqa: PLC0415

    if graph_key is not None and graph_key in adata.obsp:
        blocks, params = _knn_blocks(
            adata,
            X,
            groups,
            lib_obs,
            col_idx,
            threshold=threshold,
            n_neighbors=n_neighbors,
            graph_key=graph_key,
            soup=soup,
        )
        counts = _neighbours.count_blocks(
            blocks, codes, n_groups, len(col_idx), progress=counted(progress, "positivity calls")
        )
        return counts.astype(np.float64), params
    params = _knn_params(groups, threshold, n_neighbors, None)
    kw = _streamed_kwargs(groups, lib_obs, n_neighbors)
    Xg, lib, nbr = _streamed.knn_neighbours_streamed(
        X,
        groups.rows,
        genes=col_idx,
        column_sums=column_sums,
        on_chunk=on_chunk,
        progress=counted(progress, "neighbour graph"),
        **kw,
    )
    counts = _neighbours.knn_counts_from_neighbours(
        Xg,
        lib,
        nbr,
        codes,
        n_groups,
        threshold=threshold,
        prior_shape=_positivity.DEFAULT_PRIOR_SHAPE,
        progress=counted(progress, "positivity calls"),
        soup=soup,
    )
    return counts.astype(np.float64), params


def tumour_positivity(  # noqa: PLR0913
    adata: AnnData,
    groups: TumourGroups,
    col_idx: np.ndarray,
    *,
    positivity: str,
    threshold: float,
    layer: str | None = None,
    n_neighbors: int | None = None,
    graph_key: str | None = "connectivities",
    ambient: bool = True,
    progress: ProgressCallback | None = None,
) -> tuple[sparse.csr_matrix, dict[str, Any]]:
    """Boolean malignant cells × ``col_idx`` genes positivity matrix (CSR) and its params
    (``knn``: with ``ambient``, soup reads discounted; see :func:`tumour_soup`); ``progress``
    as in :func:`score_targets`.
    """  # noqa: D205
    from ..pp._positivity import positive_blocks  # noqa: PLC0415

    X, lib_obs = counts_matrix(adata, layer)
    say = progress or no_progress
    if positivity == "knn":
        soup, amb = None, None
        if ambient:
            say("ambient RNA", 0, None)
            soup, amb = tumour_soup(adata, X, groups, lib_obs, col_idx)
        blocks, params = _knn_blocks(
            adata,
            X,
            groups,
            lib_obs,
            col_idx,
            threshold=threshold,
            n_neighbors=n_neighbors,
            graph_key=graph_key,
            soup=soup,
            progress=progress,
        )
        params["ambient"] = None if amb is None else amb.summary()
    else:
        say("positivity calls", 0, None)
        Xm, lib = _malignant_library(X, groups, lib_obs)
        blocks = positive_blocks(Xm, lib, method=positivity, threshold=threshold, genes=col_idx)
        params = {"model": positivity, "threshold_cp10k": threshold}
    mat = sparse.vstack([b for _, b in blocks], format="csr")
    return sparse.csr_matrix(mat, dtype=bool), params


def _take_rows(X: Any, rows: np.ndarray) -> Any:
    """Rows of an in-memory or backed matrix, read in contiguous chunks when backed."""
    if isinstance(X, np.ndarray) or sparse.issparse(X):
        return X[rows]
    parts = [sub for _, sub in _chunks(X, rows)]
    return sparse.vstack(parts, format="csr") if parts else X[0:0]


def _chunks(X: Any, rows: np.ndarray, chunk: int = STREAM_CHUNK) -> Any:
    """Yield ``(slice into rows, matrix of those rows)`` over contiguous chunks of ``X``.

    Works on in-memory arrays and on backed (on-disk) AnnData matrices alike, so a
    million-cell file is read one chunk at a time.
    """
    n = X.shape[0]
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        lo, hi = np.searchsorted(rows, [start, stop])
        if lo == hi:
            continue
        block = X[start:stop]
        if not isinstance(block, np.ndarray):
            block = sparse.csr_matrix(block)
        yield slice(int(lo), int(hi)), block[rows[lo:hi] - start]


def _count_streamed(  # noqa: PLR0913
    X: Any,
    rows: np.ndarray,
    codes: np.ndarray,
    lib_obs: np.ndarray | None,
    *,
    method: str,
    threshold: float,
    genes: np.ndarray,
    n_groups: int,
    progress: Callable[[int, int], None] | None = None,
    on_chunk: Callable[..., None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Positive malignant cells per (group, gene), read chunk by chunk, and CP10k sums.

    Works on in-memory and backed (on-disk) matrices; each chunk is called and counted by
    one numba pass over its CSR arrays (:mod:`antigenscout.pp._kernels`), which also sums
    ``count / library × 1e4`` per gene over the malignant cells (the tumour mean).
    ``on_chunk(slice into rows, the chunk's malignant rows, their library sizes or None)``
    is called per chunk, in row order, for other sums of the same pass. Only the malignant
    rows are handed to the kernel, and the next chunk is read while this one is counted.
    """
    from ..pp._checks import _check_counts, _colmap  # noqa: PLC0415
    from ..pp._graph import iter_row_chunks  # noqa: PLC0415
    from ..pp._kernels import CP10K, DETECTED, count_positive_by_group, row_sums  # noqa: PLC0415

    code = DETECTED if method == "detected" else CP10K
    colmap = _colmap(np.asarray(genes), X.shape[1])
    counts = np.zeros((n_groups, len(genes)), dtype=np.int64)
    sums = np.zeros(len(genes), dtype=np.float64)
    codes = np.asarray(codes, dtype=np.int64)
    done = 0
    # the malignant rows of each chunk, the next chunk read ahead in a helper thread
    for sl, block in iter_row_chunks(X, rows, chunk=STREAM_CHUNK):
        _check_counts(block, STREAM_CHUNK)
        given = None if lib_obs is None else lib_obs[rows[sl]]
        lib = given if given is not None else row_sums(block.indptr, block.data)
        c, s = count_positive_by_group(
            block.indptr,
            block.indices,
            block.data,
            codes[sl],
            np.asarray(lib, dtype=np.float64),
            float(threshold),
            code,
            colmap,
            n_groups,
            len(genes),
            numba.get_num_threads(),
        )
        counts += c
        sums += s
        if on_chunk is not None:
            on_chunk(sl, block, given)
        done += sl.stop - sl.start
        if progress is not None:
            progress(done, len(rows))
    return counts, sums


def _tumour_mean_cp10k(  # noqa: PLR0913
    X: Any,
    rows: np.ndarray,
    lib_obs: np.ndarray | None,
    col_idx: np.ndarray,
    *,
    kind: str,
    codes: np.ndarray | None = None,
    n_groups: int | None = None,
    exclude: Any = None,
) -> np.ndarray:
    """Mean expression of ``col_idx`` genes over the malignant ``rows``, in CP10k.

    Single cells: each cell's counts over its library size × 10^4, averaged (streamed in
    chunks, so backed files work). Bulk: TPM-like values / 100 (per 10^4 instead of 10^6).
    With ``codes`` (a group code per row, 0..G-1; ``n_groups`` groups, default the largest
    code + 1) the means are per group, ``(G, genes)``. Single cells with ``exclude`` (rows ×
    genes, nonzero where a cell is left out of that gene's mean, e.g. the cells called
    positive) average each gene over the cells it keeps (0 where it keeps none).
    """
    if n_groups is None:
        n_groups = 1 if codes is None else int(codes.max()) + 1 if len(codes) else 0
    code = np.zeros(len(rows), dtype=np.int64) if codes is None else codes
    total = np.zeros((n_groups, len(col_idx)), dtype=np.float64)
    out = None if exclude is None else sparse.csr_matrix(exclude, dtype=np.float64)
    for sl, block in _chunks(X, rows):
        c = code[sl]
        if kind == "bulk":
            sub = np.asarray(block.toarray() if sparse.issparse(block) else block)
            np.add.at(total, c, sub[:, col_idx] / 100.0)
            continue
        block = sparse.csr_matrix(block)  # noqa: PLW2901
        lib = (
            lib_obs[rows[sl]]
            if lib_obs is not None
            else np.asarray(block.sum(axis=1), dtype=np.float64).ravel()
        )
        scale = np.divide(1e4, lib, out=np.zeros_like(lib, dtype=np.float64), where=lib > 0)
        ind = sparse.csr_matrix((scale, (c, np.arange(len(c)))), shape=(n_groups, len(c)))
        Y = block[:, col_idx].astype(np.float64)
        if out is not None:
            Y = Y - Y.multiply(out[sl] != 0)
        total += (ind @ Y).toarray()
    sizes = np.bincount(code, minlength=n_groups).astype(np.float64)
    if out is None:
        mean = total / np.maximum(sizes, 1.0)[:, None]
    else:
        member = sparse.csr_matrix(
            (np.ones(len(code)), (code, np.arange(len(code)))), shape=(n_groups, len(code))
        )
        kept = sizes[:, None] - (member @ (out != 0).astype(np.float64)).toarray()
        mean = np.divide(total, kept, out=np.zeros_like(total), where=kept > 0)
    return mean[0] if codes is None else mean


def _bulk_fraction(X: Any, col_idx: np.ndarray, threshold: float) -> np.ndarray:
    """Modelled positive-cell fraction of each bulk sample (see the risk model)."""
    X = X.toarray() if sparse.issparse(X) else np.asarray(X)
    expr = np.asarray(X[:, col_idx], dtype=np.float64)
    return positive_fraction_from_mean(expr, threshold * CP10K_TO_NTPM)


def _bulk_protein_coverage(  # noqa: PLR0913, PLR0917
    table: pd.DataFrame,
    reference: Reference,
    cancer: str,
    cands: pd.Index,
    X: Any,
    groups: TumourGroups,
    lib_obs: np.ndarray | None,
    col_idx: np.ndarray,
) -> pd.DataFrame:
    """Bulk with ``cancer=``: IHC and CPTAC columns, and coverage fused from IHC, CPTAC and
    the input's RNA (one bulk level per patient; :func:`antigenscout.tl.fused_coverage`).
    """  # noqa: D205
    path_cov = pathology_coverage(reference, cancer, cands)
    table = table.join(path_cov)
    table = table.join(
        _cptac_evidence(reference, cancer, cands, path_cov, _ihc_coverage_genes(path_cov))
    )
    level = _tumour_mean_cp10k(
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
    """The fused-coverage rule and the fitted reliabilities it used, for ``params``."""  # noqa: D401
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
    groups: TumourGroups,
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
    """IHC summary per gene: the highest HPA staining level (0–3) over every tissue and
    antibody, and the number of tissues where it is detected.
    """  # noqa: D205
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
    """What the agent was taken to reach, for ``params`` (and ``run.json``)."""  # noqa: D401
    return {
        **exposure_summary(hr.exposure, pregnancy, route),
        "rule": "docs/engagement.md, Exposure",
        "n_contexts": len(hr.contexts),
    }
