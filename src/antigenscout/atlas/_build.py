"""Build a healthy atlas reference from single cells, in-process or on a Dask cluster.

The cells are split into chunks that never cross a donor. A donor with more than
``chunk_cells`` cells is dealt round-robin into ``ceil(n / chunk_cells)`` chunks, so every
chunk is a random-like cross-section of the donor's cell types (and so of its soup). Each
chunk is one pure task: read its rows, call every cell positive or negative with the
tumour's rule (``knn`` at the calibrated threshold, neighbours within the cell's labelled
type from :func:`antigenscout.pp.neighbor_graph` on the chunk, the chunk's ambient RNA
estimated by :func:`antigenscout.pp._ambient.estimate_ambient` and discounted from every
call), and return per-cell-type sums. Sums are merged in a fixed tree, so a run on one
process and a run on a Dask cluster give the same tables.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from .._errors import InputError
from .._types import ProgressCallback, counted, no_progress
from ..pp._positivity import DEFAULT_N_NEIGHBORS, DEFAULT_PRIOR_SHAPE, DEFAULT_THRESHOLD
from ..tl._score import cell_type_labels
from ._atlas import Atlas, map_cell_types
from ._source import CellSource, open_source

__all__ = ["DEFAULT_CHUNK_CELLS", "DEFAULT_SAMPLE_CELLS", "build_atlas", "plan_chunks"]

#: Most cells per chunk (one task); chunks never mix donors.
DEFAULT_CHUNK_CELLS = 10_000
#: Cells per cell type kept, as bit-packed positivity, for exact gate co-positivity.
DEFAULT_SAMPLE_CELLS = 500
#: Partial results merged per reduction task.
_FAN_IN = 8


@dataclass
class _Partial:
    """Per-cell-type sums over some chunks (only the types present)."""

    codes: np.ndarray  # (t,) type codes, sorted
    n: np.ndarray  # (t,) cells
    positive: np.ndarray  # (t, g) positive cells
    detected: np.ndarray  # (t, g) cells with count > 0
    counts: np.ndarray  # (t, g) summed counts
    library: np.ndarray  # (t,) summed library sizes
    sample_rows: np.ndarray  # (s,) global row of each sampled cell
    sample_pos: sparse.csr_matrix  # (s, g) positivity of the sampled cells
    cells: int
    seconds: float
    cpu_seconds: float  # CPU time of the task's thread: below ``seconds`` when CPU-starved
    contamination: tuple[float, ...] = ()  # ambient ρ of each chunk (NaN: not estimable)


def plan_chunks(donors: np.ndarray, chunk_cells: int) -> list[np.ndarray]:
    """Row groups of at most ``chunk_cells`` cells, each within one donor.

    Parameters
    ----------
    donors
        Integer donor code per cell (one code for all cells when there is no donor key).
    chunk_cells
        Most cells per chunk.

    Returns
    -------
    Sorted row arrays, donors in code order; a donor's ``n`` cells are dealt round-robin into
    ``ceil(n / chunk_cells)`` chunks.
    """
    out: list[np.ndarray] = []
    order = np.argsort(donors, kind="stable")
    bounds = np.flatnonzero(np.diff(donors[order])) + 1
    for rows in np.split(order, bounds):
        if rows.size == 0:
            continue
        k = -(-rows.size // chunk_cells)
        out.extend(np.sort(rows[i::k]) for i in range(k))
    return out


def _sample_rows(types: np.ndarray, n_types: int, per_type: int, seed: int) -> np.ndarray:
    """Boolean mask of the cells kept for exact co-positivity (at most ``per_type`` per type)."""
    mask = np.zeros(types.size, dtype=bool)
    rng = np.random.default_rng(seed)
    for t in range(n_types):
        rows = np.flatnonzero(types == t)
        if rows.size > per_type:
            rows = rng.choice(rows, size=per_type, replace=False)
        mask[rows] = True
    return mask


def _chunk_partial(
    source: CellSource,
    rows: np.ndarray,
    types: np.ndarray,
    sampled: np.ndarray,
    threshold: float,
    n_neighbors: int,
    prior_shape: float,
) -> _Partial:
    """Positivity and per-type sums of one chunk (one task; single-threaded, deterministic)."""
    from anndata import AnnData
    from threadpoolctl import threadpool_limits

    from ..pp._ambient import estimate_ambient
    from ..pp._graph import neighbor_graph
    from ..pp._positivity import knn_blocks_from_neighbours

    t0 = time.perf_counter()
    c0 = time.thread_time()
    with threadpool_limits(1):
        X = source.read_rows(rows)
        if X.data.size and not np.array_equal(X.data, np.round(X.data)):
            msg = (
                "the atlas counts hold non-integer values; give raw UMI counts "
                "(the counts layer, or .raw), not normalised data"
            )
            raise InputError(msg)
        lib = np.asarray(X.sum(axis=1), dtype=np.float64).ravel()
        sub = AnnData(X=X)
        sub.obs["total_counts"] = lib
        sub.obs["type"] = types.astype(str)
        # the tumour's rule: neighbours within the labelled cell type, the chunk's soup
        # (a cross-section of one donor) discounted from every call
        graph = neighbor_graph(sub, n_neighbors=n_neighbors, batch_key="type")
        nbr = np.full((rows.size, n_neighbors), -1, dtype=np.int64)
        for r in range(rows.size):  # binary kNN graph: at most n_neighbors per row
            nb = graph.indices[graph.indptr[r] : graph.indptr[r + 1]]
            nbr[r, : nb.size] = nb
        amb, code = estimate_ambient(X, np.zeros(rows.size), types, library=lib)
        rho = float(amb.table["contamination"].iloc[0])
        soup = amb.soup(np.arange(X.shape[1]), code) if np.isfinite(rho) else None
        blocks = knn_blocks_from_neighbours(
            X,
            lib,
            nbr,
            threshold=threshold,
            prior_shape=prior_shape,
            block_size=8192,
            threads=1,
            soup=soup,
        )
        pos = sparse.csr_matrix(sparse.vstack([b for _, b in blocks], format="csr"), dtype=bool)
    codes, inv = np.unique(types, return_inverse=True)
    m = sparse.csr_matrix(
        (np.ones(rows.size), (inv, np.arange(rows.size))), shape=(codes.size, rows.size)
    )
    det = X.copy()
    det.data = (det.data > 0).astype(np.float64)
    return _Partial(
        codes=codes.astype(np.int64),
        n=np.bincount(inv, minlength=codes.size).astype(np.int64),
        positive=np.rint((m @ pos.astype(np.float64)).toarray()).astype(np.int64),
        detected=np.rint((m @ det).toarray()).astype(np.int64),
        counts=(m @ X).toarray(),
        library=m @ lib,
        sample_rows=rows[sampled],
        sample_pos=pos[sampled],
        cells=int(rows.size),
        seconds=time.perf_counter() - t0,
        cpu_seconds=time.thread_time() - c0,
        contamination=(rho,),
    )


def _contamination_summary(rho: tuple[float, ...]) -> dict[str, Any]:
    """Chunks whose soup was estimated and the range of their contamination."""
    v = np.asarray(rho, dtype=np.float64)
    ok = v[np.isfinite(v)]
    return {
        "chunks": int(v.size),
        "estimated": int(ok.size),
        "min": None if not ok.size else round(float(ok.min()), 4),
        "median": None if not ok.size else round(float(np.median(ok)), 4),
        "max": None if not ok.size else round(float(ok.max()), 4),
    }


def _merge(*parts: _Partial) -> _Partial:
    """Add partial results (aligned by type code); order-independent for integer counts."""
    codes = np.unique(np.concatenate([p.codes for p in parts]))
    g = parts[0].positive.shape[1]
    n = np.zeros(codes.size, dtype=np.int64)
    positive = np.zeros((codes.size, g), dtype=np.int64)
    detected = np.zeros((codes.size, g), dtype=np.int64)
    counts = np.zeros((codes.size, g), dtype=np.float64)
    library = np.zeros(codes.size, dtype=np.float64)
    for p in parts:
        at = np.searchsorted(codes, p.codes)
        n[at] += p.n
        positive[at] += p.positive
        detected[at] += p.detected
        counts[at] += p.counts
        library[at] += p.library
    return _Partial(
        codes=codes,
        n=n,
        positive=positive,
        detected=detected,
        counts=counts,
        library=library,
        sample_rows=np.concatenate([p.sample_rows for p in parts]),
        sample_pos=sparse.csr_matrix(sparse.vstack([p.sample_pos for p in parts], format="csr")),
        cells=sum(p.cells for p in parts),
        seconds=sum(p.seconds for p in parts),
        cpu_seconds=sum(p.cpu_seconds for p in parts),
        contamination=tuple(r for p in parts for r in p.contamination),
    )


def _run_dask(
    dask: Any,
    src: CellSource,
    chunks: list[np.ndarray],
    types: np.ndarray,
    sampled: np.ndarray,
    args: tuple[float, int, float],
    progress: Callable[[int, int], None] | None = None,
) -> tuple[_Partial, int]:
    """One task per chunk on dask.distributed, merged in a tree of tasks as they finish;
    ``progress(cells done, cells)`` is called as each chunk's task ends."""
    client, cluster = _client(dask)
    try:
        from dask.distributed import as_completed

        src_f = client.scatter(src, broadcast=True)
        level = [
            client.submit(_chunk_partial, src_f, rows, types[rows], sampled[rows], *args)
            for rows in chunks
        ]
        size = {f.key: rows.size for f, rows in zip(level, chunks, strict=True)}
        done, total = 0, int(sum(size.values()))
        merges = level
        while len(merges) > 1:
            merges = [
                client.submit(_merge, *merges[i : i + _FAN_IN])
                for i in range(0, len(merges), _FAN_IN)
            ]
        for fut in as_completed(level):
            done += size[fut.key]
            if progress is not None:
                progress(done, total)
        workers = len(client.scheduler_info().get("workers", {})) or 1
        return merges[0].result(), workers
    finally:
        if cluster is not None:
            client.close()
            cluster.close()


def _client(dask: Any) -> tuple[Any, Any]:
    """A ``dask.distributed`` client for ``'local:N'``, ``'tcp://HOST:PORT'`` or a Client."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        msg = "--dask needs dask.distributed; install it with pip install 'antigenscout[dask]'"
        raise InputError(msg) from None
    if isinstance(dask, Client):
        return dask, None
    text = str(dask)
    if text.startswith("local:"):
        try:
            n = int(text.split(":", 1)[1])
        except ValueError:
            n = 0
        if n < 1:
            msg = f"--dask {text!r}: give local:N with N >= 1 worker processes"
            raise InputError(msg)
        cluster = LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
        )
        return Client(cluster), cluster
    if "://" not in text:
        msg = f"--dask {text!r}: give local:N or a scheduler address such as tcp://host:8786"
        raise InputError(msg)
    try:
        return Client(text, timeout=30), None
    except OSError as e:
        msg = f"--dask {text!r}: cannot reach the scheduler ({e})"
        raise InputError(msg) from e


def build_atlas(
    source: str | os.PathLike[str] | Any,
    *,
    cell_type_key: str,
    donor_key: str | None = None,
    name: str | None = None,
    dask: Any = None,
    threshold: float = DEFAULT_THRESHOLD,
    n_neighbors: int = DEFAULT_N_NEIGHBORS,
    prior_shape: float = DEFAULT_PRIOR_SHAPE,
    chunk_cells: int = DEFAULT_CHUNK_CELLS,
    sample_cells: int = DEFAULT_SAMPLE_CELLS,
    seed: int = 0,
    measurement: str = "RNA",
    layer: str = "raw",
    obs_filter: str | None = None,
    mapping: pd.DataFrame | None = None,
    progress: ProgressCallback | None = None,
) -> Atlas:
    """Measure every cell type of a healthy single-cell atlas, chunk by chunk.

    Parameters
    ----------
    source
        ``.h5ad`` (read backed), TileDB-SOMA experiment (e.g. a CELLxGENE Census copy), any
        input :func:`antigenscout.io.read` reads (10x, ``.zarr``, ``.loom``; in memory) or an
        AnnData. Counts must be raw UMIs.
    cell_type_key
        obs column naming each cell's type (Cell Ontology names map to the body; see
        :func:`antigenscout.atlas.cell_ontology_map`).
    donor_key
        obs column naming each cell's donor: neighbours are pooled within a donor. Without it
        the whole atlas counts as one donor.
    name
        Atlas name (context ids are ``atlas:<cell type>``, the source ``atlas:<name>``).
    dask
        ``None`` (in this process), ``'local:N'`` (a :class:`dask.distributed.LocalCluster` of
        N single-threaded worker processes), a scheduler address ``'tcp://HOST:PORT'``, or a
        :class:`dask.distributed.Client`.
    threshold, n_neighbors, prior_shape
        Positivity model (``knn``); the calibrated defaults of :mod:`antigenscout.pp`.
    chunk_cells
        Most cells per chunk (task).
    sample_cells
        Cells per type kept as bit-packed positivity for exact gate co-positivity.
    seed
        Seed of the cell sample.
    measurement, layer
        SOMA measurement and raw-count X layer.
    obs_filter
        SOMA value filter on cells (e.g. ``"disease == 'normal' and is_primary_data == True"``
        for the healthy, non-duplicated cells of the CELLxGENE Census).
    mapping
        Cell Ontology mapping table (default: the packaged ``cell_ontology.tsv``).
    progress
        Called as ``progress(step, done, total)`` (:data:`antigenscout._types.
        ProgressCallback`): ``'opening the atlas'``, then ``'cell types'`` with the cells
        measured so far, chunk by chunk.

    Returns
    -------
    :class:`~antigenscout.atlas.Atlas`; ``metadata['build']`` has cells, chunks, workers,
    wall seconds, task seconds (summed over tasks) and the tasks' CPU seconds (well below the
    task seconds when the workers are starved of CPU).

    Examples
    --------
    >>> from antigenscout import atlas, datasets
    >>> a = atlas.build_atlas(datasets.demo(), cell_type_key="cell_type", donor_key="patient")
    >>> a.fraction.shape[1] == len(a.cell_types)
    True
    """
    for label, v, lo in (
        ("chunk_cells", chunk_cells, 2),
        ("sample_cells", sample_cells, 0),
        ("n_neighbors", n_neighbors, 1),
    ):
        if not (isinstance(v, int | np.integer) and v >= lo):
            msg = f"{label} must be an integer >= {lo}; got {v!r}"
            raise InputError(msg)
    if not (np.isfinite(threshold) and threshold > 0):
        msg = f"threshold must be a finite number > 0 (CP10k); got {threshold!r}"
        raise InputError(msg)
    t_start = time.perf_counter()
    say = progress or no_progress
    say("opening the atlas", 0, None)
    columns = [cell_type_key] + ([donor_key] if donor_key and donor_key != cell_type_key else [])
    src, obs, var = open_source(
        source, columns, measurement=measurement, layer=layer, obs_filter=obs_filter
    )
    if len(obs) == 0:
        msg = "the atlas input holds no cells"
        raise InputError(msg)
    cat = cell_type_labels(obs[cell_type_key], cell_type_key)
    types = cat.codes.astype(np.int64)
    if donor_key:
        d = obs[donor_key]
        if d.isna().any():
            msg = f"{int(d.isna().sum()):,} cells have no donor in obs[{donor_key!r}]"
            raise InputError(msg)
        dcat = pd.Categorical(d.astype(str))
        donors = dcat.codes.astype(np.int64)
    else:
        dcat = pd.Categorical(["all"] * len(obs))
        donors = np.zeros(len(obs), dtype=np.int64)
    n_types = len(cat.categories)
    chunks = plan_chunks(donors, int(chunk_cells))
    sampled = _sample_rows(types, n_types, int(sample_cells), seed)

    args = (float(threshold), int(n_neighbors), float(prior_shape))
    workers = 1
    cells = counted(progress, "cell types")
    if dask is None:
        total = None
        n_done = 0
        for rows in chunks:  # sums of whole numbers: folding order does not change them
            part = _chunk_partial(src, rows, types[rows], sampled[rows], *args)
            total = part if total is None else _merge(total, part)
            n_done += rows.size
            if cells is not None:
                cells(n_done, len(obs))
        assert total is not None
    else:
        total, workers = _run_dask(dask, src, chunks, types, sampled, args, cells)
    wall = time.perf_counter() - t_start

    order = np.argsort(total.sample_rows, kind="stable")
    n_donors = pd.crosstab(types, donors).gt(0).sum(axis=1).reindex(range(n_types), fill_value=0)
    cell_types = pd.DataFrame(
        {
            "n_cells": total.n,
            "n_donors": n_donors.to_numpy(np.int64)[total.codes],
            "mean_library": total.library / np.maximum(total.n, 1),
        },
        index=pd.Index(np.asarray(cat.categories)[total.codes], name="cell_type"),
    )
    cell_types, unmapped = map_cell_types(cell_types, mapping)
    genes = pd.Index(var.index.astype(str), name="gene")
    names = cell_types.index

    def frame(a: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(a.T.astype(np.float32), index=genes, columns=names)

    n = np.maximum(total.n, 1)[:, None]
    lib = np.where(total.library > 0, total.library, 1.0)[:, None]
    rows_sorted = total.sample_rows[order]
    metadata = {
        "name": name or _default_name(source),
        "source": str(source) if not hasattr(source, "obs") else "AnnData",
        "source_kind": src.kind,
        "cell_type_key": cell_type_key,
        "donor_key": donor_key,
        "obs_filter": obs_filter,
        "n_cells": int(total.cells),
        "n_genes": len(genes),
        "n_donors": len(dcat.categories),
        "measured_fraction": {
            "method": "knn",
            "threshold_cp10k": float(threshold),
            "n_neighbors": int(n_neighbors),
            "prior_shape": float(prior_shape),
            "graph": "within each chunk of one donor (chunks dealt round-robin)",
        },
        "mean_unit": "CPM (pseudobulk: summed counts / summed library x 1e6)",
        "unmapped_cell_types": unmapped,
        "sample_cells": int(sample_cells),
        "seed": int(seed),
        "build": {
            "chunks": len(chunks),
            "chunk_cells": int(chunk_cells),
            "workers": int(workers),
            "dask": None if dask is None else str(dask),
            "wall_seconds": round(wall, 3),
            "task_seconds": round(total.seconds, 3),
            "task_cpu_seconds": round(total.cpu_seconds, 3),
            "ambient_contamination": _contamination_summary(total.contamination),
        },
    }
    return Atlas.from_arrays(
        cell_types=cell_types,
        genes=var.rename_axis("gene"),
        fraction=frame(total.positive / n),
        mean=frame(total.counts / lib * 1e6),
        detected=frame(total.detected / n),
        sample_types=types[rows_sorted],
        sample_positive=total.sample_pos[order],
        type_names=np.asarray(cat.categories),
        metadata=metadata,
    )


def _default_name(source: Any) -> str:
    if hasattr(source, "obs"):
        return "atlas"
    base = os.path.basename(os.path.normpath(os.fspath(source)))
    for ext in (".h5ad", ".zarr", ".loom", ".h5"):
        if base.lower().endswith(ext):
            base = base[: -len(ext)]
    return base or "atlas"
