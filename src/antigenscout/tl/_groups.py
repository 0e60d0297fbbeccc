"""The tumour's cells as the ranking groups them.

Malignant rows, patients, compartments, and the counts matrix; shared by the scoring
(``_score``) and the rate model (``_rate``), which import it and not each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._errors import InputError

if TYPE_CHECKING:
    from anndata import AnnData


@dataclass
class TumorGroups:
    """Malignant cells (or samples) and how they split into patients and compartments."""

    rows: np.ndarray  #: row indices of malignant cells in the AnnData
    patient: pd.Categorical  #: patient of each malignant cell
    compartment: pd.Categorical | None = None  #: compartment of each malignant cell
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.rows)


def _parse_key_value(spec: str) -> tuple[str, str]:
    if "=" not in spec:
        msg = (
            f"malignant selector {spec!r} is not COLUMN=VALUE; "
            "write e.g. --malignant-key malignant=malignant"
        )
        raise InputError(msg)
    col, value = spec.split("=", 1)
    return col.strip(), value.strip()


def _obs_column(adata: AnnData, key: str, what: str) -> pd.Series:
    if key not in adata.obs.columns:
        cols = ", ".join(map(str, adata.obs.columns[:12]))
        msg = f"{what} column {key!r} is not in the input's obs; available columns: {cols}"
        raise InputError(msg)
    return adata.obs[key]


#: Compartment of malignant cells whose compartment label is missing.
UNASSIGNED = "unassigned"


def _labels(column: pd.Series, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return string labels of ``rows`` and a mask of the missing ones (NA or blank)."""
    sub = column.iloc[rows]
    missing = sub.isna().to_numpy()
    values = sub.astype(object).where(~missing, "").astype(str).str.strip().to_numpy(dtype=object)
    missing |= values == ""
    return values, missing


def cell_type_labels(labels: pd.Series, key: str, cells: str = "cells") -> pd.Categorical:
    """Cell-type labels as a categorical; a missing or blank label is an error naming ``key``."""
    blank = labels.isna().to_numpy() | (labels.astype(str).str.strip() == "").to_numpy()
    if blank.any():
        msg = f"{int(blank.sum()):,} {cells} have no cell type in obs[{key!r}]; label or drop them"
        raise InputError(msg)
    return pd.Categorical(labels.astype(str))


def tumor_groups(
    adata: AnnData,
    *,
    malignant_key: str | None,
    patient_key: str | None,
    compartment_key: str | None = None,
) -> TumorGroups:
    """Select malignant cells and label them by patient and compartment.

    Parameters
    ----------
    adata
        Cells (or samples) × genes.
    malignant_key
        ``COLUMN=VALUE`` selecting malignant cells; ``None`` takes every row (bulk tumours).
    patient_key
        Column naming each cell's patient; ``None`` treats all cells as one patient.
    compartment_key
        Optional column such as ``cell_type`` whose values (e.g. ``HSC-like``) define
        compartments reported separately; cells without a value form the compartment
        ``'unassigned'``.

    Raises
    ------
    InputError
        If a malignant cell has no patient label (NA or blank): a patient called ``nan``
        would be reported as if it were real.
    """
    n = adata.n_obs
    if malignant_key is None:
        mask = np.ones(n, dtype=bool)
        params: dict[str, Any] = {"malignant_key": None}
    else:
        col, value = _parse_key_value(malignant_key)
        values = _obs_column(adata, col, "malignant").astype(str)
        mask = (values == value).to_numpy()
        if not mask.any():
            seen = ", ".join(sorted(map(str, values.unique()))[:10])
            msg = (
                f"no malignant cells: no row has {col} == {value!r} "
                f"(values present: {seen}); pick one of those values"
            )
            raise InputError(msg)
        params = {"malignant_key": col, "malignant_value": value}
    rows = np.flatnonzero(mask)
    if patient_key is None:
        patient = pd.Categorical(np.repeat("all", len(rows)))
    else:
        values, missing = _labels(_obs_column(adata, patient_key, "patient"), rows)
        if missing.any():
            msg = (
                f"{int(missing.sum()):,} of {len(rows):,} malignant cells have no patient label "
                f"in obs[{patient_key!r}] (missing or empty); label them (e.g. 'unassigned') "
                "or drop those cells"
            )
            raise InputError(msg)
        patient = pd.Categorical(values)
    compartment = None
    if compartment_key is not None:
        values, missing = _labels(_obs_column(adata, compartment_key, "compartment"), rows)
        values[missing] = UNASSIGNED
        compartment = pd.Categorical(values)
    params.update(patient_key=patient_key, compartment_key=compartment_key)
    return TumorGroups(rows=rows, patient=patient, compartment=compartment, params=params)


def _group_codes(groups: TumorGroups) -> tuple[np.ndarray, list[str]]:
    """Integer code per malignant cell for (patient[, compartment]) and group names."""
    if groups.compartment is None:
        return groups.patient.codes.astype(np.int64), list(groups.patient.categories)
    pc = groups.patient.codes.astype(np.int64)
    cc = groups.compartment.codes.astype(np.int64)
    n_c = len(groups.compartment.categories)
    code = pc * n_c + cc
    names = [f"{p}\t{c}" for p in groups.patient.categories for c in groups.compartment.categories]
    return code, names


def counts_matrix(adata: AnnData, layer: str | None) -> tuple[Any, np.ndarray | None]:
    """Return the raw counts (``X`` or ``layer``) and ``obs['total_counts']`` if present."""
    X = adata.layers[layer] if layer is not None else adata.X
    if X is None:
        msg = "layer must name the counts layer: the input has no expression matrix in X"
        raise InputError(msg, param="layer")
    lib_obs = (
        adata.obs["total_counts"].to_numpy(dtype=np.float64)
        if "total_counts" in adata.obs
        else None
    )
    return X, lib_obs
