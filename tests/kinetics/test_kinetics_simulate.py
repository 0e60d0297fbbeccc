"""Public simulate/write API, CLI, and the CD19 healthy-cell scenario."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from antigenscout._errors import InputError
from antigenscout.kinetics import models, simulate, write_simulation
from antigenscout.kinetics._cli import simulate_command


def test_registry():
    df = models()
    assert list(df.columns) == ["name", "description", "reference"]
    assert {"stein2019", "kimmel2021", "michor2005", "cart-leukaemia", "cart-cml"} <= set(
        df["name"]
    )


def test_deterministic_given_seed():
    a = simulate("cart-leukaemia", n_patients=30, seed=4, chunk_size=7)
    b = simulate("cart-leukaemia", n_patients=30, seed=4)
    pd.testing.assert_frame_equal(a.cohort, b.cohort)
    c = simulate("cart-leukaemia", n_patients=30, seed=5)
    assert not np.allclose(a.cohort["cmax"], c.cohort["cmax"])


def test_cd19_bcell_aplasia_and_recovery():
    res = simulate("cart-leukaemia", n_patients=200, seed=0)
    # Clinical: B cells undetectable in 88 % at day 30 (axi-cel, PMC8017820): most patients.
    assert res.summary["healthy_depleted_fraction_day30"] > 0.8
    # B cells recover when CAR-T wanes: some patients back above half of baseline by 1 y.
    assert 0 < res.summary["healthy_recovered_fraction_1y"] <= 1
    rec = res.cohort["healthy_recovery_day"].dropna()
    assert (rec > 30).all()


def test_antigen_negative_escape():
    res = simulate("cart-leukaemia", n_patients=100, seed=0, scenario=None)
    from antigenscout.kinetics import Scenario

    esc = simulate(
        "cart-leukaemia",
        n_patients=100,
        seed=0,
        scenario=Scenario(
            "CD19", tumour_coverage=0.99, healthy_cell_type="B cell", healthy_positive_fraction=1.0
        ),
    )
    assert esc.summary["remission_fraction_1y"] < res.summary["remission_fraction_1y"]
    assert esc.summary["tumour_extinct_fraction"] == 0.0
    assert (esc.cohort["antigen_negative_fraction_end"].dropna() > 0.5).mean() > 0.5


def test_curves_and_files(tmp_path):
    res = simulate("cart-leukaemia", n_patients=20, seed=0, days=60)
    cur = res.curves
    assert list(cur.columns) == ["time_days", "quantity", "p05", "p50", "p95", "typical"]
    assert {"car_t", "tumour_burden", "healthy_fraction"} <= set(cur["quantity"])
    sub = cur[cur["quantity"] == "car_t"]
    assert (sub["p05"] <= sub["p50"]).all()
    assert (sub["p50"] <= sub["p95"]).all()
    paths = write_simulation(res, tmp_path / "out")
    assert [p.name for p in paths] == ["cohort.tsv", "summary.json", "curves.tsv"]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["model"] == "cart-leukaemia"
    assert len(pd.read_csv(tmp_path / "out" / "cohort.tsv", sep="\t")) == 20


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"model": "nope"}, "unknown kinetics model"),
        ({"model": "stein2019", "n_patients": 0}, "n_patients"),
        ({"model": "stein2019", "days": 10}, "days"),
        ({"model": "cart-cml"}, "needs a scenario"),
        ({"model": "kimmel2021", "with_inhibitor": True}, "inhibitor"),
    ],
)
def test_input_errors(kwargs, match):
    model = kwargs.pop("model")
    with pytest.raises(InputError, match=match):
        simulate(model, **kwargs)


def test_cli(tmp_path):
    runner = CliRunner()
    out = tmp_path / "sim"
    r = runner.invoke(
        simulate_command, ["--model", "stein2019", "--patients", "50", "--out", str(out)]
    )
    assert r.exit_code == 0, r.output
    assert (out / "curves.tsv").is_file()
    r = runner.invoke(simulate_command, ["--model", "cart-cml", "--target", "X", "--out", str(out)])
    assert isinstance(r.exception, InputError)
