"""The positivity front: methods registry, streaming invariants, input errors, AnnData API,
real data."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from positivity_data import N_CELLS, collect

from antigenscout._errors import InputError
from antigenscout.pp._graph import neighbor_graph
from antigenscout.pp._positivity import methods, positive_blocks, positivity


@pytest.mark.parametrize("method", ["detected", "cp10k", "knn"])
def test_dense_sparse_identical_and_genes_subset(data, method):
    X, lib, graph = data
    genes = np.array([0, 5, 22, 7])
    kw = {"method": method, "threshold": 2.0, "graph": graph}
    dense = collect(positive_blocks(X, lib, **kw), N_CELLS)
    csr = collect(positive_blocks(sp.csr_matrix(X), lib, **kw), N_CELLS)
    np.testing.assert_array_equal(dense, csr)
    sub = collect(positive_blocks(sp.csr_matrix(X), lib, genes=genes, block_size=33, **kw), N_CELLS)
    np.testing.assert_array_equal(sub, dense[:, genes])
    assert not dense[[3, 77]].any()  # zero-library cells never positive


def test_zero_library_no_warning(data):
    X, lib, graph = data
    with np.errstate(all="raise"):
        for m in ("detected", "cp10k", "knn"):
            collect(positive_blocks(X, lib, method=m, graph=graph), N_CELLS)


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
    ref = collect(positive_blocks(X, lib, graph=graph, threshold=2.0), N_CELLS)
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

    det = collect(positive_blocks(X, lib, method="detected", genes=genes), a.n_obs)
    knn = collect(
        positive_blocks(X, lib, graph=graph, genes=genes, threshold=0.2 / f_panel), a.n_obs
    )
    assert median_ba(knn) > median_ba(det)
