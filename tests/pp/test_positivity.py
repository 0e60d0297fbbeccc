"""Positivity methods vs. brute-force numpy, streaming invariants, input errors, real data."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from scipy import stats

from antigenscout._errors import InputError
from antigenscout.pp._graph import neighbor_graph
from antigenscout.pp._kernels import count_rows_by_group
from antigenscout.pp._positivity import (
    DEFAULT_PRIOR_SHAPE,
    _RowStore,
    _tail_probability,
    knn_blocks_from_neighbours,
    knn_counts_from_neighbours,
    methods,
    positive_blocks,
    positivity,
)

N_CELLS, N_GENES, K = 157, 23, 4


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, sp.csr_matrix]:
    rng = np.random.default_rng(42)
    lib = rng.integers(200, 5000, N_CELLS).astype(np.float64)
    lib[[3, 77]] = 0  # zero-library cells
    rate = rng.gamma(0.5, 4e-3, N_GENES)
    X = rng.poisson(lib[:, None] * rate[None, :]).astype(np.float64)
    lib = np.maximum(lib, X.sum(axis=1))  # library ≥ counts in X (other genes unseen)
    lib[[3, 77]] = 0
    X[[3, 77]] = 0
    nbr = np.array(
        [rng.choice(np.delete(np.arange(N_CELLS), i), K, replace=False) for i in range(N_CELLS)]
    )
    graph = sp.csr_matrix(
        (np.ones(N_CELLS * K), nbr.ravel(), np.arange(0, N_CELLS * K + 1, K)),
        shape=(N_CELLS, N_CELLS),
    )
    return X, lib, graph


def _collect(it, n_cells: int) -> np.ndarray:
    blocks = list(it)
    covered = np.zeros(n_cells, dtype=int)
    for rows, b in blocks:
        assert isinstance(b, sp.csr_matrix)
        assert b.shape[0] == rows.stop - rows.start
        covered[rows] += 1
    assert (covered == 1).all()
    return sp.vstack([b for _, b in blocks]).toarray()


def brute_knn(X, lib, adj, threshold, a0=DEFAULT_PRIOR_SHAPE):
    """Plain-numpy reference: weights with self = row max, Kish-effective pooled sums."""
    A = np.asarray(adj.toarray(), dtype=float)
    np.fill_diagonal(A, 0)
    rowmax = A.max(axis=1)
    rowmax[rowmax == 0] = 1
    A[np.diag_indices_from(A)] = rowmax
    W = A / A.sum(axis=1, keepdims=True)
    n_eff = 1 / (W**2).sum(axis=1)
    y = n_eff[:, None] * (W @ X)
    s = n_eff * (W @ lib)
    lam0 = threshold / 1e4
    shape = a0 + y
    rate = a0 / lam0 + s[:, None]
    p = stats.gamma.sf(lam0, shape, scale=1 / rate)
    p[lib == 0] = 0
    return p


@pytest.mark.parametrize("fmt", ["dense", "csr", "csc"])
@pytest.mark.parametrize("block_size", [1, 16, 1000])
def test_detected_and_cp10k_match_numpy(data, fmt, block_size):
    X, lib, _ = data
    Xin = {"dense": X, "csr": sp.csr_matrix(X), "csc": sp.csc_matrix(X)}[fmt]
    det = _collect(positive_blocks(Xin, lib, method="detected", block_size=block_size), N_CELLS)
    assert det.dtype == bool
    np.testing.assert_array_equal(det, (X > 0) & (lib[:, None] > 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        cp = X / lib[:, None] * 1e4
    for t in (1.0, 7.5, 40.0):
        got = _collect(
            positive_blocks(Xin, lib, method="cp10k", threshold=t, block_size=block_size), N_CELLS
        )
        np.testing.assert_array_equal(got, (lib[:, None] > 0) & (cp >= t))


@pytest.mark.parametrize("threshold", [0.5, 5.0, 30.0])
@pytest.mark.parametrize("weighted", [False, True], ids=["binary", "weighted"])
def test_knn_matches_bruteforce(data, threshold, weighted):
    X, lib, graph = data
    if weighted:
        graph = graph.copy()
        graph.data = np.random.default_rng(1).uniform(0.1, 1.0, graph.nnz)
    ref = brute_knn(X, lib, graph, threshold)
    prob = _collect(
        positive_blocks(
            sp.csr_matrix(X),
            lib,
            graph=graph,
            threshold=threshold,
            block_size=10,
            return_probability=True,
        ),
        N_CELLS,
    )
    calls = _collect(
        positive_blocks(sp.csr_matrix(X), lib, graph=graph, threshold=threshold, block_size=10),
        N_CELLS,
    )
    # entries with any pooled count are stored exactly (float32); the rest are implicit 0
    pooled = (graph + sp.eye(N_CELLS)) @ X > 0
    stored = pooled & (lib[:, None] > 0)
    np.testing.assert_allclose(prob[stored], ref[stored], rtol=2e-6, atol=1e-7)
    assert (prob[~stored] == 0).all()
    assert (ref[~stored] < 0.5).all()  # prior-only tail never reaches a positive call
    np.testing.assert_array_equal(calls, ref >= 0.5)
    assert calls.any()
    assert not calls.all()


@pytest.mark.parametrize("whole", [True, False], ids=["kernel", "general"])
@pytest.mark.parametrize("threads", [1, 2])
def test_knn_counts_equal_bruteforce_calls_per_group(data, whole, threads):
    """Counted calls per group == brute-force calls (numpy/scipy Gamma) summed per group,
    and == the listed calls of knn_blocks_from_neighbours, on the kernel path (whole counts)
    and the general path (fractional counts)."""
    X, lib, graph = data
    X = X if whole else X * 1.5  # not whole: the general path
    nbr = graph.indices.reshape(N_CELLS, K).astype(np.int64)
    nbr[5, 2:] = -1  # a cell with fewer neighbours
    kept = nbr[nbr >= 0]
    G = sp.csr_matrix(
        (np.ones(kept.size), (np.repeat(np.arange(N_CELLS), K)[nbr.ravel() >= 0], kept)),
        shape=(N_CELLS, N_CELLS),
    )
    want_calls = brute_knn(X, lib, G, 5.0) >= 0.5
    codes = np.random.default_rng(7).integers(0, 3, N_CELLS)
    want = np.stack([want_calls[codes == g].sum(axis=0) for g in range(3)])
    kw = {"threshold": 5.0, "prior_shape": DEFAULT_PRIOR_SHAPE, "block_size": 10}
    Xs = sp.csr_matrix(X, dtype=np.float32)
    got = knn_counts_from_neighbours(Xs, lib, nbr, codes, 3, threads=threads, **kw)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)
    listed = _collect(knn_blocks_from_neighbours(Xs, lib, nbr, threads=threads, **kw), N_CELLS)
    np.testing.assert_array_equal(listed, want_calls)
    assert want.sum() > 0


def test_knn_counts_refuse_bad_codes(data):
    """Group codes index the counts unchecked in numba: out-of-range codes are refused."""
    X, lib, graph = data
    nbr = graph.indices.reshape(N_CELLS, K).astype(np.int64)
    Xs = sp.csr_matrix(X, dtype=np.float32)
    kw = {"threshold": 5.0, "prior_shape": DEFAULT_PRIOR_SHAPE}
    for codes in (np.full(N_CELLS, 2), np.full(N_CELLS, -1), np.zeros(N_CELLS - 1, dtype=int)):
        with pytest.raises(InputError, match="codes"):
            knn_counts_from_neighbours(Xs, lib, nbr, codes, 2, **kw)


def test_count_rows_by_group_vs_numpy():
    """Non-zero entries per (group, column); explicit zeros are not counted."""
    rng = np.random.default_rng(11)
    M = sp.random(40, 9, density=0.3, format="csr", random_state=3)
    M.data[::4] = 0  # explicit zeros stay stored
    codes = rng.integers(0, 4, 40)
    counts = np.zeros((4, 9), dtype=np.int64)
    count_rows_by_group(M.indptr, M.indices, M.data, codes, counts)
    dense = M.toarray() != 0
    np.testing.assert_array_equal(counts, np.stack([dense[codes == g].sum(0) for g in range(4)]))


def test_row_store_equals_vstack_when_it_must_grow():
    """Parts appended in order (sparse first, then dense: the buffers are reallocated) give
    exactly scipy's vstack; parts that are views of a reused buffer are copied at once."""
    rng = np.random.default_rng(5)
    parts = [
        sp.random(m, 12, density=d, format="csr", random_state=rng, dtype=np.float32)
        for m, d in [(7, 0.05), (3, 0.0), (11, 0.5), (5, 0.9), (9, 0.2)]
    ]
    store = _RowStore(sum(p.shape[0] for p in parts))
    scratch = np.empty(200, dtype=np.float32)
    for p in parts:
        scratch[: p.nnz] = p.data
        view = sp.csr_matrix(p.shape, dtype=np.float32)  # as the sweep builds it: no copy
        view.data, view.indices, view.indptr = scratch[: p.nnz], p.indices, p.indptr
        assert p.nnz == 0 or np.shares_memory(view.data, scratch)
        store.append(view)
        scratch[:] = -1  # the next sweep overwrites the scratch
    got = store.matrix(12)
    want = sp.vstack(parts, format="csr")
    np.testing.assert_array_equal(got.indptr, want.indptr)
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_array_equal(got.data, want.data)


def test_tail_probability_vs_scipy_gamma():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 50, 200).astype(float) + rng.uniform(0, 1, 200)
    s = rng.uniform(0, 1e5, 200)
    for lam0 in (1e-5, 1e-4, 3e-3):
        got = _tail_probability(y, s, lam0, 0.5)
        ref = stats.gamma.sf(lam0, 0.5 + y, scale=1 / (0.5 / lam0 + s))
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-300)


def test_knn_hand_worked():
    # 2 cells linked to each other: pooled y = 1 + 2 = 3 and s = 1000 + 3000 = 4000 for both.
    X = np.array([[1.0], [2.0]])
    lib = np.array([1000.0, 3000.0])
    g = sp.csr_matrix(np.array([[0.0, 1.0], [1.0, 0.0]]))
    ((_, b),) = positive_blocks(X, lib, graph=g, threshold=5.0, return_probability=True)
    # posterior Gamma(0.5 + 3, rate 0.5/5e-4 + 4000 = 5000); P(λ ≥ 5e-4) = Q(3.5, 2.5)
    expected = stats.gamma.sf(2.5, 3.5)
    np.testing.assert_allclose(b.toarray().ravel(), [expected, expected], rtol=1e-6)
    assert expected > 0.5  # so both cells are positive although cell 1 is at 10 CP10k alone


@pytest.mark.parametrize("method", ["detected", "cp10k", "knn"])
def test_dense_sparse_identical_and_genes_subset(data, method):
    X, lib, graph = data
    genes = np.array([0, 5, 22, 7])
    kw = {"method": method, "threshold": 2.0, "graph": graph}
    dense = _collect(positive_blocks(X, lib, **kw), N_CELLS)
    csr = _collect(positive_blocks(sp.csr_matrix(X), lib, **kw), N_CELLS)
    np.testing.assert_array_equal(dense, csr)
    sub = _collect(
        positive_blocks(sp.csr_matrix(X), lib, genes=genes, block_size=33, **kw), N_CELLS
    )
    np.testing.assert_array_equal(sub, dense[:, genes])
    assert not dense[[3, 77]].any()  # zero-library cells never positive


def test_zero_library_no_warning(data):
    X, lib, graph = data
    with np.errstate(all="raise"):
        for m in ("detected", "cp10k", "knn"):
            _collect(positive_blocks(X, lib, method=m, graph=graph), N_CELLS)


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (
            lambda X, lib, g: (np.where(np.arange(X.size).reshape(X.shape) < 3, -1.0, X), lib, g),
            "3 negative",
        ),
        (
            lambda X, lib, g: (np.where(np.arange(X.size).reshape(X.shape) < 2, np.nan, X), lib, g),
            "2 NaN",
        ),
        (lambda X, lib, g: (X, lib[:-1], g), "library_size has"),
        (lambda X, lib, g: (X, -lib, g), "negative or non-finite"),
        (lambda X, lib, g: (X, lib * 0 + 1, g), "more counts in X than"),
        (lambda X, lib, g: (X, lib, None), "needs a cells × cells"),
        (lambda X, lib, g: (X, lib, g[:10]), "must be"),
    ],
)
def test_bad_input_raises(data, mutate, match):
    X, lib, graph = data
    Xb, libb, gb = mutate(X.copy(), lib.copy(), graph)
    with pytest.raises(InputError, match=match):
        positive_blocks(sp.csr_matrix(Xb) if match == "3 negative" else Xb, libb, graph=gb)


@pytest.mark.parametrize(
    "kw",
    [
        {"method": "xor"},
        {"threshold": 0.0, "method": "cp10k"},
        {"threshold": np.nan},
        {"genes": np.array([0, 99])},
        {"block_size": 0},
    ],
)
def test_bad_params_raise(data, kw):
    X, lib, graph = data
    with pytest.raises(InputError):
        positive_blocks(X, lib, graph=graph, **kw)


def test_methods_registry():
    df = methods()
    assert isinstance(df, pd.DataFrame)
    assert df["name"].tolist() == ["detected", "cp10k", "knn"]
    assert (df["description"].str.len() > 10).all()
    assert (df["reference"].str.len() > 5).all()


def test_positivity_anndata(data):
    X, lib, graph = data
    a = ad.AnnData(sp.csr_matrix(X), layers={"counts": sp.csr_matrix(X)})
    a.obs["total_counts"] = lib
    a.obsp["connectivities"] = graph
    out = positivity(a, layer="counts", obsp="connectivities", threshold=2.0, copy=True)
    assert "positive" not in a.layers
    res = out.layers["positive"]
    assert isinstance(res, sp.csr_matrix)
    assert res.dtype == bool
    ref = _collect(positive_blocks(X, lib, graph=graph, threshold=2.0), N_CELLS)
    np.testing.assert_array_equal(res.toarray(), ref)
    assert out.uns["positive"]["params"]["method"] == "knn"
    assert positivity(a, method="cp10k", threshold=3.0, key_added="pos_cp") is None
    with np.errstate(divide="ignore", invalid="ignore"):
        expect = (X / lib[:, None] * 1e4 >= 3.0) & (lib[:, None] > 0)
    np.testing.assert_array_equal(a.layers["pos_cp"].toarray(), expect)
    with pytest.raises(InputError, match=r"not in adata\.layers"):
        positivity(a, layer="raw")


def test_neighbor_graph_batches_and_determinism():
    rng = np.random.default_rng(0)
    a = ad.AnnData(sp.csr_matrix(rng.poisson(1.0, (90, 30)).astype(np.float32)))
    a.obs["batch"] = np.repeat(["a", "b", "c"], 30)
    g1 = neighbor_graph(a, n_neighbors=6, batch_key="batch", n_pcs=10)
    g2 = neighbor_graph(a, n_neighbors=6, batch_key="batch", n_pcs=10)
    assert (g1 != g2).nnz == 0
    np.testing.assert_array_equal(np.asarray(g1.sum(axis=1)).ravel(), 6)
    assert g1.diagonal().sum() == 0
    codes = a.obs["batch"].to_numpy()
    r, c = g1.nonzero()
    assert (codes[r] == codes[c]).all()  # no pooling across batches


@pytest.mark.slow
def test_knn_beats_detected_on_citeseq(shared_data):
    """Median balanced accuracy vs protein (2-component GMM calls) over well-separated markers."""
    from sklearn.mixture import GaussianMixture

    path = (
        shared_data
        / "singlecell"
        / "triana2021_healthy_citeseq"
        / "healthy_bm_blood_citeseq_250cells.h5ad"
    )
    a = ad.read_h5ad(path)
    X = sp.csr_matrix(a.layers["counts"])
    lib = a.obs["nCount_RNA"].to_numpy(dtype=float)
    pairs = {
        "CD19-AB": "CD19",
        "CD33-AB": "CD33",
        "CD123-AB": "IL3RA",
        "CD14-AB": "CD14",
        "CD34-AB": "CD34",
        "CD38-AB": "CD38",
        "CD20-AB": "MS4A1",
        "CD2-AB": "CD2",
        "CD7-AB": "CD7",
        "CD11b-AB": "ITGAM",
        "CD27-AB": "CD27",
        "CD94-AB": "KLRD1",
    }
    genes = np.array([a.var_names.get_loc(g) for g in pairs.values()])
    truth = []
    for ab in pairs:
        v = a.obsm["protein"][ab].to_numpy()[:, None]
        gm = GaussianMixture(2, n_init=5, random_state=0).fit(v)
        truth.append(gm.predict_proba(v)[:, int(np.argmax(gm.means_.ravel()))] >= 0.5)
    truth = np.column_stack(truth)
    a.obs["total_counts"] = lib
    graph = neighbor_graph(a, n_neighbors=5, layer="counts", batch_key="Batch")
    f_panel = 0.1  # panel CP10k ≈ whole-transcriptome CP10k / 0.1 (docs/positivity.md)

    def median_ba(pred):
        tpr = (pred & truth).sum(0) / truth.sum(0)
        tnr = (~pred & ~truth).sum(0) / (~truth).sum(0)
        return float(np.median((tpr + tnr) / 2))

    det = _collect(positive_blocks(X, lib, method="detected", genes=genes), a.n_obs)
    knn = _collect(
        positive_blocks(X, lib, graph=graph, genes=genes, threshold=0.2 / f_panel), a.n_obs
    )
    assert median_ba(knn) > median_ba(det)
