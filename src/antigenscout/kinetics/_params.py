"""Published parameter sets, each value with its source.

Every number here is copied from a paper table (or the public model file that encodes it);
values marked ``[derived]`` are arithmetic on sourced numbers, with the arithmetic shown.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = [
    "HEALTHY_TURNOVER",
    "KIMMEL",
    "KIMMEL_IIV_OMEGA",
    "KIMMEL_R_B_RANGE",
    "LEON_TRIANA",
    "MICHOR",
    "MRD_THRESHOLD",
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

# --------------------------------------------------------------------------------------
# León-Triana et al. 2021, Commun Nonlinear Sci Numer Simul 94:105570 (healthy B cells).
# --------------------------------------------------------------------------------------
LEON_TRIANA: dict[str, Param] = {
    "tau_B": Param(60.0, "day", "León-Triana 2021 CNSNS 94:105570, parameter table"),
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
