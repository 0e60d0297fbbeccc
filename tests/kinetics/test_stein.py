"""Stein 2019: closed form vs the published table and a numerical solve of the ODEs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.integrate import quad, solve_ivp

from antigenscout.kinetics import simulate
from antigenscout.kinetics._params import STEIN, STEIN_OMEGA2
from antigenscout.kinetics._stein import (
    stein_auc,
    stein_concentration,
    stein_sample,
    stein_typical,
)


def test_typical_patient_reproduces_published_numbers():
    row = simulate("stein2019", typical=True).cohort.iloc[0]
    # Stein 2019 Table 1 / abstract: Cmax 24,000 at 9.3 d; doubling 0.78 d;
    # half-lives 4.3 d and ~220 d (217 unrounded); AUC0-28 ~ 1.72e5 [derived].
    assert row["cmax"] == pytest.approx(24000, rel=1e-12)
    assert row["tmax_days"] == pytest.approx(9.3, rel=1e-12)
    assert row["doubling_time_days"] == pytest.approx(0.78, rel=0.01)
    assert row["half_life_fast_days"] == pytest.approx(4.3, rel=0.01)
    assert row["half_life_slow_days"] == pytest.approx(217, rel=0.01)
    assert row["auc_0_28"] == pytest.approx(1.72e5, rel=0.01)


def _ode_profile(p: dict[str, float], t_eval: np.ndarray) -> np.ndarray:
    """Stein's piecewise ODE (expansion, then E -> M biexponential), solved numerically."""
    rho = math.log(p["foldx"]) / p["tmax"]
    r0 = p["cmax"] / p["foldx"]
    k = p["fb"] * (p["alpha"] - p["beta"])
    up = solve_ivp(
        lambda t, y: [rho * y[0]], (0, p["tmax"]), [r0], rtol=1e-11, atol=1e-12, dense_output=True
    )
    e_tmax = up.y[0, -1]
    down = solve_ivp(
        lambda t, y: [-p["alpha"] * y[0], k * y[0] - p["beta"] * y[1]],
        (p["tmax"], t_eval[-1]),
        [e_tmax, 0.0],
        rtol=1e-11,
        atol=1e-12,
        dense_output=True,
    )
    out = np.empty_like(t_eval)
    before = t_eval < p["tmax"]
    out[before] = up.sol(t_eval[before])[0]
    out[~before] = down.sol(t_eval[~before]).sum(axis=0)
    return out


@pytest.mark.parametrize("seed", [0, 1])
def test_closed_form_matches_numerical_solution(seed):
    rng = np.random.default_rng(seed)
    p = stein_sample(3, rng) if seed else stein_typical()
    t = np.array([0.0, 1.0, 5.0, 9.0, 9.3, 12.0, 28.0, 90.0, 365.0])
    closed = stein_concentration(p, t)
    for i in range(closed.shape[0]):
        pi = {k: float(v[i]) for k, v in p.items()}
        np.testing.assert_allclose(closed[i], _ode_profile(pi, t), rtol=1e-7)

        def f(s, pi=pi):
            q = {k: np.array([v]) for k, v in pi.items()}
            return stein_concentration(q, np.array([s]))[0, 0]

        ref = (
            quad(f, 0, pi["tmax"])[0] + quad(f, pi["tmax"], 28.0)[0]
            if pi["tmax"] < 28
            else quad(f, 0, 28)[0]
        )
        assert stein_auc({k: v[i : i + 1] for k, v in p.items()}, 28.0)[0] == pytest.approx(
            ref, rel=1e-8
        )


def test_published_concentrations_at_later_days():
    # kinetics-literature.md [derived from Table 1]: C(28) 1,374; C(90) 147; C(180) 110; C(365) 61.
    c = stein_concentration(stein_typical(), np.array([28.0, 90.0, 180.0, 365.0]))[0]
    np.testing.assert_allclose(c, [1374, 147, 110, 61], rtol=0.01)


def test_cohort_variability_matches_table_omegas():
    rng = np.random.default_rng(7)
    p = stein_sample(20000, rng)
    for name in ("cmax", "tmax", "alpha", "beta"):
        logp = np.log(p[name])
        assert np.median(p[name]) == pytest.approx(STEIN[name].value, rel=0.03)
        assert logp.std() == pytest.approx(math.sqrt(STEIN_OMEGA2[name]), rel=0.03)
    res = simulate("stein2019", n_patients=400, seed=3)
    band = res.summary["cmax"]
    # 5-95 % band of a lognormal with omega^2 = 0.65 around 24,000.
    w = 1.6448536 * math.sqrt(0.65)
    assert band["median"] == pytest.approx(24000, rel=0.2)
    assert band["p05"] == pytest.approx(24000 * math.exp(-w), rel=0.3)
    assert band["p95"] == pytest.approx(24000 * math.exp(w), rel=0.3)
