"""Michor 2005 hierarchy under imatinib vs its exact (matrix-exponential) solution, and the
composite CAR-T + CML model."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import expm

from antigenscout.kinetics import Scenario, simulate
from antigenscout.kinetics._params import CML_IIV, MICHOR


def _michor_exact(t: np.ndarray, by_divisor: float) -> np.ndarray:
    m = {k: v.value for k, v in MICHOR.items()}
    a = np.array(
        [
            [m["ry"] - m["d0"], 0, 0, 0],
            [m["ay"] / 100, -m["d1"], 0, 0],
            [0, m["by"] / by_divisor, -m["d2"], 0],
            [0, 0, m["cy"], -m["d3"]],
        ]
    )
    y0 = np.array([m["Y0"], m["Y1"], m["Y2"], m["Y3"]])
    return np.array([expm(a * ti) @ y0 for ti in t])


def test_michor_under_imatinib_matches_exact_solution():
    # the typical patient has the fitted median imatinib divisor of by
    res = simulate("michor2005", typical=True, days=365)
    cur = res.curves[res.curves["quantity"] == "tumour_burden"]
    t = cur["time_days"].to_numpy()
    exact = _michor_exact(t, CML_IIV["by_divisor_median"].value).sum(axis=1)
    np.testing.assert_allclose(cur["typical"].to_numpy(), exact / exact[0], rtol=1e-5)
    stem = res.curves[res.curves["quantity"] == "stem_fraction"]["typical"].to_numpy()
    # imatinib spares stem cells: they keep growing at ry - d0 = 0.005/d
    np.testing.assert_allclose(stem, np.exp(0.005 * t), rtol=1e-6)


def test_michor_published_divisor_biphasic_slopes():
    # Michor's published divisor (750) against Tang et al. 2011 (Blood 118:1622), imatinib:
    # first slope -0.052 +/- 0.018 /d, second slope -0.0057 +/- 0.0038 /d (mean +/- SD).
    t = np.array([30.0, 60.0, 250.0, 365.0])
    y = _michor_exact(t, MICHOR["by_imatinib_divisor"].value).sum(axis=1)
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
    assert lo.summary["stem_fraction_end"]["p05"] > 1.0  # Ag- stem cells untouched, growing
    # stem cells are ~1e-7 of the antigen load, so the CAR-T kinetics barely change
    np.testing.assert_allclose(lo.cohort["cmax"], hi.cohort["cmax"], rtol=1e-4)
