"""k-nearest-neighbour graph of cells for dropout-aware positivity calls."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import scipy.sparse as sp

from antigenscout._errors import InputError

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["neighbor_graph"]

#: Batches up to this size use exact neighbours (scikit-learn); larger ones pynndescent (scanpy).
_EXACT_MAX_CELLS = 20_000


def _knn_one_batch(
    counts: sp.csr_matrix | np.ndarray,
    library: np.ndarray,
    n_neighbors: int,
    n_pcs: int,
    random_state: int,
) -> sp.csr_matrix:
    """Binary directed kNN adjacency (no self loops) of one batch of cells."""
    import anndata as ad
    import scanpy as sc

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
        from sklearn.neighbors import NearestNeighbors

        nn = NearestNeighbors(n_neighbors=k + 1).fit(tmp.obsm["X_pca"])
        idx = nn.kneighbors(return_distance=False)[:, :k]  # excludes each query point itself
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


def neighbor_graph(
    adata: AnnData,
    *,
    n_neighbors: int = 5,
    batch_key: str | None = None,
    layer: str | None = None,
    n_pcs: int = 30,
    random_state: int = 0,
) -> sp.csr_matrix:
    """Binary k-nearest-neighbour graph in PCA space of log-normalised counts.

    Counts are scaled to 10,000 per cell (library = ``adata.obs['total_counts']`` if present,
    else row sums), ``log1p``-transformed, projected on ``n_pcs`` principal components
    (:func:`scanpy.pp.pca`) and linked to their ``n_neighbors`` nearest Euclidean neighbours:
    exact (:class:`sklearn.neighbors.NearestNeighbors`) for batches of up to 20,000 cells,
    approximate above (:func:`scanpy.pp.neighbors`, pynndescent). With
    ``batch_key`` each batch (e.g. patient) gets its own PCA and neighbours, so no cell pools
    counts across batches.

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
    rows, cols = [], []
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
