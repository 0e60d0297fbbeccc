"""Published parameter sets, each value with its source.

Every number here is copied from a paper table (or the public model file that encodes it);
values marked ``[derived]`` are arithmetic on sourced numbers, with the arithmetic shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "BALL_FIT",
    "CML_IIV",
    "ESCAPE",
    "HEALTHY_POOL",
    "HEALTHY_TURNOVER",
    "KIMMEL",
    "KIMMEL_IIV_OMEGA",
    "KIMMEL_R_B_RANGE",
    "LEON_TRIANA",
    "MICHOR",
    "MRD_THRESHOLD",
    "PRODUCTS",
    "STEIN",
    "STEIN_OMEGA2",
    "Param",
]

#: z-score of the upper quartile of a standard normal; an interquartile range on the log
#: scale equals ``2 * 0.6745 * omega`` for a lognormal with log-SD ``omega``.
_Z_Q3 = 0.6744897501960817


@dataclass(frozen=True)
class Param:
    """One model parameter: value, unit and where it comes from."""

    value: float
    unit: str
    source: str


# --------------------------------------------------------------------------------------
# Stein et al. 2019, CPT Pharmacometrics Syst Pharmacol 8:285, Table 1 (tisagenlecleucel,
# 90 r/r B-ALL patients, ELIANA + ENSIGN). Final model = base model, no covariates.
# --------------------------------------------------------------------------------------
_STEIN_T1 = "Stein 2019 CPT:PSP 8:285, Table 1"
STEIN: dict[str, Param] = {
    "foldx": Param(3900.0, "-", _STEIN_T1),
    "tmax": Param(9.3, "day", _STEIN_T1),
    "cmax": Param(24000.0, "copies/ug", _STEIN_T1),
    "alpha": Param(0.16, "1/day", _STEIN_T1),
    "fb": Param(0.0079, "-", _STEIN_T1),
    "beta": Param(0.0032, "1/day", _STEIN_T1),
}
#: Inter-individual variances (omega squared, log scale), Stein 2019 Table 1.
STEIN_OMEGA2: dict[str, float] = {
    "foldx": 2.4,
    "tmax": 0.38,
    "cmax": 0.65,
    "alpha": 0.91,
    "fb": 0.8,
    "beta": 0.86,
}

# --------------------------------------------------------------------------------------
# Kimmel, Locke & Altrock 2021, Proc R Soc B 288:20210229, Table 1; per-microlitre values
# as encoded in BioModels BIOMD0000001041 (K_N = 500, K_C = 139, k_B = 4.05 cells/uL;
# tumour in mL, 94.86 mL = 9.486e10 cells).
# --------------------------------------------------------------------------------------
_KIMMEL_T1 = "Kimmel 2021 Proc R Soc B 288:20210229, Table 1 / BIOMD0000001041"
KIMMEL: dict[str, Param] = {
    "K_N": Param(500.0, "cells/uL", _KIMMEL_T1),
    "K_C": Param(139.0, "cells/uL", _KIMMEL_T1),
    "r_N": Param(0.17, "1/day", _KIMMEL_T1),
    "rho_C": Param(0.0251, "1/day", _KIMMEL_T1),
    "a": Param(0.423, "-", _KIMMEL_T1),
    "b": Param(0.525, "1/day", _KIMMEL_T1),
    "r_B": Param(0.01, "1/day", _KIMMEL_T1 + " (SBML value; cohort range 0.01-0.50)"),
    "gamma_B": Param(1.15, "1/day", _KIMMEL_T1),
    "k_B": Param(4.05, "cells/uL", _KIMMEL_T1),
    "N0": Param(6.0, "cells/uL", _KIMMEL_T1),
    "C0": Param(0.36, "cells/uL", _KIMMEL_T1),
    "B0": Param(94.86, "mL", _KIMMEL_T1 + " (median initial tumour mass)"),
    "cells_per_mL": Param(1e9, "cells/mL", "[derived] B(0) 9.486e10 cells / 94.86 mL"),
}
#: Range of the tumour growth rate used for Kimmel's 1,000-patient virtual cohort.
KIMMEL_R_B_RANGE: tuple[float, float] = (0.01, 0.50)


def _omega_from_quartiles(q1: float, q3: float) -> float:
    """Log-SD of a lognormal whose interquartile range is ``[q1, q3]`` [derived]."""
    return math.log(q3 / q1) / (2.0 * _Z_Q3)


#: Lognormal IIV (log-SD) [derived] from the quartile ranges of Kimmel 2021 Table 1:
#: K_C [6.15, 9.65]e10, rho_C [2.08, 3.54]e-2, gamma_B [0.64, 1.35], k_B [1.40, 3.125]e9.
KIMMEL_IIV_OMEGA: dict[str, float] = {
    "K_C": _omega_from_quartiles(6.15, 9.65),
    "rho_C": _omega_from_quartiles(2.08, 3.54),
    "gamma_B": _omega_from_quartiles(0.64, 1.35),
    "k_B": _omega_from_quartiles(1.40, 3.125),
}

# --------------------------------------------------------------------------------------
# Michor et al. 2005, Nature 435:1267, as implemented in radivot/myelo michor05.R.
# --------------------------------------------------------------------------------------
_MICHOR = "Michor 2005 Nature 435:1267 (myelo michor05.R)"
MICHOR: dict[str, Param] = {
    "d0": Param(0.003, "1/day", _MICHOR),
    "d1": Param(0.008, "1/day", _MICHOR),
    "d2": Param(0.05, "1/day", _MICHOR),
    "d3": Param(1.0, "1/day", _MICHOR),
    "ax": Param(0.8, "1/day", _MICHOR),
    "bx": Param(5.0, "1/day", _MICHOR),
    "cx": Param(100.0, "1/day", _MICHOR),
    "ry": Param(0.008, "1/day", _MICHOR),
    "ay": Param(1.6, "1/day", _MICHOR),
    "by": Param(10.0, "1/day", _MICHOR),
    "cy": Param(100.0, "1/day", _MICHOR),
    "ay_imatinib_divisor": Param(100.0, "-", _MICHOR),
    "by_imatinib_divisor": Param(750.0, "-", _MICHOR),
    "sp": Param(2e6, "cells", _MICHOR + " (normal stem set point)"),
    # Initial conditions, Fig 4A.
    "Y0": Param(2.5e5, "cells", _MICHOR + " Fig 4A"),
    "Y1": Param(5e7, "cells", _MICHOR + " Fig 4A"),
    "Y2": Param(1e10, "cells", _MICHOR + " Fig 4A"),
    "Y3": Param(1e12, "cells", _MICHOR + " Fig 4A"),
    "X1": Param(2e8, "cells", _MICHOR + " Fig 4A"),
    "X2": Param(2e10, "cells", _MICHOR + " Fig 4A"),
    "X3": Param(2e12, "cells", _MICHOR + " Fig 4A"),
}

#: Leukaemic stem cells under a kinase inhibitor. Michor 2005 spares them (they keep growing
#: at ry - d0 = 0.005/day, so the BCR-ABL ratio rises again after the first year, against
#: IRIS and ENESTnd, where responses keep deepening). Fassoni et al. 2018 (Roeder-Loeffler
#: reduced to an ODE) let the inhibitor kill cycling stem cells (e_TKI = 1.2/month against
#: their growth p_y = 0.2/month), so under therapy the pool is what remains quiescent, and it
#: shrinks as those cells leave quiescence, at p_xy = 0.05/month. Here the stem level's net
#: rate while the inhibitor is on is that long-run decline, -p_xy [derived: the quiescent
#: pool's exit rate, the slow eigenvalue of Fassoni's two-state system when e_TKI > p_y].
_FASSONI = "Fassoni 2018 Haematologica 103:1825 (myelo CML/Fassoni18), p_xy = 0.05/month"
STEM_ON_TKI: dict[str, Param] = {
    "stem_decline": Param(0.05 / 30.44, "1/day", _FASSONI),
}

# --------------------------------------------------------------------------------------
# León-Triana et al. 2021, Commun Nonlinear Sci Numer Simul 94:105570 (healthy B cells).
# --------------------------------------------------------------------------------------
_LEON = "León-Triana 2021 CNSNS 94:105570, parameter table"
LEON_TRIANA: dict[str, Param] = {
    "tau_B": Param(60.0, "day", _LEON),
    "rho_L": Param(1.0 / 30.0, "1/day", _LEON + " (B-ALL blast growth rate)"),
    "L0": Param(5e10, "cells", _LEON + " (initial leukaemic B cells)"),
    "B0": Param(2.5e10, "cells", _LEON + " (initial healthy B cells)"),
}

#: Turnover rate (1/day) of healthy antigen-positive cell types, matched on a lower-case
#: substring of the cell-type name, first match wins (so the haematopoietic hierarchy levels
#: come before the end-cell names they contain). Stem cells, progenitors and precursors: the
#: death rates d0, d1, d2 of Michor 2005's normal hierarchy. B cells: 1/tau_B of León-Triana
#: 2021 (60 d). Myeloid end cells: the terminally-differentiated death rate d3 = 1/day.
HEALTHY_TURNOVER: dict[str, tuple[float, str]] = {
    "stem": (0.003, "Michor 2005, d0 = 0.003/day (haematopoietic stem cells)"),
    "progenitor": (0.008, "Michor 2005, d1 = 0.008/day (progenitors)"),
    "promonocyte": (0.05, "Michor 2005, d2 = 0.05/day (differentiated precursors)"),
    "precursor": (0.05, "Michor 2005, d2 = 0.05/day (differentiated precursors)"),
    "b cell": (1.0 / 60.0, "León-Triana 2021, tau_B = 60 d"),
    "b-cell": (1.0 / 60.0, "León-Triana 2021, tau_B = 60 d"),
    "b lymph": (1.0 / 60.0, "León-Triana 2021, tau_B = 60 d"),
    "monocyte": (1.0, "Michor 2005, d3 = 1/day (terminally differentiated myeloid)"),
    "neutrophil": (1.0, "Michor 2005, d3 = 1/day (terminally differentiated myeloid)"),
    "granulocyte": (1.0, "Michor 2005, d3 = 1/day (terminally differentiated myeloid)"),
    "myeloid": (1.0, "Michor 2005, d3 = 1/day (terminally differentiated myeloid)"),
}

#: Remission / relapse threshold as a fraction of the baseline burden: MRD < 0.01 % (FDA
#: tisagenlecleucel approval summary, Clin Cancer Res 25:1142) = MR4 (BCR-ABL <= 0.01 %).
MRD_THRESHOLD = 1e-4


#: Size (cells) of a healthy antigen-positive pool, where published: it adds to the antigen
#: load that drives expansion. Other cell types are killed but add nothing to the load.
HEALTHY_POOL: dict[str, tuple[float, str]] = {
    "b cell": (2.5e10, "León-Triana 2021, B(0) = 2.5e10 healthy B cells"),
    "b-cell": (2.5e10, "León-Triana 2021, B(0) = 2.5e10 healthy B cells"),
    "b lymph": (2.5e10, "León-Triana 2021, B(0) = 2.5e10 healthy B cells"),
}

# --------------------------------------------------------------------------------------
# Fitted values. Each was produced by a function of ``_calibrate.py`` (command recorded);
# tests re-run the fit or check that the cohort reproduces the fitted endpoint.
# --------------------------------------------------------------------------------------

#: B-ALL (``cart-leukaemia``): half-saturation of CAR-T killing in Stein's units
#: (copies/ug), fitted so that 50 % of virtual patients have B cells back above half of
#: baseline at day 365 (Kimmel 2021: "only 50 % of patients had recovered any normal B
#: cells by 1 year"). Fit: ``python -m antigenscout.kinetics._calibrate ball``.
BALL_FIT: dict[str, Param] = {
    "ec50": Param(3520.68, "copies/ug", "[fitted] B-cell recovery at 1 y = 50 % (Kimmel 2021)"),
}

#: Antigen escape in B-ALL (``cart-leukaemia``): a share of patients carries a pre-existing
#: antigen-negative subclone, whose size at infusion is log-uniform between one cell and the
#: flow-cytometry detection limit (MRD 1e-4 of the burden: a clone the pre-treatment work-up
#: would have seen is not drawn; ASSUMPTION on the shape, no published size distribution in
#: kinetics-literature.md); it grows at the blasts' rate and no CAR-T touches it. The
#: carrier share is fitted so that 41 % of remitters relapse within a year (ELIANA: 59 % of
#: responders relapse-free at 12 months; Maude 2018 NEJM 378:439, restated in Laetsch 2023
#: JCO 41:1664). Checked, not fitted: the antigen-negative share of relapses, and the share
#: among relapses while B cells are still absent (Pulsipher et al. 2022 Blood Cancer
#: Discov, PMC9924295: 23 of 25, 88 %). Fit: ``python -m antigenscout.kinetics._calibrate escape``.
ESCAPE: dict[str, Param] = {
    "carrier_fraction": Param(
        0.405121, "-", "[fitted] ELIANA relapse-free 59 % of responders at 12 months"
    ),
}

#: CML under imatinib: inter-patient variability of the drug's potency ``e`` (one number per
#: patient scaling its effect on leukaemic output in log terms: progenitor output / 100**e,
#: precursor output / 750**e; ``e = 1`` is Michor 2005; the stem pool's decline,
#: :data:`STEM_ON_TKI`, is every patient's), lognormal with median and log-SD fitted to IRIS at 12
#: months: complete cytogenetic response 69 % (read as BCR-ABL <= 1 %) and major molecular
#: response 39 % (BCR-ABL <= 0.1 %). Fit: ``python -m antigenscout.kinetics._calibrate cml``.
#: Checked, not fitted: MMR by 24 and 60 months (docs/kinetics.md).
CML_IIV: dict[str, Param] = {
    "potency_median": Param(0.41079, "-", "[fitted] IRIS 12-month CCyR 69 %, MMR 39 %"),
    "potency_omega": Param(0.827419, "-", "[fitted] IRIS 12-month CCyR 69 %, MMR 39 %"),
}

#: Cell-therapy products. ``fb_multiplier`` scales Stein's fraction entering the slow
#: (persistent) phase; ``clearance_per_day`` from ``clearance_day`` on is an extra
#: first-order loss of the product (host rejection, short NK lifespan). Every value that is
#: not copied from a source says so.
PRODUCTS: dict[str, dict[str, object]] = {
    "autologous-car-t": {
        "fb_multiplier": 1.0,
        "clearance_per_day": 0.0,
        "clearance_day": 0.0,
        "kimmel_clearance_per_day": 0.0,
        "kimmel_clearance_day": 0.0,
        "gvhd": "none (autologous)",
        "source": "Stein 2019 / Kimmel 2021 as published",
    },
    "allogeneic-car-t": {
        "fb_multiplier": 1.0,
        "clearance_per_day": 0.1,
        "clearance_day": 11.0,
        "kimmel_clearance_per_day": 0.1,
        "kimmel_clearance_day": 11.0,
        "gvhd": "possible (donor T cells); not simulated",
        "source": "ASSUMPTION: rejection starts when the host's T cells are back at half "
        "of K_N after lymphodepletion (day 11 [derived] from Kimmel 2021 r_N = 0.17/d, "
        "N(0) = 6, K_N = 500 cells/uL) and clears the product with half-life 6.9 d "
        "(rate 0.1/d, ASSUMPTION, no published rate in kinetics-literature.md)",
    },
    "car-nk": {
        "fb_multiplier": 0.0,
        "clearance_per_day": 0.0,
        "clearance_day": 0.0,
        "kimmel_clearance_per_day": 0.16,
        "kimmel_clearance_day": 7.0,
        "gvhd": "none reported for cord-blood CAR-NK (Liu 2020 NEJM 382:545; from memory, "
        "not in kinetics-literature.md)",
        "source": "ASSUMPTION: same expansion as CAR-T, no persistent (memory) phase "
        "(Stein FB = 0), so the product decays with the fast half-life 4.3 d; with Kimmel "
        "kinetics, an extra clearance at Stein's fast rate alpha = 0.16/d after Kimmel's "
        "typical peak (day 7); no published CAR-NK kinetic model in kinetics-literature.md",
    },
}
