"""Michor 2005 hierarchy under imatinib vs its exact (matrix-exponential) solution, and the
composite CAR-T + CML model."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import expm

from antigenscout.kinetics import Scenario, simulate
from antigenscout.kinetics._params import CML_IIV, MICHOR, STEM_ON_TKI


def _michor_exact(t: np.ndarray, potency: float) -> np.ndarray:
    """Michor's leukaemic hierarchy under imatinib of one potency, the stem level declining
    at Fassoni's rate, by the matrix exponential."""
    m = {k: v.value for k, v in MICHOR.items()}
    a = np.array(
        [
            [-STEM_ON_TKI["stem_decline"].value, 0, 0, 0],
            [m["ay"] / 100**potency, -m["d1"], 0, 0],
            [0, m["by"] / 750**potency, -m["d2"], 0],
            [0, 0, m["cy"], -m["d3"]],
        ]
    )
    y0 = np.array([m["Y0"], m["Y1"], m["Y2"], m["Y3"]])
    return np.array([expm(a * ti) @ y0 for ti in t])


def test_michor_under_imatinib_matches_exact_solution():
    # the typical patient has the fitted median potency
    res = simulate("michor2005", typical=True, days=365)
    cur = res.curves[res.curves["quantity"] == "tumour_burden"]
    t = cur["time_days"].to_numpy()
    exact = _michor_exact(t, CML_IIV["potency_median"].value).sum(axis=1)
    np.testing.assert_allclose(cur["typical"].to_numpy(), exact / exact[0], rtol=1e-5)
    stem = res.curves[res.curves["quantity"] == "stem_fraction"]["typical"].to_numpy()
    # under imatinib the stem pool declines at Fassoni's quiescent-exit rate, 0.05/month
    np.testing.assert_allclose(stem, np.exp(-0.05 / 30.44 * t), rtol=1e-6)


def test_michor_published_divisor_biphasic_slopes():
    # Michor's published divisors (potency 1) against Tang et al. 2011 (Blood 118:1622),
    # imatinib: first slope -0.052 +/- 0.018 /d, second slope -0.0057 +/- 0.0038 /d.
    t = np.array([30.0, 60.0, 250.0, 365.0])
    y = _michor_exact(t, 1.0).sum(axis=1)
    first = (np.log(y[1]) - np.log(y[0])) / 30.0
    second = (np.log(y[3]) - np.log(y[2])) / 115.0
    assert first == pytest.approx(-0.052, abs=0.018)
    assert second == pytest.approx(-0.0057, abs=0.0038)


def test_stem_coverage_decides_stem_eradication():
    kw = {"n_patients": 40, "seed": 2, "with_inhibitor": True}
    hi = simulate("cart-cml", scenario=Scenario("IL1RAP", 0.9, stem_coverage=1.0), **kw)
    lo = simulate("cart-cml", scenario=Scenario("IL1RAP", 0.9, stem_coverage=0.0), **kw)
    assert hi.summary["stem_extinct_fraction"] > 0.5
    assert lo.summary["stem_extinct_fraction"] == 0.0
    # antigen-negative stem cells feel only the inhibitor: Fassoni's decline, 0.05/month
    assert lo.summary["stem_fraction_end"]["median"] == pytest.approx(
        np.exp(-0.05 / 30.44 * 365), rel=1e-4
    )
    # stem cells are ~1e-7 of the antigen load, so the CAR-T kinetics barely change
    np.testing.assert_allclose(lo.cohort["cmax"], hi.cohort["cmax"], rtol=1e-4)
