"""Read the tumour: its checked input, candidate genes and positivity counts.

The first steps of both ranking tools (:func:`antigenscout.tl.score_targets` and
:func:`antigenscout.tl.search_gates`): :func:`prepare_tumor` checks the input once and
gathers the counts, the malignant rows grouped by patient and compartment, and the modality's
candidates (:func:`candidate_genes`); :func:`tumor_positivity` and ``_count_positive`` call
each malignant cell positive or not (the ``knn`` model with the soup discounted, or a per-cell
threshold) in one streamed pass over the counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numba
import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from .._errors import InputError
from .._types import (
    MODALITIES,
    POSITIVITY_MODELS,
    ProgressCallback,
    counted,
    no_progress,
)
from ..io._validate import check_counts, check_threshold
from ._evidence import _cancer_key, _pathology, _values
from ._groups import (
    UNASSIGNED,
    TumorGroups,
    _group_codes,
    _labels,
    counts_matrix,
    tumor_groups,
)
from ._rate import JACKKNIFE_BLOCKS, RateSums
from ._risk import CP10K_TO_NTPM, positive_fraction_from_mean
from ._targetability import MODALITY_PROFILES, reachability

if TYPE_CHECKING:
    from collections.abc import Callable

    from ..pp._ambient import Ambient, Soup
    from ..reference import Reference

__all__ = [
    "TumorInput",
    "candidate_genes",
    "prepare_tumor",
    "tumor_positivity",
]

#: Rows read at a time when streaming per-cell positivity.
STREAM_CHUNK = 32768
#: Largest rate-model sums (jackknife blocks × groups × candidates × 3 floats) gathered in
#: the positivity pass; above, patient_rate_coverage reads the matrix again.
RATE_SUMS_MAX_BYTES = 256 * 2**20


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
    if modality is None:
        return genes
    if modality == "any":  # every protein, and features the reference does not know
        surface = reference.surface
        coding = surface.index[surface["protein_coding"].fillna(False).to_numpy(dtype=bool)]
        known = reference.genes.index
        return genes[genes.isin(coding) | ~genes.isin(known)]
    if modality not in MODALITIES:
        msg = f"modality must be one of {', '.join(MODALITIES)}; got {modality!r}"
        raise InputError(msg, param="modality")
    surface = reference.surface
    if "protein_coding" in surface.columns:
        surface = surface[surface["protein_coding"].fillna(False).to_numpy(dtype=bool)]
    if MODALITY_PROFILES[modality].binder:
        reach = reachability(surface)["reach"]
        ok = reach.index[reach.to_numpy() > min_reach]
    else:
        ok = surface.index
    return genes[genes.isin(ok)]


@dataclass(frozen=True)
class TumorInput:
    """The tumour as :func:`score_targets` and ``search_gates`` read it, checked once.

    Built by :func:`prepare_tumor`: the counts (and any stored library sizes), the malignant
    rows grouped by patient and compartment, the modality's candidate genes and the
    positivity threshold.
    """

    adata: AnnData
    reference: Reference
    X: Any  #: counts matrix (``X`` or the layer), CSR, dense or backed
    lib_obs: np.ndarray | None  #: library sizes stored in obs, else ``None``
    var: pd.Index  #: the input's gene names
    groups: TumorGroups
    cands: pd.Index  #: candidate genes, in the input's order
    threshold: float  #: positivity threshold, CP10k
    kind: str  #: ``'single_cell'`` or ``'bulk'``

    @property
    def col_idx(self) -> np.ndarray:
        """Column of each candidate in the counts matrix."""
        return self.var.get_indexer(self.cands)


def prepare_tumor(  # noqa: PLR0913
    adata: AnnData,
    *,
    reference: Reference | None,
    malignant_key: str | None,
    patient_key: str | None,
    compartment_key: str | None,
    modality: str | None,
    threshold: float | None,
    layer: str | None,
    kind: str = "auto",
    min_reach: float = 0.0,
    gate_reach: float | None = None,
    cancer: str | None = None,
) -> TumorInput:
    """Check the tumour input and gather what both ranking tools read from it.

    Parameters
    ----------
    adata, reference, malignant_key, patient_key, compartment_key, modality, threshold, layer
        As in :func:`score_targets`.
    kind
        ``'auto'`` reads ``adata.uns['antigenscout']['kind']`` (single cells when unset).
    min_reach
        Binder modalities: candidates need a reachability above this.
    gate_reach
        Binder modalities: candidates also need a reachability of at least this (the gate
        search's floor); ``None`` sets none.
    cancer
        Bulk tumours' HPA cancer type, checked against the reference before any work.

    Returns
    -------
    The checked :class:`TumorInput`.
    """
    from ..pp._positivity import DEFAULT_THRESHOLD  # noqa: PLC0415
    from ..reference import load_reference  # noqa: PLC0415

    reference = load_reference() if reference is None else reference
    if kind == "auto":
        kind = adata.uns.get("antigenscout", {}).get("kind", "single_cell")
    threshold = check_threshold(threshold, default=DEFAULT_THRESHOLD)
    if cancer is not None:  # checked before any work, as the CLI does
        if kind != "bulk":
            msg = "cancer applies to bulk tumours only; single cells are measured directly"
            raise InputError(msg, param="cancer")
        _cancer_key(cancer, _values(_pathology(reference)["cancer"]))
    groups = tumor_groups(
        adata, malignant_key=malignant_key, patient_key=patient_key, compartment_key=compartment_key
    )
    var = pd.Index(adata.var_names.astype(str))
    cands = candidate_genes(var, reference, modality, min_reach=min_reach)
    binder = modality in MODALITY_PROFILES and MODALITY_PROFILES[modality].binder
    if gate_reach is not None and binder:
        reach = reachability(reference.surface.reindex(cands))["reach"]
        cands = cands[reach.to_numpy() >= gate_reach]
    if len(cands) == 0:
        msg = (
            f"none of the input's {len(var)} genes is a candidate for modality {modality!r}; "
            "check that gene names are symbols or Ensembl ids (run harmonise_genes first)"
        )
        raise InputError(msg)
    X, lib_obs = counts_matrix(adata, layer)
    check_counts(X, "the AnnData", kind, where="X" if layer is None else f"layers[{layer!r}]")
    return TumorInput(adata, reference, X, lib_obs, var, groups, cands, threshold, str(kind))


@dataclass
class _Counts:
    """What the positivity step measured: positive counts per (group, candidate)."""

    counts: np.ndarray  #: groups × candidates, positive cells (or summed sample fractions)
    codes: np.ndarray  #: group code of each malignant row
    n_groups: int
    covered: np.ndarray | None  #: bulk: samples at or above the threshold
    cp10k_sums: np.ndarray | None  #: Σ CP10k per candidate, where the pass read the matrix
    params: dict[str, Any]
    ambient: Ambient | None


def _count_positive(  # noqa: PLR0913
    tumour: TumorInput,
    *,
    positivity: str,
    n_neighbors: int | None,
    graph_key: str | None,
    ambient: bool,
    progress: ProgressCallback | None,
    rate_stats: dict[str, Any] | None,
) -> _Counts:
    """Count positive malignant cells per group and candidate in one pass over the counts.

    The same pass sums each candidate's CP10k (the tumour mean) and, with ``rate_stats``,
    the per-patient rate model's sufficient statistics.
    """
    adata, X, lib_obs, groups = tumour.adata, tumour.X, tumour.lib_obs, tumour.groups
    cands, col_idx, threshold, kind = tumour.cands, tumour.col_idx, tumour.threshold, tumour.kind
    codes, group_names = _group_codes(groups)
    n_groups = len(group_names)
    covered = None
    amb = None
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
        soup = None
        if ambient:
            (progress or no_progress)("ambient RNA", 0, None)
            soup, amb = tumor_soup(adata, X, groups, lib_obs, col_idx)
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
    return _Counts(counts, codes, n_groups, covered, cp10k_sums, params_pos, amb)


def check_positivity_args(positivity: str, n_neighbors: int | None = None) -> None:
    """Refuse a positivity model that does not exist and a neighbour count below 1.

    The API refuses them as the CLI's choices do, instead of recording them as something else.
    """
    if positivity not in POSITIVITY_MODELS:
        msg = f"positivity {positivity!r} is not a model; choose one of {POSITIVITY_MODELS}"
        raise InputError(msg, param="positivity")
    if n_neighbors is not None and (
        isinstance(n_neighbors, bool)
        or not isinstance(n_neighbors, int | np.integer)
        or n_neighbors < 1
    ):
        msg = f"n_neighbors must be an integer >= 1 (or None for the default); got {n_neighbors!r}"
        raise InputError(msg, param="n_neighbors")


def _given_graph(adata: AnnData, groups: TumorGroups, graph_key: str | None) -> Any:
    """Return the malignant cells' block of ``adata.obsp[graph_key]``, or ``None`` (build one).

    Every edge across a patient or compartment is removed.
    """
    from ..pp._positivity import cut_graph  # noqa: PLC0415

    if graph_key is not None and graph_key in adata.obsp:
        return cut_graph(adata.obsp[graph_key][groups.rows][:, groups.rows], _pool_batches(groups))
    return None


def _knn_params(
    groups: TumorGroups, threshold: float, n_neighbors: int | None, graph_key: str | None
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


def _pool_batches(groups: TumorGroups) -> np.ndarray:
    """Return the integer pooling batch of each malignant cell.

    The batch is its patient and, where compartments are labelled, its compartment (neighbours
    are never pooled across a label boundary).
    """
    by_patient = groups.params.get("patient_key") is not None
    code = groups.patient.codes.astype(np.int64) if by_patient else np.zeros(groups.n, np.int64)
    if groups.compartment is not None:
        code = code * len(groups.compartment.categories) + groups.compartment.codes
    return np.asarray(code, dtype=np.int64)


def _streamed_kwargs(
    groups: TumorGroups, lib_obs: np.ndarray | None, n_neighbors: int | None
) -> dict[str, Any]:
    """Arguments of the streamed pass: neighbours within each patient and compartment."""
    kw: dict[str, Any] = {
        "batches": _pool_batches(groups),
        "library": None if lib_obs is None else lib_obs[groups.rows],
    }
    if n_neighbors is not None:
        kw["n_neighbors"] = n_neighbors
    return kw


def cell_states(adata: AnnData, groups: TumorGroups) -> np.ndarray:
    """Return the labelled state of every row, for the ambient model.

    The state is the malignant column's value and, where a compartment key is given, the row's
    compartment (``'malignant:HSC-like'``).
    """
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


def tumor_soup(
    adata: AnnData,
    X: Any,
    groups: TumorGroups,
    lib_obs: np.ndarray | None,
    col_idx: np.ndarray,
) -> tuple[Soup, Ambient]:
    """Return the ambient model of every sample (patient) of ``adata``, and the soup to discount.

    The model is fitted from all of a sample's rows; the soup is what the malignant cells' calls
    discount for the ``col_idx`` genes.
    """
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
    X: Any, groups: TumorGroups, lib_obs: np.ndarray | None
) -> tuple[Any, np.ndarray]:
    """Return the malignant rows of ``X`` and their library sizes."""
    Xm = _take_rows(X, groups.rows)
    lib = lib_obs[groups.rows] if lib_obs is not None else np.asarray(Xm.sum(axis=1)).ravel()
    return Xm, lib


def _knn_blocks(  # noqa: PLR0913
    adata: AnnData,
    X: Any,
    groups: TumorGroups,
    lib_obs: np.ndarray | None,
    col_idx: np.ndarray,
    *,
    threshold: float,
    n_neighbors: int | None,
    graph_key: str | None,
    soup: Soup | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Return dropout-aware positivity blocks of the malignant cells, discounting ``soup``.

    The graph is built within each patient and compartment.
    """
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
    groups: TumorGroups,
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
    """Count dropout-aware positive malignant cells per (group, gene), discounting ``soup``.

    The counts are float64.

    Streamed (no graph in ``obsp``): one pass (:func:`~antigenscout.pp._streamed.
    knn_neighbors_streamed`, which fills ``column_sums`` and calls ``on_chunk``), then the
    pooled calls counted by the kernel. With a graph from ``obsp`` its blocks are counted and
    ``column_sums``/``on_chunk`` are left unused.
    """
    from ..pp import _neighbors, _positivity, _streamed  # noqa: PLC0415

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
        counts = _neighbors.count_blocks(
            blocks, codes, n_groups, len(col_idx), progress=counted(progress, "positivity calls")
        )
        return counts.astype(np.float64), params
    params = _knn_params(groups, threshold, n_neighbors, None)
    kw = _streamed_kwargs(groups, lib_obs, n_neighbors)
    Xg, lib, nbr = _streamed.knn_neighbors_streamed(
        X,
        groups.rows,
        genes=col_idx,
        column_sums=column_sums,
        on_chunk=on_chunk,
        progress=counted(progress, "neighbour graph"),
        **kw,
    )
    counts = _neighbors.knn_counts_from_neighbors(
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


def tumor_positivity(  # noqa: PLR0913
    adata: AnnData,
    groups: TumorGroups,
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
    """Return the Boolean positivity matrix (CSR) of malignant cells × ``col_idx`` genes.

    Also returns its params. ``knn``: with ``ambient``, soup reads discounted (see
    :func:`tumor_soup`); ``progress`` as in :func:`score_targets`.
    """
    from ..pp._positivity import positive_blocks  # noqa: PLC0415

    X, lib_obs = counts_matrix(adata, layer)
    say = progress or no_progress
    if positivity == "knn":
        soup, amb = None, None
        if ambient:
            say("ambient RNA", 0, None)
            soup, amb = tumor_soup(adata, X, groups, lib_obs, col_idx)
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
    from ..pp._kernels import RULE_CODES, count_positive_by_group, row_sums  # noqa: PLC0415

    code = RULE_CODES[method]
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


def _tumor_mean_cp10k(  # noqa: PLR0913
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
