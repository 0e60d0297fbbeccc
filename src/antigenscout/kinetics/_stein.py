"""Stein 2019 tisagenlecleucel cellular-kinetic model, in closed form.

Equations (Stein 2019 Fig 2 / supplement, as transcribed by nlmixr2lib)::

    t <  Tmax:  dE/dt = rho*E,  E(0) = R0
    t >= Tmax:  dE/dt = -alpha*E;  dM/dt = k*E - beta*M,  k = FB*(alpha - beta)
    C = E + M,  rho = ln(foldx)/Tmax,  R0 = Cmax/foldx

Closed form: ``C = Cmax*exp(rho*(t - Tmax))`` before Tmax and
``C = Cmax*((1 - FB)*exp(-alpha*s) + FB*exp(-beta*s))``, ``s = t - Tmax`` after.
"""

from __future__ import annotations

import numpy as np

from ._params import STEIN, STEIN_OMEGA2

__all__ = ["STEIN_NAMES", "stein_auc", "stein_concentration", "stein_sample", "stein_typical"]

STEIN_NAMES: tuple[str, ...] = ("foldx", "tmax", "cmax", "alpha", "fb", "beta")


def stein_typical() -> dict[str, np.ndarray]:
    """Typical-individual parameters as length-1 arrays."""
    return {k: np.array([STEIN[k].value]) for k in STEIN_NAMES}


def stein_sample(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Sample ``n`` individuals: ``theta_i = theta * exp(eta_i)``, ``eta ~ N(0, omega^2)``.

    The six etas are independent (Stein 2019 Table 1 reports diagonal omegas only).
    """
    eta = rng.standard_normal((len(STEIN_NAMES), n))
    out: dict[str, np.ndarray] = {}
    for j, name in enumerate(STEIN_NAMES):
        out[name] = STEIN[name].value * np.exp(np.sqrt(STEIN_OMEGA2[name]) * eta[j])
    # FB is a fraction; exp(eta) pushes it above 1 with probability < 1e-7.
    out["fb"] = np.minimum(out["fb"], 1.0)
    return out


def _rho(p: dict[str, np.ndarray]) -> np.ndarray:
    return np.log(p["foldx"]) / p["tmax"]


def stein_concentration(p: dict[str, np.ndarray], t: np.ndarray) -> np.ndarray:
    """Transgene level (copies/ug) for each individual at times ``t``: shape (n, len(t))."""
    t = np.asarray(t, dtype=float)[None, :]
    tmax = p["tmax"][:, None]
    cmax = p["cmax"][:, None]
    rho = _rho(p)[:, None]
    s = t - tmax
    before = cmax * np.exp(rho * np.minimum(s, 0.0))
    sp = np.maximum(s, 0.0)
    fb = p["fb"][:, None]
    after = cmax * (
        (1.0 - fb) * np.exp(-p["alpha"][:, None] * sp) + fb * np.exp(-p["beta"][:, None] * sp)
    )
    return np.where(s < 0.0, before, after)


def stein_auc(p: dict[str, np.ndarray], t_end: float) -> np.ndarray:
    """Exact AUC from 0 to ``t_end`` (copies·day/ug) for each individual."""
    tmax = p["tmax"]
    cmax = p["cmax"]
    rho = _rho(p)
    alpha, beta, fb = p["alpha"], p["beta"], p["fb"]
    t1 = np.minimum(t_end, tmax)
    up = cmax * (np.exp(rho * (t1 - tmax)) - np.exp(-rho * tmax)) / rho
    s = np.maximum(t_end - tmax, 0.0)
    down = cmax * ((1.0 - fb) * -np.expm1(-alpha * s) / alpha + fb * -np.expm1(-beta * s) / beta)
    return up + down
