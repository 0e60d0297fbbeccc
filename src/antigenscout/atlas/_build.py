"""Build a healthy atlas reference from single cells, in-process or on a Dask cluster.

Two steps, each reading only what it needs:

1. **Per-cell-type sums, chunk by chunk** (the cost of a per-cell-type summary). A donor's
   cells are dealt round-robin into chunks (each a cross-section of the donor's types); each
   chunk is one pure task that reads its rows once and adds, per cell type and gene, the
   whole-number sums of the Gamma–Poisson rate model (Σx, Σx², Σx·library; per type
   Σlibrary, Σlibrary²) and the cells with a count, and the ambient reads its droplets carry
   (the chunk's soup and contamination, :func:`antigenscout.pp._ambient.estimate_ambient`).
   No neighbour graph, no densifying; memory is one chunk and the sums. Chunks are folded in
   chunk order, so a run in-process, on a Dask cluster, or resumed from the chunks a killed
   build finished gives the same tables.
2. **The sampled cells' calls** (at most ``sample_cells`` per type, for exact gate
   co-positivity): read once more, called with the tumour's rule (``knn``, neighbours within
   the cell's type and donor, the sample's ambient RNA discounted).

A cell type's positive fraction is the rate model's ``P(λ ≥ threshold)``
(:func:`antigenscout.tl._rate.rate_fraction`, method of moments over the type's cells), which
matches surface protein as well as the per-cell ``knn`` calls on the three CITE-seq sets held
out (``scripts/atlas_fraction_check.py``, docs/atlas.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numba import njit
from scipy import sparse

from .._errors import InputError
from .._types import ProgressCallback, counted, no_progress
from ..pp._positivity import DEFAULT_N_NEIGHBORS, DEFAULT_PRIOR_SHAPE, DEFAULT_THRESHOLD
from ..tl._rate import FALLBACK_SHAPE, MIN_READS_AT_THRESHOLD, rate_fraction
from ..tl._score import cell_type_labels
from ._atlas import Atlas, map_cell_types
from ._source import CellSource, open_source

__all__ = ["DEFAULT_CHUNK_CELLS", "DEFAULT_SAMPLE_CELLS", "build_atlas", "plan_chunks"]

#: Most cells per chunk (one task); chunks never mix donors.
DEFAULT_CHUNK_CELLS = 10_000
#: Cells per cell type kept, as bit-packed positivity, for exact gate co-positivity.
DEFAULT_SAMPLE_CELLS = 500
#: Freed heap a ``local:N`` worker keeps for its next chunk (glibc trim and mmap thresholds).
WORKER_HEAP = 256 << 20
_MALLOC_ENV = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_")


@dataclass
class _Partial:
    """Per-cell-type sums over some chunks (only the types present); the counts' sums are
    integers, the soup's are folded in chunk order."""

    codes: np.ndarray  # (t,) type codes, sorted
    n: np.ndarray  # (t,) cells
    x: np.ndarray  # (t, g) summed counts
    x2: np.ndarray  # (t, g) summed squared counts
    xl: np.ndarray  # (t, g) summed count × library size
    detected: np.ndarray  # (t, g) cells with count > 0
    library: np.ndarray  # (t,) summed library sizes
    library2: np.ndarray  # (t,) summed squared library sizes
    soup: np.ndarray  # (t, g) expected ambient reads (chunks whose contamination was estimated)
    contamination: np.ndarray  # (c,) each chunk's ambient contamination (NaN: not estimable)
    cells: int
    seconds: float
    cpu_seconds: float  # CPU time of the task's thread: below ``seconds`` when CPU-starved


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
    ``ceil(n / chunk_cells)`` chunks, so every chunk is a cross-section of the donor's cell
    types: one droplet sample whose soup can be told from its types.
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


@njit(cache=True, nogil=True)
def _type_sums(indptr, indices, data, code, x, x2, xl, det, lib, lib2, n, cell_lib):
    """Add one CSR chunk of counts to the per-type sums (row ``code[r]``); fill each cell's
    library. Returns 1 for a value that is not a whole number, 2 for a negative one, else 0
    (the sums are then meaningless and the caller refuses the input)."""
    for r in range(indptr.size - 1):
        total = 0
        for j in range(indptr[r], indptr[r + 1]):
            v = data[j]
            if v < 0:
                return 2
            if not np.isfinite(v) or v != np.floor(v):
                return 1
            total += np.int64(v)
        cell_lib[r] = total
        k = code[r]
        n[k] += 1
        lib[k] += total
        lib2[k] += total * total
        for j in range(indptr[r], indptr[r + 1]):
            v = np.int64(data[j])
            c = indices[j]
            x[k, c] += v
            x2[k, c] += v * v
            xl[k, c] += v * total
            if v > 0:
                det[k, c] += 1
    return 0


def _chunk_sums(source: CellSource, rows: np.ndarray, types: np.ndarray) -> _Partial:
    """The per-type sums of one chunk, and the ambient RNA its droplets carry (one task;
    single-threaded, deterministic)."""
    from threadpoolctl import threadpool_limits

    from ..pp._ambient import estimate_ambient

    t0 = time.perf_counter()
    c0 = time.thread_time()
    X = source.read_rows(rows, stored=True)
    codes, inv = np.unique(types, return_inverse=True)
    t, g = codes.size, X.shape[1]
    x, x2, xl, det = (np.zeros((t, g), dtype=np.int64) for _ in range(4))
    lib, lib2, n = (np.zeros(t, dtype=np.int64) for _ in range(3))
    cell_lib = np.zeros(rows.size, dtype=np.float64)
    bad = _type_sums(
        X.indptr, X.indices, X.data, inv.astype(np.int64), x, x2, xl, det, lib, lib2, n, cell_lib
    )
    if bad:
        msg = (
            "the atlas counts hold negative values"
            if bad == 2
            else "the atlas counts hold non-integer values"
        ) + "; give raw UMI counts (the counts layer, or .raw), not normalised data"
        raise InputError(msg)
    # the chunk (a cross-section of one donor) is one droplet sample: its soup is its pooled
    # expression, its contamination estimated from the labelled types (pp._ambient)
    with threadpool_limits(1):
        # from the labelled types only (no PCA and k-means per chunk); a chunk they cannot
        # estimate has nothing taken off
        amb, _ = estimate_ambient(
            X, np.zeros(rows.size, dtype=np.int64), types, library=cell_lib, clusters=False
        )
    rho = float(amb.table["contamination"].iloc[0])
    unscaled = amb.profile[0].astype(np.float64)[None, :] * lib.astype(np.float64)[:, None]
    known = np.isfinite(rho)
    return _Partial(
        codes=codes.astype(np.int64),
        n=n,
        x=x,
        x2=x2,
        xl=xl,
        detected=det,
        library=lib,
        library2=lib2,
        soup=rho * unscaled if known else np.zeros((t, g)),
        contamination=np.array([rho]),
        cells=int(rows.size),
        seconds=time.perf_counter() - t0,
        cpu_seconds=time.thread_time() - c0,
    )


_SUMMED = ("x", "x2", "xl", "detected", "soup")


def _merge(*parts: _Partial) -> _Partial:
    """Add partial results (aligned by type code) in the order given."""
    codes = np.unique(np.concatenate([p.codes for p in parts]))
    g = parts[0].x.shape[1]
    out = {k: np.zeros((codes.size, g), dtype=getattr(parts[0], k).dtype) for k in _SUMMED}
    per_type = {k: np.zeros(codes.size, dtype=np.int64) for k in ("n", "library", "library2")}
    for p in parts:
        at = np.searchsorted(codes, p.codes)
        for k in _SUMMED:
            out[k][at] += getattr(p, k)
        for k in per_type:
            per_type[k][at] += getattr(p, k)
    return _Partial(
        codes=codes,
        **out,
        **per_type,
        contamination=np.concatenate([p.contamination for p in parts]),
        cells=sum(p.cells for p in parts),
        seconds=sum(p.seconds for p in parts),
        cpu_seconds=sum(p.cpu_seconds for p in parts),
    )


class _ChunkStore:
    """The finished chunks of one build, saved as they end, so that a killed build resumes.

    ``folder`` holds ``build.json`` (what the chunks were planned from) and one
    ``chunk_<i>.npz`` per finished chunk, each written to a temporary name and renamed. A
    folder planned from another input or plan is emptied first.
    """

    def __init__(self, folder: str | os.PathLike[str] | None, plan: dict[str, Any]) -> None:
        self.folder = None if folder is None else Path(folder)
        self.resumed: dict[int, _Partial] = {}
        if self.folder is None:
            return
        key = hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()
        meta = self.folder / "build.json"
        if self.folder.is_dir():
            try:
                same = json.loads(meta.read_text())["key"] == key
            except (OSError, ValueError, KeyError):
                same = False
            if not same:
                shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        meta.write_text(json.dumps({"key": key, "plan": plan}, indent=1))
        for f in sorted(self.folder.glob("chunk_*.npz")):
            try:
                with np.load(f) as z:
                    part = _Partial(**{k.name: _scalar(z[k.name]) for k in fields(_Partial)})
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a chunk cut short by the kill: computed again
            self.resumed[int(f.stem.split("_")[1])] = part

    def save(self, index: int, part: _Partial) -> None:
        if self.folder is None:
            return
        tmp = self.folder / f".chunk_{index}.tmp.npz"
        np.savez(tmp, **{k: np.asarray(v) for k, v in asdict(part).items()})
        os.replace(tmp, self.folder / f"chunk_{index}.npz")

    def remove(self) -> None:
        if self.folder is not None and self.folder.is_dir():
            shutil.rmtree(self.folder)


def _scalar(a: np.ndarray) -> Any:
    return a.item() if a.ndim == 0 else a


def _run_chunks(
    src: CellSource,
    chunks: list[np.ndarray],
    types: np.ndarray,
    store: _ChunkStore,
    dask: Any,
    progress: Callable[[int, int], None] | None,
) -> tuple[_Partial, int, float]:
    """Every chunk's sums (the stored ones loaded, the others computed in this process or as
    one Dask task each, saved as each ends), folded in chunk order (so the soup's float sums
    do not depend on which task ended first); the number of workers; the seconds the workers
    took to start up (import and compile, before any task)."""
    total_cells = int(sum(r.size for r in chunks))
    pending = {i: p for i, p in store.resumed.items() if i < len(chunks)}
    todo = [i for i in range(len(chunks)) if i not in pending]
    n_done = sum(chunks[i].size for i in pending)
    merged: _Partial | None = None
    next_i = 0

    def fold() -> None:
        nonlocal merged, next_i
        while next_i in pending:
            part = pending.pop(next_i)
            merged = part if merged is None else _merge(merged, part)
            next_i += 1

    def finish(i: int, part: _Partial) -> None:
        nonlocal n_done
        store.save(i, part)
        pending[i] = part
        fold()
        n_done += chunks[i].size
        if progress is not None:
            progress(n_done, total_cells)

    fold()
    workers = 1
    warm_seconds = 0.0
    if dask is None or not todo:
        for i in todo:
            finish(i, _chunk_sums(src, chunks[i], types[chunks[i]]))
    else:
        client, cluster = _client(dask)
        try:
            from dask.distributed import as_completed

            # each worker imports the modules and loads the compiled kernels once, before any
            # task, so the tasks' CPU time is the chunks' own (the start-up is reported apart)
            w0 = time.perf_counter()
            client.run(_warm_up, src, chunks[todo[0]][:50], types[chunks[todo[0]][:50]])
            warm_seconds = time.perf_counter() - w0
            src_f = client.scatter(src, broadcast=True)
            futures = {
                client.submit(_chunk_sums, src_f, chunks[i], types[chunks[i]], pure=False): i
                for i in todo
            }
            for fut in as_completed(futures):
                finish(futures[fut], fut.result())
                fut.release()
            workers = len(client.scheduler_info().get("workers", {})) or 1
        finally:
            if cluster is not None:
                client.close()
                cluster.close()
    fold()
    assert merged is not None
    assert not pending
    return merged, workers, warm_seconds


def _warm_up(src: CellSource, rows: np.ndarray, types: np.ndarray) -> None:
    """Sum a few cells of the source, so that this process has imported, opened and compiled
    what a chunk needs (a Dask worker, before its first task)."""
    _chunk_sums(src, rows, types)


def _sample_calls(
    src: CellSource,
    rows: np.ndarray,
    types: np.ndarray,
    donors: np.ndarray,
    names: tuple[np.ndarray, np.ndarray],
    *,
    threshold: float,
    n_neighbors: int,
    prior_shape: float,
    batch_cells: int,
) -> tuple[np.ndarray, sparse.csr_matrix, list[float]]:
    """The sampled cells' ``knn`` calls: neighbours within type and donor, each donor's
    ambient RNA discounted where it was estimated (no median is lent to a donor without an
    estimate). Batches hold whole cell types (at most ``batch_cells`` cells where the types
    allow), so memory is one batch; ``names`` are the type and donor names of the codes.
    Where every donor's soup was estimated, or none, the calls are
    :func:`antigenscout.pp.positivity`'s with ``batch_key`` the donor and ``state_key`` the
    type, batch by batch. Returns the rows in call order, the calls and each donor's
    contamination per batch."""
    from anndata import AnnData
    from threadpoolctl import threadpool_limits

    from ..pp._ambient import estimate_ambient
    from ..pp._graph import neighbor_graph
    from ..pp._positivity import knn_blocks_from_neighbours

    order = np.argsort(types[rows], kind="stable")
    rows = rows[order]
    cut = np.flatnonzero(np.diff(types[rows])) + 1
    groups = np.split(np.arange(rows.size), cut)
    batches: list[np.ndarray] = []
    for g in groups:
        if batches and batches[-1].size + g.size <= batch_cells:
            batches[-1] = np.concatenate([batches[-1], g])
        else:
            batches.append(g)
    out_rows, calls, rho = [], [], []
    with threadpool_limits(1):
        for b in batches:
            r = np.sort(rows[b])
            X = src.read_rows(r)
            lib = np.asarray(X.sum(axis=1), dtype=np.float64).ravel()
            sub = AnnData(X=X)
            sub.obs["total_counts"] = lib
            type_name, donor_name = names[0][types[r]], names[1][donors[r]]
            sub.obs["pool"] = [f"{d}\t{t}" for d, t in zip(donor_name, type_name, strict=True)]
            graph = neighbor_graph(sub, n_neighbors=n_neighbors, batch_key="pool")
            nbr = np.full((r.size, n_neighbors), -1, dtype=np.int64)
            for i in range(r.size):  # binary kNN graph: at most n_neighbors per row
                nb = graph.indices[graph.indptr[i] : graph.indptr[i + 1]]
                nbr[i, : nb.size] = nb
            amb, code = estimate_ambient(X, donor_name, type_name, library=lib)
            # a donor whose contamination could not be estimated is not discounted (healthy
            # risk errs high): the median another donor gave is not borrowed
            lent = amb.table["source"].astype(str).str.startswith("borrowed").to_numpy()
            amb.table.loc[lent, "contamination"] = np.nan
            ok = np.isfinite(amb.table["contamination"].to_numpy(dtype=float))
            rho.extend(amb.table["contamination"].to_numpy(dtype=float).tolist())
            soup = amb.soup(np.arange(X.shape[1]), code) if ok.any() else None
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
            calls.append(sparse.vstack([blk for _, blk in blocks], format="csr"))
            out_rows.append(r)
    pos = sparse.csr_matrix(sparse.vstack(calls, format="csr"), dtype=bool)
    return np.concatenate(out_rows), pos, rho


def _contamination_summary(rho: list[float]) -> dict[str, Any]:
    """Samples (chunks, or donors of a sample batch) whose soup was estimated, and its range."""
    v = np.asarray(rho, dtype=np.float64)
    ok = v[np.isfinite(v)]
    return {
        "samples": int(v.size),
        "estimated": int(ok.size),
        "min": None if not ok.size else round(float(ok.min()), 4),
        "median": None if not ok.size else round(float(np.median(ok)), 4),
        "max": None if not ok.size else round(float(ok.max()), 4),
    }


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
        import dask

        # Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536, which also fixes glibc's
        # mmap threshold at 128 KB: every chunk's arrays are then mapped and unmapped afresh,
        # page by page, which cost 1.7x the task CPU time measured here (docs/atlas.md); a
        # worker may keep WORKER_HEAP bytes of freed heap for the next chunk instead
        env = {f"distributed.nanny.pre-spawn-environ.{k}": WORKER_HEAP for k in _MALLOC_ENV}
        with dask.config.set(env):
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
    resume: str | os.PathLike[str] | None = None,
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
        obs column naming each cell's donor: chunks never mix donors and the sampled cells
        are pooled within their donor. Without it the whole atlas counts as one donor.
    name
        Atlas name (context ids are ``atlas:<cell type>``, the source ``atlas:<name>``).
    dask
        ``None`` (in this process), ``'local:N'`` (a :class:`dask.distributed.LocalCluster` of
        N single-threaded worker processes), a scheduler address ``'tcp://HOST:PORT'``, or a
        :class:`dask.distributed.Client`.
    threshold
        Antigen level (CP10k) a cell must reach to count as positive; the calibrated default
        of :mod:`antigenscout.pp`.
    n_neighbors, prior_shape
        The sampled cells' ``knn`` calls (the defaults of :mod:`antigenscout.pp`).
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
    resume
        A folder that keeps each finished chunk's sums: a build killed part way and started
        again with the same ``resume`` (and the same input and chunk plan) computes only the
        chunks it had not finished, and gives the same tables. ``None``: nothing kept.
    progress
        Called as ``progress(step, done, total)`` (:data:`antigenscout._types.
        ProgressCallback`): ``'opening the atlas'``, ``'cell types'`` with the cells summed
        so far (chunk by chunk, resumed chunks included), ``'sampled cells'``.

    Returns
    -------
    :class:`~antigenscout.atlas.Atlas`; ``metadata['build']`` has cells, chunks (and how many
    were resumed), workers, wall seconds, task seconds (summed over tasks) and the tasks' CPU
    seconds (well below the task seconds when the workers are starved of CPU).

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

    plan = {
        "source": str(source) if not hasattr(source, "obs") else "AnnData",
        "stat": _stat(source),
        "cells": len(obs),
        "genes": len(var),
        "cell_type_key": cell_type_key,
        "donor_key": donor_key,
        "obs_filter": obs_filter,
        "measurement": measurement,
        "layer": layer,
        "chunk_cells": int(chunk_cells),
        "chunks": len(chunks),
        "types": hashlib.sha256(types.tobytes() + donors.tobytes()).hexdigest(),
    }
    store = _ChunkStore(resume, plan)
    n_resumed = sum(1 for i in store.resumed if i < len(chunks))
    total, workers, warm_seconds = _run_chunks(
        src, chunks, types, store, dask, counted(progress, "cell types")
    )
    say("sampled cells", 0, None)
    sample_rows, sample_pos, rho = _sample_calls(
        src,
        np.flatnonzero(sampled),
        types,
        donors,
        (np.asarray(cat.categories).astype(str), np.asarray(dcat.categories).astype(str)),
        threshold=float(threshold),
        n_neighbors=int(n_neighbors),
        prior_shape=float(prior_shape),
        batch_cells=int(chunk_cells),
    )
    wall = time.perf_counter() - t_start

    order = np.argsort(sample_rows, kind="stable")
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
    lib = np.where(total.library > 0, total.library, 1)[:, None]
    s = total.library.astype(np.float64)[:, None] / 1e4
    stats = {
        "soup": total.soup,
        "x": total.x.astype(np.float64),
        "x2": total.x2.astype(np.float64),
        "xs": total.xl.astype(np.float64) / 1e4,
        "s": s,
        "s2": total.library2.astype(np.float64)[:, None] / 1e8,
    }
    fraction, shape = rate_fraction(stats, float(threshold))
    # a type too shallow for the rate model (fewer than MIN_READS_AT_THRESHOLD expected reads
    # at the threshold over all its cells: the reads cannot tell a few bright cells from many
    # dim ones) takes the knn-called fraction of its sampled cells, which hold all its cells
    # unless --sample-cells is set below them
    deep = float(threshold) * s[:, 0] >= MIN_READS_AT_THRESHOLD
    sample_types = types[sample_rows]
    called = np.zeros(total.codes.size, dtype=np.int64)
    for i, code in enumerate(total.codes):
        if deep[i]:
            continue
        m = sample_types == code
        called[i] = int(m.sum())
        if called[i]:
            fraction[i] = np.asarray(sample_pos[m].mean(axis=0)).ravel()
    cell_types["fraction_from"] = pd.Series(
        [
            "rate model" if deep[i] else f"knn calls of {called[i]:,} cells"
            for i in range(total.codes.size)
        ],
        index=pd.Index(np.asarray(cat.categories)[total.codes]),
    ).reindex(cell_types.index)
    rows_sorted = sample_rows[order]
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
            "method": "rate model; knn calls for shallow types",
            "model": (
                "Gamma–Poisson rate per cell type, method of moments over all its cells: "
                "P(rate >= threshold) (antigenscout.tl._rate.rate_fraction); the shape "
                f"{FALLBACK_SHAPE:g} where the reads cannot tell it. A type with fewer than "
                f"{MIN_READS_AT_THRESHOLD:g} expected reads at the threshold over its cells: "
                "the knn-called fraction of its sampled cells (cell_types.fraction_from)"
            ),
            "types_by_rate_model": int(deep.sum()),
            "types_by_knn_calls": int((~deep).sum()),
            "threshold_cp10k": float(threshold),
            "fallback_shape_share": round(float((shape == FALLBACK_SHAPE).mean()), 4),
            "ambient": (
                "each chunk (a cross-section of one donor) one droplet sample: soup = its "
                "pooled expression, contamination from its labelled types (pp._ambient); "
                "the expected soup reads are taken off each type's mean rate, its variance "
                "kept; a chunk without an estimate has nothing taken off (healthy risk errs "
                "high, not low)"
            ),
            "ambient_contamination": _contamination_summary(list(total.contamination)),
        },
        "sample_calls": {
            "method": "knn",
            "n_neighbors": int(n_neighbors),
            "prior_shape": float(prior_shape),
            "graph": "within each cell type and donor of the sampled cells",
            "ambient_contamination": _contamination_summary(rho),
        },
        "mean_unit": "CPM (pseudobulk: summed counts / summed library x 1e6)",
        "unmapped_cell_types": unmapped,
        "sample_cells": int(sample_cells),
        "seed": int(seed),
        "build": {
            "chunks": len(chunks),
            "chunks_resumed": int(n_resumed),
            "chunk_cells": int(chunk_cells),
            "workers": int(workers),
            "dask": None if dask is None else str(dask),
            "wall_seconds": round(wall, 3),
            "task_seconds": round(total.seconds, 3),
            "task_cpu_seconds": round(total.cpu_seconds, 3),
            "worker_start_seconds": round(warm_seconds, 3),
        },
    }
    atlas = Atlas.from_arrays(
        cell_types=cell_types,
        genes=var.rename_axis("gene"),
        fraction=frame(fraction),
        mean=frame(total.x / lib * 1e6),
        detected=frame(total.detected / n),
        sample_types=types[rows_sorted],
        sample_positive=sample_pos[order],
        type_names=np.asarray(cat.categories),
        metadata=metadata,
    )
    store.remove()
    return atlas


def _stat(source: Any) -> list[float] | None:
    """Size and modification time of a file or folder source (``None``: not a path)."""
    try:
        st = os.stat(os.fspath(source))
    except (TypeError, OSError):
        return None
    return [float(st.st_size), float(st.st_mtime)]


def _default_name(source: Any) -> str:
    if hasattr(source, "obs"):
        return "atlas"
    base = os.path.basename(os.path.normpath(os.fspath(source)))
    for ext in (".h5ad", ".zarr", ".loom", ".h5"):
        if base.lower().endswith(ext):
            base = base[: -len(ext)]
    return base or "atlas"
