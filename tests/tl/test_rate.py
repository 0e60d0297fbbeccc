"""Gamma–Poisson per-patient coverage against simulated truth and hand-worked cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from scipy import sparse, special

from antigenscout.tl._rate import MIN_READS_AT_THRESHOLD, patient_rate_coverage


def _simulate(mu, k, n_cells, lib, rng):
    """Cells × genes NB counts: rate λ ~ Gamma(k, k/μ) CP10k, reads ~ Poisson(λ · lib/1e4)."""
    lam = rng.gamma(np.asarray(k), np.asarray(mu) / np.asarray(k), size=(n_cells, len(mu)))
    return rng.poisson(lam * lib[:, None] / 1e4)


def _adata(blocks, rng, filler=2000):
    X, pats = [], []
    for p, (mu, k, n, depth) in blocks.items():
        lib = rng.integers(int(depth * 0.7), int(depth * 1.3), n).astype(float)
        counts = _simulate(mu, k, n, lib, rng)
        rest = np.maximum(lib - counts.sum(1), 0)[:, None]  # the other genes' reads
        X.append(np.hstack([counts, rest]))
        pats += [p] * n
    X = np.vstack(X).astype(np.float32)
    genes = [f"G{i}" for i in range(X.shape[1] - 1)] + ["OTHER"]
    obs = pd.DataFrame({"patient": pats, "mal": "yes"}, index=[f"c{i}" for i in range(len(X))])
    return AnnData(sparse.csr_matrix(X), obs=obs, var=pd.DataFrame(index=genes))


def test_recovers_simulated_coverage_with_honest_intervals():
    rng = np.random.default_rng(0)
    mu = np.array([0.05, 0.2, 1.0, 5.0])  # CP10k
    k = np.array([0.5, 1.0, 2.0, 0.3])
    truth = special.gammaincc(k, k * 0.2 / mu)
    hits, n = np.zeros(len(mu)), 0
    for rep in range(20):
        ad = _adata({f"P{rep}": (mu, k, 3000, 40_000)}, rng)
        t = patient_rate_coverage(ad, ["G0", "G1", "G2", "G3"], malignant_key="mal=yes",
                                  patient_key="patient", threshold=0.2)  # fmt: skip
        est = t["coverage_model"].to_numpy()
        np.testing.assert_allclose(est, truth, atol=0.12)
        hits += (t["coverage_low"] <= truth + 1e-9) & (truth <= t["coverage_high"] + 1e-9)
        n += 1
        assert t["callable"].all()
    # nominal 90% (measured here: 90-95% over 20 simulated patients); binomial slack
    assert (hits / n >= 0.75).all()


def test_absent_gene_and_shallow_patient():
    rng = np.random.default_rng(1)
    ad = _adata({"deep": ([0.0, 2.0], [1.0, 1.0], 400, 20_000),
                 "shallow": ([0.0, 2.0], [1.0, 1.0], 5, 500)}, rng)  # fmt: skip
    t = patient_rate_coverage(ad, ["G0", "G1"], malignant_key="mal=yes", patient_key="patient")
    t = t.set_index(["target", "patient"])
    assert t.loc[("G0", "deep"), "coverage_model"] == 0.0  # no read: no coverage
    assert t.loc[("G0", "deep"), "coverage_high"] < 0.05
    # 5 cells of ~500 UMIs hold 0.2 × 0.25 = 0.05 expected reads at the threshold
    assert not t.loc[("G1", "shallow"), "callable"]
    assert t.loc[("G1", "deep"), "callable"]
    assert MIN_READS_AT_THRESHOLD <= 0.2 * 400 * 2.0
    shallow = t.loc[("G1", "shallow")]
    deep = t.loc[("G1", "deep")]
    assert (shallow["coverage_high"] - shallow["coverage_low"]) > (
        deep["coverage_high"] - deep["coverage_low"]
    )
    assert t.loc[("G1", "deep"), "reads_at_threshold_median_cell"] == pytest.approx(
        0.2 * 2.0, rel=0.2
    )


def test_mean_matches_pooled_ratio_by_hand():
    # two cells: counts 3 and 1 of gene A, libraries 10,000 and 30,000 -> μ̂ = 4 / 4 = 1 CP10k
    X = sparse.csr_matrix(np.array([[3.0, 9997.0], [1.0, 29999.0]]))
    ad = AnnData(X, obs=pd.DataFrame({"m": ["y", "y"]}, index=["a", "b"]),
                 var=pd.DataFrame(index=["A", "REST"]))  # fmt: skip
    t = patient_rate_coverage(ad, ["A"], malignant_key="m=y")
    assert t["mean_cp10k"].iloc[0] == pytest.approx(1.0)
    assert t["n_cells"].iloc[0] == 2


def test_compartments_without_cells_are_not_rows():
    rng = np.random.default_rng(3)
    ad = _adata({"P1": ([1.0], [1.0], 40, 5000), "P2": ([1.0], [1.0], 30, 5000)}, rng)
    # P2 has no stem cells
    ad.obs["comp"] = ["stem" if (p == "P1" and i % 2) else "bulk"
                      for i, p in enumerate(ad.obs["patient"])]  # fmt: skip
    t = patient_rate_coverage(ad, ["G0"], malignant_key="mal=yes", patient_key="patient",
                              compartment_key="comp")  # fmt: skip
    assert (t["n_cells"] > 0).all()
    got = {(p, c) for p, c in zip(t["patient"], t["compartment"], strict=True)}
    assert got == {("P1", "bulk"), ("P1", "stem"), ("P2", "bulk")}
    assert t["n_cells"].sum() == 70


@pytest.mark.parametrize("given", [False, True])
def test_group_rate_stats_equal_dense_sums(given: bool) -> None:
    """The streamed kernel's sums equal dense numpy sums per (jackknife block, group)."""
    from antigenscout.pp._graph import iter_row_chunks
    from antigenscout.tl._rate import group_rate_stats

    rng = np.random.default_rng(3)
    dense = rng.poisson(0.4, size=(230, 17)).astype(np.float64)
    X = sparse.csr_matrix(dense)
    rows = np.sort(rng.choice(230, 180, replace=False))
    codes = rng.integers(0, 4, rows.size)
    genes = np.array([16, 2, 9])
    lib = dense[rows].sum(1) * 1.5 if given else None
    got = group_rate_stats(
        iter_row_chunks(X, rows, chunk=40), codes, 4, genes, lib, n_blocks=5, seed=1
    )
    block_of = np.random.default_rng(1).integers(0, 5, rows.size)
    s = (dense[rows].sum(1) * 1.5 if given else dense[rows].sum(1)) / 1e4
    x = dense[rows][:, genes].astype(np.float64)
    for b in range(5):
        for k in range(4):
            m = (block_of == b) & (codes == k)
            np.testing.assert_allclose(got["x"][b, k], x[m].sum(0))
            np.testing.assert_allclose(got["x2"][b, k], (x[m] ** 2).sum(0))
            np.testing.assert_allclose(got["xs"][b, k], (x[m] * s[m, None]).sum(0))
            assert got["n"][b, k] == m.sum()
            np.testing.assert_allclose(got["s"][b, k, 0], s[m].sum())


def test_group_rate_stats_repeated_genes_and_duplicate_entries() -> None:
    """A gene asked for twice gets its sums twice; duplicate CSR entries of one cell count
    as their sum (x² of the merged count, not the sum of squares of the parts)."""
    from antigenscout.pp._graph import iter_row_chunks
    from antigenscout.tl._rate import group_rate_stats

    # cell 0 holds gene 1 as two entries (2 + 3), cell 1 holds 4 once
    X = sparse.csr_matrix(
        (np.array([2.0, 3.0, 4.0, 1.0]), np.array([1, 1, 1, 0]), np.array([0, 2, 4])),
        shape=(2, 3),
    )
    assert not X.has_canonical_format
    rows = np.arange(2)
    got = group_rate_stats(
        iter_row_chunks(X, rows),
        np.zeros(2, dtype=np.int64),
        1,
        np.array([1, 0, 1]),
        n_blocks=1,
    )
    np.testing.assert_allclose(got["x"][0, 0], [9.0, 1.0, 9.0])
    np.testing.assert_allclose(got["x2"][0, 0], [25.0 + 16.0, 1.0, 41.0])


@pytest.mark.parametrize("positivity", ["knn", "cp10k"])
def test_rate_sums_of_the_positivity_pass_equal_a_second_read(positivity: str) -> None:
    """score_targets' rate_stats (summed in its own pass over the cells) give the same
    per-patient × compartment model as patient_rate_coverage reading the matrix again."""
    import antigenscout as asc

    adata = asc.datasets.demo()
    asc.datasets.add_vangalen_compartment(adata)
    kw = dict(
        malignant_key="malignant=malignant", patient_key="patient", compartment_key="compartment"
    )
    stats: dict = {}
    asc.tl.score_targets(adata, positivity=positivity, modality="car-t", rate_stats=stats, **kw)
    genes = ["FLT3", "CD33", "CLEC12A", "CD34", "IL3RA"]
    assert set(genes) <= set(stats["genes"])
    again = patient_rate_coverage(adata, genes, **kw)
    reused = patient_rate_coverage(adata, genes, stats=stats, **kw)
    pd.testing.assert_frame_equal(reused, again, check_exact=True)
