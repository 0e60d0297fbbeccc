"""Tests of the RNA→protein-positivity calibration (antigenscout.pp._protein)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.special import expit

from antigenscout._errors import InputError
from antigenscout.pp._protein import (
    EPS_CP10K,
    GLOBAL_ROW,
    Z_INTERVAL,
    _map_gene,
    fit_calibration,
    load_calibration,
    protein_positive_fraction,
)


def _table(rows: dict[str, tuple[float, ...]]) -> pd.DataFrame:
    cols = ["a", "b", "var_a", "var_b", "cov_ab", "sigma_ctx"]
    return pd.DataFrame.from_dict(rows, orient="index", columns=cols)


def test_hand_worked_fraction_and_interval() -> None:
    cal = _table(
        {
            GLOBAL_ROW: (-1.0, 1.0, 0.0, 0.0, 0.0, 0.0),
            "G1": (0.5, 2.0, 0.04, 0.01, 0.0, 0.3),
        }
    )
    mean = np.array([[0.09, 9.99], [0.99, 0.0]])
    f, lo, hi = protein_positive_fraction(["G1", "UNSEEN"], mean, calibration=cal)
    # G1 at 0.09 CP10k: x = log10(0.1) = -1 → logit = 0.5 - 2 = -1.5
    # var = 0.04 + 2*(-1)*0 + 1*0.01 + 0.09 = 0.14
    assert f[0, 0] == pytest.approx(1 / (1 + np.exp(1.5)))
    assert lo[0, 0] == pytest.approx(1 / (1 + np.exp(1.5 + Z_INTERVAL * np.sqrt(0.14))))
    assert hi[0, 0] == pytest.approx(1 / (1 + np.exp(1.5 - Z_INTERVAL * np.sqrt(0.14))))
    # G1 at 9.99: x = 1 → logit 2.5
    assert f[0, 1] == pytest.approx(1 / (1 + np.exp(-2.5)))
    # unseen gene → global row, no variance: 0.99 → x = 0 → logit -1; 0 → x = -2 → logit -3
    assert f[1, 0] == pytest.approx(1 / (1 + np.exp(1.0)))
    assert f[1, 1] == pytest.approx(1 / (1 + np.exp(3.0)))
    assert lo[1, 0] == pytest.approx(f[1, 0])
    assert hi[1, 0] == pytest.approx(f[1, 0])


def test_nan_propagates_and_negative_is_zero() -> None:
    cal = _table({GLOBAL_ROW: (0.0, 1.0, 0.1, 0.1, 0.0, 0.5)})
    f, lo, hi = protein_positive_fraction(["A"], np.array([[np.nan, -3.0, 0.0]]), calibration=cal)
    assert np.isnan(f[0, 0])
    assert np.isnan(lo[0, 0])
    assert np.isnan(hi[0, 0])
    assert f[0, 1] == pytest.approx(f[0, 2])
    assert np.all(lo[0, 1:] <= f[0, 1:])
    assert np.all(f[0, 1:] <= hi[0, 1:])


def test_eps_makes_hpa_scale_affine() -> None:
    # log2(nTPM + 1) with nTPM = 100 * CP10k equals log2(100) + log10(CP10k + eps) / log10(2)
    cp10k = np.array([0.0, 0.003, 0.5, 12.0, 800.0])
    lhs = np.log2(100 * cp10k + 1)
    rhs = np.log2(100) + np.log10(cp10k + EPS_CP10K) / np.log10(2)
    np.testing.assert_allclose(lhs, rhs, rtol=1e-12, atol=1e-12)


def test_shape_errors() -> None:
    cal = _table({GLOBAL_ROW: (0.0, 1.0, 0.0, 0.0, 0.0, 0.0)})
    with pytest.raises(InputError, match="genes × contexts"):
        protein_positive_fraction(["A", "B"], np.ones((3, 2)), calibration=cal)
    with pytest.raises(InputError, match="lacks"):
        protein_positive_fraction(["A"], np.ones((1, 2)), calibration=cal.drop(columns="b"))


def test_map_without_prior_equals_glm_mle() -> None:
    """Flat prior: the MAP is the binomial MLE, checked against statsmodels' GLM."""
    sm = pytest.importorskip("statsmodels.api")
    x = np.array([-2.0, -1.0, -0.5, 0.0, 0.5, 1.0, 1.5])
    n = np.array([25, 30, 40, 25, 50, 20, 30], dtype=float)
    k = np.array([1, 3, 8, 9, 30, 15, 27], dtype=float)
    th, _ = _map_gene(x, k, n, np.zeros(2), np.eye(2) * 1e-12, 1.0, np.zeros(2))
    F = sm.add_constant(x)
    glm = sm.GLM(np.column_stack([k, n - k]), F, family=sm.families.Binomial()).fit()
    np.testing.assert_allclose(th, glm.params, rtol=1e-6, atol=1e-6)


def _simulate(seed: int = 0, n_genes: int = 30, n_ctx: int = 12, n_cells: int = 400):
    rng = np.random.default_rng(seed)
    a_true = rng.normal(0.5, 0.7, n_genes)
    b_true = rng.normal(2.0, 0.3, n_genes)
    rows = []
    for g in range(n_genes):
        mu = 10 ** rng.uniform(-2, 1.5, n_ctx)
        p = expit(a_true[g] + b_true[g] * np.log10(mu + EPS_CP10K))
        k = rng.binomial(n_cells, p)
        rows += [
            {"gene": f"G{g}", "mean_cp10k": m, "n_cells": n_cells, "n_pos": int(kk)}
            for m, kk in zip(mu, k, strict=True)
        ]
    return pd.DataFrame(rows), a_true, b_true


def test_fit_recovers_simulated_parameters() -> None:
    pairs, a_true, b_true = _simulate()
    cal = fit_calibration(pairs)
    genes = [f"G{g}" for g in range(len(a_true))]
    np.testing.assert_allclose(cal.loc[genes, "a"], a_true, atol=0.35)
    np.testing.assert_allclose(cal.loc[genes, "b"], b_true, atol=0.35)
    glob = cal.loc[GLOBAL_ROW]
    assert glob["b"] == pytest.approx(2.0, abs=0.4)
    assert (cal.loc[genes, "n_contexts"] == 12).all()
    assert cal.loc[GLOBAL_ROW, "sources"] == "prior"


def test_partial_pooling_shrinks_sparse_genes_more() -> None:
    pairs, _, _ = _simulate(seed=1)
    # an outlying gene seen in 2 contexts of 5 cells vs the same curve seen in 12 × 400 cells
    mu = np.array([0.05, 3.0])
    sparse = pd.DataFrame(
        {"gene": "SPARSE", "mean_cp10k": mu, "n_cells": 5, "n_pos": [5, 5]}
    )  # all positive even at low RNA: MLE intercept → +∞
    cal = fit_calibration(pd.concat([pairs, sparse], ignore_index=True))
    glob_a = cal.loc[GLOBAL_ROW, "prior_a"]
    assert np.isfinite(cal.loc["SPARSE", "a"])
    assert cal.loc["SPARSE", "a"] > glob_a  # pulled up by its data...
    assert cal.loc["SPARSE", "a"] < glob_a + 5  # ...but kept near the prior
    # its posterior variance stays much larger than that of a well-observed gene
    assert cal.loc["SPARSE", "var_a"] > 5 * cal.loc["G0", "var_a"]


def test_covariate_shifts_prior_for_genes_without_data() -> None:
    pairs, _, _ = _simulate(seed=2)
    genes = sorted(pairs.gene.unique())
    rng = np.random.default_rng(3)
    cov = pd.DataFrame({"hpa": np.r_[rng.normal(0, 1, len(genes)), -1.0, 1.0]})
    cov.index = [*genes, "LO", "HI"]
    cal = fit_calibration(pairs, cov)
    assert cal.loc["LO", "n_contexts"] == 0
    assert cal.loc["LO", "sources"] == "hpa"
    # prior only: the posterior equals the prior, shifted by γ × covariate difference (2)
    gamma = cal.attrs["beta"]["hpa"]
    assert cal.loc["HI", "a"] - cal.loc["LO", "a"] == pytest.approx(2 * gamma)
    assert cal.loc["LO", "b"] == pytest.approx(cal.loc[GLOBAL_ROW, "b"])
    np.testing.assert_allclose(
        cal.loc["LO", ["var_a", "var_b"]].astype(float),
        cal.loc[GLOBAL_ROW, ["var_a", "var_b"]].astype(float),
    )


def test_fit_rejects_bad_pairs() -> None:
    with pytest.raises(InputError):
        fit_calibration(pd.DataFrame({"gene": ["A"], "mean_cp10k": [1.0]}))
    bad = pd.DataFrame({"gene": ["A"], "mean_cp10k": [1.0], "n_cells": [3], "n_pos": [4]})
    with pytest.raises(InputError, match="n_pos"):
        fit_calibration(bad)


def test_packaged_calibration() -> None:
    cal = load_calibration()
    need = {
        "a",
        "b",
        "var_a",
        "var_b",
        "cov_ab",
        "sigma_ctx",
        "prior_a",
        "prior_b",
        "n_contexts",
        "n_cells",
        "n_datasets",
        "sources",
        "hpa_mid_cp10k",
        "cptac_mid_log2uq",
        "midpoint_cp10k",
    }
    assert need <= set(cal.columns)
    assert GLOBAL_ROW in cal.index
    assert cal.index.is_unique
    assert cal.loc[GLOBAL_ROW, "b"] > 0  # more RNA → more protein-positive cells
    assert (cal.n_contexts > 0).sum() >= 20
    assert np.all(cal[["var_a", "var_b"]].to_numpy() > 0)
    f, lo, hi = protein_positive_fraction(
        ["CD19", "NOT_A_GENE"], np.array([[0.0, 0.1, 1.0, 10.0]] * 2)
    )
    assert np.all(np.diff(f, axis=1) > 0)
    assert np.all((lo <= f) & (f <= hi))
    assert np.all((lo >= 0) & (hi <= 1))
