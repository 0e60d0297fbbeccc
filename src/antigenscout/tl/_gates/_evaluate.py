"""Exact evaluation of given gates: one table row per gate, the same columns as found gates."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from ._gate import (
    _EPS,
    Gate,
    _negated,
    parse_gate,
)
from ._problem import (
    HealthyInput,
    _group_counts,
    _Problem,
)

# --------------------------------------------------------------------------------------------
# Exact evaluation
# --------------------------------------------------------------------------------------------


def _row(
    prob: _Problem, gate: Gate, coverage_threshold: float, max_vital_risk: float
) -> dict[str, object]:
    bits = gate.bits(prob.tumour)
    per_patient = _group_counts(bits, prob.tumour.word_ptr)
    n_cells = int(per_patient.sum())
    neg = _negated(gate)
    # a NOT arm counts a cell only where the vetoing antigen is shown absent: the cells of a
    # patient that may carry it undetected (``not_missed``) are taken off that patient's count
    miss_p = prob.miss_pg[:, neg].sum(1)
    kept = np.maximum(0.0, per_patient - miss_p)
    cov = float(kept.sum()) / prob.n_tumor
    pcov = kept / prob.tumour.group_sizes
    lo, hi, est = prob.healthy_fraction(gate)
    risk_hi = prob.w * hi
    risk_lo = prob.w * lo
    risk_est = float((prob.w * est).max()) if est.size else 0.0
    if risk_hi.size:
        # np.argmax takes the first maximum and single-cell types come first: on a tie the
        # exact type is named (the reported risk is then attained exactly, not only bounded)
        k = int(np.argmax(risk_hi))
        worst, worst_type, worst_lo = (
            float(risk_hi[k]),
            str(prob.type_names[k]),
            float(risk_lo.max()),
        )
        is_bound = bool(prob.type_is_bound[k])
    else:
        worst, worst_type, worst_lo = 0.0, "", 0.0
        is_bound = not prob.has_cells
    feasible = worst <= max_vital_risk + _EPS
    row: dict[str, object] = {
        "gate": gate.to_string(prob.genes),
        "n_genes": gate.n_genes,
        "genes": ",".join(prob.genes[list(gate.genes)]),
        "ops": ",".join(gate.ops),
        "tumor_coverage": cov,
        "tumor_n_positive": n_cells,
        "tumor_coverage_cells": n_cells / prob.n_tumor,
        "patients_covered_fraction": float(np.mean(pcov >= coverage_threshold - _EPS)),
        "patient_coverage_median": float(np.median(pcov)),
        "patient_coverage_min": float(pcov.min()),
        "worst_healthy_cell_type": worst_type,
        "worst_healthy_risk": worst,
        "worst_healthy_risk_lower": worst_lo,
        "worst_healthy_risk_estimate": risk_est,
        "risk_is_bound": is_bound,
        "feasible": feasible,
        "score": cov * (1.0 - worst) if feasible else 0.0,
    }
    for name, mask in prob.compartments.items():
        # per patient; a patient's hidden cells may all lie in this compartment (lower bound)
        num = _group_counts(bits & mask, prob.tumour.word_ptr).astype(np.float64)
        den = int(_group_counts(mask, np.array([0, mask.size], dtype=np.int64))[0])
        row[f"coverage_{name}"] = float(np.maximum(0.0, num - miss_p).sum()) / den
    return row


def evaluate_gates(  # noqa: PLR0913
    gates: Sequence[Gate | str],
    T: object,
    patients: np.ndarray,
    healthy: HealthyInput,
    *,
    genes: Sequence[str],
    max_vital_risk: float = 0.1,
    coverage_threshold: float = 0.8,
    compartments: np.ndarray | None = None,
    not_missed: np.ndarray | None = None,
) -> pd.DataFrame:
    """Evaluate given gates exactly: tumour coverage and worst vital healthy risk.

    Coverage is given overall, per patient and per compartment.

    Parameters
    ----------
    gates
        :class:`Gate` objects or strings such as ``"CD33 AND NOT CD34"``.
    T
        Tumour cells × genes positivity (dense bool, or scipy sparse CSR/CSC bool or 0/1).
    patients
        Patient label per tumour cell.
    healthy
        :class:`HealthyCells` (exact), :class:`HealthyPseudobulk` (Fréchet upper bound) or
        :class:`HealthyMixed` (both; also accepted as a pair ``(cells, pseudobulk)``).
    genes
        Gene names, one per column.
    max_vital_risk
        Cap on the worst weighted healthy risk that defines ``feasible``.
    coverage_threshold
        Per-patient coverage a patient needs to count as covered.
    compartments
        Optional compartment label per tumour cell (adds ``coverage_<label>`` columns).
    not_missed
        Optional ``(n_patients, n_genes)``: per patient (in ``np.unique(patients)`` order) and
        gene, how many tumour cells may carry the antigen although called negative (e.g. a
        pseudobulk upper bound on the positive fraction minus the called fraction, times the
        patient's cells). A NOT arm then counts a cell only where its antigen is shown absent:
        a gate's coverage is its per-cell count minus these cells for every negated gene
        (floored at 0), per patient and in total (``tumor_coverage_cells`` keeps the per-cell
        count). ``None``: per-cell calls are trusted.

    Returns
    -------
    pandas.DataFrame
        One row per gate with the columns described in :func:`search_gate_matrix` (no ``rank``).
    """
    prob = _Problem(T, patients, healthy, genes, compartments, not_missed)
    parsed = [g if isinstance(g, Gate) else parse_gate(str(g), prob.genes) for g in gates]
    return pd.DataFrame([_row(prob, g, coverage_threshold, max_vital_risk) for g in parsed])


def _pareto(cov: np.ndarray, risk: np.ndarray) -> np.ndarray:
    """Return True where no other row has coverage ≥ and risk ≤ with one strict."""
    n = cov.size
    out = np.ones(n, dtype=bool)
    for i in range(n):
        dom = (cov >= cov[i]) & (risk <= risk[i]) & ((cov > cov[i]) | (risk < risk[i]))
        out[i] = not dom.any()
    return out
