from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from antigenscout.reference import Reference
from antigenscout.tl import profile_agent


def _marrow_reference() -> Reference:
    ctx = pd.DataFrame(
        {
            "name": ["pro-B", "heart"],
            "kind": ["cell_type", "cell_type"],
            "source": ["van Galen", "HPA single cell type"],
            "tissue": ["bone marrow", "heart"],
            "system": ["immune (lymphoid)", "cardiovascular"],
            "vital_weight": [0.3, 1.0],
            "immune_privileged": [False, False],
            "n_cells": pd.array([30, pd.NA], dtype="Int64"),
            "mean_library": pd.array([2000.0, np.nan], dtype="Float32"),
        },
        index=["marrow:ProB", "sc:heart"],
    )
    # G: 50 CPM in 30 cells of 2,000 UMIs (3 reads); H: 1,000 CPM (60 reads)
    expr = pd.DataFrame({"marrow:ProB": [50.0, 1000.0], "sc:heart": [0.0, 0.0]}, index=["G", "H"])
    measured = pd.DataFrame({"marrow:ProB": [0.1, 0.9]}, index=["G", "H"])
    return Reference(
        genes=pd.DataFrame({"ensembl_id": ["E1", "E2"], "synonyms": ["", ""]}, index=["G", "H"]),
        contexts=ctx,
        expression=expr,
        ihc=pd.DataFrame(columns=["symbol", "context", "level", "reliability"]),
        surface=pd.DataFrame(index=expr.index),
        metadata={"measured_fraction": {"threshold_cp10k": 0.2}},
        measured_fraction=measured,
    )


def test_measured_cells_judge_the_profile_at_any_agent_floor() -> None:
    # an agonist's floor (0.05 CP10k) lies below the level the cells were called at (0.2): the
    # measured fraction stands, as in scoring, instead of the RNA model on the pseudobulk
    ref = _marrow_reference()
    prof = profile_agent(["G"], agent="agonist", reference=ref).set_index("context")
    row = prof.loc["marrow:ProB"]
    assert row["positive_fraction"] == pytest.approx(0.1)
    assert "lower bound" in row["source"]
    assert row["fraction_high"] == pytest.approx(1.0)  # the mean allows every cell


def test_too_shallow_interval_reaches_what_the_mean_allows() -> None:
    ref = _marrow_reference()
    prof = profile_agent(["G", "H"], gate="any", agent="car-t", reference=ref)
    g = profile_agent(["G"], agent="car-t", reference=ref).set_index("context").loc["marrow:ProB"]
    # 30 x 2,000 UMIs x 0.2 CP10k = 1.2 reads expected at the threshold: too shallow to call
    assert "too shallow" in g["source"]
    assert g["positive_fraction"] == pytest.approx(0.1)
    assert g["fraction_high"] == pytest.approx(1.0)  # Garwood upper of 3 reads: 7.75 > 1.2
    assert len(prof) == 2


def test_cd19_in_marrow_pro_b_cells_is_shown_as_not_measurable() -> None:
    prof = profile_agent("CD19", agent="car-t").set_index("context")
    row = prof.loc["marrow:ProB"]
    assert "too shallow" in row["source"]
    assert row["fraction_high"] == pytest.approx(1.0)
    assert prof.loc["blood:naive_B_cell", "positive_fraction"] > 0.95


def test_profile_reports_the_levels_it_read_and_names_filled_rna() -> None:
    """profile_agent's expression column is the level its fraction was computed from
    (infiltrate removed, missing RNA filled), and a context whose RNA was filled says so."""
    import numpy as np

    from antigenscout.reference import load_reference
    from antigenscout.tl import profile_agent
    from antigenscout.tl._healthy_expression import MISSING_RNA_SOURCE, healthy_expression

    ref = load_reference()
    levels, filled = healthy_expression(ref)
    prof = profile_agent(["PRRC2B"], agent="tcr-t", reference=ref).set_index("context")
    want = levels.loc["PRRC2B", prof.index].to_numpy(dtype=float)
    np.testing.assert_allclose(prof["expression"].to_numpy(dtype=float), want)
    gap = filled.loc["PRRC2B", prof.index].to_numpy(dtype=bool)
    assert gap.any()
    assert prof["source"][gap].str.startswith(MISSING_RNA_SOURCE).all()
    assert not prof["source"][~gap].str.startswith(MISSING_RNA_SOURCE).any()


def test_a_gate_is_reached_once_behind_a_barrier() -> None:
    """An OR receptor behind the blood–brain barrier: a protein agent engages what a CAR-T
    cell (which crosses) engages, times the exposure factor once; not the OR of two exposed
    genes (which would nearly double it)."""
    import antigenscout as asc
    from antigenscout.tl._exposure import BARRIER_EXPOSURE

    receptor = "GFAP OR AQP4"
    adc = asc.tl.profile_agent(receptor, agent="adc", threshold=1.0).set_index("context")
    cart = asc.tl.profile_agent(receptor, agent="car-t", threshold=1.0).set_index("context")
    astro = "sc:Astrocytes"
    assert cart.loc[astro, "positive_fraction"] > 0.5
    assert adc.loc[astro, "positive_fraction"] == pytest.approx(
        BARRIER_EXPOSURE * cart.loc[astro, "positive_fraction"], rel=1e-9
    )
    for col in ("fraction_low", "fraction_high"):
        assert adc.loc[astro, col] == pytest.approx(BARRIER_EXPOSURE * cart.loc[astro, col])
    liver = "sc:Hepatocytes"  # open to both: identical
    assert adc.loc[liver, "positive_fraction"] == pytest.approx(
        cart.loc[liver, "positive_fraction"]
    )


def test_a_receptor_of_hundreds_of_genes_warns_nothing() -> None:
    """Per-gene columns are joined at once: 300 alternatives gave pandas'
    'highly fragmented' warning per column (run under filterwarnings=error)."""
    from antigenscout.reference import load_reference

    ref = load_reference()
    genes = [g for g in ref.expression.index if g in ref.surface.index][:300]
    out = profile_agent(genes, gate="any", reference=ref)
    assert sum(c.startswith("frac__") for c in out.columns) == len(genes)
    i = out["positive_fraction"].idxmax()
    best = max(float(out.loc[i, f"frac__{g}"]) for g in genes)
    assert out.loc[i, "positive_fraction"] >= best - 1e-12  # an OR engages at least its best arm
