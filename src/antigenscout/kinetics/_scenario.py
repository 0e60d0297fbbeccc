"""Therapy scenario: how a chosen target covers tumour compartments and a healthy cell type."""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from .._errors import InputError
from ._params import HEALTHY_TURNOVER

__all__ = ["Scenario", "scenario_from_run"]

# Which tumour level a ranking compartment name maps to (matched case-insensitively).
_STEM_RE = re.compile(r"hsc|stem|lsc|\blt-|\bst-", re.IGNORECASE)
_PROG_RE = re.compile(r"progenitor|mpp|lmpp|cmp|gmp|mep|blast|prog", re.IGNORECASE)


def _check_fraction(name: str, value: float | None) -> None:
    if value is None:
        return
    if not isinstance(value, int | float) or math.isnan(value) or not 0.0 <= value <= 1.0:
        msg = f"Scenario {name} must be a fraction in [0, 1]. Got {value!r}."
        raise InputError(msg)


@dataclass(frozen=True)
class Scenario:
    """Coverage of one target across tumour compartments and one healthy cell type.

    Parameters
    ----------
    target
        Target (gene or gate) name, for labelling.
    tumour_coverage
        Fraction of tumour cells that are antigen-positive (bulk / terminal level and the
        default for levels given no coverage of their own).
    stem_coverage
        Fraction of tumour stem cells (level 0) that are antigen-positive; ``None`` uses
        ``tumour_coverage``.
    progenitor_coverage
        Fraction of tumour progenitors (levels 1–2) that are antigen-positive; ``None`` uses
        ``tumour_coverage``.
    healthy_cell_type
        Name of the healthy antigen-positive cell type (e.g. ``"B cell"``, ``"monocyte"``).
    healthy_positive_fraction
        Fraction of that cell type that carries the antigen (0 disables on-target/off-tumour
        killing).
    healthy_turnover_per_day
        Turnover rate of the healthy cell type; ``None`` looks it up by name (B cells:
        1/60 per day, León-Triana 2021; myeloid end cells: 1 per day, Michor 2005).
    compartment_coverage
        Raw per-compartment coverages read from a ranking run (for the record).
    source
        Where the scenario came from.
    """

    target: str
    tumour_coverage: float = 1.0
    stem_coverage: float | None = None
    progenitor_coverage: float | None = None
    healthy_cell_type: str | None = None
    healthy_positive_fraction: float = 0.0
    healthy_turnover_per_day: float | None = None
    compartment_coverage: dict[str, float] = field(default_factory=dict)
    source: str | None = None

    def __post_init__(self) -> None:
        _check_fraction("tumour_coverage", self.tumour_coverage)
        _check_fraction("stem_coverage", self.stem_coverage)
        _check_fraction("progenitor_coverage", self.progenitor_coverage)
        _check_fraction("healthy_positive_fraction", self.healthy_positive_fraction)
        k = self.healthy_turnover_per_day
        if k is not None and not (isinstance(k, int | float) and math.isfinite(k) and k > 0):
            msg = f"Scenario healthy_turnover_per_day must be a positive number. Got {k!r}."
            raise InputError(msg)

    @property
    def stem(self) -> float:
        """Antigen-positive fraction of tumour stem cells."""
        return self.tumour_coverage if self.stem_coverage is None else self.stem_coverage

    @property
    def progenitor(self) -> float:
        """Antigen-positive fraction of tumour progenitors."""
        if self.progenitor_coverage is None:
            return self.tumour_coverage
        return self.progenitor_coverage

    def healthy_turnover(self) -> tuple[float, str]:
        """Turnover rate (1/day) of the healthy cell type and its source."""
        if self.healthy_turnover_per_day is not None:
            return float(self.healthy_turnover_per_day), "user input"
        if self.healthy_positive_fraction == 0.0:
            return 1.0 / 60.0, "unused (no antigen-positive healthy cells)"
        name = (self.healthy_cell_type or "").lower()
        for key, (rate, src) in HEALTHY_TURNOVER.items():
            if key in name:
                return rate, src
        known = sorted({k for k in HEALTHY_TURNOVER})
        msg = (
            f"no published turnover rate for healthy cell type {self.healthy_cell_type!r} "
            f"(known: {', '.join(known)}); pass healthy_turnover_per_day= "
            "(CLI: --healthy-turnover RATE_PER_DAY)."
        )
        raise InputError(msg)

    def as_dict(self) -> dict[str, object]:
        """Plain-dict form for ``summary.json``."""
        rate, src = self.healthy_turnover()
        return {
            "target": self.target,
            "tumour_coverage": self.tumour_coverage,
            "stem_coverage": self.stem,
            "progenitor_coverage": self.progenitor,
            "healthy_cell_type": self.healthy_cell_type,
            "healthy_positive_fraction": self.healthy_positive_fraction,
            "healthy_turnover_per_day": rate,
            "healthy_turnover_source": src,
            "compartment_coverage": dict(self.compartment_coverage),
            "source": self.source,
        }


def _read_tsv(path: Path, what: str) -> pd.DataFrame:
    if not path.is_file():
        msg = (
            f"{what} {str(path)!r} not found; point --from at a ranking output directory "
            "(it holds targets.tsv and risk.tsv)."
        )
        raise InputError(msg)
    try:
        return pd.read_csv(path, sep="\t")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        msg = f"cannot read {str(path)!r} as a tab-separated table ({e}); re-run the ranking."
        raise InputError(msg) from None


def _fraction(value: object, what: str) -> float:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        msg = f"{what} is not a number ({value!r}); re-run the ranking."
        raise InputError(msg) from None
    if not math.isfinite(x) or not 0.0 <= x <= 1.0:
        msg = f"{what} must be a fraction in [0, 1]. Got {value!r}."
        raise InputError(msg)
    return x


def scenario_from_run(
    run_dir: str | os.PathLike[str],
    target: str,
    *,
    healthy_turnover_per_day: float | None = None,
) -> Scenario:
    """Build a :class:`Scenario` from a ranking output directory.

    Parameters
    ----------
    run_dir
        Directory holding ``targets.tsv`` (columns ``target``, ``tumor_coverage``,
        ``patient_coverage_median``, ``worst_healthy_cell_type``, ``coverage__<compartment>``)
        and ``risk.tsv`` (``target``, ``context``, ``name``, ``system``,
        ``positive_fraction``, ``vital_weight``, ``risk``).
    target
        Row of ``targets.tsv`` to simulate.
    healthy_turnover_per_day
        Override for the healthy cell type's turnover rate.

    Returns
    -------
    The scenario. Compartments whose name looks like a stem cell (``HSC``, ``stem``,
    ``LSC``) set ``stem_coverage``; progenitor-like names (``progenitor``, ``MPP``, ``GMP``,
    ``CMP``, ``blast``…) set ``progenitor_coverage`` (mean when several match). The healthy
    compartment is ``worst_healthy_cell_type`` and its ``positive_fraction`` in ``risk.tsv``
    (largest over contexts); when the column is empty, the row of largest ``risk``.
    """
    run = Path(run_dir)
    if not run.is_dir():
        msg = f"--from {str(run)!r} is not a directory; point it at a ranking output directory."
        raise InputError(msg)
    targets = _read_tsv(run / "targets.tsv", "targets table")
    for col in ("target", "tumor_coverage"):
        if col not in targets.columns:
            msg = f"targets.tsv in {str(run)!r} has no {col!r} column; re-run the ranking."
            raise InputError(msg)
    rows = targets[targets["target"].astype(str) == target]
    if rows.empty:
        head = ", ".join(map(str, targets["target"].head(5)))
        msg = (
            f"target {target!r} is not in {str(run / 'targets.tsv')!r} "
            f"(first targets: {head}); pass one of its 'target' values."
        )
        raise InputError(msg)
    row = rows.iloc[0]
    tumour = _fraction(row["tumor_coverage"], f"tumor_coverage of {target!r}")
    comp: dict[str, float] = {}
    for col in targets.columns:
        if col.startswith("coverage__") and pd.notna(row[col]):
            comp[col.removeprefix("coverage__")] = _fraction(row[col], f"{col} of {target!r}")
    stem_vals = [v for k, v in comp.items() if _STEM_RE.search(k)]
    prog_vals = [v for k, v in comp.items() if not _STEM_RE.search(k) and _PROG_RE.search(k)]
    stem = sum(stem_vals) / len(stem_vals) if stem_vals else None
    prog = sum(prog_vals) / len(prog_vals) if prog_vals else None

    risk = _read_tsv(run / "risk.tsv", "risk table")
    for col in ("target", "name", "positive_fraction"):
        if col not in risk.columns:
            msg = f"risk.tsv in {str(run)!r} has no {col!r} column; re-run the ranking."
            raise InputError(msg)
    rt = risk[risk["target"].astype(str) == target]
    worst = row.get("worst_healthy_cell_type")
    cell_type: str | None = None
    pos = 0.0
    if not rt.empty:
        if isinstance(worst, str) and worst and (rt["name"].astype(str) == worst).any():
            sel = rt[rt["name"].astype(str) == worst]
        elif "risk" in rt.columns:
            sel = rt[rt["name"] == rt.loc[rt["risk"].astype(float).idxmax(), "name"]]
        else:
            sel = rt
        best = sel.loc[sel["positive_fraction"].astype(float).idxmax()]
        cell_type = str(best["name"])
        pos = _fraction(best["positive_fraction"], f"positive_fraction of {cell_type!r}")
    elif isinstance(worst, str) and worst:
        cell_type = worst
    return Scenario(
        target=target,
        tumour_coverage=tumour,
        stem_coverage=stem,
        progenitor_coverage=prog,
        healthy_cell_type=cell_type,
        healthy_positive_fraction=pos,
        healthy_turnover_per_day=healthy_turnover_per_day,
        compartment_coverage=comp,
        source=str(run),
    )
