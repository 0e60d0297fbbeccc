from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from antigenscout.tl import pareto_rank, positive_fraction_from_mean


@pytest.mark.parametrize("shape", [0.5, 1.0, 3.0])
def test_positive_fraction_is_gamma_tail(shape: float) -> None:
    mean = np.array([0.0, 1.0, 10.0, 50.0, 1000.0])
    got = positive_fraction_from_mean(mean, 50.0, shape)
    want = np.where(
        mean > 0, stats.gamma.sf(50.0, a=shape, scale=np.maximum(mean, 1e-300) / shape), 0
    )
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-300)


def test_positive_fraction_monotone_in_mean() -> None:
    mean = np.linspace(0, 1000, 200)
    f = positive_fraction_from_mean(mean, 50.0)
    assert np.all(np.diff(f) >= 0)
    assert f[0] == 0
    assert 0.9 < f[-1] <= 1


def _brute_pareto(cov: np.ndarray, risk: np.ndarray) -> np.ndarray:
    n = len(cov)
    level = np.zeros(n, dtype=int)
    left = set(range(n))
    k = 1
    while left:
        front = {
            i
            for i in left
            if not any(
                cov[j] >= cov[i] and risk[j] <= risk[i] and (cov[j] > cov[i] or risk[j] < risk[i])
                for j in left
            )
        }
        for i in front:
            level[i] = k
        left -= front
        k += 1
    return level


@pytest.mark.parametrize("seed", range(5))
def test_pareto_rank_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cov = rng.integers(0, 10, 60) / 10  # ties on purpose
    risk = rng.integers(0, 10, 60) / 10
    np.testing.assert_array_equal(pareto_rank(cov, risk), _brute_pareto(cov, risk))


def test_measured_fraction_replaces_model_only_at_its_threshold() -> None:
    import pandas as pd

    from antigenscout.reference import Reference
    from antigenscout.tl import healthy_risk

    ctx = pd.DataFrame(
        {
            "name": ["HSC", "liver"],
            "kind": ["cell_type", "tissue"],
            "tissue": ["bone marrow", "liver"],
            "system": ["haematopoietic", "hepatobiliary"],
            "vital_weight": [1.0, 1.0],
            "immune_privileged": [False, False],
        },
        index=["marrow:HSC", "tissue:liver"],
    )
    expr = pd.DataFrame({"marrow:HSC": [100.0], "tissue:liver": [100.0]}, index=["G"])
    measured = pd.DataFrame({"marrow:HSC": [0.05]}, index=["G"])
    ref = Reference(
        genes=pd.DataFrame(index=["G"]),
        contexts=ctx,
        expression=expr,
        ihc=pd.DataFrame(columns=["symbol", "context", "level", "reliability"]),
        surface=pd.DataFrame(index=["G"]),
        metadata={"measured_fraction": {"threshold_cp10k": 0.2}},
        measured_fraction=measured,
    )
    at = healthy_risk(ref, threshold_cp10k=0.2).fraction
    assert at.loc["G", "marrow:HSC"] == pytest.approx(0.05)
    assert at.loc["G", "tissue:liver"] == pytest.approx(np.exp(-20.0 / 100.0))
    other = healthy_risk(ref, threshold_cp10k=0.5).fraction
    assert other.loc["G", "marrow:HSC"] == pytest.approx(np.exp(-50.0 / 100.0))


def test_measured_protein_replaces_the_rna_model() -> None:
    import pandas as pd

    from antigenscout.reference import Reference
    from antigenscout.tl import healthy_risk
    from antigenscout.tl._measured import PROTEIN_SOURCE, _wilson, shown_fraction

    ctx = pd.DataFrame(
        {
            "name": ["mDC", "liver"],
            "kind": ["cell_type", "tissue"],
            "tissue": ["blood", "liver"],
            "system": ["immune (myeloid)", "hepatobiliary"],
            "vital_weight": [0.4, 1.0],
            "immune_privileged": [False, False],
        },
        index=["blood:myeloid_DC", "tissue:liver"],
    )
    # RNA says almost nothing in mDCs (the HLA-DR mapping problem); protein says 30 of 40
    expr = pd.DataFrame({"blood:myeloid_DC": [1.0, 1.0], "tissue:liver": [100.0, 100.0]},
                        index=["G", "H"])  # fmt: skip
    protein = pd.DataFrame(
        {"gene": ["G"], "context": ["blood:myeloid_DC"], "antibody": ["AB"],
         "n_cells": [40], "n_positive": [30]}
    )  # fmt: skip
    ref = Reference(
        genes=pd.DataFrame(index=["G", "H"]),
        contexts=ctx,
        expression=expr,
        ihc=pd.DataFrame(columns=["symbol", "context", "level", "reliability"]),
        surface=pd.DataFrame(index=["G", "H"]),
        metadata={"protein_fraction": {"measured_at_cp10k": 0.2}},
        protein=protein,
    )
    base = healthy_risk(ref, threshold_cp10k=0.2)
    assert base.fraction.loc["G", "blood:myeloid_DC"] == pytest.approx(0.75)
    assert base.fraction.loc["H", "blood:myeloid_DC"] == pytest.approx(np.exp(-20.0))  # RNA
    assert base.fraction.loc["G", "tissue:liver"] == pytest.approx(np.exp(-0.2))
    # carried to a 0.5 CP10k engagement threshold like measured cells: 0.75 ** (0.5 / 0.2)
    at = healthy_risk(
        ref, threshold_cp10k=0.2, gene_threshold_cp10k=pd.Series({"G": 0.5, "H": 0.5})
    )
    assert at.fraction.loc["G", "blood:myeloid_DC"] == pytest.approx(0.75**2.5)
    lo, hi = _wilson(np.array([0.75]), np.array([40.0]))
    assert at.low.loc["G", "blood:myeloid_DC"] == pytest.approx(lo[0] ** 2.5)
    assert at.high.loc["G", "blood:myeloid_DC"] == pytest.approx(hi[0] ** 2.5)
    long = at.long(["G", "H"]).set_index(["target", "context"])
    assert long.loc[("G", "blood:myeloid_DC"), "source"] == PROTEIN_SOURCE
    assert long.loc[("G", "blood:myeloid_DC"), "n_cells"] == 40  # the gated cells counted
    assert long.loc[("G", "tissue:liver"), "source"] == "RNA model"
    # measured protein shows the antigen present: a NOT arm on G may veto there
    shown = shown_fraction(at, ref, ["G", "H"])
    assert shown.loc["G", "blood:myeloid_DC"] == pytest.approx(lo[0] ** 2.5)
    assert shown.loc["H", "blood:myeloid_DC"] == 0.0
