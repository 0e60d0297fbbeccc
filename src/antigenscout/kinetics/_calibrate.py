"""Calibration of the clinical scenarios: the fits behind ``[fitted]`` values of ``_params.py``.

Each fit uses one published source; the others are kept for checking.

Run: ``python -m antigenscout.kinetics._calibrate {ball,cml,escape}`` (prints the fitted
values).

- ``cml``: imatinib's potency ``e`` (every effect of the drug scaled in log terms; ``e = 1``
  is Michor 2005 with Fassoni 2018's stem decline) varies between patients as a lognormal.
  Its median and log-SD are fitted to two IRIS 12-month endpoints (complete cytogenetic
  response 69 %, read as BCR-ABL <= 1 %; major molecular response 39 %, BCR-ABL <= 0.1 %).
  The BCR-ABL ratio at day 365 decreases monotonically with the potency, so each endpoint
  fixes one quantile of its distribution, and two quantiles fix a lognormal exactly (no
  sampling in the fit).
- ``ball``: the half-saturation ``EC50`` (copies/ug) of CAR-T killing in the B-ALL scenario,
  fitted by bisection on a fixed virtual cohort (common random numbers) so that 50 % of
  patients have B cells back above half of baseline at day 365 (Kimmel 2021).
- ``escape``: the share of B-ALL patients carrying a pre-existing antigen-negative subclone,
  fitted by bisection on a fixed virtual cohort (common random numbers: a larger share keeps
  every earlier carrier) so that 41 % of remitters relapse within a year (ELIANA: 59 % of
  responders relapse-free at 12 months).
"""

from __future__ import annotations

import math
import sys

import numpy as np
from scipy.optimize import brentq
from scipy.stats import norm

from . import _kernels as K
from ._models import atol_vector, build_ode_cohort, get_model
from ._simulate import DEPLETION_THRESHOLD, integrate, ode_endpoints, output_grid

__all__ = [
    "BALL_FIT_TARGET",
    "CML_FIT_TARGETS",
    "ESCAPE_FIT_TARGET",
    "bcr_abl_ratio_at",
    "fit_ball_ec50",
    "fit_cml_iiv",
    "fit_escape",
    "relapse_among_remitters_1y",
]

#: IRIS, imatinib arm, 12 months (Hughes 2003 NEJM 349:1423; O'Brien 2003 NEJM 348:994 /
#: Druker 2006 NEJM 355:2408 for CCyR): (BCR-ABL threshold, fraction of patients at or below).
CML_FIT_TARGETS: tuple[tuple[float, float], ...] = ((1e-2, 0.69), (1e-3, 0.39))
#: Kimmel 2021: only 50 % of patients had recovered any normal B cells by 1 year.
BALL_FIT_TARGET = 0.5
#: ELIANA (Maude 2018 NEJM 378:439): 59 % of responders relapse-free at 12 months.
ESCAPE_FIT_TARGET = 1.0 - 0.59


def bcr_abl_ratio_at(potency: float, day: float = 365.0) -> float:
    """BCR-ABL ratio ``Y3 / (Y3 + 2 X3)`` at ``day`` under imatinib for one potency."""
    spec = get_model("michor2005")
    p, y0, _ = build_ode_cohort(
        spec, 1, None, None, inhibitor=True, inhibitor_stop_day=None, cml_iiv=(potency, 0.0)
    )
    t = output_grid(max(day, 28.0), (day,))
    obs, _ = integrate(y0=y0, params=p, t=t, rtol=1e-9, atol=atol_vector(spec))
    j = int(np.searchsorted(t, day))
    y3 = obs[0, j, K.O_TERMINAL]
    return float(y3 / (y3 + 2.0 * obs[0, j, K.O_X3]))


def fit_cml_iiv() -> tuple[float, float]:
    """Median and log-SD of imatinib's potency fitted to IRIS at 12 months."""
    quantiles: list[tuple[float, float]] = []
    for thr, frac in CML_FIT_TARGETS:

        def f(logd: float, thr: float = thr) -> float:
            return math.log(bcr_abl_ratio_at(math.exp(logd))) - math.log(thr)

        d_star = math.exp(brentq(f, math.log(1e-2), math.log(1e2), xtol=1e-10))
        # ratio <= thr  <=>  potency >= d_star, so P(potency >= d_star) = frac
        quantiles.append((math.log(d_star), float(norm.ppf(1.0 - frac))))
    (l1, z1), (l2, z2) = quantiles
    omega = (l2 - l1) / (z2 - z1)
    median = math.exp(l1 - z1 * omega)
    return median, omega


def recovered_fraction_1y(ec50: float, n: int = 2000, seed: int = 20240601) -> float:
    """Fraction of a fixed ``cart-leukaemia`` cohort with B cells >= half of baseline at 1 y."""
    spec = get_model("cart-leukaemia")
    rng = np.random.default_rng(seed)
    p, y0, _ = build_ode_cohort(
        spec, n, rng, spec.default_scenario, inhibitor=False, inhibitor_stop_day=None, ec50=ec50
    )
    t = output_grid(365.0)
    obs, _ = integrate(y0=y0, params=p, t=t, rtol=1e-6, atol=atol_vector(spec))
    h = obs[:, -1, K.O_HEALTHY] / obs[:, 0, K.O_HEALTHY]
    return float((h >= DEPLETION_THRESHOLD).mean())


def fit_ball_ec50(n: int = 2000, seed: int = 20240601) -> float:
    """EC50 (copies/ug) giving :data:`BALL_FIT_TARGET` B-cell recovery at 1 y (bisection)."""

    def f(log_ec50: float) -> float:
        return recovered_fraction_1y(math.exp(log_ec50), n, seed) - BALL_FIT_TARGET

    lo, hi = math.log(1.0), math.log(1e6)
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if f(mid) < 0:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-4:  # noqa: PLR2004
            break
    return math.exp(0.5 * (lo + hi))


def relapse_among_remitters_1y(carriers: float, n: int = 2000, seed: int = 20240601) -> float:
    """Share of a fixed ``cart-leukaemia`` cohort's remitters who relapse by day 365."""
    spec = get_model("cart-leukaemia")
    rng = np.random.default_rng(seed)
    sc = spec.default_scenario
    p, y0, _ = build_ode_cohort(
        spec, n, rng, sc, inhibitor=False, inhibitor_stop_day=None, carriers=carriers
    )
    t = output_grid(365.0)
    obs, _ = integrate(y0=y0, params=p, t=t, rtol=1e-6, atol=atol_vector(spec))
    end = ode_endpoints(spec, t, obs, sc.healthy_positive_fraction)
    known = end["relapse_1y"].notna().to_numpy()
    return float(end["relapse_1y"][known].astype(float).mean())


def fit_escape(n: int = 2000, seed: int = 20240601) -> float:
    """Carrier share giving :data:`ESCAPE_FIT_TARGET` relapse among remitters at 1 y."""
    lo, hi = 0.0, 1.0
    if relapse_among_remitters_1y(lo, n, seed) >= ESCAPE_FIT_TARGET:
        return 0.0
    for _ in range(30):
        mid = 0.5 * (lo + hi)
        if relapse_among_remitters_1y(mid, n, seed) < ESCAPE_FIT_TARGET:
            lo = mid
        else:
            hi = mid
        if hi - lo < 1e-4:  # noqa: PLR2004
            break
    return 0.5 * (lo + hi)


def main(argv: list[str]) -> None:
    """Print the fitted values (``ball`` and/or ``cml``)."""
    what = argv or ["cml", "ball", "escape"]
    if "cml" in what:
        med, om = fit_cml_iiv()
        print(f"cml: potency_median = {med:.6g}, potency_omega = {om:.6g}")
    if "ball" in what:
        ec50 = fit_ball_ec50()
        print(f"ball: ec50 = {ec50:.6g} copies/ug")
    if "escape" in what:
        print(f"escape: carrier_fraction = {fit_escape():.6g}")


if __name__ == "__main__":
    main(sys.argv[1:])
