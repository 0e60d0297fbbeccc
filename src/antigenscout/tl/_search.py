"""Logic-gate search on AnnData: the scanpy-style front of :mod:`antigenscout.tl._gates`.

Tumour positivity comes from the same model as single targets
(:func:`antigenscout.tl._tumor.tumor_positivity`); healthy risk from the embedded pseudobulk
reference (per-type fractions only, so a gate's risk is a Fréchet upper bound,
``risk_is_bound=True``), from healthy single cells (exact co-positivity per cell type) with
``healthy_only=True``, or, by default when single cells are given, from both (exact in the
cells' types, Fréchet bounds in the reference's other contexts).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from .._errors import AntigenscoutWarning, InputError, warn
from .._types import (
    DEFAULT_GRAPH_KEY,
    DEFAULT_MAX_GENES,
    DEFAULT_MAX_VITAL_RISK,
    DEFAULT_MODALITY,
    DEFAULT_OBJECTIVE,
    DEFAULT_PATIENT_THRESHOLD,
    DEFAULT_POSITIVITY,
    DEFAULT_TOP_K,
    GATE_OPS,
    GATES_KEY,
    GateOp,
    Modality,
    Objective,
    Positivity,
    ProgressCallback,
    no_progress,
)
from ..io._validate import check_threshold
from ._gates import (
    TRIPLE_BUDGET,
    HealthyCells,
    HealthyMixed,
    HealthyPseudobulk,
    check_gate_shape,
    evaluate_gates,
    search_gate_matrix,
)
from ._gates._arms import (
    ARM_CONFIDENCE,
    BODY_WIDE_NTPM,
    BODY_WIDE_SOURCE,
    MIN_CONTEXT_CELLS,
    MIN_VETO_SHOWN,
    N_RESAMPLES,
    NEAR_UBIQUITOUS,
    ArmData,
    body_wide_share,
    judge_arms,
)
from ._gates._evaluate import _pareto
from ._groups import cell_type_labels, counts_matrix, tumor_groups
from ._measured import shown_fraction
from ._risk import INTERVAL_SHAPES, healthy_risk, positive_fraction_from_mean
from ._score import _exposure_params
from ._tumor import (
    _tumor_mean_cp10k,
    check_positivity_args,
    prepare_tumor,
    tumor_positivity,
)

#: Reachability every arm of a binder's gate needs: an inhibitory (NOT) arm must bind too,
#: and a gate's logic is only as good as its weakest arm. 0.3 excludes every protein without
#: a topology-shown ectodomain (their reach is at most 0.1).
GATE_MIN_REACH = 0.3

if TYPE_CHECKING:
    from ..reference import Reference

__all__ = ["search_gates"]

#: Gates the search examines per gate reported when arms are judged (``require_arms``).
ARM_EXAMINE = 4


def _apply_arms(
    table: pd.DataFrame, data: ArmData, top_k: int, require: bool
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Return the gates whose every arm is shown, the gates set aside, and what was done.

    The gates kept are at most ``top_k``, re-ranked, with Pareto flags recomputed among them;
    what was done goes to ``params['arms']``.
    """
    params: dict[str, Any] = {
        "required": bool(require),
        "confidence": ARM_CONFIDENCE,
        "min_veto_shown": MIN_VETO_SHOWN,
        "min_context_cells": MIN_CONTEXT_CELLS,
        "near_ubiquitous": NEAR_UBIQUITOUS,
        "body_wide_ntpm": BODY_WIDE_NTPM,
        "body_wide_source": BODY_WIDE_SOURCE,
        # False with a reference that has no HPA single-cell profile: the rule was not applied
        "body_wide_applied": data.body_wide is not None,
        "resamples": N_RESAMPLES,
        "rule": "docs/gates.md, Arms that beat noise",
    }
    if table.empty:
        return table, table.iloc[:0], {**params, "examined": 0, "set_aside": 0}
    judged = pd.concat([table, judge_arms(table, data)], axis=1)
    if not require:
        return judged, judged.iloc[:0], {**params, "examined": len(judged), "set_aside": 0}
    shown = judged["arms_shown"].to_numpy(dtype=bool)
    kept = judged[shown].head(top_k).reset_index(drop=True)
    aside = judged[~shown].reset_index(drop=True)
    if len(kept):
        kept["rank"] = np.arange(1, len(kept) + 1)
        kept["pareto"] = _pareto(
            kept["tumor_coverage"].to_numpy(), kept["worst_healthy_risk"].to_numpy()
        )
    params.update(examined=len(judged), set_aside=int((~shown).sum()))
    return kept, aside, params


def _type_means(
    healthy: AnnData, genes: pd.Index, cells: HealthyCells, layer: str | None
) -> np.ndarray:
    """Return ``(n_types, n_genes)`` mean CP10k of the healthy cells per type.

    Types are coded as ``cells`` codes them; 0 for a gene the healthy cells do not measure.
    """
    X, lib_obs = counts_matrix(healthy, layer)
    cols = pd.Index(healthy.var_names.astype(str)).get_indexer(genes)
    means = _tumor_mean_cp10k(
        X, np.arange(healthy.n_obs), lib_obs, np.maximum(cols, 0), kind="single_cell",
        codes=np.asarray(cells.cell_types), n_groups=len(cells.weights),
    )  # fmt: skip
    means[:, cols < 0] = 0.0
    return means


def matching_context(contexts: pd.DataFrame, cell_type: str) -> str | None:
    """Return the reference context a healthy cell-type label stands for, or ``None``.

    ``marrow:<label>`` first, then a context whose name is the label, ``<label> cells`` or
    ``<label>-cells`` (case-insensitive), e.g. ``HSC`` → ``marrow:HSC``, ``NK`` → NK cells.
    """
    if f"marrow:{cell_type}" in contexts.index:
        return f"marrow:{cell_type}"
    names = contexts["name"].astype(str).str.lower()
    for alias in (cell_type, f"{cell_type} cells", f"{cell_type}-cells"):
        hit = contexts.index[(names == alias.lower()).to_numpy()]
        if len(hit):
            return str(hit[0])
    return None


def _healthy_from_cells(  # noqa: PLR0913
    healthy: AnnData,
    healthy_key: str,
    genes: pd.Index,
    reference: Reference,
    *,
    positivity: str,
    threshold: float,
    layer: str | None,
    weight_default: float,
) -> tuple[HealthyCells, dict[str, Any]]:
    """Exact per-cell-type positivity of healthy single cells, weights from the reference."""
    if healthy_key not in healthy.obs:
        msg = f"healthy cell-type column {healthy_key!r} is not in the healthy data's obs"
        raise InputError(msg)
    var = pd.Index(healthy.var_names.astype(str))
    missing = genes.difference(var)
    if len(missing):
        msg = (
            f"{len(missing)} candidate genes are absent from the healthy cells "
            f"(e.g. {', '.join(missing[:5])}); harmonise both inputs to the same genes"
        )
        raise InputError(msg)
    groups = tumor_groups(healthy, malignant_key=None, patient_key=None)
    H, params = tumor_positivity(
        healthy,
        groups,
        var.get_indexer(genes),
        positivity=positivity,
        threshold=threshold,
        layer=layer,
    )
    types = cell_type_labels(healthy.obs[healthy_key], healthy_key, "healthy cells")
    ctx = reference.contexts
    by_name = {
        str(n).lower(): float(w) for n, w in zip(ctx["name"], ctx["vital_weight"], strict=True)
    }
    weights, unknown = [], []
    for t in types.categories:
        w = ctx["vital_weight"].get(f"marrow:{t}")
        for alias in (t, f"{t} cells", f"{t}-cells"):
            if w is None or pd.isna(w):
                w = by_name.get(alias.lower())
        if w is None or pd.isna(w):
            unknown.append(t)
            w = weight_default
        weights.append(float(w))
    if unknown:
        warn(
            f"no vital weight for healthy cell types {', '.join(unknown)}; using {weight_default}",
            AntigenscoutWarning,
        )
    hc = HealthyCells(
        H, types.codes.astype(np.int64), np.asarray(weights), names=list(types.categories)
    )
    return hc, {**params, "cell_types": len(types.categories), "cells": healthy.n_obs}


def not_shown_absent(  # noqa: PLR0913, PLR0917
    adata: AnnData,
    groups: Any,
    col_idx: np.ndarray,
    T: Any,
    threshold: float,
    layer: str | None,
) -> np.ndarray:
    """Tumour cells per patient and gene that may carry the antigen although called negative.

    A NOT arm is trusted only where its antigen is shown absent in the tumour. The cells called
    positive are known; what may hide is among the cells called negative. Per patient, their
    own pooled level (mean CP10k over the patient's called-negative cells) bounds the share of
    them above the positivity threshold: the largest Gamma-model fraction over the shapes
    ``k`` in {1} ∪ :data:`~antigenscout.tl._risk.INTERVAL_SHAPES`, times their number. The
    two populations are fitted apart (issue #22, item 3), so a veto that is high in a few
    tumour cells and silent in the rest costs those cells and little else, where one Gamma
    over all the cells (the rule before) spread the few cells' reads over every cell and
    refused the gate. One pass over the malignant rows.

    Returns
    -------
    ``(n_patients, n_genes)`` cell counts, patients in sorted label order.
    """
    X, lib_obs = counts_matrix(adata, layer)
    order, code = np.unique(np.asarray(groups.patient), return_inverse=True)  # search's order
    n_p = order.size
    calls = sparse.csr_matrix(T, dtype=np.float64)
    # mean CP10k over each patient's called-negative cells, one pass over the malignant rows
    mean_neg = _tumor_mean_cp10k(
        X, groups.rows, lib_obs, col_idx, kind="single_cell", codes=code, n_groups=n_p,
        exclude=calls,
    )  # fmt: skip
    sizes = np.bincount(code, minlength=n_p).astype(np.float64)
    ind = sparse.csr_matrix(
        (np.ones(len(code)), (code, np.arange(len(code)))), shape=(n_p, len(code))
    )
    n_neg = sizes[:, None] - (ind @ calls).toarray()
    hidden = np.max(
        [positive_fraction_from_mean(mean_neg, threshold, k) for k in (1.0, *INTERVAL_SHAPES)],
        axis=0,
    )
    return hidden * np.maximum(n_neg, 0.0)


_NOT_WORD = re.compile(r"\bNOT\b", re.IGNORECASE)
_GATE_WORDS = {"AND", "OR", "NOT"}


def _design_note(gene: str, cut: set[str], extra: set[str], modality: str | None) -> str:
    """Why a design's gene was not searched (``''`` when it was)."""
    if gene in cut:
        return f"{gene} was cut by n_candidates (the search kept the highest-coverage genes)"
    if gene in extra:
        return f"{gene} is not a candidate for modality {modality!r}"
    return ""


def _design_genes(designs: Sequence[str], var: pd.Index) -> pd.Index:
    """Return the genes the ``designs`` name, in order.

    A gene the input lacks raises an error naming it.
    """
    if isinstance(designs, str):
        msg = "designs must be a list of gate expressions, e.g. ['ADGRE2 AND CLEC12A']"
        raise InputError(msg)
    genes: list[str] = []
    for d in designs:
        words = str(d).replace("(", " ").replace(")", " ").split()
        names = [w for w in words if w.upper() not in _GATE_WORDS]
        if not names:
            msg = f"design {d!r} names no gene"
            raise InputError(msg)
        missing = [w for w in names if w not in var]
        if missing:
            msg = (
                f"design {d!r} names {', '.join(missing)}, which the input does not measure; "
                "use the input's gene symbols"
            )
            raise InputError(msg)
        genes += [w for w in names if w not in genes]
    return pd.Index(genes)


def search_gates(  # noqa: PLR0912, PLR0913, PLR0915
    adata: AnnData,
    *,
    malignant_key: str | None,
    patient_key: str | None = None,
    compartment_key: str | None = None,
    modality: Modality | None = DEFAULT_MODALITY,
    reference: Reference | None = None,
    healthy: AnnData | None = None,
    healthy_key: str | None = None,
    healthy_only: bool = False,
    max_genes: int = DEFAULT_MAX_GENES,
    ops: Sequence[GateOp] = GATE_OPS,  # type: ignore[assignment]
    max_vital_risk: float = DEFAULT_MAX_VITAL_RISK,
    objective: Objective = DEFAULT_OBJECTIVE,
    patient_threshold: float = DEFAULT_PATIENT_THRESHOLD,
    n_candidates: int | None = None,
    top_k: int = DEFAULT_TOP_K,
    triple_budget: int | None = TRIPLE_BUDGET,
    positivity: Positivity = DEFAULT_POSITIVITY,
    threshold: float | None = None,
    layer: str | None = None,
    graph_key: str | None = DEFAULT_GRAPH_KEY,
    ambient: bool = True,
    designs: Sequence[str] = (),
    require_arms: bool = True,
    key_added: str = GATES_KEY,
    copy: bool = False,
    progress: ProgressCallback | None = None,
) -> AnnData | None:
    """Search AND / OR / NOT gates of up to ``max_genes`` antigens.

    Parameters
    ----------
    adata
        Tumour cells × genes with raw counts (gene names harmonised).
    malignant_key, patient_key, compartment_key
        As in :func:`antigenscout.tl.score_targets`.
    modality
        Decides the candidate genes. For binder modalities (CAR-T/NK, antibody, ADC,
        bispecific, radioligand, agonist) every arm, NOT arms included, must be reachable
        on the cell surface: ``reach >= GATE_MIN_REACH`` (an ectodomain shown by topology
        and at least one good surface source; see :func:`antigenscout.tl.reachability`).
    reference
        Healthy reference; the embedded default when ``None``.
    healthy
        Optional healthy single cells (raw counts, same genes) for exact co-positivity per
        cell type (e.g. healthy bone marrow in an AML dataset). By default they are combined
        with the reference (:class:`~antigenscout.tl.HealthyMixed`): exact risk in the cell
        types they hold, which replace the reference contexts they match (the same match that
        gives their vital weights), and Fréchet upper bounds from the reference's per-context
        fractions everywhere else in the body; a gate's ``risk_is_bound`` is True when its worst
        risk comes from a reference context. Without ``healthy`` the reference alone gives
        Fréchet bounds.
    healthy_key
        obs column of ``healthy`` naming cell types (matched to the reference's vital weights
        by name, e.g. ``HSC`` → ``marrow:HSC``).
    healthy_only
        Use the healthy single cells alone (exact risk only, no reference contexts), for a
        whole-body healthy atlas. Needs ``healthy``.
    max_genes
        Largest gate (1–5): pairs exhaustive, triples exact by branch and bound (OR triples
        beyond ``triple_budget`` by a beam that reports its gap), 4–5 by a bounded beam search
        that reports its optimality gap.
    ops
        Operators from ``("and", "or", "not")``.
    max_vital_risk
        Cap on the worst vital-weighted healthy risk of a gate.
    objective
        ``"coverage"`` (tumour coverage under the cap) or ``"score"`` (coverage × (1 − risk)).
    patient_threshold
        Per-patient coverage at which a patient counts as covered.
    n_candidates
        Keep only this many candidates, those with the highest single-gene tumour coverage
        (the search is exact within them); ``None`` keeps all.
    top_k
        Gates returned.
    triple_budget
        Work allowed for OR triples before they are searched by a beam with a stated gap (see
        :func:`antigenscout.tl._gates.search_gate_matrix`); ``None`` keeps them exact however long
        it takes. Rows a skipped triple could beat get ``optimal=False``.
    positivity, threshold, layer
        Positivity model, its threshold (CP10k) and the counts layer.
    graph_key
        ``adata.obsp`` key of a precomputed neighbour graph for ``knn`` (used when present;
        edges across patients or compartments are cut).
    ambient
        ``knn``: discount each patient's soup from the calls, as
        :func:`~antigenscout.tl.score_targets` does.
    designs
        Given gates to evaluate beside the search, such as published designs
        (``"ADGRE2 AND CLEC12A"``): scored exactly as found gates are, on the same tumour
        calls and healthy contexts, whether or not their genes are candidates of the search
        (``design_note`` says which are not). Results in ``adata.uns[key_added]['designs']``.
    require_arms
        Judge every arm of the gates found (:func:`antigenscout.tl._gates._arms.judge_arms`: an AND
        or NOT arm must lower the risk, an OR arm add coverage, beyond resampling noise; a
        veto must be shown on the cells it protects; an AND arm may not be one the model
        expects on more of them than its gain allows) and rank only gates whose every arm is
        shown; the
        others go to ``'set_aside'`` with the reason, counted in ``params['arms']``. The
        search examines ``4 × top_k`` gates to fill ``top_k``. ``False`` reports the search's
        gates as found (with their arm columns).
    key_added
        ``adata.uns`` key receiving the results.
    copy
        Return a copy instead of writing into ``adata``.
    progress
        Called as ``progress(step, done, total)`` as each step starts and while cells are
        streamed (:data:`antigenscout._types.ProgressCallback`): the steps of
        :func:`~antigenscout.tl.score_targets`' tumour positivity, then ``'healthy cells'``
        (with ``healthy``), ``'healthy risk'``, ``'gate search'``, ``'judging arms'``.

    Returns
    -------
    Sets ``adata.uns[key_added]`` with ``'gates'`` (DataFrame, best first: ``gate``,
    ``n_genes``, ``genes`` (';'-joined), ``tumor_coverage``, ``patients_covered_fraction``,
    ``worst_healthy_cell_type``, ``worst_healthy_risk``, ``risk_is_bound``, ``score``,
    ``rank``, ``optimal``, ``optimality_gap``, ``pareto`` …), ``'params'`` and, with
    ``designs``, ``'designs'`` (the same columns but ``rank``, plus ``design`` and
    ``design_note``).
    """
    from ..pp._positivity import DEFAULT_THRESHOLD  # noqa: PLC0415
    from ..reference import load_reference  # noqa: PLC0415

    adata = adata.copy() if copy else adata
    ops = check_gate_shape(ops, max_genes)
    if not 0 <= max_vital_risk <= 1:
        msg = f"max_vital_risk must lie in [0, 1]; got {max_vital_risk}"
        raise InputError(msg, param="max_vital_risk")
    threshold = check_threshold(threshold, default=DEFAULT_THRESHOLD)
    for name, value in (("n_candidates", n_candidates), ("top_k", top_k)):
        if value is not None and (not isinstance(value, int | np.integer) or value < 1):
            msg = f"{name} must be an integer ≥ 1; got {value!r}"
            raise InputError(msg, param=name)
    check_positivity_args(positivity)
    reference = load_reference() if reference is None else reference
    design_genes = _design_genes(designs, pd.Index(adata.var_names.astype(str)))
    unknown = [g for g in design_genes if g not in reference.expression.index]
    if unknown:  # checked before any work
        msg = (
            f"designs name {', '.join(unknown)}, which the healthy reference has no data for: "
            "their healthy risk cannot be judged (absent data must not look safe)"
        )
        raise InputError(msg, param="designs")
    tumour = prepare_tumor(
        adata,
        reference=reference,
        malignant_key=malignant_key,
        patient_key=patient_key,
        compartment_key=compartment_key,
        modality=modality,
        threshold=threshold,
        layer=layer,
        kind="single_cell",
        gate_reach=GATE_MIN_REACH,
    )
    var, groups, cands = tumour.var, tumour.groups, tumour.cands
    # the designs' genes that are not candidates ride along for evaluation, outside the search
    extra = pd.Index([g for g in design_genes if g not in set(cands)])
    T, pos_params = tumor_positivity(
        adata,
        groups,
        var.get_indexer(cands.append(extra)),
        positivity=positivity,
        threshold=threshold,
        layer=layer,
        graph_key=graph_key,
        ambient=ambient,
        progress=progress,
    )
    say = progress or no_progress
    n0 = len(cands)
    keep = np.arange(n0)
    if n_candidates is not None and n_candidates < n0:
        cov = np.asarray(T[:, :n0].sum(axis=0)).ravel()
        keep = np.sort(np.argsort(-cov, kind="stable")[:n_candidates])
    # a design's gene cut with the candidates stays for the designs, outside the search
    cut = np.setdiff1d(np.arange(n0), keep)
    cut = cut[cands[cut].isin(design_genes)]
    cols = np.concatenate([keep, cut, n0 + np.arange(len(extra))])
    if len(cols) != T.shape[1] or (cols != np.arange(T.shape[1])).any():
        T = T[:, cols]
    searched = cands[keep]
    cut_genes = set(cands[cut])
    cands = searched.append(cands[cut]).append(extra)  # every gene the matrices hold

    if healthy_only and healthy is None:
        msg = "healthy_only=True needs healthy single cells (pass healthy= and healthy_key=)"
        raise InputError(msg, param="healthy_only")
    hdata: HealthyCells | HealthyPseudobulk | HealthyMixed
    hcells = None
    bulk = None
    if healthy is not None:
        if healthy_key is None:
            msg = "healthy_key must name the cell-type column of the healthy single cells"
            raise InputError(msg, param="healthy_key")
        say("healthy cells", 0, None)
        hcells, healthy_params = _healthy_from_cells(
            healthy,
            healthy_key,
            cands,
            reference,
            positivity=positivity,
            threshold=threshold,
            layer=layer,
            weight_default=1.0,
        )
        hdata = hcells
        healthy_source = "single cells (exact)"
    atlas_ctx: list[str] = []
    if hcells is None and getattr(reference, "atlas", None) is not None:
        # a healthy atlas merged into the reference: its sampled cells give exact co-positivity
        from ..atlas._use import atlas_healthy_cells  # noqa: PLC0415

        found = atlas_healthy_cells(reference, cands, threshold, modality)
        if found is not None:
            hcells, healthy_params, atlas_ctx = found
            hdata = hcells
            healthy_source = f"atlas single cells (exact, {reference.atlas.name})"
    exposure: dict[str, Any] | None = None  # the healthy cells alone: no reference to reach
    if not healthy_only:
        say("healthy risk", 0, None)
        # at the positivity threshold for every candidate, with intervals: a veto counts only
        # with the lower end of its measured fraction (shown_fraction)
        hr = healthy_risk(
            reference,
            threshold_cp10k=threshold,
            modality=modality,
            gene_threshold_cp10k=pd.Series(threshold, index=cands, dtype=float),
        )
        ctx = hr.contexts
        exposure = _exposure_params(hr, pregnancy=False)
        keep = np.ones(len(ctx), dtype=bool)
        replaced: list[str] = []
        if hcells is not None:
            # reference contexts the single cells stand for (the match that gave their vital
            # weights: 'marrow:<type>', else the context name) are replaced by the exact cells
            for t in [] if atlas_ctx else hcells.names or []:
                keep &= ctx.index != matching_context(ctx, str(t))
            keep &= ~ctx.index.isin(atlas_ctx)
            replaced = [str(c) for c in ctx.index[~keep]]
        # what each context's cells carry, with the agent's exposure to the context folded
        # into its weight: risk = weight × exposure × gate fraction, exact for any gate
        frac = hr.unexposed(hr.fraction.reindex(index=cands).fillna(0.0))
        frac = frac.to_numpy(dtype=np.float64).T
        shown = shown_fraction(hr, reference, cands).to_numpy(dtype=np.float64).T
        bulk = HealthyPseudobulk(
            frac[keep],
            (hr.weight.to_numpy(dtype=np.float64) * hr.reach(ctx.index))[keep],
            names=[str(n) for n in ctx["name"].to_numpy()[keep]],
            shown=shown[keep],
        )
        if hcells is None:
            hdata = bulk
            healthy_params = {"contexts": len(ctx)}
            healthy_source = "reference pseudobulk (Fréchet upper bound)"
        else:
            healthy_params = {
                **healthy_params,
                "contexts": int(keep.sum()),
                "contexts_replaced_by_cells": replaced,
            }
            if keep.any():  # else every context is replaced: the cells alone are exact
                hdata = HealthyMixed(hcells, bulk)
                healthy_source = (
                    f"{healthy_source} + reference pseudobulk for the other contexts "
                    "(Fréchet upper bound)"
                )

    comps = None if groups.compartment is None else np.asarray(groups.compartment)
    any_not = "not" in ops or any(_NOT_WORD.search(str(d)) for d in designs)
    missed = (
        not_shown_absent(adata, groups, var.get_indexer(cands), T, threshold, layer)
        if any_not
        else None
    )
    say("gate search", 0, None)
    table = search_gate_matrix(
        T,
        np.asarray(groups.patient),
        hdata,
        genes=list(cands),
        candidates=list(searched) if len(searched) < len(cands) else None,
        max_genes=max_genes,
        ops=tuple(ops),
        max_vital_risk=max_vital_risk,
        coverage_threshold=patient_threshold,
        top_k=top_k * ARM_EXAMINE if require_arms else top_k,
        objective=objective,
        compartments=comps,
        not_missed=missed,
        triple_budget=triple_budget,
    )
    search_attrs = dict(table.attrs)
    arm_data = ArmData(
        T=T,
        patients=np.asarray(groups.patient),
        genes=list(cands),
        cells=hcells,
        bulk=bulk if not healthy_only else None,
        cell_means=(
            _type_means(healthy, cands, hcells, layer)
            if healthy is not None and hcells is not None
            else None
        ),
        threshold=threshold,
        cap=max_vital_risk,
        body_wide=body_wide_share(reference, list(cands)),
    )
    say("judging arms", 0, None)
    table, set_aside, arm_params = _apply_arms(table, arm_data, top_k, require_arms)
    table.attrs = search_attrs
    for df in (table, set_aside):
        df["genes"] = df["genes"].str.replace(",", ";", regex=False)
    found: dict[str, pd.DataFrame] = {"set_aside": set_aside} if len(set_aside) else {}
    if designs:
        dt = evaluate_gates(
            list(designs),
            T,
            np.asarray(groups.patient),
            hdata,
            genes=list(cands),
            max_vital_risk=max_vital_risk,
            coverage_threshold=patient_threshold,
            compartments=comps,
            not_missed=missed,
        )
        dt = pd.concat([dt, judge_arms(dt, arm_data)], axis=1)  # arms judged as found gates'
        dt["genes"] = dt["genes"].str.replace(",", ";", regex=False)
        dt.insert(0, "design", [str(d) for d in designs])
        notes = [
            [_design_note(g, cut_genes, set(extra), modality) for g in str(genes).split(";")]
            for genes in dt["genes"]
        ]
        dt["design_note"] = ["; ".join(n for n in ns if n) or "none" for ns in notes]
        found["designs"] = dt
    params = {
        **groups.params,
        "modality": modality,
        "positivity": pos_params,
        "healthy": healthy_source,
        "healthy_params": healthy_params,
        # what the agent reaches of the reference (docs/engagement.md, Exposure)
        "exposure": exposure,
        "max_genes": max_genes,
        "ops": list(ops),
        "max_vital_risk": max_vital_risk,
        "objective": objective,
        "patient_threshold": patient_threshold,
        "n_candidates": len(searched),
        "designs": [str(d) for d in designs],
        "arms": arm_params,
        "search": {k: v for k, v in table.attrs.items() if isinstance(v, int | float | str)},
    }
    table.attrs = {}
    adata.uns[key_added] = {
        "gates": table,
        **found,
        "params": params,
        "denominators": {
            "n_tumor_cells": int(groups.n),
            "n_patients": len(groups.patient.categories),
            "n_candidates": len(searched),
        },
    }
    return adata if copy else None
