"""Shared-PCA embedding, approximate neighbours and the streamed knn path, against independent
computations (numpy/scikit-learn) on real cells."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pytest
import scipy.sparse as sp

from antigenscout import datasets
from antigenscout._errors import InputError
from antigenscout.pp._graph import approx_knn, fit_embedding, neighbor_graph
from antigenscout.pp._positivity import positive_blocks
from antigenscout.pp._streamed import knn_blocks_streamed


@pytest.fixture(scope="module")
def cells() -> ad.AnnData:
    """The packaged real van Galen subset (2,036 cells, 4 patients)."""
    return datasets.demo()


def test_fit_embedding_matches_numpy(cells: ad.AnnData) -> None:
    X = sp.csr_matrix(cells.X, dtype=np.float64)
    lib = np.asarray(X.sum(axis=1)).ravel()
    emb = fit_embedding(X, lib, n_top_genes=300, n_pcs=10)
    dense = np.log1p(X.toarray() / lib[:, None] * 1e4)
    var = dense.var(axis=0)
    want = np.sort(np.argsort(-var, kind="stable")[:300])
    np.testing.assert_array_equal(emb.genes, want)
    sub = dense[:, want]
    np.testing.assert_allclose(emb.mean, sub.mean(axis=0), rtol=1e-9, atol=1e-12)
    comps = emb.components
    np.testing.assert_allclose(comps @ comps.T, np.eye(10), atol=1e-6)
    # the leading axis is the top eigenvector of the covariance
    cov = np.cov(sub, rowvar=False)
    _, v = np.linalg.eigh(cov)
    assert abs(float(v[:, -1] @ comps[0])) == pytest.approx(1.0, abs=1e-4)
    Y = emb.transform(X, lib)
    np.testing.assert_allclose(Y, (sub - emb.mean) @ comps.T, rtol=1e-4, atol=1e-4)


def test_approx_knn_recall_against_exact(cells: ad.AnnData) -> None:
    from sklearn.neighbors import NearestNeighbors

    X = sp.csr_matrix(cells.X, dtype=np.float64)
    lib = np.asarray(X.sum(axis=1)).ravel()
    Y = fit_embedding(X, lib).transform(X, lib)
    exact = NearestNeighbors(n_neighbors=5).fit(Y).kneighbors(return_distance=False)
    small = approx_knn(Y, 5, leaf_size=4096)  # one leaf: exact
    np.testing.assert_array_equal(np.sort(small, axis=1), np.sort(exact, axis=1))
    approx = approx_knn(Y, 5, leaf_size=256, n_trees=3)
    recall = np.mean([len(set(a) & set(b)) / 5 for a, b in zip(approx, exact, strict=True)])
    assert recall >= 0.8, recall
    assert (approx != np.arange(len(Y))[:, None]).all()  # never itself
    np.testing.assert_array_equal(approx, approx_knn(Y, 5, leaf_size=256, n_trees=3))


def test_neighbor_graph_modes(cells: ad.AnnData) -> None:
    shared = neighbor_graph(cells, batch_key="patient")
    per = neighbor_graph(cells, batch_key="patient", pca="per_batch")
    codes = cells.obs["patient"].to_numpy()
    for g in (shared, per):
        r, c = g.nonzero()
        assert (codes[r] == codes[c]).all()
        np.testing.assert_array_equal(np.asarray(g.sum(axis=1)).ravel(), 5)
    with pytest.raises(InputError, match="'shared' or 'per_batch'"):
        neighbor_graph(cells, pca="nope")  # type: ignore[arg-type]


@pytest.mark.parametrize("backed", [False, True])
def test_streamed_knn_equals_positive_blocks(
    cells: ad.AnnData, tmp_path: Path, backed: bool
) -> None:
    """knn_blocks_streamed == positive_blocks with the same embedding's per-patient exact kNN."""
    from sklearn.neighbors import NearestNeighbors

    X = sp.csr_matrix(cells.X, dtype=np.float64)
    rows = np.flatnonzero(cells.obs["malignant"].to_numpy() == "malignant")
    batches = cells.obs["patient"].astype(str).to_numpy()[rows]
    genes = np.arange(0, cells.n_vars, 7)
    if backed:
        path = tmp_path / "c.h5ad"
        cells.write_h5ad(path)
        src = ad.read_h5ad(path, backed="r").X
    else:
        src = X
    got = sp.vstack([b for _, b in knn_blocks_streamed(src, rows, batches, genes, block_size=300)])
    Xm = X[rows]
    lib = np.asarray(Xm.sum(axis=1)).ravel()
    Y = fit_embedding(Xm, lib).transform(Xm, lib)
    r, c = [], []
    for b in np.unique(batches):
        idx = np.flatnonzero(batches == b)
        nn = NearestNeighbors(n_neighbors=6).fit(Y[idx]).kneighbors(return_distance=False)
        r.append(np.repeat(idx, 5))
        c.append(idx[nn[:, :5]].ravel())
    G = sp.csr_matrix(
        (np.ones(sum(map(len, r))), (np.concatenate(r), np.concatenate(c))), shape=(len(rows),) * 2
    )
    want = sp.vstack([b for _, b in positive_blocks(Xm, lib, graph=G, genes=genes)])
    assert (got != want).nnz == 0
    assert got.nnz > 0


def test_sweep_of_an_empty_chunk_on_a_fresh_thread() -> None:
    """A thread whose first chunk holds no entries gets empty projections, not an error."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(0)
    X = sp.csr_matrix(rng.poisson(1.0, size=(60, 40)).astype(np.float32))
    emb = fit_embedding(X, n_top_genes=20, n_pcs=3)
    empty = sp.csr_matrix((5, 40), dtype=np.float32)
    with ThreadPoolExecutor(1) as pool:
        Y, sel = pool.submit(emb.transform_select, empty, np.ones(5), np.arange(3)).result()
    assert Y.shape == (5, 3)
    assert sel.nnz == 0


@pytest.mark.parametrize("n", [2, 5, 6])
def test_per_batch_graph_of_a_batch_no_larger_than_k(n: int) -> None:
    """A batch of at most n_neighbors cells links each cell to every other (it used to fail
    when the batch held exactly n_neighbors cells)."""
    rng = np.random.default_rng(1)
    a = ad.AnnData(sp.csr_matrix(rng.poisson(3.0, (n, 30)).astype(np.float32)))
    g = neighbor_graph(a, n_neighbors=5, pca="per_batch")
    k = min(5, n - 1)
    assert (np.asarray(g.sum(axis=1)).ravel() == k).all()
    assert g.diagonal().sum() == 0
