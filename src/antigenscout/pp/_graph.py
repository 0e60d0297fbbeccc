"""k-nearest-neighbour graph of cells for dropout-aware positivity calls.

Two embeddings are available. The default (``pca="shared"``) scales to millions of cells: one
PCA on informative genes (the ``n_top_genes`` genes of highest log-normalised variance),
fitted once on at most ``max_pca_cells`` cells spread over the whole input, projects every
cell; neighbours are then found within each batch (patient) — exactly for a batch of up to
``_EXACT_MAX_CELLS`` cells, else approximately with randomised partition trees
(:func:`approx_knn`). ``pca="per_batch"`` is the former model: a PCA over all genes within
each batch, exact neighbours up to 20,000 cells and pynndescent above.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from antigenscout._errors import InputError

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["Embedding", "approx_knn", "fit_embedding", "neighbor_graph"]

#: Batches up to this size use exact neighbours (scikit-learn); larger ones approximate ones.
_EXACT_MAX_CELLS = 20_000
#: Shared PCA: informative genes, cells the PCA is fitted on, leaf size of the partition trees.
DEFAULT_N_TOP_GENES = 2000
DEFAULT_MAX_PCA_CELLS = 10_000
_LEAF_SIZE = 512
_N_TREES = 2
#: Batches up to this size: exact neighbours by the numba kernel (one leaf), above: sklearn.
_ONE_LEAF_MAX_CELLS = 4096
#: Rows read at a time from a backed matrix.
_READ_CHUNK = 10_000


def _log_norm(counts: sp.csr_matrix, library: np.ndarray) -> sp.csr_matrix:
    """``log1p(counts / library * 1e4)`` (CSR; rows with library 0 stay 0)."""
    scale = np.divide(1e4, library, out=np.zeros_like(library, dtype=np.float64), where=library > 0)
    out = sp.csr_matrix(sp.diags(scale) @ sp.csr_matrix(counts, dtype=np.float64))
    out.data = np.log1p(out.data)
    return out


def _read_rows(X: Any, rows: np.ndarray) -> sp.csr_matrix:
    """Rows (sorted positions) of an in-memory or backed matrix, as float64 CSR."""
    if isinstance(X, np.ndarray) or sp.issparse(X):
        return sp.csr_matrix(X[rows], dtype=np.float64)
    parts = []
    # contiguous reads of at most _READ_CHUNK rows, never spanning a gap of > 1,024 rows
    # (reading from the first to the last wanted row of a spread-out sample reads the file)
    breaks = np.flatnonzero(np.diff(rows) > 1024) + 1  # noqa: PLR2004
    for run in np.split(rows, breaks):
        for start in range(0, len(run), _READ_CHUNK):
            r = run[start : start + _READ_CHUNK]
            lo, hi = int(r[0]), int(r[-1]) + 1
            if hi - lo > 4 * _READ_CHUNK:  # sparse picks inside a run: row by row groups
                parts.extend(sp.csr_matrix(X[int(i) : int(i) + 1]) for i in r)
                continue
            parts.append(sp.csr_matrix(X[lo:hi])[r - lo])
    return sp.csr_matrix(sp.vstack(parts, format="csr"), dtype=np.float64)


def iter_row_chunks(
    X: Any, rows: np.ndarray, chunk: int = _READ_CHUNK
) -> Iterator[tuple[slice, sp.csr_matrix]]:
    """``(slice into rows, CSR of those rows)`` over contiguous chunks of a (backed) matrix.

    A backed matrix is read one chunk ahead in a helper thread, so reading the file
    overlaps the caller's work on the previous chunk (the kernels release the GIL).
    """

    def read(start: int, stop: int, lo: int, hi: int) -> sp.csr_matrix:
        blk = sp.csr_matrix(X[start:stop])
        if hi - lo != stop - start:  # some rows of the chunk are not wanted
            blk = blk[rows[lo:hi] - start]
        return blk

    n = X.shape[0]
    spans = []
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        lo, hi = (int(v) for v in np.searchsorted(rows, [start, stop]))
        if lo < hi:
            spans.append((start, stop, lo, hi))
    if isinstance(X, np.ndarray) or sp.issparse(X):
        for span in spans:
            yield slice(span[2], span[3]), read(*span)
        return
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    with ThreadPoolExecutor(1) as pool:
        ahead = pool.submit(read, *spans[0]) if spans else None
        for i, span in enumerate(spans):
            assert ahead is not None
            blk = ahead.result()
            ahead = pool.submit(read, *spans[i + 1]) if i + 1 < len(spans) else None
            yield slice(span[2], span[3]), blk


class _Scratch(threading.local):
    """Reusable buffers of the projection sweep, one set per thread.

    Grown on demand, never shrunk: a fresh allocation per chunk costs page faults of the order
    of the sweep.
    """

    def __init__(self) -> None:
        self.size = 0
        self.bufs: tuple[np.ndarray, ...] = ()

    def get(self, nnz: int) -> tuple[np.ndarray, ...]:
        """Buffers with room for ``nnz`` entries: int32, float32, int32, float32."""
        if nnz > self.size or not self.bufs:
            self.size = max(nnz, int(self.size * 1.25))
            self.bufs = tuple(
                np.empty(self.size, dtype=t) for t in (np.int32, np.float32, np.int32, np.float32)
            )
        return self.bufs


_SCRATCH = _Scratch()


def _project_select(  # noqa: PLR0913, PLR0917
    X: sp.csr_matrix,
    library: np.ndarray | None,
    W: np.ndarray,
    gene_row: np.ndarray,
    keep: np.ndarray,
    n_keep: int,
    keep_sums: np.ndarray,
    copy: bool = True,
) -> tuple[np.ndarray, sp.csr_matrix, np.ndarray, int]:
    """One sweep over CSR counts: PCA scores, the ``keep`` columns, library sizes.

    A numba kernel gathers the informative entries (scaled to CP10k) and the kept counts,
    sums rows when ``library`` is ``None`` and counts negative or non-finite entries;
    ``log1p`` and the product with the axes ``W`` are vectorised (numpy, one sparse × dense
    product). ``keep_sums`` gains the CP10k sum of each kept column. With ``copy=False`` the
    kept columns are views of the calling thread's scratch buffers, overwritten by its next
    sweep (for a caller that copies them at once).
    """
    from ._graph_kernels import gather_select  # noqa: PLC0415

    X = sp.csr_matrix(X)
    n = X.shape[0]
    zidx, zval, sidx, sval = _SCRATCH.get(X.nnz)
    sums = np.zeros(n_keep + 1)
    given = library is not None
    lib = np.array(library, dtype=np.float64) if given else np.zeros(n)
    scale = np.zeros(n)
    zptr, sptr, bad = gather_select(
        X.indptr, X.indices, X.data, scale, gene_row, keep, sums, zidx, zval, sidx, sval, lib, given
    )
    keep_sums += sums[1:]
    nz, ns = int(zptr[-1]), int(sptr[-1])
    # the product reads the scratch buffers in place: the constructor would check and copy
    # them (a view of a larger buffer is "pruned"), 1.3 s per million cells
    Z = sp.csr_matrix((n, W.shape[0]), dtype=np.float32)
    Z.data = np.log1p(zval[:nz])
    Z.indices = zidx[:nz]
    Z.indptr = zptr.astype(np.int32) if nz < 2**31 else zptr
    if Z.indptr.dtype != Z.indices.dtype:
        Z.indices = Z.indices.astype(Z.indptr.dtype)
    Y = np.asarray(Z @ W, dtype=np.float32)
    if copy:
        sel = sp.csr_matrix((sval[:ns].copy(), sidx[:ns].copy(), sptr), shape=(n, n_keep))
    else:  # views of this thread's scratch, valid until its next sweep
        sel = sp.csr_matrix((n, n_keep), dtype=np.float32)
        sel.data, sel.indices = sval[:ns], sidx[:ns]
        sel.indptr = sptr.astype(np.int32) if ns < 2**31 else sptr
        if sel.indptr.dtype != sel.indices.dtype:
            sel.indices = sel.indices.astype(sel.indptr.dtype)
    return Y, sel, lib, int(bad)


@dataclass(frozen=True)
class Embedding:
    """A PCA of log-normalised informative genes, fitted once, applied to any cells.

    Attributes
    ----------
    genes
        Column indices of the informative genes.
    mean
        Mean log-normalised expression of those genes (centring).
    components
        ``(n_pcs, len(genes))`` principal axes.
    """

    genes: np.ndarray
    mean: np.ndarray
    components: np.ndarray

    def transform(self, counts: sp.csr_matrix, library: np.ndarray) -> np.ndarray:
        """Cells × n_pcs coordinates (float32) of ``counts`` (cells × all genes)."""
        Y, _ = self.transform_select(counts, library, np.zeros(0, dtype=np.int64))
        return Y

    def transform_select(
        self,
        counts: sp.csr_matrix,
        library: np.ndarray,
        columns: np.ndarray,
        column_sums: np.ndarray | None = None,
    ) -> tuple[np.ndarray, sp.csr_matrix]:
        """Coordinates of ``counts`` and its ``columns`` (float32 CSR), in one sweep.

        ``log1p(count / library * 1e4)`` of the informative genes, centred, times the axes.
        When ``column_sums`` (float64, one per column) is given, ``count / library * 1e4``
        of each of ``columns`` summed over the cells is added to it (cells with library 0
        add 0).
        """
        Y, sel, _, _ = self.sweep(counts, library, columns, column_sums)
        sel.sort_indices()
        return Y, sel

    def sweep(
        self,
        counts: sp.csr_matrix,
        library: np.ndarray | None,
        columns: np.ndarray,
        column_sums: np.ndarray | None = None,
        copy: bool = True,
    ) -> tuple[np.ndarray, sp.csr_matrix, np.ndarray, int]:
        """Run :meth:`transform_select` and also return library sizes and bad counts.

        The library sizes are the row sums when ``library`` is ``None``; the bad counts are the
        number of negative or non-finite counts.

        The selected columns come in input order within each row, not sorted (the pooling
        kernel does not need them sorted; sorting cost as much as the product with the
        axes). ``copy=False``: they are views of this thread's scratch buffers, valid until
        its next sweep.
        """
        n_genes = counts.shape[1]
        gene_row = np.full(n_genes, -1, dtype=np.int64)
        gene_row[self.genes] = np.arange(self.genes.size)
        keep = np.full(n_genes, -1, dtype=np.int64)
        keep[np.asarray(columns, dtype=np.int64)] = np.arange(len(columns))
        W = np.ascontiguousarray(self.components.T, dtype=np.float32)
        sums = np.zeros(len(columns)) if column_sums is None else column_sums
        Y, sel, lib, bad = _project_select(
            counts, library, W, gene_row, keep, len(columns), sums, copy
        )
        Y -= (self.mean @ self.components.T).astype(np.float32)[None, :]
        return Y, sel, lib, bad


def spread_windows(n: int, max_cells: int) -> np.ndarray:
    """Return positions of at most ``max_cells`` of ``n`` items.

    All of them, or 20 evenly spaced contiguous windows (a backed file is then read in 20 short
    pieces).
    """
    if n <= max_cells:
        return np.arange(n)
    w = max_cells // 20
    starts = np.linspace(0, n - w, 20).astype(np.int64)
    return np.unique(np.concatenate([np.arange(s, s + w) for s in starts]))


def fit_embedding(  # noqa: PLR0913
    X: Any,
    library: np.ndarray | None = None,
    *,
    rows: np.ndarray | None = None,
    n_top_genes: int = DEFAULT_N_TOP_GENES,
    n_pcs: int = 30,
    max_cells: int = DEFAULT_MAX_PCA_CELLS,
    random_state: int = 0,
) -> Embedding:
    """Fit the shared PCA on at most ``max_cells`` cells spread over ``rows``.

    The cells are 20 evenly spaced contiguous windows of ``rows`` (all of them when there
    are few), so a backed file is read in 20 short pieces and, when its cells are stored
    patient by patient, every patient contributes.

    Parameters
    ----------
    X
        Cells × genes raw counts, in memory or backed.
    library
        Library size of each of ``rows`` (default: row sums of the fitted cells).
    rows
        Sorted row positions to use (default all).
    n_top_genes
        Informative genes kept: highest variance of ``log1p(CP10k)`` over the fitted cells.
    n_pcs
        Principal components (capped at cells − 1 and genes − 1).
    max_cells
        Most cells the PCA is fitted on.
    random_state
        Seed of the randomised SVD.

    Returns
    -------
    The :class:`Embedding`.
    """
    rows = np.arange(X.shape[0]) if rows is None else np.asarray(rows)
    pick = spread_windows(len(rows), max_cells)
    counts = _read_rows(X, rows[pick])
    lib = (
        np.asarray(counts.sum(axis=1), dtype=np.float64).ravel()
        if library is None
        else np.asarray(library, dtype=np.float64)[pick]
    )
    z = _log_norm(counts, lib)
    mean = np.asarray(z.mean(axis=0)).ravel()
    var = np.asarray(z.multiply(z).mean(axis=0)).ravel() - mean**2
    k = int(min(n_top_genes, np.count_nonzero(var > 0) or 1))
    genes = np.sort(np.argsort(-var, kind="stable")[:k])
    zs = sp.csr_matrix(z[:, genes])
    m, g = zs.shape
    n_comps = max(1, min(n_pcs, m - 1, g - 1))
    mu = mean[genes]
    if m < 2 or g < 2:  # noqa: PLR2004
        return Embedding(genes, mu, np.zeros((1, g)))
    # randomised SVD of the implicitly centred matrix (Halko et al. 2011; 4 power iterations),
    # on one BLAS thread: deterministic, and threads only spin on a shared 2-core machine
    from threadpoolctl import threadpool_limits  # noqa: PLC0415

    with threadpool_limits(1):
        return Embedding(genes, mu, _randomised_axes(zs, mu, n_comps, random_state))


def _randomised_axes(zs: sp.csr_matrix, mu: np.ndarray, n_comps: int, seed: int) -> np.ndarray:
    """Top ``n_comps`` principal axes of ``zs`` centred on ``mu`` (randomised SVD)."""
    m, g = zs.shape
    rng = np.random.default_rng(seed)
    ones = np.ones(m)
    width = min(g, n_comps + 10)

    def times(V: np.ndarray) -> np.ndarray:  # (Z - 1 mu^T) V
        return zs @ V - np.outer(ones, mu @ V)

    def times_t(U: np.ndarray) -> np.ndarray:  # (Z - 1 mu^T)^T U
        return zs.T @ U - np.outer(mu, ones @ U)

    Q = np.linalg.qr(times(rng.standard_normal((g, width))))[0]
    for _ in range(4):
        Q = np.linalg.qr(times(np.linalg.qr(times_t(Q))[0]))[0]
    _, _, vt = np.linalg.svd(times_t(Q).T, full_matrices=False)
    comps = vt[:n_comps]
    signs = np.sign(comps[np.arange(n_comps), np.argmax(np.abs(comps), axis=1)])
    comps = comps * np.where(signs == 0, 1.0, signs)[:, None]  # deterministic sign
    return np.ascontiguousarray(comps)


def _leaves(Z: np.ndarray, leaf_size: int) -> list[np.ndarray]:
    """Median splits along the widest coordinate until every leaf has ≤ ``leaf_size`` rows."""
    out, stack = [], [np.arange(Z.shape[0])]
    while stack:
        idx = stack.pop()
        if idx.size <= leaf_size:
            out.append(idx)
            continue
        dim = int(np.argmax(Z[idx].var(axis=0)))
        half = idx.size // 2
        part = np.argpartition(Z[idx, dim], half)
        stack.extend((idx[part[:half]], idx[part[half:]]))
    return out


def approx_knn(
    Y: np.ndarray,
    k: int,
    *,
    leaf_size: int = _LEAF_SIZE,
    n_trees: int = _N_TREES,
    random_state: int = 0,
) -> np.ndarray:
    """Approximate k nearest neighbours (excluding self) by randomised partition trees.

    Each tree rotates the points at random and splits them at the median of their widest
    coordinate until leaves hold at most ``leaf_size`` points; within each leaf neighbours are
    exact (Euclidean). The best ``k`` over the trees' leaves are kept. Deterministic for a
    fixed ``random_state``; exact when ``len(Y) <= leaf_size``.

    Parameters
    ----------
    Y
        Points × dimensions.
    k
        Neighbours per point (at most ``len(Y) - 1``).
    leaf_size, n_trees, random_state
        Tree parameters.

    Returns
    -------
    ``(n, k)`` int64 neighbour indices, nearest first.
    """
    from ._graph_kernels import leaf_knn_update  # noqa: PLC0415

    Y = np.ascontiguousarray(Y, dtype=np.float32)
    n, d = Y.shape
    rng = np.random.default_rng(random_state)
    best_d = np.full((n, k), np.inf, dtype=np.float32)
    best_i = np.full((n, k), -1, dtype=np.int64)
    for t in range(n_trees if n > leaf_size else 1):
        rot = np.linalg.qr(rng.normal(size=(d, d)))[0].astype(np.float32) if t else None
        leaves = _leaves(Y if rot is None else Y @ rot, leaf_size)
        order = np.concatenate(leaves).astype(np.int64)
        ptr = np.concatenate([[0], np.cumsum([leaf.size for leaf in leaves])]).astype(np.int64)
        leaf_knn_update(Y, order, ptr, best_d, best_i)
    return best_i


def _knn_indices(Y: np.ndarray, k: int, random_state: int) -> np.ndarray:
    """Return ``(n, k)`` neighbour indices of points ``Y`` (never the point itself; -1 = none).

    Exact up to 20,000 points, partition trees above.
    """
    n = Y.shape[0]
    out = np.full((n, k), -1, dtype=np.int64)
    kk = min(k, n - 1)
    if kk < 1:
        return out
    if n <= _ONE_LEAF_MAX_CELLS:  # exact: one leaf of the numba kernel
        idx = approx_knn(Y, kk, leaf_size=n, random_state=random_state)
    elif n <= _EXACT_MAX_CELLS:
        from sklearn.neighbors import NearestNeighbors  # noqa: PLC0415

        nn = NearestNeighbors(n_neighbors=kk + 1).fit(Y)
        idx = nn.kneighbors(return_distance=False)[:, :kk]  # excludes each query point itself
    else:
        idx = approx_knn(Y, kk, random_state=random_state)
    out[:, :kk] = np.where(idx == np.arange(n)[:, None], -1, idx)  # never itself
    return out


def _knn_adjacency(Y: np.ndarray, k: int, random_state: int) -> sp.csr_matrix:
    """Binary directed kNN adjacency of points ``Y`` (exact up to 20,000 points)."""
    n = Y.shape[0]
    idx = _knn_indices(Y, min(k, max(n - 1, 0)), random_state)
    ok = idx >= 0
    r = np.repeat(np.arange(n), idx.shape[1])[ok.ravel()]
    adj = sp.csr_matrix(
        (np.ones(r.size, dtype=np.float32), (r, idx.ravel()[ok.ravel()])), shape=(n, n)
    )
    adj.sort_indices()
    return adj


def _knn_one_batch(
    counts: sp.csr_matrix | np.ndarray,
    library: np.ndarray,
    n_neighbors: int,
    n_pcs: int,
    random_state: int,
) -> sp.csr_matrix:
    """Binary directed kNN adjacency (no self loops) of one batch of cells."""
    import anndata as ad  # noqa: PLC0415
    import scanpy as sc  # noqa: PLC0415

    n = counts.shape[0]
    k = min(n_neighbors, n - 1)
    if k < 1:
        return sp.csr_matrix((n, n), dtype=np.float32)
    scale = np.divide(1e4, library, out=np.zeros_like(library), where=library > 0)
    if sp.issparse(counts):
        norm = sp.csr_matrix(sp.diags(scale) @ sp.csr_matrix(counts, dtype=np.float64))
        norm.data = np.log1p(norm.data)
    else:
        norm = np.log1p(np.asarray(counts, dtype=np.float64) * scale[:, None])
    tmp = ad.AnnData(norm)
    n_comps = max(1, min(n_pcs, n - 1, tmp.n_vars - 1))
    sc.pp.pca(tmp, n_comps=n_comps, random_state=random_state)
    if n <= _EXACT_MAX_CELLS:
        from sklearn.neighbors import NearestNeighbors  # noqa: PLC0415

        nn = NearestNeighbors(n_neighbors=k).fit(tmp.obsm["X_pca"])
        idx = nn.kneighbors(return_distance=False)  # without X: each point's k others
        adj = sp.csr_matrix(
            (np.ones(n * k, dtype=np.float32), idx.ravel(), np.arange(0, n * k + 1, k)),
            shape=(n, n),
        )
    else:
        sc.pp.neighbors(tmp, n_neighbors=k + 1, use_rep="X_pca", random_state=random_state)
        dist = sp.csr_matrix(tmp.obsp["distances"])
        adj = sp.csr_matrix(
            (np.ones(dist.nnz, dtype=np.float32), dist.indices, dist.indptr), shape=(n, n)
        )
    adj.setdiag(0)
    adj.eliminate_zeros()
    adj.sort_indices()
    return adj


def neighbor_graph(  # noqa: PLR0912, PLR0913
    adata: AnnData,
    *,
    n_neighbors: int = 5,
    batch_key: str | None = None,
    layer: str | None = None,
    n_pcs: int = 30,
    random_state: int = 0,
    pca: Literal["shared", "per_batch"] = "shared",
    n_top_genes: int = DEFAULT_N_TOP_GENES,
) -> sp.csr_matrix:
    """Binary k-nearest-neighbour graph in PCA space of log-normalised counts.

    Counts are scaled to 10,000 per cell (library = ``adata.obs['total_counts']`` if present,
    else row sums) and ``log1p``-transformed. With ``pca="shared"`` (default) one PCA on the
    ``n_top_genes`` most variable genes (:func:`fit_embedding`, fitted on at most 10,000 cells)
    projects all cells on ``n_pcs`` components; with ``pca="per_batch"`` each batch gets its
    own PCA over all genes (:func:`scanpy.pp.pca`). Cells are linked to their ``n_neighbors``
    nearest Euclidean neighbours *within their batch* (e.g. patient), so no cell pools counts
    across batches: exact (:class:`sklearn.neighbors.NearestNeighbors`) for batches of up to
    20,000 cells, approximate above (shared: :func:`approx_knn`; per_batch: pynndescent via
    :func:`scanpy.pp.neighbors`).

    Parameters
    ----------
    adata
        Cells × genes AnnData with raw counts in ``layer`` (or ``X``).
    n_neighbors
        Neighbours per cell, excluding the cell itself (fewer in batches with fewer cells).
    batch_key
        ``adata.obs`` column whose groups are processed separately.
    layer
        Layer with raw counts; ``None`` uses ``adata.X``.
    n_pcs
        Number of principal components (capped at cells − 1 and genes − 1).
    random_state
        Seed for PCA and the approximate neighbour search; the result is deterministic for a
        fixed seed.
    pca
        ``"shared"`` (one PCA on informative genes) or ``"per_batch"`` (a PCA per batch on
        all genes, the model before version 0.x; slower at scale).
    n_top_genes
        Informative genes of the shared PCA.

    Returns
    -------
    CSR matrix cells × cells with 1.0 at ``(i, j)`` when ``j`` is among the neighbours of ``i``
    (not symmetrised; no self loops), in the order of ``adata.obs_names``.

    Examples
    --------
    >>> import anndata as ad, numpy as np
    >>> rng = np.random.default_rng(0)
    >>> a = ad.AnnData(rng.poisson(1.0, (40, 12)).astype(np.float32))
    >>> g = neighbor_graph(a, n_neighbors=5, n_pcs=5)
    >>> g.shape, int(g.sum(axis=1).min())
    ((40, 40), 5)
    """
    if not (isinstance(n_neighbors, int | np.integer) and n_neighbors >= 1):
        msg = f"The 'n_neighbors' parameter must be an int >= 1. Got {n_neighbors!r}."
        raise InputError(msg)
    if layer is None:
        X = adata.X
    elif layer in adata.layers:
        X = adata.layers[layer]
    else:
        msg = f"Layer {layer!r} is not in adata.layers ({list(adata.layers)}); pass one of those."
        raise InputError(msg)
    X = sp.csr_matrix(X) if sp.issparse(X) else np.asarray(X)
    if "total_counts" in adata.obs:
        library = adata.obs["total_counts"].to_numpy(dtype=np.float64)
    else:
        library = np.asarray(X.sum(axis=1), dtype=np.float64).ravel()
    n = adata.n_obs
    if batch_key is None:
        groups = [np.arange(n)]
    else:
        if batch_key not in adata.obs:
            msg = (
                f"batch_key {batch_key!r} is not a column of adata.obs; pass one of "
                f"{list(adata.obs.columns)} or batch_key=None."
            )
            raise InputError(msg)
        codes, _ = pd.factorize(adata.obs[batch_key], use_na_sentinel=False)
        groups = [np.flatnonzero(codes == c) for c in range(codes.max() + 1)]
    if pca not in ("shared", "per_batch"):
        msg = f"The 'pca' parameter must be 'shared' or 'per_batch'. Got {pca!r}."
        raise InputError(msg)
    rows, cols = [], []
    if pca == "shared":
        Xc = sp.csr_matrix(X, dtype=np.float64)
        emb = fit_embedding(
            Xc, library, n_top_genes=n_top_genes, n_pcs=int(n_pcs), random_state=random_state
        )
        Y = emb.transform(Xc, library)
        for idx in groups:
            coo = _knn_adjacency(Y[idx], int(n_neighbors), random_state).tocoo()
            rows.append(idx[coo.row])
            cols.append(idx[coo.col])
        groups = []
    for idx in groups:
        sub = _knn_one_batch(X[idx], library[idx], int(n_neighbors), int(n_pcs), random_state)
        coo = sub.tocoo()
        rows.append(idx[coo.row])
        cols.append(idx[coo.col])
    r = np.concatenate(rows) if rows else np.zeros(0, dtype=np.intp)
    c = np.concatenate(cols) if cols else np.zeros(0, dtype=np.intp)
    out = sp.csr_matrix((np.ones(r.size, dtype=np.float32), (r, c)), shape=(n, n))
    out.sort_indices()
    return out
