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
import time
import zipfile
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
from ..io._validate import check_threshold
from ..pp._ambient import contamination_from_states
from ..pp._positivity import DEFAULT_N_NEIGHBORS, DEFAULT_PRIOR_SHAPE, DEFAULT_THRESHOLD
from ..tl._groups import cell_type_labels
from ..tl._rate import FALLBACK_SHAPE, MIN_READS_AT_THRESHOLD, rate_fraction
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


#: Soup reads are summed in fixed point, in units of 1 / SOUP_SCALE reads, so every sum is an
#: integer and chunks may be added in any order to the same tables.
SOUP_SCALE = 1_000_000
#: Version of what a saved chunk holds; a resume folder of another version is not used.
CHUNK_FORMAT = 3


@dataclass
class _Partial:
    """One chunk's sums (a chunk is one donor's): every sum an integer."""

    codes: np.ndarray  # (t,) type codes present, sorted
    n: np.ndarray  # (t,) cells
    x: np.ndarray  # (t, g) summed counts
    x2: np.ndarray  # (t, g) summed squared counts
    xl: np.ndarray  # (t, g) summed count × library size
    detected: np.ndarray  # (t, g) cells with count > 0
    library: np.ndarray  # (t,) summed library sizes
    library2: np.ndarray  # (t,) summed squared library sizes
    soup: np.ndarray  # (t, g) expected ambient reads × SOUP_SCALE (0 where ρ is not known)
    genes_total: np.ndarray  # (g,) the chunk's summed counts (its soup profile)
    donor: int
    contamination: float  # the chunk's ambient contamination (NaN: not estimable)
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


#: Largest int64 a sum may reach before the next value is refused (exact sums, no wrap).
_INT_CAP = np.iinfo(np.int64).max


@njit(cache=True, nogil=True)
def _type_sums(indptr, indices, data, code, x, x2, xl, det, lib, lib2, n):  # noqa: PLR0913, PLR0917
    """Add one canonical CSR chunk of counts to the per-type sums (row ``code[r]``).

    Returns 0, or 1 for a value that is not a whole number, 2 for a negative one, 3 where a sum
    would pass the int64 range (the caller refuses the input).
    """
    for r in range(indptr.size - 1):
        total = 0
        for j in range(indptr[r], indptr[r + 1]):
            v = data[j]
            if v < 0:
                return 2
            if not np.isfinite(v) or v != np.floor(v):
                return 1
            total += np.int64(v)
        k = code[r]
        if total > 3_037_000_499 or lib2[k] > _INT_CAP - total * total:  # noqa: PLR2004
            return 3
        n[k] += 1
        lib[k] += total
        lib2[k] += total * total
        for j in range(indptr[r], indptr[r + 1]):
            v = np.int64(data[j])
            c = indices[j]
            if xl[k, c] > _INT_CAP - v * total:  # v * total bounds v * v too
                return 3
            x[k, c] += v
            x2[k, c] += v * v
            xl[k, c] += v * total
            if v > 0:
                det[k, c] += 1
    return 0


_REFUSED = {
    1: "the atlas counts hold non-integer values",
    2: "the atlas counts hold negative values",
    3: "the atlas counts are too large to sum exactly in 64 bits (UMI counts are expected)",
}


def _chunk_sums(source: CellSource, rows: np.ndarray, types: np.ndarray, donor: int) -> _Partial:
    """Return the per-type sums of one chunk of one donor, and the ambient RNA its droplets carry.

    One task; single-threaded, deterministic.
    """
    t0 = time.perf_counter()
    c0 = time.thread_time()
    X = source.read_rows(rows, stored=True)
    if not X.has_canonical_format:  # repeated (row, column) entries are added up first
        X.sum_duplicates()
    codes, inv = np.unique(types, return_inverse=True)
    t, g = codes.size, X.shape[1]
    x, x2, xl, det = (np.zeros((t, g), dtype=np.int64) for _ in range(4))
    lib, lib2, n = (np.zeros(t, dtype=np.int64) for _ in range(3))
    bad = _type_sums(
        X.indptr, X.indices, X.data, inv.astype(np.int64), x, x2, xl, det, lib, lib2, n
    )
    if bad:
        msg = f"{_REFUSED[bad]}; give raw UMI counts (the counts layer, or .raw)"
        raise InputError(msg)
    # the chunk (a cross-section of one donor) is one droplet sample: its soup is its pooled
    # expression, its contamination estimated from the labelled types' sums just made (no
    # second pass, no PCA and k-means); a chunk they cannot estimate has nothing taken off
    first = np.argsort(np.unique(inv, return_index=True)[1])  # types as they first appear
    rho = contamination_from_states(x[first], lib[first], n[first])
    genes_total = x.sum(axis=0)
    soup = np.zeros((t, g), dtype=np.int64)
    if np.isfinite(rho) and lib.sum() > 0:
        profile = genes_total / lib.sum()
        soup = np.rint(rho * profile[None, :] * lib[:, None] * SOUP_SCALE).astype(np.int64)
    return _Partial(
        codes=codes.astype(np.int64),
        n=n,
        x=x,
        x2=x2,
        xl=xl,
        detected=det,
        library=lib,
        library2=lib2,
        soup=soup,
        genes_total=genes_total,
        donor=int(donor),
        contamination=rho,
        cells=int(rows.size),
        seconds=time.perf_counter() - t0,
        cpu_seconds=time.thread_time() - c0,
    )


_PER_TYPE_GENE = ("x", "x2", "xl", "detected", "soup")
_PER_TYPE = ("n", "library", "library2")


class _Totals:
    """The whole atlas's sums, added in place as chunks arrive (integers: any order).

    They also hold each donor's summed counts (its soup profile) and its chunks' contamination.
    """

    def __init__(self, n_types: int, n_genes: int, n_donors: int) -> None:
        self.by_type_gene = {k: np.zeros((n_types, n_genes), np.int64) for k in _PER_TYPE_GENE}
        self.by_type = {k: np.zeros(n_types, np.int64) for k in _PER_TYPE}
        self.donor_genes = np.zeros((n_donors, n_genes), np.int64)
        self.rho: list[list[float]] = [[] for _ in range(n_donors)]
        self.cells = 0
        self.seconds = 0.0
        self.cpu_seconds = 0.0

    def add(self, p: _Partial) -> None:
        for k in _PER_TYPE_GENE:
            self.by_type_gene[k][p.codes] += getattr(p, k)
        for k in _PER_TYPE:
            self.by_type[k][p.codes] += getattr(p, k)
        self.donor_genes[p.donor] += p.genes_total
        self.rho[p.donor].append(p.contamination)
        self.cells += p.cells
        self.seconds += p.seconds
        self.cpu_seconds += p.cpu_seconds

    def donor_contamination(self) -> np.ndarray:
        """Each donor's contamination: the median of its chunks' estimates (NaN: none)."""
        out = np.full(len(self.rho), np.nan)
        for d, values in enumerate(self.rho):
            v = np.asarray(values, dtype=np.float64)
            v = v[np.isfinite(v)]
            if v.size:
                out[d] = float(np.median(v))
        return out


class _ChunkStore:
    """The finished chunks of one build, saved as they end, so that a killed build resumes.

    ``folder`` holds ``build.json`` (what the chunks were planned from) and one compressed
    ``chunk_<i>.npz`` per finished chunk, each written to a temporary name and renamed. A
    folder planned from another input or plan has its chunk files removed first; a folder
    holding anything else is refused, and nothing but these files is ever deleted.
    """

    _OURS = ("build.json", "chunk_*.npz", ".chunk_*.tmp.npz")

    def __init__(self, folder: str | os.PathLike[str] | None, plan: dict[str, Any]) -> None:
        self.folder = None if folder is None else Path(folder)
        self.resumed: dict[int, _Partial] = {}
        if self.folder is None:
            return
        ours = self._files()
        if self.folder.is_dir():
            foreign = sorted(f.name for f in self.folder.iterdir() if f not in ours)
            if foreign:
                msg = (
                    f"the resume folder {str(self.folder)!r} holds other files "
                    f"({', '.join(foreign[:3])}); give an empty or new folder"
                )
                raise InputError(msg)
        key = hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()
        meta = self.folder / "build.json"
        try:
            same = json.loads(meta.read_text())["key"] == key
        except (OSError, ValueError, KeyError, TypeError):
            same = False
        if not same:
            for f in ours:
                f.unlink()
        self.folder.mkdir(parents=True, exist_ok=True)
        meta.write_text(json.dumps({"key": key, "plan": plan}, indent=1))
        for f in sorted(self.folder.glob("chunk_*.npz")):
            try:
                with np.load(f) as z:
                    part = _Partial(**{k.name: _scalar(z[k.name]) for k in fields(_Partial)})
                self.resumed[int(f.stem.split("_")[1])] = part
            except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile):
                f.unlink()  # a chunk cut short by the kill: computed again

    def _files(self) -> list[Path]:
        if self.folder is None or not self.folder.is_dir():
            return []
        return [f for pattern in self._OURS for f in self.folder.glob(pattern)]

    def save(self, index: int, part: _Partial) -> None:
        if self.folder is None:
            return
        tmp = self.folder / f".chunk_{index}.tmp.npz"
        np.savez_compressed(tmp, **{k: np.asarray(v) for k, v in asdict(part).items()})
        os.replace(tmp, self.folder / f"chunk_{index}.npz")

    def remove(self) -> None:
        """Delete the chunk files and ``build.json``, then the folder if it is empty."""
        for f in self._files():
            f.unlink()
        if self.folder is not None and self.folder.is_dir() and not any(self.folder.iterdir()):
            self.folder.rmdir()


def _scalar(a: np.ndarray) -> Any:
    return a.item() if a.ndim == 0 else a


def _run_chunks(  # noqa: PLR0913, PLR0917
    src: CellSource,
    chunks: list[np.ndarray],
    types: np.ndarray,
    donors: np.ndarray,
    totals: _Totals,
    store: _ChunkStore,
    dask: Any,
    progress: Callable[[int, int], None] | None,
) -> tuple[int, float]:
    """Add every chunk's sums to ``totals``; return the workers and their start-up time.

    The stored sums are loaded, the others computed in this process or as one Dask task each,
    saved as each ends. Returns the number of workers and the seconds the workers took to start
    up (import and compile, before any task).
    """
    total_cells = int(sum(r.size for r in chunks))
    todo = [i for i in range(len(chunks)) if i not in store.resumed]
    n_done = 0

    def finish(i: int, part: _Partial, *, save: bool = True) -> None:
        nonlocal n_done
        if save:
            store.save(i, part)
        totals.add(part)
        n_done += chunks[i].size
        if progress is not None:
            progress(n_done, total_cells)

    for i, part in sorted(store.resumed.items()):
        if i < len(chunks):
            finish(i, part, save=False)

    def args(i: int) -> tuple:
        rows = chunks[i]
        return rows, types[rows], int(donors[rows[0]])

    workers, warm_seconds = 1, 0.0
    if dask is None or not todo:
        for i in todo:
            finish(i, _chunk_sums(src, *args(i)))
        return workers, warm_seconds
    client, owned = _client(dask)
    try:
        from dask.distributed import as_completed  # noqa: PLC0415

        # each worker imports, opens and compiles once, before any task, so the tasks' CPU
        # time is the chunks' own (the start-up is reported apart)
        w0 = time.perf_counter()
        rows, t, d = args(todo[0])
        client.run(_chunk_sums, src, rows[:50], t[:50], d)
        warm_seconds = time.perf_counter() - w0
        src_f = client.scatter(src, broadcast=True)
        futures = {client.submit(_chunk_sums, src_f, *args(i), pure=False): i for i in todo}
        for fut in as_completed(futures):
            finish(futures[fut], fut.result())
            fut.release()
        workers = len(client.scheduler_info().get("workers", {})) or 1
    finally:
        if owned is not None:
            owned()
    return workers, warm_seconds


def _sample_calls(  # noqa: PLR0913, PLR0917
    src: CellSource,
    rows: np.ndarray,
    types: np.ndarray,
    donors: np.ndarray,
    names: tuple[np.ndarray, np.ndarray],
    soup: tuple[np.ndarray, np.ndarray],
    *,
    threshold: float,
    n_neighbors: int,
    prior_shape: float,
    batch_cells: int,
) -> tuple[np.ndarray, sparse.csr_matrix]:
    """Return the sampled cells' ``knn`` calls (neighbours within type and donor).

    One PCA per donor × type; each donor's soup (``soup``: per donor, its contamination and its
    summed counts, from the chunks) discounted where its contamination was estimated; ``names``
    are the type and donor names of the codes. Batches hold whole cell types (at most
    ``batch_cells`` cells where the types allow), so memory is one batch, and the calls do not
    depend on how the cells are batched. Returns the rows in call order and the calls.
    """
    from anndata import AnnData  # noqa: PLC0415
    from threadpoolctl import threadpool_limits  # noqa: PLC0415

    from ..pp._ambient import Soup  # noqa: PLC0415
    from ..pp._graph import neighbor_graph  # noqa: PLC0415
    from ..pp._neighbors import knn_blocks_from_neighbors  # noqa: PLC0415

    rho, donor_genes = soup
    with np.errstate(divide="ignore", invalid="ignore"):
        profile = donor_genes / np.maximum(donor_genes.sum(axis=1, keepdims=True), 1)
    known = np.isfinite(rho)
    background = np.where(known[:, None], np.nan_to_num(rho)[:, None] * profile, 0.0)
    order = np.argsort(types[rows], kind="stable")
    rows = rows[order]
    cut = np.flatnonzero(np.diff(types[rows])) + 1
    batches: list[np.ndarray] = []
    for g in np.split(np.arange(rows.size), cut):
        if g.size and batches and batches[-1].size + g.size <= batch_cells:
            batches[-1] = np.concatenate([batches[-1], g])
        elif g.size:
            batches.append(g)
    out_rows, calls = [], []
    with threadpool_limits(1):
        for b in batches:
            r = np.sort(rows[b])
            X = src.read_rows(r)
            lib = np.asarray(X.sum(axis=1), dtype=np.float64).ravel()
            sub = AnnData(X=X)
            sub.obs["total_counts"] = lib
            pool = zip(names[1][donors[r]], names[0][types[r]], strict=True)
            sub.obs["pool"] = [f"{d}\t{t}" for d, t in pool]  # as pp.positivity pools
            # one PCA per pool, so a cell's neighbours do not depend on its batch
            graph = neighbor_graph(sub, n_neighbors=n_neighbors, batch_key="pool", pca="per_batch")
            nbr = np.full((r.size, n_neighbors), -1, dtype=np.int64)
            for i in range(r.size):  # binary kNN graph: at most n_neighbors per row
                nb = graph.indices[graph.indptr[i] : graph.indptr[i + 1]]
                nbr[i, : nb.size] = nb
            code = np.where(known[donors[r]], donors[r], -1).astype(np.int64)
            cell_soup = Soup(background, code, np.nan_to_num(rho))
            blocks = knn_blocks_from_neighbors(
                X,
                lib,
                nbr,
                threshold=threshold,
                prior_shape=prior_shape,
                block_size=8192,
                threads=1,
                soup=cell_soup if known.any() else None,
            )
            calls.append(sparse.vstack([blk for _, blk in blocks], format="csr"))
            out_rows.append(r)
    if not calls:
        return np.zeros(0, dtype=np.int64), sparse.csr_matrix((0, donor_genes.shape[1]), dtype=bool)
    pos = sparse.csr_matrix(sparse.vstack(calls, format="csr"), dtype=bool)
    return np.concatenate(out_rows), pos


def _contamination_summary(rho: np.ndarray) -> dict[str, Any]:
    """Donors (or chunks) whose soup was estimated, and its range."""
    v = np.asarray(rho, dtype=np.float64)
    ok = v[np.isfinite(v)]
    return {
        "samples": int(v.size),
        "estimated": int(ok.size),
        "min": None if not ok.size else round(float(ok.min()), 4),
        "median": None if not ok.size else round(float(np.median(ok)), 4),
        "max": None if not ok.size else round(float(ok.max()), 4),
    }


def _client(dask: Any) -> tuple[Any, Callable[[], None] | None]:
    """Return a ``dask.distributed`` client and what closes what was opened here.

    The client for ``'local:N'``, ``'tcp://HOST:PORT'`` or a Client; the closer is ``None`` for
    a Client the caller owns.
    """
    try:
        from dask.distributed import Client, LocalCluster  # noqa: PLC0415
    except ImportError:
        msg = "dask needs dask.distributed; install it with pip install 'antigenscout[dask]'"
        raise InputError(msg, param="dask") from None
    if isinstance(dask, Client):
        return dask, None
    text = str(dask)
    if text.startswith("local:"):
        try:
            n = int(text.split(":", 1)[1])
        except ValueError:
            n = 0
        if n < 1:
            msg = f"dask {text!r}: give local:N with N >= 1 worker processes"
            raise InputError(msg, param="dask")
        import dask  # noqa: PLC0415

        # Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536, which also fixes glibc's
        # mmap threshold at 128 KB: every chunk's arrays are then mapped and unmapped afresh,
        # page by page, which cost 1.7x the task CPU time measured here (docs/atlas.md); a
        # worker may keep WORKER_HEAP bytes of freed heap for the next chunk instead
        env = {f"distributed.nanny.pre-spawn-environ.{k}": WORKER_HEAP for k in _MALLOC_ENV}
        with dask.config.set(env):
            cluster = LocalCluster(
                n_workers=n, threads_per_worker=1, processes=True, dashboard_address=None
            )
        client = Client(cluster)

        def close() -> None:
            client.close()
            cluster.close()

        return client, close
    if "://" not in text:
        msg = f"dask {text!r}: give local:N or a scheduler address such as tcp://host:8786"
        raise InputError(msg, param="dask")
    try:
        client = Client(text, timeout=30)
    except OSError as e:
        msg = f"dask {text!r}: cannot reach the scheduler ({e})"
        raise InputError(msg, param="dask") from e
    return client, client.close


def build_atlas(  # noqa: PLR0913, PLR0915
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
    threshold = check_threshold(threshold, default=DEFAULT_THRESHOLD)
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

    plan = (
        None
        if resume is None
        else {  # what a resumed chunk must match (hashed only then)
            "format": CHUNK_FORMAT,
            "source": str(source) if not hasattr(source, "obs") else "AnnData",
            "stat": _stat(source),
            "data": _memory_digest(src),
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
    )
    store = _ChunkStore(resume, plan or {})
    n_resumed = sum(1 for i in store.resumed if i < len(chunks))
    totals = _Totals(n_types, len(var), len(dcat.categories))
    workers, warm_seconds = _run_chunks(
        src, chunks, types, donors, totals, store, dask, counted(progress, "cell types")
    )
    donor_rho = totals.donor_contamination()
    say("sampled cells", 0, None)
    sample_rows, sample_pos = _sample_calls(
        src,
        np.flatnonzero(sampled),
        types,
        donors,
        (np.asarray(cat.categories).astype(str), np.asarray(dcat.categories).astype(str)),
        (donor_rho, totals.donor_genes),
        threshold=float(threshold),
        n_neighbors=int(n_neighbors),
        prior_shape=float(prior_shape),
        batch_cells=int(chunk_cells),
    )
    wall = time.perf_counter() - t_start

    tg, tt = totals.by_type_gene, totals.by_type
    present = np.flatnonzero(tt["n"] > 0)
    order = np.argsort(sample_rows, kind="stable")
    n_donors = pd.crosstab(types, donors).gt(0).sum(axis=1).reindex(range(n_types), fill_value=0)
    cell_types = pd.DataFrame(
        {
            "n_cells": tt["n"][present],
            "n_donors": n_donors.to_numpy(np.int64)[present],
            "mean_library": tt["library"][present] / np.maximum(tt["n"][present], 1),
        },
        index=pd.Index(np.asarray(cat.categories)[present], name="cell_type"),
    )
    cell_types, unmapped = map_cell_types(cell_types, mapping)
    genes = pd.Index(var.index.astype(str), name="gene")
    names = cell_types.index

    def frame(a: np.ndarray) -> pd.DataFrame:
        return pd.DataFrame(a.T.astype(np.float32), index=genes, columns=names)

    n = np.maximum(tt["n"][present], 1)[:, None]
    lib = np.where(tt["library"][present] > 0, tt["library"][present], 1)[:, None]
    s = tt["library"][present].astype(np.float64)[:, None] / 1e4
    stats = {
        "soup": tg["soup"][present] / SOUP_SCALE,
        "x": tg["x"][present].astype(np.float64),
        "x2": tg["x2"][present].astype(np.float64),
        "xs": tg["xl"][present].astype(np.float64) / 1e4,
        "s": s,
        "s2": tt["library2"][present].astype(np.float64)[:, None] / 1e8,
    }
    fraction, fitted = rate_fraction(stats, float(threshold))
    # a type too shallow for the rate model (fewer than MIN_READS_AT_THRESHOLD expected reads
    # at the threshold over all its cells: the reads cannot tell a few bright cells from many
    # dim ones) takes the knn-called fraction of its sampled cells, which hold all its cells
    # unless --sample-cells is set below them
    deep = float(threshold) * s[:, 0] >= MIN_READS_AT_THRESHOLD
    sample_types = types[sample_rows]
    source_of = []
    for i, code in enumerate(present):
        m = sample_types == code
        if deep[i]:
            source_of.append("rate model")
        elif m.any():
            fraction[i] = np.asarray(sample_pos[m].mean(axis=0)).ravel()
            source_of.append(f"knn calls of {int(m.sum()):,} cells")
        else:  # no sampled cells (--sample-cells 0): the rate model, though shallow
            deep[i] = True
            source_of.append("rate model (shallow; no sampled cells)")
    cell_types["fraction_from"] = pd.Series(
        source_of, index=pd.Index(np.asarray(cat.categories)[present])
    ).reindex(cell_types.index)
    rows_sorted = sample_rows[order]
    metadata = {
        "name": name or _default_name(source),
        "source": str(source) if not hasattr(source, "obs") else "AnnData",
        "source_kind": src.kind,
        "cell_type_key": cell_type_key,
        "donor_key": donor_key,
        "obs_filter": obs_filter,
        "n_cells": int(totals.cells),
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
            "fitted_shape_share": (round(float(fitted[deep].mean()), 4) if deep.any() else None),
            "ambient": (
                "each chunk (a cross-section of one donor) one droplet sample: soup = its "
                "pooled expression, contamination from its labelled types (pp._ambient); "
                "the expected soup reads are taken off each type's mean rate, its variance "
                "kept; a chunk without an estimate has nothing taken off (healthy risk errs "
                "high, not low)"
            ),
            "ambient_contamination": _contamination_summary(
                np.array([r for rs in totals.rho for r in rs])
            ),
        },
        "sample_calls": {
            "method": "knn",
            "n_neighbors": int(n_neighbors),
            "prior_shape": float(prior_shape),
            "graph": "within each cell type and donor of the sampled cells (a PCA each)",
            "ambient": (
                "each donor's soup: its summed counts, times the median contamination of its "
                "chunks; a donor without an estimate has nothing taken off"
            ),
            "ambient_contamination": _contamination_summary(donor_rho),
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
            "task_seconds": round(totals.seconds, 3),
            "task_cpu_seconds": round(totals.cpu_seconds, 3),
            "worker_start_seconds": round(warm_seconds, 3),
        },
    }
    atlas = Atlas.from_arrays(
        cell_types=cell_types,
        genes=var.rename_axis("gene"),
        fraction=frame(fraction),
        mean=frame(tg["x"][present] / lib * 1e6),
        detected=frame(tg["detected"][present] / n),
        sample_types=types[rows_sorted],
        sample_positive=sample_pos[order],
        type_names=np.asarray(cat.categories),
        metadata=metadata,
    )
    store.remove()
    return atlas


def _stat(source: Any) -> list[float] | None:
    """Return the size and modification time of a source (``None``: not a path).

    For a file, its own; for a folder (a TileDB-SOMA experiment), the total size and newest
    modification time of its files.
    """
    try:
        p = Path(os.fspath(source))
    except TypeError:
        return None
    if p.is_file():
        st = p.stat()
        return [float(st.st_size), float(st.st_mtime)]
    if p.is_dir():
        stats = [f.stat() for f in p.rglob("*") if f.is_file()]
        return [float(sum(x.st_size for x in stats)), max((x.st_mtime for x in stats), default=0)]
    return None


def _memory_digest(src: CellSource) -> str | None:
    """Return the SHA-256 of an in-memory source's counts (what a resume must match).

    ``None`` for a file or URI source, identified by its path and ``_stat``.
    """
    if src.kind != "memory":
        return None
    X = sparse.csr_matrix(src.matrix)
    h = hashlib.sha256()
    for a in (X.indptr, X.indices, X.data):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _default_name(source: Any) -> str:
    if hasattr(source, "obs"):
        return "atlas"
    base = os.path.basename(os.path.normpath(os.fspath(source)))
    for ext in (".h5ad", ".zarr", ".loom", ".h5"):
        if base.lower().endswith(ext):
            base = base[: -len(ext)]
    return base or "atlas"
