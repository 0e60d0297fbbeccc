"""Model registry and per-patient parameter / initial-state construction."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .._errors import InputError
from . import _kernels as K
from ._params import (
    BALL_FIT,
    CML_IIV,
    ESCAPE,
    HEALTHY_POOL,
    KIMMEL,
    KIMMEL_IIV_OMEGA,
    KIMMEL_R_B_RANGE,
    LEON_TRIANA,
    MICHOR,
    MRD_THRESHOLD,
    PRODUCTS,
    STEM_ON_TKI,
)
from ._scenario import Scenario
from ._stein import stein_sample, stein_typical

__all__ = ["MODELS", "ModelSpec", "antigen_factor", "build_ode_cohort", "get_model", "models"]


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
    car_kinetics: str | None = None  # "stein", "kimmel" or None
    indication: str | None = None  # disease the scenario is calibrated for


_KIMMEL_REF = "Kimmel, Locke & Altrock 2021 Proc R Soc B 288:20210229 (BIOMD0000001041)"
_MICHOR_REF = "Michor et al. 2005 Nature 435:1267"
_STEIN_REF = "Stein et al. 2019 CPT Pharmacometrics Syst Pharmacol 8:285, Table 1"
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
            car_kinetics="kimmel",
            indication="LBCL",
        ),
        ModelSpec(
            "michor2005",
            "CML hierarchy (stem, progenitor, differentiated, terminal; normal and "
            "leukaemic) under imatinib: progenitor output divided by 100 and by a per-patient "
            "divisor (lognormal, fitted to IRIS 12-month CCyR and MMR), stem cells spared.",
            _MICHOR_REF,
            "ode",
            "hierarchy",
            False,
            False,
            True,
            indication="CML",
        ),
        ModelSpec(
            "cart-leukaemia",
            "B-ALL: Stein 2019 tisagenlecleucel kinetics (B-ALL population, Table 1 IIV; "
            "expansion scaled by the antigen load) killing antigen-positive leukaemic and "
            "healthy B cells with Kimmel 2021's saturating term (half-saturation fitted to "
            "1-year B-cell recovery); León-Triana 2021 blast growth, burden and B-cell "
            "turnover. Default: CD19.",
            f"{_STEIN_REF}; {_KIMMEL_REF}; {_LEON_REF}",
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
                indication="B-ALL",
            ),
            car_kinetics="stein",
            indication="B-ALL",
        ),
        ModelSpec(
            "cart-cml",
            "Kimmel 2021 CAR-T kinetics (carrying capacity scaled by the antigen load) and "
            "killing applied per antigen-positive cell of the Michor 2005 CML hierarchy "
            "(stem/progenitor/differentiated/terminal, each split antigen +/-) + a healthy "
            "antigen-positive cell type; optional imatinib (per-patient effect fitted to "
            "IRIS). Needs a scenario.",
            f"{_KIMMEL_REF}; {_MICHOR_REF}; {_LEON_REF}",
            "ode",
            "hierarchy",
            True,
            True,
            False,
            car_kinetics="kimmel",
            indication="CML",
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


def antigen_factor(load: np.ndarray | float, reference: float) -> np.ndarray:
    """Relative expansion stimulus of an antigen load (cells) against a trial's reference load.

    ``phi(A) = A / (A + K_A)`` (the saturating antigen-driven expansion of Chaudhury 2020,
    BIOMD0000001025, in a static form: Singh 2021 and Hardiansyah & Ng 2019 report that
    baseline burden, not dose, drives exposure), with ``K_A`` = the reference load
    (ASSUMPTION: half-maximal stimulation at the burden of the trial the kinetics were fitted
    on). Returned as ``phi(A) / phi(A_ref) = 2 A / (A + A_ref)``: 1 at the reference load,
    0 without antigen, at most 2.
    """
    a = np.asarray(load, dtype=float)
    return 2.0 * a / (a + reference)


def _healthy_pool(scenario: Scenario | None) -> tuple[float, str]:
    """Cells in the healthy antigen-positive pool at baseline (0 when not published)."""
    if scenario is None or scenario.healthy_positive_fraction == 0.0:
        return 0.0, "no antigen-positive healthy cells"
    name = (scenario.healthy_cell_type or "").lower()
    for key, (cells, src) in HEALTHY_POOL.items():
        if key in name:
            return cells, src
    return 0.0, "no published pool size: killed, but not counted in the antigen load"


def _tumour_coverage(
    scenario: Scenario | None, n: int, rng: np.random.Generator | None
) -> np.ndarray:
    """Per-patient bulk tumour coverage: a ranking patient's coverage drawn per virtual patient."""
    if scenario is None:
        return np.ones(n)
    if rng is not None and scenario.patient_coverage:
        return rng.choice(np.asarray(scenario.patient_coverage, dtype=float), size=n)
    return np.full(n, scenario.tumour_coverage)


def escape_clones(
    n: int, rng: np.random.Generator | None, carriers: float, burden_cells: float
) -> np.ndarray:
    """Per patient, the antigen-negative subclone's share of the tumour at infusion.

    A share ``carriers`` of the patients carries one, of a size log-uniform between one
    cell (``1 / burden_cells``) and :data:`MRD_THRESHOLD` (``ESCAPE`` in ``_params``); the
    others, and the typical patient (``rng=None``), carry none. The draws come from a child
    of ``rng`` (``spawn``), so the cohort's other draws are those of a run without escape,
    and a larger ``carriers`` keeps every earlier carrier (common random numbers).

    >>> import numpy as np
    >>> f = escape_clones(10_000, np.random.default_rng(0), 0.25, 1e10)
    >>> round(float((f > 0).mean()), 2), bool(f.max() <= 1e-4), bool(f[f > 0].min() >= 1e-10)
    (0.25, True, True)
    """
    if rng is None:
        return np.zeros(n)
    child = rng.spawn(1)[0]
    u, v = child.random(n), child.random(n)
    lo, hi = math.log(1.0 / burden_cells), math.log(MRD_THRESHOLD)
    return np.where(u < carriers, np.exp(lo + v * (hi - lo)), 0.0)


def build_ode_cohort(  # noqa: PLR0912, PLR0913, PLR0915
    spec: ModelSpec,
    n: int,
    rng: np.random.Generator | None,
    scenario: Scenario | None,
    *,
    inhibitor: bool,
    inhibitor_stop_day: float | None,
    product: str = "autologous-car-t",
    ec50: float | None = None,
    cml_iiv: tuple[float, float] | None = None,
    carriers: float | None = None,
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """Parameters (n, N_PARAMS), initial states (n, N_STATES) and a table of sampled values.

    ``rng=None`` gives ``n`` typical patients. ``ec50``, ``cml_iiv`` and ``carriers`` (the
    share of patients with an antigen-negative subclone) override the fitted values of
    ``_params`` (used by the calibration).
    """
    if product not in PRODUCTS:
        msg = f"unknown product {product!r}; choose one of {sorted(PRODUCTS)}."
        raise InputError(msg)
    prod = PRODUCTS[product]
    p = np.zeros((n, K.N_PARAMS))
    y0 = np.zeros((n, K.N_STATES))
    kv = {k: v.value for k, v in KIMMEL.items()}
    sampled: dict[str, np.ndarray] = {}

    def iiv(name: str, typical: float | None = None) -> np.ndarray:
        base = np.full(n, kv[name] if typical is None else typical)
        if rng is not None and spec.car_t:
            base = base * _lognormal(rng, n, KIMMEL_IIV_OMEGA[name])
        return base

    sc = scenario
    stein = spec.car_kinetics == "stein"
    p[:, K.P_KN] = kv["K_N"]
    p[:, K.P_RN] = kv["r_N"]
    p[:, K.P_A] = kv["a"]
    p[:, K.P_B] = kv["b"]
    p[:, K.P_AUC_END] = 28.0
    p[:, K.P_TKI_STOP] = -1.0
    p[:, K.P_MODE] = K.MODE_STEIN if stein else K.MODE_KIMMEL
    cov = _tumour_coverage(sc, n, rng)
    pool, _ = _healthy_pool(sc)
    hpos = 0.0 if sc is None else sc.healthy_positive_fraction

    # ---- tumour -------------------------------------------------------------------
    if spec.tumour == "flat":
        if stein:
            lt = {k: v.value for k, v in LEON_TRIANA.items()}
            r_b = np.full(n, lt["rho_L"])
            b0 = lt["L0"] / kv["cells_per_mL"]  # in units of 1e9 cells
            load_ref = lt["L0"] + lt["B0"]
            load = cov * lt["L0"] + hpos * pool
        else:
            r_b = (
                rng.uniform(*KIMMEL_R_B_RANGE, size=n) if rng is not None else np.full(n, kv["r_B"])
            )
            sampled["r_B"] = r_b
            b0 = kv["B0"]
            load_ref = b0 * kv["cells_per_mL"]
            load = cov * load_ref + hpos * pool
        if spec.car_t and sc is not None:
            # antigen escape: a pre-existing antigen-negative subclone in some patients, on
            # top of the measured (or given) antigen-negative share
            q = ESCAPE["carrier_fraction"].value if carriers is None else carriers
            clone = escape_clones(n, rng, q, b0 * kv["cells_per_mL"])
            cov = cov * (1.0 - clone)
            sampled["antigen_negative_clone"] = clone
        base = K.P_LEVEL + 4 * 3
        p[:, base] = r_b
        p[:, base + 3] = cov
        y0[:, K.S_L + 6] = cov * b0
        y0[:, K.S_L + 7] = (1.0 - cov) * b0
        p[:, K.P_EXT] = 1.0 / kv["cells_per_mL"]
    else:
        m = {k: v.value for k, v in MICHOR.items()}
        c_stem = np.full(n, 1.0 if sc is None else sc.stem)
        c_prog = np.full(n, 1.0 if sc is None else sc.progenitor)
        covs = (c_stem, c_prog, c_prog, cov)
        levels = (
            (m["ry"], m["d0"], 0.0, m["Y0"]),
            (0.0, m["d1"], m["ay"], m["Y1"]),
            (0.0, m["d2"], m["by"], m["Y2"]),
            (0.0, m["d3"], m["cy"], m["Y3"]),
        )
        load = np.zeros(n)
        for k, (g, d, a, init) in enumerate(levels):
            base = K.P_LEVEL + 4 * k
            p[:, base : base + 3] = (g, d, a)
            p[:, base + 3] = covs[k]
            y0[:, K.S_L + 2 * k] = covs[k] * init
            y0[:, K.S_L + 2 * k + 1] = (1.0 - covs[k]) * init
            load += covs[k] * init
        load = load + hpos * pool
        load_ref = kv["B0"] * kv["cells_per_mL"]
        med, omega = (
            (CML_IIV["potency_median"].value, CML_IIV["potency_omega"].value)
            if cml_iiv is None
            else cml_iiv
        )
        potency = np.full(n, med)
        if rng is not None:
            # drawn with or without the inhibitor, so both arms share their other draws
            eta = _lognormal(rng, n, omega)
            if inhibitor:
                potency = med * eta
        if inhibitor:
            sampled["imatinib_potency"] = potency
        # one per-patient potency e scales the drug's effect on the leukaemic output in log
        # terms: progenitor and precursor output divided by 100**e and 750**e (Michor's
        # divisors at e = 1). The stem pool declines at Fassoni's quiescent-exit rate in every
        # patient: that rate is the quiescent cells', not the drug's, once the drug kills
        # cycling stem cells faster than they grow (Fassoni: e_TKI 1.2/month > p_y 0.2/month)
        p[:, K.P_STEM_TKI] = m["ry"] - m["d0"] + STEM_ON_TKI["stem_decline"].value
        p[:, K.P_A1_TKI] = m["ay"] / m["ay_imatinib_divisor"] ** potency
        p[:, K.P_A2_TKI] = m["by"] / m["by_imatinib_divisor"] ** potency
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
    if sc is not None:
        sampled["tumour_coverage"] = cov

    # ---- CAR-T kinetics and killing -------------------------------------------------
    if not spec.car_t:
        # No CAR-T: normal T cells sit at their carrying capacity and nothing is killed.
        y0[:, K.S_N] = kv["K_N"]
        p[:, K.P_GAMMA] = 0.0
        p[:, K.P_KB] = kv["k_B"]
        p[:, K.P_KC] = kv["K_C"]
        p[:, K.P_RHOC] = kv["rho_C"]
    else:
        s_ag = np.ones(n) if sc is None and not stein else antigen_factor(load, load_ref)
        sampled["antigen_factor"] = s_ag
        if stein:
            sp = stein_typical() if rng is None else stein_sample(n, rng)
            sp = {k: np.broadcast_to(v, (n,)).copy() for k, v in sp.items()}
            rho = np.log(sp["foldx"]) / sp["tmax"]
            # antigen-driven expansion: the expansion rate scales with the stimulus
            cmax = sp["cmax"] * np.exp(rho * (s_ag - 1.0) * sp["tmax"])
            fb = np.minimum(1.0, sp["fb"] * float(prod["fb_multiplier"]))  # type: ignore[arg-type]
            p[:, K.P_S_RHO] = rho * s_ag
            p[:, K.P_S_TMAX] = sp["tmax"]
            p[:, K.P_S_CMAX] = cmax
            p[:, K.P_S_ALPHA] = sp["alpha"]
            p[:, K.P_S_FB] = fb
            p[:, K.P_S_BETA] = sp["beta"]
            p[:, K.P_REJ_RATE] = prod["clearance_per_day"]
            p[:, K.P_REJ_DAY] = prod["clearance_day"]
            for k, v in sp.items():
                sampled[f"stein_{k}"] = v
            sampled["cmax_stimulated"] = cmax
            e50 = BALL_FIT["ec50"].value if ec50 is None else ec50
            p[:, K.P_GAMMA] = iiv("gamma_B")
            p[:, K.P_KB] = iiv("k_B", e50)
            sampled["gamma_B"] = p[:, K.P_GAMMA].copy()
            sampled["ec50_copies_per_ug"] = p[:, K.P_KB].copy()
        else:
            p[:, K.P_KC] = iiv("K_C") * s_ag
            p[:, K.P_RHOC] = iiv("rho_C")
            p[:, K.P_GAMMA] = iiv("gamma_B")
            p[:, K.P_KB] = iiv("k_B")
            for name, j in (("K_C", K.P_KC), ("rho_C", K.P_RHOC), ("gamma_B", K.P_GAMMA)):
                sampled[name] = p[:, j].copy()
            sampled["k_B"] = p[:, K.P_KB].copy()
            p[:, K.P_REJ_RATE] = prod["kimmel_clearance_per_day"]
            p[:, K.P_REJ_DAY] = prod["kimmel_clearance_day"]
            y0[:, K.S_N] = kv["N0"]
            y0[:, K.S_C] = kv["C0"]

    kh = 1.0 / 60.0 if sc is None or hpos == 0.0 else sc.healthy_turnover()[0]
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
