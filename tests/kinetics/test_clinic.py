"""Clinical calibration (B-ALL, CML under imatinib), antigen-driven expansion, the healthy
compartment and indication checks, products, units and physical ranges."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from scipy.linalg import expm

from antigenscout._errors import InputError
from antigenscout.kinetics import Scenario, scenario_from_run, simulate
from antigenscout.kinetics._calibrate import (
    ESCAPE_FIT_TARGET,
    bcr_abl_ratio_at,
    fit_cml_iiv,
    recovered_fraction_1y,
    relapse_among_remitters_1y,
)
from antigenscout.kinetics._cli import simulate_command
from antigenscout.kinetics._models import antigen_factor
from antigenscout.kinetics._params import (
    BALL_FIT,
    CML_IIV,
    ESCAPE,
    MICHOR,
    MRD_THRESHOLD,
    PRODUCTS,
    STEM_ON_TKI,
)
from antigenscout.kinetics._stein import stein_concentration, stein_typical

# ---- B-ALL -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ball():
    return simulate("cart-leukaemia", n_patients=1000, seed=0)


def test_ball_clinical_endpoints(ball):
    s = ball.summary
    # CHECK (not fitted): axi-cel single centre, B cells undetectable at day 30 in 88 %.
    assert s["healthy_depleted_fraction_day30"] >= 0.75
    # FIT target 50 % (Kimmel 2021); the acceptance band 0.3-0.75.
    assert 0.3 <= s["healthy_recovered_fraction_1y"] <= 0.75
    # CHECK (not fitted): CR 63 % (FDA, n = 63; 95 % CI 50-75 %) to 85.5 % (real world).
    assert 0.5 <= s["remission_fraction"] <= 0.855


def test_escape_fit_reproduces_its_target_and_the_checks_hold(ball):
    # the stored carrier share is the bisection result on this cohort (n = 2000)
    got = relapse_among_remitters_1y(ESCAPE["carrier_fraction"].value)
    assert got == pytest.approx(ESCAPE_FIT_TARGET, abs=0.01)
    s, c = ball.summary, ball.cohort
    # the clinical band for relapse among remitters by 1 year
    assert 0.25 <= s["relapse_among_remitters_1y"] <= 0.55
    # CHECK (not fitted): relapses while the CAR-T still holds B cells down are antigen-
    # negative (Pulsipher 2022: 23 of 25); with B cells back, CD19+ relapses appear
    rel = c[c["time_to_relapse_days"].notna()]
    aplasia = rel["healthy_recovery_day"].isna() | (
        rel["healthy_recovery_day"] > rel["time_to_relapse_days"]
    )
    assert rel.loc[aplasia, "relapse_antigen_negative"].mean() >= 0.75
    assert rel.loc[~aplasia, "relapse_antigen_negative"].mean() < 0.6
    # the summary's share is antigen-negative relapses / relapses, by hand
    assert s["antigen_negative_relapse_fraction"] == pytest.approx(
        rel["relapse_antigen_negative"].mean()
    )
    # clones: a share of patients, each between one cell and the MRD threshold
    clone = c["antigen_negative_clone"]
    assert (clone > 0).mean() == pytest.approx(ESCAPE["carrier_fraction"].value, abs=0.05)
    assert clone.max() <= MRD_THRESHOLD


def test_an_antigen_negative_clone_regrows_at_the_blast_rate():
    """A remitter with a clone relapses when the clone alone reaches the MRD threshold:
    clone x exp(rho_L t) = 1e-4 (León-Triana rho_L = 1/30 per day), by hand."""
    res = simulate("cart-leukaemia", n_patients=400, seed=5, days=730)
    c = res.cohort
    neg = c[(c["relapse_antigen_negative"] == 1.0) & (c["antigen_negative_clone"] > 0)]
    expected = np.log(MRD_THRESHOLD / neg["antigen_negative_clone"]) * 30.0
    # antigen-positive cells regrowing once the CAR-T wanes can only bring relapse earlier
    assert (neg["time_to_relapse_days"] <= expected + 1.5).all()
    # and mostly the clone alone decides the day (where antigen-positive cells remain on
    # the day of relapse, they bring it earlier)
    exact = np.abs(neg["time_to_relapse_days"] - expected) <= 1.5
    assert len(neg) > 50
    assert exact.mean() >= 0.8  # 89 % on this cohort


def test_ball_car_t_is_stein_closed_form():
    # CD19 on every leukaemic and healthy B cell = the reference antigen load, so the
    # typical patient's CAR-T curve is Stein's typical curve exactly.
    res = simulate("cart-leukaemia", typical=True, days=90)
    cur = res.curves[res.curves["quantity"] == "car_t"]
    ref = stein_concentration(stein_typical(), cur["time_days"].to_numpy())[0]
    np.testing.assert_allclose(cur["typical"].to_numpy(), ref, rtol=1e-12)
    assert res.cohort["cmax"].iloc[0] == pytest.approx(24000, rel=1e-12)
    assert res.cohort["tmax_days"].iloc[0] == pytest.approx(9.3, rel=1e-12)


def test_ball_ec50_fit_reproduces_its_target():
    # the stored EC50 is the bisection result on this cohort (n = 2000, seed 20240601)
    frac = recovered_fraction_1y(BALL_FIT["ec50"].value)
    assert frac == pytest.approx(0.5, abs=0.003)


def test_lower_coverage_lowers_expansion_and_lets_antigen_negative_cells_escape(ball):
    sc = Scenario(
        "CD19", tumour_coverage=0.5, healthy_cell_type="B cell", healthy_positive_fraction=1.0
    )
    half = simulate("cart-leukaemia", n_patients=1000, seed=0, scenario=sc)
    # antigen load (0.5*5e10 + 2.5e10)/(7.5e10) = 2/3 of the reference: factor 2A/(A+Aref)
    s_ag = antigen_factor(5e10, 7.5e10)
    assert s_ag == pytest.approx(0.8)
    assert half.cohort["antigen_factor"].iloc[0] == pytest.approx(0.8)
    assert half.summary["cmax"]["median"] < ball.summary["cmax"]["median"]
    assert half.summary["remission_fraction"] == 0.0  # half the tumour is never touched
    assert half.cohort["antigen_negative_fraction_end"].median() > 0.5


def test_antigen_factor_hand_values():
    assert antigen_factor(0.0, 5.0) == 0.0
    assert antigen_factor(5.0, 5.0) == 1.0
    assert antigen_factor(15.0, 5.0) == pytest.approx(1.5)  # 2*15/20


# ---- CML under imatinib ------------------------------------------------------------------


def _exact_ratio(potency: float, day: float) -> float:
    m = {k: v.value for k, v in MICHOR.items()}
    a = np.array(
        [
            [-STEM_ON_TKI["stem_decline"].value, 0, 0, 0],
            [m["ay"] / 100**potency, -m["d1"], 0, 0],
            [0, m["by"] / 750**potency, -m["d2"], 0],
            [0, 0, m["cy"], -m["d3"]],
        ]
    )
    y = expm(a * day) @ np.array([m["Y0"], m["Y1"], m["Y2"], m["Y3"]])
    return y[3] / (y[3] + 2 * m["X3"])


@pytest.mark.parametrize("potency", [0.1, 0.41, 1.0])
def test_bcr_abl_ratio_matches_matrix_exponential(potency):
    assert bcr_abl_ratio_at(potency) == pytest.approx(_exact_ratio(potency, 365.0), rel=1e-6)


def test_cml_fit_is_reproducible_and_hits_iris():
    med, om = fit_cml_iiv()
    assert med == pytest.approx(CML_IIV["potency_median"].value, rel=1e-4)
    assert om == pytest.approx(CML_IIV["potency_omega"].value, rel=1e-4)
    # the fitted lognormal puts 69 % at or below 1 % and 39 % at or below 0.1 % (IRIS)
    res = simulate("michor2005", n_patients=4000, seed=1)
    r = res.cohort["bcr_abl_ratio_12m"]
    assert (r <= 1e-2).mean() == pytest.approx(0.69, abs=0.025)
    assert res.summary["mmr_fraction_12m"] == pytest.approx(0.39, abs=0.025)


def test_imatinib_responses_keep_deepening_over_five_years():
    """Checked, not fitted (the fit is IRIS at 12 months): MMR by 24 months above MMR by 12
    months and near ENESTnd's imatinib arm (44 % by 24 months); cumulative MMR never falls;
    the stem pool shrinks under therapy."""
    res = simulate("michor2005", n_patients=2000, seed=3, days=1825)
    s = res.summary
    by = [s[f"mmr_cumulative_fraction_{m}m"] for m in (12, 24, 36, 48, 60)]
    assert all(b >= a for a, b in itertools.pairwise(by))
    assert s["mmr_fraction_24m"] > s["mmr_fraction_12m"] + 0.05
    assert 0.35 <= s["mmr_cumulative_fraction_24m"] <= 0.6
    assert s["stem_fraction_end"]["median"] < 0.1
    assert s["units"]["mmr_cumulative_fraction_24m"] == "fraction of patients"
    assert "mmr_cumulative_fraction_<m>m" in s["definitions"]


def test_michor_cohort_summary_has_12_month_endpoints(tmp_path):
    res = simulate("michor2005", n_patients=200, seed=0)
    s = res.summary
    band = s["bcr_abl_ratio_12m"]
    assert set(band) >= {"median", "p05", "p95"}
    assert 1e-4 < band["median"] < 1e-2  # near 1e-3
    assert band["p95"] / band["p05"] > 100  # patients spread
    assert 0.22 <= s["mmr_fraction_12m"] <= 0.5  # ENESTnd 22 % .. IRIS 39 % (+ sampling)
    assert s["units"]["bcr_abl_ratio_12m"].startswith("fraction")


# ---- target-driven CAR-T in CML ----------------------------------------------------------


@pytest.fixture
def cml_run(tmp_path):
    pd.DataFrame(
        {
            "target": ["HIGH", "LOW", "LIVER"],
            "tumor_coverage": [0.9, 0.1, 0.5],
            "coverage__HSC-like": [0.9, 0.1, 0.5],
        }
    ).to_csv(tmp_path / "targets.tsv", sep="\t", index=False)
    pd.DataFrame(
        {
            "target": ["HIGH", "HIGH", "LOW", "LIVER", "LIVER"],
            "context": ["blood", "liver", "blood", "liver", "blood"],
            "name": ["Monocytes", "Hepatocytes", "Monocytes", "Hepatocytes", "Monocytes"],
            "tissue": ["blood", "liver", "blood", "liver", "blood"],
            "system": ["immune (myeloid)", "hepatobiliary", "immune (myeloid)"] * 1
            + ["hepatobiliary", "immune (myeloid)"],
            "positive_fraction": [0.5, 0.4, 0.5, 0.6, 0.05],
            "vital_weight": [0.6, 1.0, 0.6, 1.0, 0.6],
            "risk": [0.3, 0.4, 0.3, 0.6, 0.03],
        }
    ).to_csv(tmp_path / "risk.tsv", sep="\t", index=False)
    pd.DataFrame(
        {"target": ["HIGH", "LOW", "LIVER"], "CML01": [0.95, 0.2, 0.5], "CML02": [0.85, 0.0, 0.5]}
    ).to_csv(tmp_path / "patient_coverage.tsv", sep="\t", index=False)
    return tmp_path


def test_coverage_drives_car_t_expansion(cml_run):
    kw = {"n_patients": 50, "seed": 0, "with_inhibitor": True}
    hi = simulate("cart-cml", scenario=scenario_from_run(cml_run, "HIGH"), **kw)
    lo = simulate("cart-cml", scenario=scenario_from_run(cml_run, "LOW"), **kw)
    for key in ("cmax", "auc_0_28"):
        assert hi.summary[key]["median"] > 1.2 * lo.summary[key]["median"]
    # per-patient coverages of patient_coverage.tsv are drawn per virtual patient
    assert set(np.round(hi.cohort["tumour_coverage"], 6)) <= {0.95, 0.85}
    assert hi.summary["warnings"] == [] or all(
        "Hepatocytes" in w or "indication" not in w for w in hi.summary["warnings"]
    )


def test_indication_from_patient_ids_and_hepatocyte_flag(cml_run):
    sc = scenario_from_run(cml_run, "HIGH")
    assert sc.indication == "CML"
    assert sc.healthy_cell_type == "Monocytes"  # most engaged context with a turnover
    assert any("Hepatocytes" in w and "not simulated" in w for w in sc.warnings)
    res = simulate("cart-cml", scenario=sc, n_patients=5, seed=0)
    assert any("Hepatocytes" in w for w in res.summary["warnings"])


def test_hepatocytes_need_a_turnover_and_their_loss_is_flagged(cml_run):
    with pytest.raises(InputError, match="published turnover"):
        scenario_from_run(cml_run, "LIVER", healthy="Hepatocytes")
    sc = scenario_from_run(cml_run, "LIVER", healthy="Hepatocytes", healthy_turnover_per_day=0.0025)
    res = simulate("cart-cml", scenario=sc, n_patients=20, seed=0)
    assert any("vital weight 1" in w and "falls below" in w for w in res.summary["warnings"])


def test_target_missing_from_risk_is_refused(cml_run):
    risk = pd.read_csv(cml_run / "risk.tsv", sep="\t")
    risk[risk["target"] != "LOW"].to_csv(cml_run / "risk.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match="--highlight LOW"):
        scenario_from_run(cml_run, "LOW")


def test_other_indication_refused_unless_allowed(cml_run):
    (cml_run / "run.json").write_text(json.dumps({"command": "demo"}))
    sc = scenario_from_run(cml_run, "HIGH")
    assert sc.indication == "AML"
    with pytest.raises(InputError, match="AML data but 'cart-cml' models CML"):
        simulate("cart-cml", scenario=sc, n_patients=5)
    res = simulate("cart-cml", scenario=sc, n_patients=5, allow_other_indication=True)
    assert any("AML data" in w for w in res.summary["warnings"])


def test_cli_healthy_and_indication(cml_run, tmp_path):
    runner = CliRunner()
    out = tmp_path / "sim"
    args = ["--model", "cart-cml", "--from", str(cml_run), "--target", "HIGH", "--out", str(out)]
    r = runner.invoke(simulate_command, [*args, "--patients", "10", "--healthy", "Hepatocytes"])
    assert isinstance(r.exception, InputError)
    assert "--healthy-turnover" in str(r.exception)
    r = runner.invoke(simulate_command, [*args, "--patients", "10"])
    assert r.exit_code == 0, r.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scenario"]["healthy_cell_type"] == "Monocytes"
    r = runner.invoke(
        simulate_command, ["--model", "stein2019", "--healthy", "B cells", "--out", str(out)]
    )
    assert isinstance(r.exception, InputError)


def test_cli_user_given_coverages_and_the_seed_scenario(tmp_path):
    """IL1RAP CAR-T with imatinib, coverages given by the user (no CML ranking at hand): the
    antigen-positive stem cells are cleared, so the stem pool at 1 year is (1 - stem
    coverage) of imatinib alone's; it is recorded as user-given."""
    runner = CliRunner()
    base = ["--model", "cart-cml", "--patients", "20", "--target", "IL1RAP"]
    out = tmp_path / "il1rap"
    args = [*base, "--tumour-coverage", "0.8", "--stem-coverage", "0.95"]
    args += ["--healthy-cell-type", "monocyte", "--healthy-positive-fraction", "0.9"]
    r = runner.invoke(simulate_command, [*args, "--with-inhibitor", "--out", str(out)])
    assert r.exit_code == 0, r.output
    s = json.loads((out / "summary.json").read_text())
    run = json.loads((out / "run.json").read_text())
    assert run["params"]["coverage_source"] == "user-given"
    assert s["scenario"]["source"].startswith("user-given")
    assert s["scenario"]["stem_coverage"] == 0.95
    alone = simulate("michor2005", n_patients=20)
    ratio = s["stem_fraction_end"]["median"] / alone.summary["stem_fraction_end"]["median"]
    assert ratio == pytest.approx(0.05, rel=1e-3)  # >= 90 % more stem cells cleared
    # misuse is refused with the fix named
    for bad, word in (
        ([*base, "--out", str(tmp_path / "x")], "--tumour-coverage"),
        ([*base, "--stem-coverage", "0.5", "--out", str(tmp_path / "x")], "--tumour-coverage"),
        (
            [
                *base,
                "--tumour-coverage",
                "0.5",
                "--healthy-cell-type",
                "monocyte",
                "--out",
                str(tmp_path / "x"),
            ],
            "--healthy-positive-fraction",
        ),
        ([*base, "--tumour-coverage", "1.5", "--out", str(tmp_path / "x")], "tumour_coverage"),
        (
            ["--model", "cart-leukaemia", "--tumour-coverage", "0.3", "--out", str(tmp_path / "x")],
            "--target",
        ),
        (
            [
                "--model",
                "cart-leukaemia",
                "--target",
                "CD19",
                "--tumour-coverage",
                "0.3",
                "--stem-coverage",
                "0.5",
                "--out",
                str(tmp_path / "x"),
            ],
            "flat tumour",
        ),
    ):
        r = runner.invoke(simulate_command, bad)
        assert isinstance(r.exception, InputError), (bad, r.output)
        assert word in str(r.exception)
    r = runner.invoke(simulate_command, [*base, "--tumour-coverage", "0.5", "--out", str(out)])
    assert r.exit_code == 0
    s = json.loads((out / "summary.json").read_text())
    assert any("not simulated" in w for w in s["warnings"])


# ---- products ----------------------------------------------------------------------------


def test_allogeneic_rejection_is_first_order_after_onset():
    auto = simulate("cart-leukaemia", typical=True, days=120)
    allo = simulate("cart-leukaemia", typical=True, days=120, product="allogeneic-car-t")
    a = auto.curves[auto.curves["quantity"] == "car_t"].set_index("time_days")["typical"]
    b = allo.curves[allo.curves["quantity"] == "car_t"].set_index("time_days")["typical"]
    prod = PRODUCTS["allogeneic-car-t"]
    k, t0 = float(prod["clearance_per_day"]), float(prod["clearance_day"])
    t = a.index.to_numpy()
    expected = a.to_numpy() * np.exp(-k * np.maximum(t - t0, 0.0))
    np.testing.assert_allclose(b.to_numpy(), expected, rtol=1e-12)


def test_car_nk_has_no_persistent_phase():
    auto = simulate("cart-leukaemia", n_patients=300, seed=0)
    nk = simulate("cart-leukaemia", n_patients=300, seed=0, product="car-nk")
    assert nk.summary["car_t_day90"]["median"] < 1e-2 * auto.summary["car_t_day90"]["median"]
    assert (
        nk.summary["healthy_recovered_fraction_1y"] > auto.summary["healthy_recovered_fraction_1y"]
    )
    assert "none" in nk.summary["product"]["gvhd"]
    typ = simulate("cart-leukaemia", typical=True, days=60, product="car-nk").cohort.iloc[0]
    # FB = 0: C(t) = Cmax * exp(-alpha (t - Tmax)) after the peak (hand value at day 28)
    assert typ["car_t_day28"] == pytest.approx(24000 * math.exp(-0.16 * (28 - 9.3)), rel=1e-9)


def test_product_only_for_composed_models():
    with pytest.raises(InputError, match="product"):
        simulate("stein2019", product="car-nk")


# ---- units and physical ranges -----------------------------------------------------------


@pytest.mark.parametrize("model", ["cart-leukaemia", "michor2005", "kimmel2021"])
def test_units_and_ranges(model):
    res = simulate(model, n_patients=50, seed=3)
    s = res.summary
    for key, value in s.items():
        if isinstance(value, dict | float) and key not in {
            "settings",
            "definitions",
            "units",
            "scenario",
            "product",
        }:
            assert key in s["units"], key
    for q in set(res.curves["quantity"]):
        assert q in s["units"], q
    cur = res.curves.set_index("quantity")
    for q, hi in (("healthy_fraction", 1.0), ("bcr_abl_ratio", 1.0), ("tumour_burden", 100.0)):
        if q in cur.index:
            v = cur.loc[q, ["p05", "p50", "p95", "typical"]].to_numpy()
            assert (v >= 0).all(), q
            assert (v <= hi + 1e-9).all(), q
