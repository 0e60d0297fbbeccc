"""Organ systems, reserve and renewal: from engagement to vital risk and lasting harm.

A gene's ``vital_risk`` for a living drug that persists is the probability that at least one
organ system (:data:`ORGAN_SYSTEMS`) is harmed (:func:`organ_system_risk`). What an engagement
costs in the end depends on the organ: how much of it can be lost without failing and how fast
it remakes its cells (``reference/annotations/organ_reserve.tsv``, :func:`organ_reserve`), which
:func:`consequence` turns into the lasting, vital-weighted loss of function.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "DOSING_INTERVAL_DAYS",
    "ORGAN_SYSTEMS",
    "consequence",
    "organ_reserve",
    "organ_system_risk",
]


#: The organ systems whose harms ``vital_risk`` combines, where they differ from the
#: reference's ``system``: blood, marrow and the immune cells are one organ, made by the same
#: stem cells, and their loss is one clinical consequence (cytopenia, infection) treated in one
#: way (transfusion, growth factors, immunoglobulin, transplant). Every other system is its own.
ORGAN_SYSTEMS: dict[str, str] = {
    "haematopoietic": "blood and immune",
    "immune (lymphoid)": "blood and immune",
    "immune (myeloid)": "blood and immune",
}


def organ_systems(systems: Sequence[str]) -> np.ndarray:
    """Return the organ system of each reference ``system`` (:data:`ORGAN_SYSTEMS`, else itself).

    Examples
    --------
    >>> organ_systems(["haematopoietic", "skin"]).tolist()
    ['blood and immune', 'skin']
    """
    return np.array([ORGAN_SYSTEMS.get(str(s), str(s)) for s in systems], dtype=object)


def organ_system_risk(risk: np.ndarray, systems: Sequence[str]) -> np.ndarray:
    """Return the probability that at least one organ system is harmed.

    Each organ system (the reference's ``system`` mapped through :data:`ORGAN_SYSTEMS`) is
    harmed with the probability of its worst context's vital-weighted risk, independently of
    the others: ``1 - prod_s (1 - max_{c in s} risk_c)``. Within a system the maximum is
    kept, because its contexts overlap (a tissue and its cell types, one cell type in two
    datasets).

    Parameters
    ----------
    risk
        ``(n_genes, n_contexts)`` vital-weighted risk in [0, 1].
    systems
        ``(n_contexts,)`` the reference system of each context.

    Returns
    -------
    ``(n_genes,)`` risk in [0, 1]; 0 for a gene engaged nowhere.

    Examples
    --------
    Half of one organ, or a quarter of each of two (liver; kidney), or a quarter of marrow
    and a quarter of lymphoid cells (one organ):

    >>> import numpy as np
    >>> systems = ["hepatobiliary", "renal/urinary", "haematopoietic", "immune (lymphoid)"]
    >>> organ_system_risk(
    ...     np.array([[0.5, 0, 0, 0], [0.25, 0.25, 0, 0], [0, 0, 0.25, 0.25]]), systems
    ... ).round(4)
    array([0.5   , 0.4375, 0.25  ])
    """
    risk = np.asarray(risk, dtype=np.float64)
    codes, uniques = pd.factorize(organ_systems(systems))
    spared = np.ones(risk.shape[0])
    for k in range(len(uniques)):
        spared *= 1.0 - np.clip(risk[:, codes == k].max(axis=1, initial=0.0), 0.0, 1.0)
    return 1.0 - spared


#: Days between two doses of a dosed agent: the three-weekly schedule of most antibodies and
#: ADCs, set before scoring. What an organ renews within it is not a lasting loss.
DOSING_INTERVAL_DAYS = 21.0
#: The reserve and renewal table (``reference/annotations/organ_reserve.tsv``, docs/engagement.md).
ORGAN_RESERVE_FILE = "organ_reserve.tsv"
#: Precedence of the table's levels: a context's own row, then its tissue's, then its system's.
_RESERVE_LEVELS = (("context", None), ("tissue", "tissue"), ("system", "system"))


@lru_cache(maxsize=1)
def _organ_reserve_table() -> pd.DataFrame:
    path = resources.files("antigenscout.reference") / "annotations" / ORGAN_RESERVE_FILE
    with path.open("r", encoding="utf-8") as fh:
        table = pd.read_csv(fh, sep="\t", dtype={"level": str, "key": str, "source": str})
    return table.astype({"reserve": np.float64, "renewal_days": np.float64})


def organ_reserve(contexts: pd.DataFrame) -> pd.DataFrame:
    """Each context's organ reserve and renewal time (``organ_reserve.tsv``).

    A context takes its own row of the table, else its tissue's, else its organ system's; a
    context none of them names has no reserve and no renewal (0, infinite), the cautious
    reading.

    Returns
    -------
    DataFrame indexed like ``contexts`` with ``reserve`` (the fraction of the organ's cells
    it can lose without failing), ``renewal_days`` (time to remake lost cells; ``inf``: not
    remade on a therapy's time scale) and ``reserve_source``.

    Examples
    --------
    >>> import pandas as pd
    >>> ctx = pd.DataFrame({"tissue": ["heart muscle", "liver", "moon"],
    ...                     "system": ["cardiovascular", "hepatobiliary", "none"]},
    ...                    index=["sc:Cardiomyocytes", "tissue:liver", "x"])
    >>> organ_reserve(ctx)[["reserve", "renewal_days"]].to_numpy().tolist()
    [[0.4, inf], [0.7, 30.0], [0.0, inf]]
    """
    table = _organ_reserve_table()
    reserve = np.zeros(len(contexts))
    renewal = np.full(len(contexts), np.inf)
    source = np.full(len(contexts), "not tabulated: no reserve, no renewal", dtype=object)
    found = np.zeros(len(contexts), dtype=bool)
    for level, column in _RESERVE_LEVELS:
        if column is not None and column not in contexts:
            continue
        keys = contexts.index if column is None else contexts[column]
        rows = table[table["level"] == level]
        pos = pd.Index(rows["key"]).get_indexer(pd.Index(keys.astype(str)))
        take = (pos >= 0) & ~found
        reserve[take] = rows["reserve"].to_numpy()[pos[take]]
        renewal[take] = rows["renewal_days"].to_numpy()[pos[take]]
        source[take] = rows["source"].to_numpy()[pos[take]]
        found |= take
    return pd.DataFrame(
        {"reserve": reserve, "renewal_days": renewal, "reserve_source": source},
        index=contexts.index,
    )


def consequence(
    fraction: np.ndarray,
    weight: np.ndarray,
    reserve: np.ndarray,
    renewal_days: np.ndarray,
    *,
    persists: bool,
) -> np.ndarray:
    """Return the lasting loss of function an engagement causes, weighted by how vital it is.

    A dosed agent kills the engaged share ``e`` of a context's cells, and the organ remakes
    them between doses: what is still missing when the next dose comes is
    ``e * exp(-DOSING_INTERVAL_DAYS / renewal_days)``. A living drug (CAR-T, TCR-T, vaccine)
    keeps killing the cells as they are made, so its loss is ``e``. An organ fails only once
    the loss exceeds its ``reserve``; the share of its function lost beyond it is
    ``clip((loss - reserve) / (1 - reserve), 0, 1)``, times the context's vital weight.

    Parameters
    ----------
    fraction
        ``(n_genes, n_contexts)`` engagement (exposed).
    weight, reserve, renewal_days
        ``(n_contexts,)`` vital weight, reserve and renewal time (:func:`organ_reserve`).
    persists
        A living drug that persists (``ModalityProfile.persists``).

    Examples
    --------
    Half of the liver's cells (reserve 0.7), half of the gut's (renewed in 5 days) and half
    of the heart's (reserve 0.4, no renewal), by an ADC and by a CAR-T cell:

    >>> import numpy as np
    >>> f, w = np.array([[0.5, 0.5, 0.5]]), np.ones(3)
    >>> r, t = np.array([0.7, 0.0, 0.4]), np.array([30.0, 5.0, np.inf])
    >>> consequence(f, w, r, t, persists=False).round(3)
    array([[0.   , 0.007, 0.167]])
    >>> consequence(f, w, r, t, persists=True).round(3)
    array([[0.   , 0.5  , 0.167]])
    """
    fraction = np.asarray(fraction, dtype=np.float64)
    reserve = np.asarray(reserve, dtype=np.float64)
    if persists:
        lasting = np.ones_like(reserve)
    else:
        lasting = np.exp(-DOSING_INTERVAL_DAYS / np.asarray(renewal_days, dtype=np.float64))
    excess = (fraction * lasting[None, :] - reserve[None, :]) / (1.0 - reserve[None, :])
    return np.asarray(weight, dtype=np.float64)[None, :] * np.clip(excess, 0.0, 1.0)
