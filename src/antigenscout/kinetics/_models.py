"""Model registry and per-patient parameter / initial-state construction."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._errors import InputError
from . import _kernels as K
from ._params import KIMMEL, KIMMEL_IIV_OMEGA, KIMMEL_R_B_RANGE, MICHOR
from ._scenario import Scenario

__all__ = ["MODELS", "ModelSpec", "build_ode_cohort", "get_model", "models"]


@dataclass(frozen=True)
class ModelSpec:
    """Metadata of one simulation model."""

    name: str
    description: str
    reference: str
    kind: str  # "analytic" or "ode"
    tumour: str  # "none", "flat" or "hierarchy"
    car_t: bool
    takes_scenario: bool
    default_inhibitor: bool
    default_scenario: Scenario | None = None


_KIMMEL_REF = "Kimmel, Locke & Altrock 2021 Proc R Soc B 288:20210229 (BIOMD0000001041)"
_MICHOR_REF = "Michor et al. 2005 Nature 435:1267"
_LEON_REF = "León-Triana et al. 2021 Commun Nonlinear Sci Numer Simul 94:105570"

MODELS: dict[str, ModelSpec] = {
    m.name: m
    for m in (
        ModelSpec(
            "stein2019",
            "Tisagenlecleucel cellular kinetics: exponential expansion to Tmax, then "
            "biexponential decline; lognormal IIV on all six parameters (closed form).",
            "Stein et al. 2019 CPT Pharmacometrics Syst Pharmacol 8:285, Table 1",
            "analytic",
            "none",
            True,
            False,
            False,
        ),
        ModelSpec(
            "kimmel2021",
            "Axi-cel (ZUMA-1): normal T / CAR-T competition after lymphodepletion and a "
            "CD19+ tumour killed by CAR-T; IIV from the Table 1 quartile ranges, r_B "
            "uniform on [0.01, 0.5]/d.",
            _KIMMEL_REF,
            "ode",
            "flat",
            True,
            False,
            False,
        ),
        ModelSpec(
            "michor2005",
            "CML hierarchy (stem, progenitor, differentiated, terminal; normal and "
            "leukaemic) under imatinib: progenitor output divided by 100 and 750, stem "
            "cells spared. No published IIV: every patient is the typical one.",
            _MICHOR_REF,
            "ode",
            "hierarchy",
            False,
            False,
            True,
        ),
        ModelSpec(
            "cart-leukaemia",
            "Kimmel 2021 CAR-T kinetics and killing + tumour split into antigen-positive "
            "and antigen-negative cells + a healthy antigen-positive cell type with "
            "production and turnover (León-Triana 2021 structure). Default: CD19.",
            f"{_KIMMEL_REF}; {_LEON_REF}",
            "ode",
            "flat",
            True,
            True,
            False,
            Scenario(
                target="CD19",
                tumour_coverage=1.0,
                healthy_cell_type="B cell",
                healthy_positive_fraction=1.0,
                source="default: CD19 on every leukaemic and healthy B cell (León-Triana 2021)",
            ),
        ),
        ModelSpec(
            "cart-cml",
            "Kimmel 2021 CAR-T kinetics and killing applied per antigen-positive cell of the "
            "Michor 2005 CML hierarchy (stem/progenitor/differentiated/terminal, each split "
            "antigen +/-) + a healthy antigen-positive cell type; optional imatinib-like "
            "inhibitor. Needs a scenario.",
            f"{_KIMMEL_REF}; {_MICHOR_REF}; {_LEON_REF}",
            "ode",
            "hierarchy",
            True,
            True,
            False,
        ),
    )
}


def models() -> pd.DataFrame:
    """Registry of simulation models.

    Returns
    -------
    DataFrame with columns ``name``, ``description``, ``reference``.

    Examples
    --------
    >>> from antigenscout import kinetics
    >>> "stein2019" in set(kinetics.models()["name"])
    True
    """
    return pd.DataFrame(
        [
            {"name": m.name, "description": m.description, "reference": m.reference}
            for m in MODELS.values()
        ]
    )


def get_model(name: str) -> ModelSpec:
    """Look up a model by name, raising :class:`InputError` with the choices."""
    if name not in MODELS:
        msg = f"unknown kinetics model {name!r}; choose one of {sorted(MODELS)}."
        raise InputError(msg)
    return MODELS[name]


def _lognormal(rng: np.random.Generator, n: int, omega: float) -> np.ndarray:
    return np.exp(omega * rng.standard_normal(n))


def build_ode_cohort(
    spec: ModelSpec,
    n: int,
    rng: np.random.Generator | None,
    scenario: Scenario | None,
    *,
    inhibitor: bool,
    inhibitor_stop_day: float | None,
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Parameters (n, N_PARAMS), initial states (n, N_STATES) and a table of sampled values.

    ``rng=None`` gives ``n`` typical patients.
    """
    p = np.zeros((n, K.N_PARAMS))
    y0 = np.zeros((n, K.N_STATES))
    kv = {k: v.value for k, v in KIMMEL.items()}
    sampled: dict[str, np.ndarray] = {}

    def iiv(name: str) -> np.ndarray:
        base = np.full(n, kv[name])
        if rng is not None and spec.car_t:
            base = base * _lognormal(rng, n, KIMMEL_IIV_OMEGA[name])
        sampled[name] = base
        return base

    p[:, K.P_KN] = kv["K_N"]
    p[:, K.P_RN] = kv["r_N"]
    p[:, K.P_A] = kv["a"]
    p[:, K.P_B] = kv["b"]
    p[:, K.P_KC] = iiv("K_C")
    p[:, K.P_RHOC] = iiv("rho_C")
    p[:, K.P_GAMMA] = iiv("gamma_B")
    p[:, K.P_KB] = iiv("k_B")
    p[:, K.P_AUC_END] = 28.0
    p[:, K.P_TKI_STOP] = -1.0
    if spec.car_t:
        y0[:, K.S_N] = kv["N0"]
        y0[:, K.S_C] = kv["C0"]
    else:
        # No CAR-T: normal T cells sit at their carrying capacity and nothing is killed.
        y0[:, K.S_N] = kv["K_N"]
        p[:, K.P_GAMMA] = 0.0
        sampled = {}

    sc = scenario
    if spec.tumour == "flat":
        r_b = rng.uniform(*KIMMEL_R_B_RANGE, size=n) if rng is not None else np.full(n, kv["r_B"])
        sampled["r_B"] = r_b
        cov = 1.0 if sc is None else sc.tumour_coverage
        base = K.P_LEVEL + 4 * 3
        p[:, base] = r_b
        p[:, base + 3] = cov
        b0 = kv["B0"]
        y0[:, K.S_L + 6] = cov * b0
        y0[:, K.S_L + 7] = (1.0 - cov) * b0
        p[:, K.P_EXT] = 1.0 / kv["cells_per_mL"]
    else:
        m = {k: v.value for k, v in MICHOR.items()}
        covs = (1.0, 1.0, 1.0, 1.0)
        if sc is not None:
            covs = (sc.stem, sc.progenitor, sc.progenitor, sc.tumour_coverage)
        levels = (
            (m["ry"], m["d0"], 0.0, m["Y0"]),
            (0.0, m["d1"], m["ay"], m["Y1"]),
            (0.0, m["d2"], m["by"], m["Y2"]),
            (0.0, m["d3"], m["cy"], m["Y3"]),
        )
        for k, (g, d, a, init) in enumerate(levels):
            base = K.P_LEVEL + 4 * k
            p[:, base : base + 4] = (g, d, a, covs[k])
            y0[:, K.S_L + 2 * k] = covs[k] * init
            y0[:, K.S_L + 2 * k + 1] = (1.0 - covs[k]) * init
        p[:, K.P_A1_TKI] = m["ay"] / m["ay_imatinib_divisor"]
        p[:, K.P_A2_TKI] = m["by"] / m["by_imatinib_divisor"]
        if inhibitor:
            p[:, K.P_TKI_STOP] = np.inf if inhibitor_stop_day is None else inhibitor_stop_day
        p[:, K.P_SP] = m["sp"]
        p[:, K.P_AX] = m["ax"]
        p[:, K.P_BX] = m["bx"]
        p[:, K.P_CX] = m["cx"]
        p[:, K.P_DX1] = m["d1"]
        p[:, K.P_DX2] = m["d2"]
        p[:, K.P_DX3] = m["d3"]
        y0[:, K.S_X1] = m["X1"]
        y0[:, K.S_X2] = m["X2"]
        y0[:, K.S_X3] = m["X3"]
        p[:, K.P_EXT] = 1.0

    hpos = 0.0 if sc is None else sc.healthy_positive_fraction
    kh = 1.0 / 60.0 if sc is None else sc.healthy_turnover()[0]
    p[:, K.P_KH] = kh
    p[:, K.P_HPOS] = hpos
    y0[:, K.S_HP] = hpos
    y0[:, K.S_HN] = 1.0 - hpos
    return p, y0, pd.DataFrame(sampled)


def atol_vector(spec: ModelSpec) -> np.ndarray:
    """Absolute tolerances per state: far below one cell for tumour compartments."""
    at = np.full(K.N_STATES, 1e-10)
    ext = 1.0 / KIMMEL["cells_per_mL"].value if spec.tumour == "flat" else 1.0
    at[K.S_L : K.S_L + 8] = 1e-3 * ext
    at[K.S_X1 : K.S_X3 + 1] = 1e-3
    return at
