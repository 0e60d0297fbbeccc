"""Scenarios read from a ranking output directory."""

from __future__ import annotations

import pandas as pd
import pytest

from antigenscout._errors import InputError
from antigenscout.kinetics import Scenario, scenario_from_run


@pytest.fixture
def run_dir(tmp_path):
    pd.DataFrame(
        {
            "target": ["IL1RAP", "CD33"],
            "tumor_coverage": [0.8, 0.95],
            "patient_coverage_median": [0.75, 0.9],
            "worst_healthy_cell_type": ["monocyte", "hepatocyte"],
            "coverage__HSC-like": [0.6, 0.2],
            "coverage__GMP-like": [0.7, 0.9],
            "coverage__Prog-like": [0.9, 0.9],
            "coverage__Mono-like": [0.85, 0.99],
        }
    ).to_csv(tmp_path / "targets.tsv", sep="\t", index=False)
    pd.DataFrame(
        {
            "target": ["IL1RAP", "IL1RAP", "IL1RAP", "CD33"],
            "context": ["blood", "marrow", "blood", "liver"],
            "name": ["monocyte", "monocyte", "B cell", "hepatocyte"],
            "system": ["immune", "immune", "immune", "liver"],
            "positive_fraction": [0.4, 0.55, 0.01, 0.3],
            "vital_weight": [1.0, 1.0, 1.0, 3.0],
            "risk": [0.4, 0.5, 0.01, 0.9],
        }
    ).to_csv(tmp_path / "risk.tsv", sep="\t", index=False)
    return tmp_path


def test_scenario_from_run(run_dir):
    sc = scenario_from_run(run_dir, "IL1RAP")
    assert sc.tumour_coverage == 0.8
    assert sc.stem == 0.6
    assert sc.progenitor == pytest.approx(0.8)  # mean of GMP-like and Prog-like
    assert sc.healthy_cell_type == "monocyte"
    assert sc.healthy_positive_fraction == 0.55  # largest over contexts
    assert sc.healthy_turnover() == (
        1.0,
        pytest.approx("Michor 2005, d3 = 1/day (terminally differentiated myeloid)"),
    )
    assert sc.compartment_coverage["Mono-like"] == 0.85


def test_unknown_turnover_needs_override(run_dir):
    # CD33's only healthy context (hepatocyte) has no published turnover: refused by default
    with pytest.raises(InputError, match="--healthy NAME --healthy-turnover"):
        scenario_from_run(run_dir, "CD33")
    with pytest.raises(InputError, match="--healthy-turnover"):
        scenario_from_run(run_dir, "CD33", healthy="hepatocyte")
    sc = scenario_from_run(run_dir, "CD33", healthy="hepatocyte", healthy_turnover_per_day=0.01)
    assert sc.healthy_turnover() == (0.01, "user input")
    assert sc.healthy_cell_type == "hepatocyte"


def test_missing_inputs_raise(run_dir, tmp_path_factory):
    with pytest.raises(InputError, match="not in"):
        scenario_from_run(run_dir, "MSLN")
    empty = tmp_path_factory.mktemp("empty")
    with pytest.raises(InputError, match=r"targets\.tsv"):
        scenario_from_run(empty, "IL1RAP")
    (run_dir / "risk.tsv").unlink()
    with pytest.raises(InputError, match=r"risk\.tsv"):
        scenario_from_run(run_dir, "IL1RAP")
    with pytest.raises(InputError, match="not a directory"):
        scenario_from_run(run_dir / "nope", "IL1RAP")


def test_scenario_validation():
    with pytest.raises(InputError, match="tumour_coverage"):
        Scenario("X", tumour_coverage=1.5)
    with pytest.raises(InputError, match="healthy_turnover_per_day"):
        Scenario("X", healthy_turnover_per_day=-1.0)
