"""Therapy kinetics over a virtual cohort.

CAR-T expansion, contraction and persistence, tumour killing and relapse (antigen-negative or
stem-cell escape), depletion of healthy antigen-positive cells, and a kinase-inhibitor arm for
CML.

Models (see :func:`models`): Stein 2019 (tisagenlecleucel cellular kinetics, closed form),
Kimmel 2021 (axi-cel CAR-T / normal T / tumour), Michor 2005 (CML hierarchy under
imatinib) and two compositions driven by a target's coverages (:class:`Scenario`).
"""

from ._models import models
from ._scenario import Scenario, scenario_from_run
from ._simulate import SimulationResult, simulate, write_simulation

__all__ = [
    "Scenario",
    "SimulationResult",
    "models",
    "scenario_from_run",
    "simulate",
    "write_simulation",
]
