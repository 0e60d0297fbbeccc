"""Ambient RNA model (pp._ambient) and the soup-aware knn call (pp._graph_kernels.soup_tail).

Checked against simulated droplets with a known contamination and against the posterior
integrated numerically with scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from antigenscout.pp._ambient import Soup, estimate_ambient
from antigenscout.pp._graph_kernels import soup_tail
from antigenscout.pp._neighbors import knn_blocks_from_neighbors, knn_counts_from_neighbors
from antigenscout.pp._positivity import positive_blocks
from soup_sim import posterior_tail, simulate_soup

RHO = (0.01, 0.05, 0.2)


@pytest.fixture(scope="module")
def droplets():
    return simulate_soup(rho=RHO, seed=1)


def test_contamination_recovered_from_labelled_states(droplets) -> None:
    """Each sample's ρ within 10% of the truth, and inside its own 90% interval ± 10%."""
    a = droplets
    amb, codes = estimate_ambient(
        a.X, a.obs["patient"].to_numpy(), a.obs["cell_type"].to_numpy(), gene_names=a.var_names
    )
    t = amb.table.set_index("sample")
    assert list(t["source"]) == ["labelled states"] * 3
    for s, rho in a.uns["rho"].items():
        assert t.loc[s, "contamination"] == pytest.approx(rho, rel=0.1)
        assert 0.9 * t.loc[s, "contamination_low"] <= rho <= 1.1 * t.loc[s, "contamination_high"]
    assert (codes == a.obs["patient"].map({"P1": 0, "P2": 1, "P3": 2}).to_numpy()).all()
    # the soup profile is each sample's pooled expression (independent computation)
    X = a.X.toarray()
    for i, s in enumerate(t.index):
        m = (a.obs["patient"] == s).to_numpy()
        assert np.allclose(amb.profile[i], X[m].sum(0) / X[m].sum(), rtol=1e-5, atol=1e-9)
    assert t["top_soup_genes"].str.len().gt(0).all()


def test_contamination_from_clusters_without_labels(droplets) -> None:
    a = droplets
    amb, _ = estimate_ambient(a.X, a.obs["patient"].to_numpy(), None)
    t = amb.table.set_index("sample")
    assert (t["source"] == "clusters").all()
    for s, rho in a.uns["rho"].items():
        assert t.loc[s, "contamination"] == pytest.approx(rho, rel=0.15)


def test_unestimable_sample_borrows_the_run_median(droplets) -> None:
    """A sample of one cell type (no markers to compare) takes the median of the others."""
    a = droplets.copy()
    one = (a.obs["patient"] == "P4").to_numpy()
    extra = simulate_soup(rho=(0.05,), n_cells=200, share=(1, 0, 0, 0, 0), seed=5)
    extra.obs["patient"] = "P4"
    import anndata as ad

    both = ad.concat([a, extra], index_unique="-")
    amb, _ = estimate_ambient(
        both.X, both.obs["patient"].to_numpy(), both.obs["cell_type"].to_numpy()
    )
    t = amb.table.set_index("sample")
    assert not one.any()
    assert t.loc["P4", "source"].startswith("borrowed")
    assert t.loc["P4", "contamination"] == pytest.approx(
        np.median(t.loc[["P1", "P2", "P3"], "contamination"])
    )


def test_missing_samples_are_left_out(droplets) -> None:
    a = droplets
    sample = a.obs["patient"].to_numpy().astype(object)
    sample[:5] = None
    amb, codes = estimate_ambient(a.X, sample, a.obs["cell_type"].to_numpy())
    assert (codes[:5] == -1).all()
    assert amb.table["n_cells"].sum() == a.n_obs - 5


@pytest.mark.parametrize("y", [1, 2, 3, 7, 20, 60])
@pytest.mark.parametrize("b", [1e-4, 0.3, 2.0, 15.0])
def test_soup_tail_matches_numerical_posterior(y: int, b: float) -> None:
    """soup_tail's mixture sum equals the posterior P(λ ≥ λ0 | y) integrated by quadrature."""
    from scipy.special import gammaincc, gammaln

    a0, lam0, s_nat = 0.5, 0.2e-4, 11_000.0
    x = a0 + lam0 * s_nat
    r = s_nat / (a0 / lam0 + s_nat)
    t0 = np.exp(a0 * np.log(x) - x - gammaln(a0 + 1))
    got = soup_tail(y, b, x, gammaincc(a0, x), t0, a0, r)
    assert got == pytest.approx(posterior_tail(y, b, s_nat, a0, lam0), abs=2e-4)
    # never above the soup-free posterior
    assert got <= gammaincc(a0 + y, x) + 1e-12


def test_soup_paths_agree(droplets) -> None:
    """Counting kernel, listing kernel and the general weighted-graph path give the same
    soup-aware calls on a binary neighbour list."""
    a = droplets
    amb, codes = estimate_ambient(a.X, a.obs["patient"].to_numpy(), a.obs["cell_type"].to_numpy())
    X = sparse.csr_matrix(a.X)
    genes = np.arange(40)
    Xg = sparse.csr_matrix(X[:, genes])
    lib = np.asarray(X.sum(axis=1)).ravel()
    rng = np.random.default_rng(0)
    n, k = X.shape[0], 5
    nbr = np.stack([rng.choice(np.delete(np.arange(n), i), k, replace=False) for i in range(n)])
    soup = Soup(amb.background(genes), codes, amb.contamination)
    kw = {"threshold": 0.5, "prior_shape": 0.5, "block_size": 257, "soup": soup}
    listed = sparse.vstack([b for _, b in knn_blocks_from_neighbors(Xg, lib, nbr, **kw)])
    graph = sparse.csr_matrix((np.ones(n * k), (np.repeat(np.arange(n), k), nbr.ravel())), (n, n))
    general = sparse.vstack(
        [
            b
            for _, b in positive_blocks(
                Xg, lib, method="knn", threshold=0.5, graph=graph, block_size=300, soup=soup
            )
        ]
    )
    assert (listed != general).nnz == 0
    counted = knn_counts_from_neighbors(Xg, lib, nbr, codes, 3, **kw)
    by_hand = np.vstack([np.asarray(listed[codes == c].sum(axis=0)).ravel() for c in range(3)])
    assert (counted == by_hand).all()
    plain = sparse.vstack(
        [b for _, b in knn_blocks_from_neighbors(Xg, lib, nbr, **{**kw, "soup": None})]
    )
    # the soup removes calls (a few may be added: the native library is (1 - ρ) s)
    assert plain.nnz - listed.nnz > 0.02 * plain.nnz
    assert (listed > plain).nnz < 0.001 * listed.nnz


def test_soup_gene_of_another_lineage_is_not_antigen(droplets) -> None:
    """A marker made only by the 'eryth' cells reads in most malignant droplets through the
    soup; with the soup discounted it is called on few malignant cells, while the antigens
    the malignant cells make keep their calls."""
    import antigenscout as asc

    a = droplets.copy()
    for amb in (False, True):
        asc.tl.score_targets(
            a,
            malignant_key="status=malignant",
            patient_key="patient",
            compartment_key="cell_type",
            modality=None,
            ambient=amb,
            key_added=f"t{int(amb)}",
        )
    off = a.uns["t0"]["targets"]["tumor_coverage"]
    on = a.uns["t1"]["targets"]["tumor_coverage"]
    ery = [g for g in a.var_names if g.startswith("Meryth_")]
    top_ery = a[:, ery].X.sum(axis=0).A1.argsort()[-5:]
    for g in np.asarray(ery)[top_ery]:
        assert off[g] > 0.3
        assert on[g] < 0.05
    for g in ["G8", "G9", "G10", "G11"]:  # 3-20 CP10k in every malignant cell
        assert on[g] > 0.9
    assert set(a.uns["t1"]["ambient"]["source"]) == {"labelled states"}


def test_positivity_pools_within_states_and_reports_the_soup(droplets) -> None:
    """pp.positivity with state_key cuts every edge across states from a given graph (the
    calls equal those on the graph cut by hand), stores the soup table, and refuses an
    unknown column naming it."""
    from antigenscout._errors import InputError
    from antigenscout.pp import positivity

    a = droplets[droplets.obs["patient"] == "P2"].copy()
    rng = np.random.default_rng(0)
    n, k = a.n_obs, 5
    nbr = np.stack([rng.choice(np.delete(np.arange(n), i), k, replace=False) for i in range(n)])
    rows = np.repeat(np.arange(n), k)
    a.obsp["g"] = sparse.csr_matrix((np.ones(n * k), (rows, nbr.ravel())), shape=(n, n))
    positivity(a, obsp="g", state_key="cell_type", ambient=False, key_added="by_state")
    t = a.obs["cell_type"].to_numpy()
    same = t[rows] == t[nbr.ravel()]
    a.obsp["cut"] = sparse.csr_matrix(
        (np.ones(same.sum()), (rows[same], nbr.ravel()[same])), shape=(n, n)
    )
    positivity(a, obsp="cut", ambient=False, key_added="by_hand")
    assert (a.layers["by_state"] != a.layers["by_hand"]).nnz == 0
    positivity(a, batch_key="patient", state_key="cell_type")
    assert a.uns["positive"]["ambient"]["source"].tolist() == ["labelled states"]
    assert a.uns["positive"]["params"]["state_key"] == "cell_type"
    with pytest.raises(InputError, match=r"'nope' is not an adata\.obs column"):
        positivity(a, state_key="nope")
