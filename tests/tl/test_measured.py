"""Measured evidence: what measurement shows, and the shallow bound from the mean."""

from __future__ import annotations

import numpy as np
import pytest


def test_shown_fraction_keeps_measured_and_protein_only() -> None:
    import pandas as pd

    from antigenscout.reference import Reference
    from antigenscout.tl import healthy_risk
    from antigenscout.tl._measured import IHC_MAX_FLOOR, shown_fraction

    ctx = pd.DataFrame(
        {
            "name": ["HSC", "liver", "kidney"],
            "kind": ["cell_type", "tissue", "tissue"],
            "tissue": ["bone marrow", "liver", "kidney"],
            "system": ["haematopoietic", "hepatobiliary", "renal"],
            "vital_weight": [1.0, 1.0, 1.0],
            "immune_privileged": [False, False, False],
            "n_cells": [200.0, np.nan, np.nan],
        },
        index=["marrow:HSC", "tissue:liver", "tissue:kidney"],
    )
    expr = pd.DataFrame(
        {"marrow:HSC": [100.0], "tissue:liver": [100.0], "tissue:kidney": [100.0]}, index=["G"]
    )
    # kidney stains High with an Enhanced antibody; liver has RNA only
    ihc = pd.DataFrame(
        {
            "symbol": ["G"],
            "tissue": ["kidney"],
            "cell_type": ["cells in tubules"],
            "level": [3.0],
            "reliability": ["Enhanced"],
            "context": ["tissue:kidney"],
        }
    )
    ref = Reference(
        genes=pd.DataFrame(index=["G"]),
        contexts=ctx,
        expression=expr,
        ihc=ihc,
        surface=pd.DataFrame(index=["G"]),
        metadata={"measured_fraction": {"threshold_cp10k": 0.2}},
        measured_fraction=pd.DataFrame({"marrow:HSC": [0.4]}, index=["G"]),
    )
    hr = healthy_risk(ref, threshold_cp10k=0.2)
    shown = shown_fraction(hr, ref, ["G"]).loc["G"]
    assert shown["marrow:HSC"] == pytest.approx(0.4)  # measured cells
    assert shown["tissue:liver"] == 0.0  # RNA model alone shows nothing
    # the IHC floor, High (3/3) and Enhanced (1.0), never above the engagement
    want = min(IHC_MAX_FLOOR, hr.fraction.loc["G", "tissue:kidney"])
    assert shown["tissue:kidney"] == pytest.approx(want)
    assert hr.fraction.loc["G", "tissue:liver"] == pytest.approx(np.exp(-20.0 / 100.0))


def test_shallow_bound_from_the_mean_by_hand() -> None:
    from scipy.stats import chi2

    from antigenscout.tl._measured import shallow_upper

    # 2 reads in 100 cells of 10,000 UMIs (2 CPM); level 20 CPM: 20 reads at it (deep enough)
    b, r = shallow_upper(np.array([[2.0]]), np.array([[20.0]]), np.array([100.0]),
                         np.array([10_000.0]))  # fmt: skip
    assert r[0, 0] == pytest.approx(20.0)
    assert np.isnan(b[0, 0])
    # 10 cells: 2 reads at the level, 0.2 reads seen; f <= mean_hi / t
    b, r = shallow_upper(np.array([[2.0]]), np.array([[20.0]]), np.array([10.0]),
                         np.array([10_000.0]))  # fmt: skip
    want = chi2.ppf(0.95, 2 * 0.2 + 2) / 2 / 2.0
    assert r[0, 0] == pytest.approx(2.0)
    assert b[0, 0] == pytest.approx(min(1.0, want))
    # below the level the fraction was measured at, unknown depth: the mean itself bounds it
    b, _ = shallow_upper(np.array([[2.0]]), np.array([[5.0]]), np.array([10.0]),
                         np.array([np.nan]), measured_at_cpm=20.0)  # fmt: skip
    assert b[0, 0] == pytest.approx(0.4)
