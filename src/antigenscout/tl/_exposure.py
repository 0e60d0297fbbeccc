"""Exposure: the share of each context's engaged cells an agent reaches.

The blood–brain, blood–retina and blood–testis barriers (:data:`BARRIER_EXPOSURE` for a protein
agent), the contexts of pregnancy, the route of administration (:data:`ROUTES`) and, for a
binder, the apical side of polarised epithelia (:func:`apply_apical`). :func:`exposure` gives
the per-context factor; ``healthy_risk`` multiplies every engagement by it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._errors import InputError
from .._types import ROUTES  # systemic, intrathecal, intravesical (docs/engagement.md)
from ._targetability import MODALITY_PROFILES

if TYPE_CHECKING:
    from ..reference import Reference
    from ._risk_table import HealthyRisk

__all__ = ["BARRIER_EXPOSURE", "exposure"]


#: Share of a protein agent's plasma level found behind the blood–brain barrier at steady
#: state: the CSF-to-serum ratio of five humanised IgGs, 0.1–0.2% in rats and monkeys (Wang et
#: al. 2018 Fluids Barriers CNS 15:10); brain-to-plasma AUC ratio of an IgG1, 0.22% (Garg &
#: Balthasar 2009 AAPS J 11:553). The blood–retina and blood–testis barriers are taken alike.
BARRIER_PERMEABILITY = 0.0015
#: Plasma level over the binder's K_d at trough for an agent dosed to hold 99% of its target in
#: blood and open tissue, occupancy ``C / (C + K_d) = 0.99``: a design assumption, set before
#: scoring (a higher dose or affinity raises it).
TROUGH_OVER_KD = 99.0
#: Engagement factor behind a barrier for a protein agent: its occupancy at the barrier-limited
#: level, ``r·m / (r·m + 1)`` = 0.129 (``r`` :data:`BARRIER_PERMEABILITY`, ``m``
#: :data:`TROUGH_OVER_KD`).
BARRIER_EXPOSURE = (BARRIER_PERMEABILITY * TROUGH_OVER_KD) / (
    BARRIER_PERMEABILITY * TROUGH_OVER_KD + 1.0
)


#: Share of an apical or tight-junction antigen a binder arriving from the blood reaches in a
#: polarised epithelium: the tight junctions that seal the lumen are the barrier's, so the
#: occupancy is the barrier's (:data:`BARRIER_EXPOSURE`), taken alike.
APICAL_EXPOSURE = BARRIER_EXPOSURE
#: What ``source`` says of an apical antigen in a polarised epithelium.
APICAL_NOTE = (
    f"apical or tight-junction antigen in a polarised epithelium: engagement × "
    f"{APICAL_EXPOSURE:.3g}"
)
#: ``surface.parquet`` ``epithelial_side`` values an agent from the blood does not face.
APICAL_SIDES = frozenset({"apical"})


def apical_genes(reference: Reference, genes: pd.Index) -> np.ndarray:
    """Return the ``genes`` UniProt places apically in an epithelium and on no basolateral surface.

    Apical includes the tight junction (``surface.parquet`` ``epithelial_side``).
    """
    side = reference.surface.get("epithelial_side")
    if side is None:  # a reference built before issue #21
        return np.zeros(len(genes), dtype=bool)
    return side.reindex(genes).astype(object).isin(APICAL_SIDES).to_numpy(dtype=bool)


def apply_apical(
    hr: HealthyRisk, reference: Reference, modality: str | None, route: str = "systemic"
) -> HealthyRisk:
    """Engagement × :data:`APICAL_EXPOSURE` for apical antigens in polarised epithelia.

    A binder (any agent but TCR-T and vaccines, whose peptide-HLA is presented on every
    surface; a modality the profiles do not know is taken as a binder) comes from the
    blood and meets an epithelium's basolateral side: an antigen UniProt places only on the
    apical membrane or at the tight junction (:func:`apical_genes`) faces the lumen there, in
    the contexts the reference marks ``polarised`` (simple and glandular epithelia, and the
    tissues made of them). An agent put into a lumen faces the apical side there
    (:data:`ROUTE_LUMENS`: the bladder for an intravesical agent, the choroid plexus, whose
    apical side faces the CSF, for an intrathecal one). ``HealthyRisk.apical`` keeps the genes
    and ``HealthyRisk.apical_contexts`` the contexts the factor was applied in, for ``source``.
    """
    profile = MODALITY_PROFILES.get(str(modality))
    if profile is not None and not profile.binder:
        return hr
    if "polarised" not in hr.contexts:
        return hr
    rows = apical_genes(reference, hr.fraction.index)
    cols = hr.contexts["polarised"].astype("boolean").fillna(False).to_numpy(bool)
    cols &= ~_in_lumen(hr.contexts, route)
    cols = cols[hr.contexts.index.get_indexer(hr.fraction.columns)]
    if not rows.any() or not cols.any():
        return hr
    factor = np.where(rows[:, None] & cols[None, :], APICAL_EXPOSURE, 1.0)

    def times(df: pd.DataFrame | None) -> pd.DataFrame | None:
        if df is None:
            return None
        f = factor[hr.fraction.index.get_indexer(df.index)][
            :, hr.fraction.columns.get_indexer(df.columns)
        ]
        return df * f

    return replace(
        hr,
        fraction=times(hr.fraction),
        low=times(hr.low),
        high=times(hr.high),
        apical=hr.fraction.index[rows],
        apical_contexts=hr.fraction.columns[cols],
    )


#: The ``tissue`` of the contexts an intravesical agent is instilled into.
BLADDER_TISSUE = "urinary bladder"

#: Per route, the contexts whose apical side the agent faces because it is put into their
#: lumen: ``(contexts column, value)``, the index when the column is ``None``.
ROUTE_LUMENS: dict[str, tuple[str | None, str]] = {
    "intravesical": ("tissue", BLADDER_TISSUE),
    "intrathecal": (None, "tissue:choroid plexus"),
}


def _in_lumen(contexts: pd.DataFrame, route: str) -> np.ndarray:
    """Return whether an agent given by ``route`` sits in each context's lumen."""
    where = ROUTE_LUMENS.get(route)
    if where is None:
        return np.zeros(len(contexts), dtype=bool)
    column, value = where
    if column is None:
        return np.asarray(contexts.index == value, dtype=bool)
    if column not in contexts:
        return np.zeros(len(contexts), dtype=bool)
    return contexts[column].astype(object).eq(value).to_numpy(dtype=bool)


def check_route(route: str) -> str:
    """``route`` if it is one of :data:`ROUTES`, else an error naming them."""
    if route not in ROUTES:
        msg = f"route {route!r} is not one of {', '.join(ROUTES)} (docs/engagement.md, Exposure)"
        raise InputError(msg, param="route")
    return route


def _exposure_table(
    contexts: pd.DataFrame, modality: str | None, pregnancy: bool, route: str
) -> pd.DataFrame:
    """Return per context ``factor`` (the share of its engaged cells reached) and ``why``.

    ``why`` is the ``source`` note; empty where the factor is 1.
    """
    check_route(route)
    n = len(contexts)
    factor = np.ones(n)
    why = [[] for _ in range(n)]
    profile = MODALITY_PROFILES.get(str(modality))
    if route == "intravesical":
        outside = ~_in_lumen(contexts, route)
        factor[outside] *= BARRIER_EXPOSURE
        for k in np.flatnonzero(outside):
            why[k].append("outside the bladder (intravesical route)")
    if "barrier" in contexts and not (profile is not None and profile.crosses_barriers):
        barrier = contexts["barrier"].astype(object).fillna("none").to_numpy()
        behind = barrier != "none"
        if route == "intrathecal":  # given into the CSF, on the brain's side of the barrier
            behind &= barrier != "blood-brain"
        factor[behind] *= BARRIER_EXPOSURE
        for k in np.flatnonzero(behind):
            why[k].append(f"behind the {barrier[k]} barrier")
    text = [
        f"{' and '.join(w)}: engagement × {f:.3g}" if w else ""
        for w, f in zip(why, factor, strict=True)
    ]
    if "pregnancy" in contexts and not pregnancy:
        preg = contexts["pregnancy"].astype("boolean").fillna(False).to_numpy(bool)
        factor[preg] = 0.0
        for k in np.flatnonzero(preg):
            text[k] = "pregnancy only: left out (pregnancy=True keeps it)"
    return pd.DataFrame({"factor": factor, "why": text}, index=contexts.index)


def exposure(
    contexts: pd.DataFrame,
    modality: str | None,
    *,
    pregnancy: bool = False,
    route: str = "systemic",
) -> pd.Series:
    """Return the share of each context's engaged cells an agent reaches.

    0 for the contexts of pregnancy (``pregnancy`` column) unless ``pregnancy``;
    :data:`BARRIER_EXPOSURE` behind a barrier (``barrier`` column other than ``'none'``) for
    an agent that does not cross it (``ModalityProfile.crosses_barriers``; a modality the
    profiles do not know, or ``None``, is taken as a protein agent), except the blood–brain
    barrier for an intrathecal agent; for an intravesical agent, :data:`BARRIER_EXPOSURE` (the
    urothelium crossed) times the above outside the bladder; 1 elsewhere. A reference without
    the columns (built before issue #21) exposes everything.

    Examples
    --------
    >>> import pandas as pd
    >>> ctx = pd.DataFrame({"barrier": ["none", "blood-brain", "none", "none"],
    ...                     "pregnancy": [False, False, True, False],
    ...                     "tissue": ["liver", "brain", "placenta", "urinary bladder"]},
    ...                    index=["liver", "neurons", "placenta", "bladder"])
    >>> exposure(ctx, "adc").round(3).tolist(), exposure(ctx, "car-t").tolist()
    ([1.0, 0.129, 0.0, 1.0], [1.0, 1.0, 0.0, 1.0])
    >>> exposure(ctx, "car-t", pregnancy=True).tolist()
    [1.0, 1.0, 1.0, 1.0]
    >>> exposure(ctx, "antibody", route="intrathecal").round(3).tolist()
    [1.0, 1.0, 0.0, 1.0]
    >>> exposure(ctx, "antibody", route="intravesical").round(4).tolist()
    [0.1293, 0.0167, 0.0, 1.0]
    """
    return _exposure_table(contexts, modality, pregnancy, route)["factor"].rename("exposure")


def exposure_summary(
    factor: pd.Series | None, pregnancy: bool, route: str = "systemic"
) -> dict[str, Any]:
    """Summarise what an agent was taken to reach, for ``params``/``run.json``.

    The route, the contexts left out, those reached in part (behind a barrier, or outside the
    bladder for an intravesical agent) and their smallest factor (``factor``:
    :attr:`HealthyRisk.exposure` over the contexts reported; ``None``: all reached).
    """
    f = np.array([]) if factor is None else factor.to_numpy(dtype=np.float64)
    behind = (f > 0) & (f < 1)
    return {
        "route": route,
        "pregnancy": bool(pregnancy),
        "contexts_left_out": int((f == 0).sum()),
        "contexts_behind_barrier": int(behind.sum()),
        "barrier_exposure": round(float(f[behind].max()), 4) if behind.any() else None,
    }


def _exposed(hr: HealthyRisk, table: pd.DataFrame) -> HealthyRisk:
    """Return ``hr`` with every engagement multiplied by the exposure factor of its context.

    ``table`` is :func:`_exposure_table`; the reasons are kept for ``source``.
    """
    factor = table["factor"].reindex(hr.fraction.columns).fillna(1.0)
    if (factor == 1.0).all():
        return replace(hr, exposure=None, exposure_why=None)
    f = factor.to_numpy(dtype=np.float64)[None, :]

    def times(df: pd.DataFrame | None) -> pd.DataFrame | None:
        return None if df is None else df * f

    return replace(
        hr,
        fraction=hr.fraction * f,
        low=times(hr.low),
        high=times(hr.high),
        exposure=factor,
        exposure_why=table["why"].reindex(hr.fraction.columns).fillna(""),
    )
