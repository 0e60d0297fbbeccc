"""Tidy tables from results stored in ``adata.uns`` (after scanpy's ``sc.get``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd
from anndata import AnnData

from .._errors import InputError
from .._types import GATES_KEY, TARGETS_KEY

if TYPE_CHECKING:
    from ..reference import Reference

__all__ = ["gates_df", "patient_coverage_df", "risk_df", "targets_df"]


def _result(adata: AnnData, key: str) -> dict:
    if key not in adata.uns:
        msg = f"no results under adata.uns[{key!r}]; run antigenscout.tl.score_targets first"
        raise InputError(msg)
    return adata.uns[key]


def targets_df(adata: AnnData, *, key: str = TARGETS_KEY) -> pd.DataFrame:
    """Ranked targets, one row per candidate gene (column ``target`` first)."""
    return _result(adata, key)["targets"].reset_index()


def gates_df(adata: AnnData, *, key: str = GATES_KEY) -> pd.DataFrame:
    """Gates found by :func:`antigenscout.tl.search_gates`, best first."""
    if key not in adata.uns:
        msg = f"no results under adata.uns[{key!r}]; run antigenscout.tl.search_gates first"
        raise InputError(msg)
    return adata.uns[key]["gates"]


def patient_coverage_df(adata: AnnData, *, key: str = TARGETS_KEY) -> pd.DataFrame:
    """Coverage of each target (rows) in each patient (columns)."""
    return _result(adata, key)["patient_coverage"]


def risk_df(
    adata: AnnData,
    *,
    key: str = TARGETS_KEY,
    n_top: int = 50,
    include: tuple[str, ...] | list[str] = (),
    reference: Reference | None = None,
) -> pd.DataFrame:
    """Per-context engagement and severity of the ``n_top`` ranked targets plus ``include``.

    One row per target and engaged context (see :meth:`antigenscout.tl.HealthyRisk.long`):
    the engagement (``positive_fraction``) at the target's own engagement threshold, its
    interval and source, the vital weight and the severity (``risk``).
    """
    from ..reference import load_reference  # noqa: PLC0415
    from ..tl._risk import healthy_risk  # noqa: PLC0415

    res = _result(adata, key)
    reference = load_reference() if reference is None else reference
    params = res["params"]
    targets = res["targets"]
    thresholds = (
        targets["engagement_threshold_cp10k"]
        if "engagement_threshold_cp10k" in targets.columns
        else None
    )
    hr = healthy_risk(
        reference,
        threshold_cp10k=params["positivity"]["threshold_cp10k"],
        modality=params["modality"],
        gene_threshold_cp10k=thresholds,
        pregnancy=bool((params.get("exposure") or {}).get("pregnancy", False)),
        route=str((params.get("exposure") or {}).get("route", "systemic")),
    )
    ranked = targets.index
    missing = [g for g in include if g not in ranked]
    if missing:
        msg = f"not among the ranked candidates: {', '.join(missing)}"
        raise InputError(msg)
    genes = list(dict.fromkeys([*include, *ranked[:n_top]]))
    return hr.long(genes).reset_index(drop=True)
