"""The engine's side of the comparison: its ranking of a tumour, and gates on its scale.

The engine ranks each tumour once per modality (:func:`_engine_table`); a gate is scored on
the engine's single-gene scale (:func:`_gate_score`) with the gate estimate ``profile`` uses
(:func:`_combine`).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._types import TARGETS_KEY

if TYPE_CHECKING:
    from ..reference import Reference
    from ._tumors import _Tumor


def _engine_table(tum: _Tumor, modality: str, reference: Reference) -> pd.DataFrame:
    key = modality
    if key not in tum.engine:
        from ..tl import score_targets  # noqa: PLC0415

        adata = tum.adata
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score_targets(
                adata,
                malignant_key=tum.malignant_key,
                patient_key=tum.patient_key,
                modality=modality,
                reference=reference,
                kind="single_cell" if tum.kind == "single_cell" else "bulk",
                cancer=_hpa_cancer(tum) if reference.pathology is not None else None,
            )
        tum.engine[key] = adata.uns[TARGETS_KEY]["targets"].copy()
        del adata.uns[TARGETS_KEY]
    return tum.engine[key]


def _hpa_cancer(tum: _Tumor) -> str | None:
    """Return the HPA pathology cancer type of a bulk TCGA tumour if all its cohorts share one."""
    from ..datasets import TCGA_HPA_CANCER  # noqa: PLC0415

    if tum.kind != "bulk" or not tum.name.startswith("tcga"):
        return None
    codes = tum.name.partition(":")[2].split("+") if ":" in tum.name else []
    cancers = {TCGA_HPA_CANCER.get(c) for c in codes}
    return cancers.pop() if len(cancers) == 1 and None not in cancers else None


def _combine(values: np.ndarray, op: str) -> np.ndarray:
    """Gate a genes × k array of fractions with the estimate ``profile`` uses.

    That estimate is :func:`antigenscout.tl._profile.gate_fraction`: AND = min (the Fréchet
    upper bound: the chains of a target are made by the same cells), OR = ``1 − Π(1 − v)`` for
    independent antigens (issue #10 item 5: not pushed to 1 by the union bound).
    """
    from ..tl._gates import Gate  # noqa: PLC0415
    from ..tl._profile import gate_fraction  # noqa: PLC0415

    lits = [Gate.lit(i) for i in range(values.shape[0])]
    gate = lits[0] if len(lits) == 1 else (Gate.and_ if op == "and" else Gate.or_)(*lits)
    return gate_fraction(gate, values)[0]


def _gate_score(
    table: pd.DataFrame, genes: list[str], op: str, modality: str, reference: Reference
) -> tuple[float, float, float]:
    """``(score, coverage, vital_risk)`` of a gate, on the engine's single-gene scale.

    The engine's score is ``cover × (1 − harm_factor × vital_risk) × modality_factor``
    (``cover`` = ``coverage_q25`` where the engine reports it, i.e. for modalities ranked
    on per-patient coverage, else ``tumor_coverage``). For a gate, coverages and healthy
    fractions (each gene's at its engagement threshold, as for single genes) are combined
    with :func:`_combine` (AND = min, OR = the independence estimate) and the gate's vital risk
    is the engine's (the worst context, or over organ systems for a living drug:
    ``HealthyRisk.over_organs``); the modality factor
    is the smallest
    (AND: every antigen must be reachable) or largest (OR: either suffices) of the genes'.
    Columns missing from the engine's table are taken as 1 (factor) or as
    ``tumor_coverage`` (cover), so a rewritten engine degrades to ``cover × (1 − risk)``.
    """
    from ..pp import DEFAULT_THRESHOLD  # noqa: PLC0415
    from ..tl import healthy_risk  # noqa: PLC0415
    from ..tl._organs import organ_system_risk  # noqa: PLC0415

    # each gene's healthy fractions at its own engagement threshold, as the engine judges
    # the single genes the gate is placed among
    at = None
    if "engagement_threshold_cp10k" in table:
        at = table.loc[genes, "engagement_threshold_cp10k"].astype(float)
    hr = healthy_risk(
        reference, threshold_cp10k=DEFAULT_THRESHOLD, modality=modality, gene_threshold_cp10k=at
    )
    cov = float(_combine(table.loc[genes, "tumor_coverage"].to_numpy(dtype=float)[:, None], op)[0])
    # the engine adds coverage_q25 only for modalities ranked on per-patient coverage
    cover_col = "coverage_q25" if "coverage_q25" in table else "tumor_coverage"
    try:
        from ..tl._targetability import MODALITY_PROFILES  # noqa: PLC0415

        harm = float(getattr(MODALITY_PROFILES.get(modality), "harm_factor", 1.0))
    except ImportError:  # pragma: no cover - engine rewritten
        harm = 1.0
    cover = float(_combine(table.loc[genes, cover_col].to_numpy(dtype=float)[:, None], op)[0])
    # genes combined on what the cells carry; the agent's exposure applied once to the gate
    frac = hr.unexposed(hr.fraction.reindex(genes).fillna(0.0)).to_numpy(dtype=float)
    gate_risk = _combine(frac, op) * hr.reach() * hr.weight.to_numpy()
    if hr.over_organs:
        risk = float(organ_system_risk(gate_risk[None, :], hr.contexts["system"].to_numpy())[0])
    else:
        risk = float(gate_risk.max())
    if "modality_factor" in table:
        f = table.loc[genes, "modality_factor"].to_numpy(dtype=float)
        factor = float(f.min() if op == "and" else f.max())
    else:
        factor = 1.0
    score = cover * (1.0 - min(1.0, max(0.0, harm * risk))) * factor
    return score, cov, risk
