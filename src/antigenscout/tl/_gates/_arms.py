"""Does every arm of a gate earn its place? Arm gains with resampling intervals.

A gate found by the exact search is the best under its cap on *these* cells; an arm can
owe its place to noise. For each arm of a reported gate (issue #22, item 1; docs/gates.md,
"Arms that beat noise"):

* an **AND or NOT arm** of a conjunction must lower the healthy risk: its gain is
  ``risk(gate without the arm) - risk(gate)``;
* an **OR arm** of a disjunction must add tumour coverage: its gain is
  ``coverage(gate) - coverage(gate without the arm)``.

Each gain gets an interval from resampling: healthy cells with replacement within each
exact healthy context (the reference's pseudobulk contexts are bounds, not samples, and stay
fixed), tumour cells with replacement within each patient, the same resample for the gate and
its sub-gates (paired). An arm is **shown** when the lower end of its one-sided
:data:`ARM_CONFIDENCE` interval is above 0, and, besides:

* a **NOT arm** must show its veto in the context it protects (the sub-gate's worst one):
  the Wilson lower bound of the share of that context's cells carrying the veto (for a
  pseudobulk context, its ``shown`` fraction) reaches :data:`MIN_VETO_SHOWN` — a veto of a
  few reads protects nothing a designer can count on;
* an **AND arm** cannot protect more of a context than the share of its cells that lack the
  antigen. From the cells' mean level the positivity model expects a share
  ``exp(-t / mean)`` above the threshold ``t`` (per-cell levels exponential about the mean,
  the RNA model's ``k = 1``); an arm whose risk gain exceeds ``weight × (1 - that share)`` in
  the context it protects even at the lower end of its interval claims cells that carry it
  undetected: its protection is dropout. An arm the model expects on at least
  :data:`NEAR_UBIQUITOUS` of those cells (ITM2B, PTPRC) protects nothing at all, and
  neither does an arm the reference measures on nearly every cell type of the body
  (:data:`BODY_WIDE_NTPM` nTPM or more in :data:`NEAR_UBIQUITOUS` of the HPA single-cell
  types: HLA-C, CD63, TMEM30A): a second witness, since a few hundred droplets of one cell
  type can miss what every other profile of the body shows. A **veto** measured so widely
  (CD59) is set aside too: the tumour cells read without it most likely carry it.

Each arm's phrase carries what was judged: the veto's shown share of the cells it protects
(``shown >= 12.0%``), or the share of them the model expects the AND arm on (``on ~40%``).

Gates of other shapes (an OR of ANDs, …) and single antigens have no arms to judge. Every
gate, single antigens included, must besides stay under the cap in each **small exact
context** (fewer than :data:`MIN_CONTEXT_CELLS` cells, e.g. 20 donor HSC) at the upper end
of the Wilson interval of its fraction there: a context of few cells carries its interval
into the gate's risk (``small_context_risk``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from .._measured import _wilson
from ._gate import Gate, parse_gate
from ._problem import HealthyCells, HealthyPseudobulk

__all__ = [
    "ARM_CONFIDENCE",
    "BODY_WIDE_NTPM",
    "MIN_CONTEXT_CELLS",
    "MIN_VETO_SHOWN",
    "body_wide_share",
    "judge_arms",
]

#: One-sided confidence at which an arm's gain must be above 0.
ARM_CONFIDENCE = 0.95
#: Least share of the protected context's cells (Wilson lower bound) that must carry a veto.
MIN_VETO_SHOWN = 0.05
#: Resamples for the intervals.
N_RESAMPLES = 200
#: Share of the protected cells the model expects an AND arm on from which it is taken to
#: protect nothing (ITM2B, HLA-C, PTPRC on marrow cells).
NEAR_UBIQUITOUS = 0.9
#: Exact cell types with fewer cells carry their interval into the gate's risk: the upper
#: end of the Wilson interval of the gate's fraction there must stay under the cap.
MIN_CONTEXT_CELLS = 50
#: Level (nTPM) at which the reference's single-cell profile counts a cell type as carrying
#: an AND arm's antigen for the body-wide test.
BODY_WIDE_NTPM = 10.0


@dataclass
class ArmData:
    """What the arms are judged on (the search's own inputs).

    Attributes
    ----------
    T
        Tumour cells × genes positivity.
    patients
        Patient label per tumour cell.
    genes
        Gene names, the columns of ``T`` and of the healthy parts.
    cells
        Exact healthy cells (or ``None``).
    bulk
        Pseudobulk contexts (or ``None``).
    cell_means
        ``(n_types, n_genes)`` mean CP10k of the exact healthy cells per type (or ``None``):
        where the positivity model expects an AND arm.
    threshold
        Positivity threshold (CP10k).
    cap
        The search's risk cap (``max_vital_risk``).
    body_wide
        ``(n_genes,)`` share of the reference's single-cell types measured at
        :data:`BODY_WIDE_NTPM` or more (or ``None``: no such profile).
    """

    T: Any
    patients: np.ndarray
    genes: list[str]
    cells: HealthyCells | None
    bulk: HealthyPseudobulk | None
    cell_means: np.ndarray | None
    threshold: float
    cap: float = 1.0
    body_wide: np.ndarray | None = None


#: The reference's contexts the body-wide test reads (one profile per cell type of the body).
BODY_WIDE_SOURCE = "HPA single cell type"


def body_wide_share(reference: Any, genes: list[str]) -> np.ndarray | None:
    """Return per gene the share of the reference's HPA single-cell types that carry it.

    A type carries a gene at :data:`BODY_WIDE_NTPM` nTPM or more (0 for a gene the reference
    lacks); ``None`` when the reference has no such profile (a custom reference).

    >>> from antigenscout.reference import load_reference
    >>> share = body_wide_share(load_reference(), ["HLA-C", "FLT3"])
    >>> bool(share[0] >= NEAR_UBIQUITOUS), bool(share[1] >= NEAR_UBIQUITOUS)
    (True, False)
    """
    ctx = reference.contexts
    cols = ctx.index[ctx["source"].astype(str) == BODY_WIDE_SOURCE]
    cols = cols.intersection(reference.expression.columns)
    if not len(cols):
        return None
    X = reference.expression[cols].reindex(genes).fillna(0.0).to_numpy(dtype=np.float64)
    return (X >= BODY_WIDE_NTPM).mean(axis=1)


def _dense(X: Any) -> np.ndarray:
    return X.toarray().astype(bool) if sparse.issparse(X) else np.asarray(X, dtype=bool)


def _truth(gate: Gate, M: np.ndarray) -> np.ndarray:
    """Return whether the gate holds in each row of ``M`` (cells × genes, bool)."""
    if gate.op == "lit":
        v = M[:, gate.gene]
        return ~v if gate.negated else v
    parts = [_truth(c, M) for c in gate.children]
    return np.logical_and.reduce(parts) if gate.op == "and" else np.logical_or.reduce(parts)


def _without(gate: Gate, i: int) -> Gate:
    rest = [c for j, c in enumerate(gate.children) if j != i]
    if len(rest) == 1:
        return rest[0]
    return Gate.and_(*rest) if gate.op == "and" else Gate.or_(*rest)


def _label(arm: Gate, names: list[str]) -> str:
    return f"{'NOT ' if arm.negated else ''}{names[arm.gene]}"


def judge_arms(table: pd.DataFrame, data: ArmData, *, seed: int = 0) -> pd.DataFrame:
    """Each gate's arm gains with intervals and whether every arm is shown.

    Parameters
    ----------
    table
        Gates as the search reports them (``gate`` column, names from ``data.genes``).
    data
        The search's inputs (:class:`ArmData`).
    seed
        Seed of the resamples.

    Returns
    -------
    DataFrame indexed like ``table``: ``arm_gains`` (one phrase per arm, as the change the arm
    makes: ``NOT B: risk -0.07 [-0.02]`` lowers the risk by 0.07, and by at least 0.02 at the
    stated confidence; ``C: coverage +0.10 [+0.04]``), ``arm_gain_low`` (the smallest gain
    at that confidence, as a gain: 0.02 above), ``arms_shown`` (every arm shown) and
    ``set_aside`` (why not; ``'none'`` when shown, and ``arm_gains`` ``'none'`` for a gate
    without arms to judge, as a written table reads back alike).
    """
    z = _z(ARM_CONFIDENCE)
    q = 1.0 - ARM_CONFIDENCE
    rng = np.random.default_rng(seed)
    texts = table["gate"].astype(str).tolist()
    data = _only(data, sorted({g for t in texts for g in parse_gate(t, data.genes).genes}))
    T = _dense(data.T)
    cells = None if data.cells is None else _dense(data.cells.X)
    # resample indices, shared by every gate (paired)
    t_idx = _strata_resamples(np.asarray(data.patients), rng)
    h_idx = None
    if data.cells is not None:
        h_idx = _strata_resamples(np.asarray(data.cells.cell_types), rng)
    rows = []
    for text in texts:
        gate = parse_gate(text, data.genes)
        rows.append(_judge_one(gate, data, T, cells, t_idx, h_idx, z, q))
    return pd.DataFrame(rows, index=table.index)


def _only(data: ArmData, used: list[int]) -> ArmData:
    """Return ``data`` over the genes the gates use (the matrices made dense are these columns)."""
    col = np.asarray(used, dtype=np.int64)
    cells = data.cells
    if cells is not None:
        cells = HealthyCells(cells.X[:, col], cells.cell_types, cells.weights, names=cells.names)
    bulk = data.bulk
    if bulk is not None:
        bulk = HealthyPseudobulk(
            bulk.fractions[:, col],
            bulk.weights,
            names=bulk.names,
            shown=None if bulk.shown is None else bulk.shown[:, col],
        )
    return ArmData(
        T=data.T[:, col],
        patients=data.patients,
        genes=[data.genes[i] for i in used],
        cells=cells,
        bulk=bulk,
        cell_means=None if data.cell_means is None else data.cell_means[:, col],
        threshold=data.threshold,
        cap=data.cap,
        body_wide=None if data.body_wide is None else data.body_wide[col],
    )


def _z(confidence: float) -> float:
    from scipy.stats import norm  # noqa: PLC0415

    return float(norm.ppf(confidence))


def _strata_resamples(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Return ``(N_RESAMPLES, n)`` indices of stratified bootstrap resamples.

    Each resample draws every stratum's rows with replacement, as many as it has.
    """
    n = len(labels)
    out = np.empty((N_RESAMPLES, n), dtype=np.int32)
    codes, _ = pd.factorize(pd.Series(labels))
    for k in np.unique(codes):
        rows = np.flatnonzero(codes == k)
        out[:, rows] = rows[rng.integers(0, len(rows), size=(N_RESAMPLES, len(rows)))]
    return out


def _risks(
    gate: Gate, data: ArmData, cells: np.ndarray | None, h_idx: np.ndarray | None
) -> tuple[np.ndarray, float, np.ndarray | None, np.ndarray | None]:
    """``(resampled worst risks, point worst risk, point per-type exact risks, bulk risks)``."""
    bulk_risk = None
    floor = 0.0
    if data.bulk is not None:
        _, hi = gate.frechet(data.bulk.fractions, data.bulk.shown)
        bulk_risk = data.bulk.weights * hi
        floor = float(bulk_risk.max(initial=0.0))
    if cells is None or data.cells is None or h_idx is None:
        return np.full(N_RESAMPLES, floor), floor, None, bulk_risk
    hold = _truth(gate, cells)
    types = np.asarray(data.cells.cell_types)
    n_types = len(data.cells.weights)
    w = np.asarray(data.cells.weights, dtype=np.float64)
    counts = np.bincount(types, minlength=n_types).astype(np.float64)
    point = w * np.bincount(types, weights=hold, minlength=n_types) / np.maximum(counts, 1)
    # every resample's per-type positive counts at once: (resamples × cells) @ (cells × types)
    member = sparse.csr_matrix(
        (np.ones(len(types)), (np.arange(len(types)), types)), shape=(len(types), n_types)
    )
    frac = (member.T @ hold[h_idx].T.astype(np.float64)).T / np.maximum(counts, 1)
    boot = np.maximum((w * frac).max(axis=1, initial=0.0), floor)
    return boot, max(float(point.max(initial=0.0)), floor), point, bulk_risk


def _coverages(gate: Gate, T: np.ndarray, t_idx: np.ndarray) -> tuple[np.ndarray, float]:
    hold = _truth(gate, T)
    return hold[t_idx].mean(axis=1), float(hold.mean())


def _judge_one(  # noqa: PLR0912, PLR0913, PLR0915, PLR0917
    gate: Gate,
    data: ArmData,
    T: np.ndarray,
    cells: np.ndarray | None,
    t_idx: np.ndarray,
    h_idx: np.ndarray | None,
    z: float,
    q: float,
) -> dict[str, Any]:
    names = data.genes
    phrases: list[str] = []
    lows: list[float] = []
    why: list[str] = []
    small_risk, small_name, small_n = _small_context_risk(gate, data, cells, z)
    if small_risk > data.cap + 1e-12:
        why.append(
            f"its risk in {small_name} ({small_n} cells) may reach {small_risk:.3f} "
            f"(> {data.cap:g}): too few cells to show it under the cap"
        )
    if gate.op == "lit" or any(c.op != "lit" for c in gate.children):
        pass  # no arms to judge
    elif gate.op == "and":
        boot, point, _, _ = _risks(gate, data, cells, h_idx)
        for i, arm in enumerate(gate.children):
            sub = _without(gate, i)
            sboot, spoint, sper, sbulk = _risks(sub, data, cells, h_idx)
            gain = spoint - point
            low = float(np.quantile(sboot - boot, q))
            label = _label(arm, names)
            phrase = f"{label}: risk {-gain:+.3f} [{-low:+.3f}]"
            lows.append(low)
            where, exact = _protected(sper, sbulk)
            body = np.nan if data.body_wide is None else float(data.body_wide[arm.gene])
            if arm.negated:
                shown = _veto_shown(arm.gene, where, exact, data, cells, z)
                phrases.append(f"{phrase}, shown >= {shown:.1%}")
                if low <= 0:
                    why.append(f"{label} lowers the risk by no more than noise")
                elif body >= NEAR_UBIQUITOUS:
                    why.append(
                        f"{label}: the veto is measured at {BODY_WIDE_NTPM:g} nTPM or more in "
                        f"{body:.0%} of the reference's HPA single-cell types, so the tumour "
                        "cells read without it most likely carry it undetected"
                    )
                elif shown < MIN_VETO_SHOWN:
                    why.append(
                        f"{label}: the veto is shown on {shown:.1%} of the cells it protects "
                        f"(< {MIN_VETO_SHOWN:.0%})"
                    )
                continue
            if exact and data.cell_means is not None and data.cells is not None:
                mean = float(data.cell_means[where, arm.gene])
                expected = float(np.exp(-data.threshold / mean)) if mean > 0 else 0.0
                most = float(data.cells.weights[where]) * (1.0 - expected)
                phrases.append(f"{phrase}, on ~{expected:.0%}")
            else:
                expected, most = np.nan, np.inf
                phrases.append(phrase)
            if low <= 0:
                why.append(f"{label} lowers the risk by no more than noise")
            elif body >= NEAR_UBIQUITOUS:
                why.append(
                    f"{label} is measured at {BODY_WIDE_NTPM:g} nTPM or more in {body:.0%} of "
                    "the reference's HPA single-cell types: an arm on nearly every cell "
                    "protects nothing"
                )
            elif expected >= NEAR_UBIQUITOUS:
                why.append(
                    f"{label} is expected on {expected:.0%} of the cells it protects: an arm "
                    "on nearly every cell protects nothing"
                )
            elif low > most + 1e-12:
                why.append(
                    f"{label} is expected on {expected:.0%} of the cells it protects, so it "
                    f"can lower their risk by at most {most:.3f}, not {low:.3f} or more: "
                    "dropout"
                )
    else:  # an OR: each arm must add coverage
        boot, point = _coverages(gate, T, t_idx)
        for i, arm in enumerate(gate.children):
            sboot, spoint = _coverages(_without(gate, i), T, t_idx)
            low = float(np.quantile(boot - sboot, q))
            label = _label(arm, names)
            phrases.append(f"{label}: coverage {point - spoint:+.3f} [{low:+.3f}]")
            lows.append(low)
            if low <= 0:
                why.append(f"{label} adds no more coverage than noise")
    return {
        "arm_gains": "; ".join(phrases) or "none",
        "arm_gain_low": float(min(lows)) if lows else np.nan,
        "small_context_risk": small_risk,
        "arms_shown": not why,
        "set_aside": "; ".join(why) or "none",
    }


def _small_context_risk(
    gate: Gate, data: ArmData, cells: np.ndarray | None, z: float
) -> tuple[float, str, int]:
    """Return the gate's largest weighted risk (Wilson upper end) over small exact cell types.

    The risk is taken at the upper end of its Wilson interval, over the exact cell types of
    fewer than :data:`MIN_CONTEXT_CELLS` cells: ``(risk, type, cells)``; ``(nan, '', 0)`` when
    there is none.
    """
    if cells is None or data.cells is None:
        return float("nan"), "", 0
    types = np.asarray(data.cells.cell_types)
    n_types = len(data.cells.weights)
    n = np.bincount(types, minlength=n_types).astype(np.float64)
    small = (n > 0) & (n < MIN_CONTEXT_CELLS)
    if not small.any():
        return float("nan"), "", 0
    k = np.bincount(types, weights=_truth(gate, cells), minlength=n_types)
    _, high = _wilson(np.divide(k, n, out=np.zeros_like(k), where=n > 0), n, z)
    risk = np.where(small, np.asarray(data.cells.weights, dtype=np.float64) * high, -1.0)
    j = int(np.argmax(risk))
    names = data.cells.names or [f"type{i}" for i in range(n_types)]
    return float(risk[j]), str(names[j]), int(n[j])


def _protected(per_type: np.ndarray | None, bulk: np.ndarray | None) -> tuple[int, bool]:
    """Return the sub-gate's worst context: ``(index, is an exact-cell type)``."""
    best_cells = -1.0 if per_type is None or not len(per_type) else float(per_type.max())
    best_bulk = -1.0 if bulk is None or not len(bulk) else float(bulk.max())
    if best_cells >= best_bulk:
        return int(np.argmax(per_type)), True
    return int(np.argmax(bulk)), False


def _veto_shown(  # noqa: PLR0913, PLR0917
    gene: int,
    where: int,
    exact: bool,
    data: ArmData,
    cells: np.ndarray | None,
    z: float,
) -> float:
    """Return the share of the protected context's cells shown to carry the veto (a lower bound)."""
    if exact and cells is not None and data.cells is not None:
        in_type = np.asarray(data.cells.cell_types) == where
        k = np.array([cells[in_type, gene].sum()], dtype=np.float64)
        n = np.array([in_type.sum()], dtype=np.float64)
        return float(_wilson(np.divide(k, n, out=np.zeros_like(k), where=n > 0), n, z)[0][0])
    if data.bulk is None:
        return 0.0
    shown = data.bulk.fractions if data.bulk.shown is None else data.bulk.shown
    return float(shown[where, gene])
