"""Therapy scenario: how a chosen target covers tumour compartments and a healthy cell type."""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._errors import InputError
from ..io._write import read_output_table
from ._params import HEALTHY_TURNOVER

if TYPE_CHECKING:
    from ..reference import Reference

__all__ = ["Scenario", "detect_indication", "same_indication", "scenario_from_run", "turnover_for"]

# Which tumour level a ranking compartment name maps to (matched case-insensitively).
_STEM_RE = re.compile(r"hsc|stem|lsc|\blt-|\bst-", re.IGNORECASE)
_PROG_RE = re.compile(r"progenitor|mpp|lmpp|cmp|gmp|mep|blast|prog", re.IGNORECASE)


def _run_meta(run: Path) -> tuple[dict[str, object], dict[str, object]]:
    """``run.json`` of a run folder and its ``params`` (empty when absent or unreadable)."""
    meta: dict[str, object] = {}
    if (run / "run.json").is_file():
        try:
            meta = json.loads((run / "run.json").read_text())
        except (json.JSONDecodeError, UnicodeDecodeError, OSError):
            meta = {}
    params = meta.get("params")
    return meta, params if isinstance(params, dict) else {}


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
    patient_coverage
        Per-patient tumour coverages of the ranking (``patient_coverage.tsv``); each virtual
        patient draws one of them for its bulk tumour coverage. Empty: every patient gets
        ``tumour_coverage``.
    indication
        Disease of the data the ranking was run on, where known (e.g. ``"AML"``).
    healthy_vital_weight
        Vital weight of the healthy context (``risk.tsv``), for flagging its loss.
    healthy_system
        Organ system of the healthy context (``risk.tsv``); turnover is looked up only for
        haematopoietic / immune systems.
    warnings
        Problems found while reading the ranking (also written to ``summary.json``).
    healthy_source
        What measured ``healthy_positive_fraction`` (the ``source`` of its ``risk.tsv`` row,
        e.g. ``atlas:<name>`` for an atlas cell type).
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
    patient_coverage: tuple[float, ...] = ()
    indication: str | None = None
    healthy_vital_weight: float | None = None
    healthy_system: str | None = None
    warnings: tuple[str, ...] = ()
    healthy_source: str | None = None

    def __post_init__(self) -> None:
        _check_fraction("tumour_coverage", self.tumour_coverage)
        _check_fraction("stem_coverage", self.stem_coverage)
        _check_fraction("progenitor_coverage", self.progenitor_coverage)
        _check_fraction("healthy_positive_fraction", self.healthy_positive_fraction)
        for v in self.patient_coverage:
            _check_fraction("patient_coverage", v)
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
            return 1.0 / 60.0, "not used: no antigen-positive healthy cells"
        found = turnover_for(self.healthy_cell_type or "", self.healthy_system)
        if found is not None:
            return found
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
            "healthy_positive_fraction_source": self.healthy_source,
            "healthy_turnover_per_day": rate,
            "healthy_turnover_source": src,
            "compartment_coverage": dict(self.compartment_coverage),
            "patient_coverage": list(self.patient_coverage),
            "indication_of_data": self.indication,
            "healthy_vital_weight": self.healthy_vital_weight,
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
        return read_output_table(path)
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


_HAEM_SYSTEM_RE = re.compile(r"haematopoietic|hematopoietic|immune|blood|lymph|myeloid", re.I)
#: A healthy context engaged at least this much and of at least this vital weight is flagged
#: when it is not the simulated compartment.
_FLAG_POSITIVE = 0.1
_FLAG_VITAL = 0.8
#: Indication prefixes recognised in patient identifiers (e.g. ``AML328``).
_INDICATION_RE = re.compile(r"^(B-ALL|T-ALL|AML|CML|ALL|CLL|MM|DLBCL|LBCL|MDS)", re.I)


def turnover_for(name: str, system: str | None = None) -> tuple[float, str] | None:
    """Return the published turnover (1/day, source) of a healthy cell type, or ``None``.

    Matched on a lower-case substring of the name (:data:`HEALTHY_TURNOVER`); when the
    ranking gives the context's ``system``, only haematopoietic / immune contexts match
    (an intestinal crypt stem cell is not a haematopoietic stem cell).
    """
    if system is not None and isinstance(system, str) and not _HAEM_SYSTEM_RE.search(system):
        return None
    low = name.lower()
    for key, (rate, src) in HEALTHY_TURNOVER.items():
        if key in low:
            return rate, src
    return None


def same_indication(a: str, b: str) -> bool:
    """Whether two indication labels name the same disease (``ALL`` = ``B-ALL``)."""

    def norm(x: str) -> str:
        x = x.strip().upper()
        return "ALL" if x in {"B-ALL", "ALL"} else ("LBCL" if x == "DLBCL" else x)

    return norm(a) == norm(b)


def detect_indication(run_dir: str | os.PathLike[str]) -> tuple[str | None, str]:
    """Return the indication of a ranking run and how it was found.

    Order: an ``indication`` entry of ``run.json`` (top level or ``params``); the ``demo``
    command (the embedded van Galen 2019 AML subset); patient identifiers of
    ``patient_coverage.tsv`` that all start with the same disease abbreviation.
    """
    run = Path(run_dir)
    meta, params = _run_meta(run)
    for where in (meta, params):
        ind = where.get("indication") if isinstance(where, dict) else None  # type: ignore[union-attr]
        if isinstance(ind, str) and ind:
            return ind, "run.json 'indication'"
    if meta.get("command") == "demo":
        return "AML", "run.json: 'demo' ranks the van Galen 2019 AML subset"
    pc = run / "patient_coverage.tsv"
    if pc.is_file():
        try:
            cols = list(read_output_table(pc, nrows=0).columns[1:])
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
            cols = []
        found = {m.group(1).upper() for c in cols if (m := _INDICATION_RE.match(str(c)))}
        if cols and len(found) == 1 and all(_INDICATION_RE.match(str(c)) for c in cols):
            return found.pop(), "patient identifiers in patient_coverage.tsv"
    return None, "not recorded in run.json or the patient identifiers"


def _patient_coverage(run: Path, target: str) -> tuple[float, ...]:
    path = run / "patient_coverage.tsv"
    if not path.is_file():
        return ()
    pc = _read_tsv(path, "patient coverage table")
    key = pc.columns[0]
    rows = pc[pc[key].astype(str) == target]
    if rows.empty:
        return ()
    vals = pd.to_numeric(rows.iloc[0, 1:], errors="coerce").dropna()
    return tuple(_fraction(v, f"patient coverage of {target!r}") for v in vals)


def _with_atlas_rows(
    rt: pd.DataFrame, run: Path, target: str, reference: Reference
) -> pd.DataFrame:
    """Return the target's ``risk.tsv`` rows with the atlas's cell types judged by the atlas.

    Rows of embedded contexts that an atlas cell type replaces (and any atlas rows of the
    ranking) are dropped; every atlas cell type the target engages is added with its
    measured fraction, carried to the target's engagement threshold exactly as ``rank
    --atlas`` does (:func:`antigenscout.tl.healthy_risk` at the ranking's threshold and
    modality from ``run.json``).
    """
    from ..tl._risk import healthy_risk  # noqa: PLC0415

    _, params = _run_meta(run)
    pos = params.get("positivity") if isinstance(params, dict) else None  # type: ignore[union-attr]
    threshold = pos.get("threshold_cp10k") if isinstance(pos, dict) else None
    if not isinstance(threshold, int | float):
        from ..pp._positivity import DEFAULT_THRESHOLD  # noqa: PLC0415

        threshold = DEFAULT_THRESHOLD
    modality = params.get("modality") if isinstance(params, dict) else None  # type: ignore[union-attr]
    engage = None
    targets = _read_tsv(run / "targets.tsv", "targets table")
    if "engagement_threshold_cp10k" in targets.columns:
        hit = targets.loc[targets["target"].astype(str) == target, "engagement_threshold_cp10k"]
        value = pd.to_numeric(hit, errors="coerce").dropna()
        if len(value):
            engage = pd.Series([float(value.iloc[0])], index=[target])
    if target not in reference.expression.index:
        msg = (
            f"target {target!r} is not a gene of the reference, so the atlas cannot judge it; "
            "drop --atlas to use the ranking's risk.tsv."
        )
        raise InputError(msg)
    exp = params.get("exposure") if isinstance(params, dict) else None
    hr = healthy_risk(
        reference,
        threshold_cp10k=float(threshold),
        modality=modality if isinstance(modality, str) else None,
        gene_threshold_cp10k=engage,
        pregnancy=bool((exp or {}).get("pregnancy", False)),
        route=str((exp or {}).get("route", "systemic")),
    )
    atlas_rows = hr.long([target])
    atlas_rows = atlas_rows[atlas_rows["context"].astype(str).str.startswith("atlas:")]
    replaced = set((reference.metadata.get("atlas") or {}).get("contexts_replaced") or [])
    ctx = rt["context"].astype(str) if "context" in rt.columns else pd.Series("", index=rt.index)
    keep = rt[~ctx.isin(replaced) & ~ctx.str.startswith("atlas:")]
    cols = [c for c in atlas_rows.columns if c in rt.columns]
    return pd.concat([keep, atlas_rows[cols]], ignore_index=True)


def scenario_from_run(  # noqa: PLR0912, PLR0915
    run_dir: str | os.PathLike[str],
    target: str,
    *,
    healthy: str | None = None,
    healthy_turnover_per_day: float | None = None,
    reference: Reference | None = None,
) -> Scenario:
    """Build a :class:`Scenario` from a ranking output directory.

    Parameters
    ----------
    run_dir
        Directory holding ``targets.tsv`` (columns ``target``, ``tumor_coverage``,
        ``coverage__<compartment>``, ...), ``risk.tsv`` (``target``, ``context``, ``name``,
        ``system``, ``positive_fraction``, ``vital_weight``, ``risk``) and, optionally,
        ``patient_coverage.tsv`` (one row per target, one column per patient) and
        ``run.json``.
    target
        Row of ``targets.tsv`` to simulate.
    healthy
        Healthy compartment to simulate: a ``name`` (or ``context``) of the target's rows in
        ``risk.tsv``. Default: the most engaged (largest ``positive_fraction``) context that
        has a published turnover.
    healthy_turnover_per_day
        Turnover rate of the healthy compartment; needed when it has no published turnover.
    reference
        A reference with a healthy atlas merged in
        (:meth:`~antigenscout.reference.Reference.with_atlas`; CLI ``--atlas``): the atlas's
        cell types replace the embedded contexts they map to, with their measured positive
        fractions at the target's engagement threshold, before the compartment is chosen
        (``--healthy`` may then name an atlas cell type). ``None``: ``risk.tsv`` as written.

    Returns
    -------
    The scenario. Compartments whose name looks like a stem cell (``HSC``, ``stem``,
    ``LSC``) set ``stem_coverage``; progenitor-like names (``progenitor``, ``MPP``, ``GMP``,
    ``CMP``, ``blast``…) set ``progenitor_coverage`` (mean when several match); the
    per-patient coverages of ``patient_coverage.tsv`` are kept for the cohort. Engaged vital
    contexts that are not simulated are listed in ``warnings``.

    Raises
    ------
    InputError
        When a file or column is missing, the target is not ranked, the target has no rows in
        ``risk.tsv`` (re-run the ranking with ``--highlight``), or the healthy compartment
        has no published turnover and none is given.
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
    rt = risk[risk["target"].astype(str) == target].copy()
    if rt.empty:
        msg = (
            f"target {target!r} has no rows in {str(run / 'risk.tsv')!r} (the ranking keeps "
            f"healthy contexts for its top targets only), so its healthy compartment is "
            f"unknown; re-run the ranking with --highlight {target}."
        )
        raise InputError(msg)
    if reference is not None and reference.atlas is not None:
        rt = _with_atlas_rows(rt, run, target, reference)
    rt["positive_fraction"] = [
        _fraction(v, f"positive_fraction of {target!r}") for v in rt["positive_fraction"]
    ]
    rt = rt.sort_values("positive_fraction", ascending=False, kind="stable")
    system = rt["system"] if "system" in rt.columns else pd.Series(None, index=rt.index)
    known = [
        turnover_for(str(n), s if isinstance(s, str) else None)
        for n, s in zip(rt["name"], system, strict=True)
    ]
    if healthy is not None:
        want = healthy.strip().lower()
        hit = rt["name"].astype(str).str.lower() == want
        if not hit.any() and "context" in rt.columns:
            hit = rt["context"].astype(str).str.lower() == want
        if not hit.any():
            names = ", ".join(dict.fromkeys(rt["name"].astype(str).head(8)))
            msg = (
                f"--healthy {healthy!r} is not a healthy context of {target!r} in risk.tsv "
                f"(most engaged: {names}); pass one of its 'name' values."
            )
            raise InputError(msg)
        pick = int(np.flatnonzero(hit.to_numpy())[0])
        if known[pick] is None and healthy_turnover_per_day is None:
            msg = (
                f"no published turnover rate for healthy context {healthy!r}; pass "
                "--healthy-turnover RATE_PER_DAY (healthy_turnover_per_day=) to simulate it."
            )
            raise InputError(msg)
    else:
        cand = [i for i, k in enumerate(known) if k is not None]
        cand = [i for i in cand if rt["positive_fraction"].iloc[i] > 0] or cand
        if not cand:
            top = "; ".join(
                f"{n} {f:.2f}"
                for n, f in zip(rt["name"].head(3), rt["positive_fraction"].head(3), strict=False)
            )
            msg = (
                f"none of the healthy contexts of {target!r} has a published turnover (most "
                f"engaged: {top}); choose one with --healthy NAME --healthy-turnover RATE."
            )
            raise InputError(msg)
        pick = cand[0]
    best = rt.iloc[pick]
    cell_type = str(best["name"])
    pos = float(best["positive_fraction"])
    vital = None
    if "vital_weight" in rt.columns and pd.notna(best["vital_weight"]):
        vital = float(best["vital_weight"])
    if known[pick] is None and healthy_turnover_per_day is not None:
        turnover = float(healthy_turnover_per_day)
    else:
        turnover = healthy_turnover_per_day
    warnings: list[str] = []
    if "vital_weight" in rt.columns:
        others = rt.drop(index=rt.index[pick])
        vit = pd.to_numeric(others["vital_weight"], errors="coerce")
        flag = others[(others["positive_fraction"] >= _FLAG_POSITIVE) & (vit >= _FLAG_VITAL)]
        for _, r in flag.head(3).iterrows():
            sys_ = r.get("system")
            has = turnover_for(str(r["name"]), sys_ if isinstance(sys_, str) else None)
            hint = f"--healthy {json.dumps(str(r['name']))}"
            if has is None:
                hint += " --healthy-turnover RATE"
            warnings.append(
                f"{r['name']} ({r.get('tissue', r.get('system', '?'))}, vital weight "
                f"{float(r['vital_weight']):g}) is {float(r['positive_fraction']):.0%} "
                f"antigen-positive but is not simulated: its loss is not modelled (simulate it "
                f"with {hint})."
            )
    ind, _how = detect_indication(run)
    return Scenario(
        target=target,
        tumour_coverage=tumour,
        stem_coverage=stem,
        progenitor_coverage=prog,
        healthy_cell_type=cell_type,
        healthy_positive_fraction=pos,
        healthy_turnover_per_day=turnover,
        compartment_coverage=comp,
        source=str(run),
        patient_coverage=_patient_coverage(run, target),
        indication=ind,
        healthy_vital_weight=vital,
        healthy_system=str(best["system"]) if "system" in rt.columns else None,
        warnings=tuple(warnings),
        healthy_source=str(best["source"]) if "source" in rt.columns else None,
    )
