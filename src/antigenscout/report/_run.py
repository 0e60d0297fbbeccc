"""Read a run directory written by the CLI into one :class:`RunData` object.

Shared by :mod:`antigenscout.report` (HTML) and :mod:`antigenscout.pl` (matplotlib), so
both draw the same numbers. Every file except one of the primary outputs is optional.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._errors import InputError
from .._types import GATES_KEY, N_RISK_TARGETS, TARGETS_KEY
from ..io._write import read_output_table

__all__ = [
    "PRIMARY_FILES",
    "CurveLabel",
    "RunData",
    "as_run",
    "cohort_summary",
    "coverage_by_compartment",
    "curve_label",
    "from_anndata",
    "is_anndata",
    "load_run",
    "metric_unit",
    "patient_matrix",
    "risk_matrix",
    "system_matrix",
    "top_contexts",
]

#: Files of which at least one must exist for a directory to count as a run.
PRIMARY_FILES: tuple[str, ...] = ("targets.tsv", "gates.tsv", "curves.tsv", "cohort.tsv")

_TARGET_REQUIRED = ("target", "tumor_coverage")
_RISK_REQUIRED = ("target", "name", "positive_fraction", "risk")
_GATES_REQUIRED = ("gate", "tumor_coverage")
_CURVES_REQUIRED = ("time_days", "quantity", "p50")


@dataclass
class RunData:
    """Everything the report and the plots need from one run directory.

    Attributes are ``None`` when the corresponding file is absent.
    """

    run_dir: Path | None = None
    targets: pd.DataFrame | None = None
    risk: pd.DataFrame | None = None
    patient_coverage: pd.DataFrame | None = None
    run: dict[str, Any] = field(default_factory=dict)
    gates: pd.DataFrame | None = None
    #: The designs the user asked to evaluate (``designs.tsv``) and the gates examined but
    #: set aside because an arm was not shown to beat noise (``set_aside.tsv``).
    designs: pd.DataFrame | None = None
    set_aside: pd.DataFrame | None = None
    cohort: pd.DataFrame | None = None
    summary: dict[str, Any] | None = None
    curves: pd.DataFrame | None = None
    #: Targets the user asked to see first (``--highlight``); ``targets`` then lists them
    #: first, so the best-ranked target is the one with the lowest ``rank``, not row 0.
    highlight: tuple[str, ...] = ()

    @property
    def has_kinetics(self) -> bool:
        """Whether any simulation output is present."""
        return self.curves is not None or self.cohort is not None or self.summary is not None

    def target_order(self) -> list[str]:
        """Targets in rank order (from ``targets.tsv``, else first appearance in ``risk.tsv``)."""
        if self.targets is not None:
            return self.targets["target"].astype(str).tolist()
        if self.risk is not None:
            return list(dict.fromkeys(self.risk["target"].astype(str)))
        if self.patient_coverage is not None:
            return self.patient_coverage.index.astype(str).tolist()
        return []


def _read_tsv(
    path: Path, required: tuple[str, ...], *, index_col: int | None = None
) -> pd.DataFrame:
    try:
        df = read_output_table(path, index_col=index_col)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        msg = (
            f"{str(path)!r} is not a readable tab-separated table ({e}); "
            "re-run the command that wrote it."
        )
        raise InputError(msg) from None
    missing = [c for c in required if c not in df.columns and c != df.index.name]
    if missing:
        msg = (
            f"{str(path)!r} lacks the column(s) {missing}; it was not written by a compatible "
            "antigenscout version. Re-run the command that wrote it."
        )
        raise InputError(msg)
    return df


#: Types of the run.json fields the report reads.
_JSON_TYPES: dict[str, tuple[type | tuple[type, ...], str]] = {
    "command": (str, "a string"),
    "params": (dict, "an object"),
    "denominators": (dict, "an object"),
    "reference": (dict, "an object"),
    "seconds": ((int, float), "a number"),
    "model": (str, "a string"),
}
#: Types of the summary.json fields the report reads (``reference``: the model's paper).
_SUMMARY_TYPES: dict[str, tuple[type | tuple[type, ...], str]] = {
    "model": (str, "a string"),
    "reference": (str, "a string"),
}


def _read_json(
    path: Path, types: dict[str, tuple[type | tuple[type, ...], str]] = _JSON_TYPES
) -> dict[str, Any]:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        msg = f"{str(path)!r} is not valid JSON ({e}); re-run the command that wrote it."
        raise InputError(msg) from None
    if not isinstance(obj, dict):
        msg = f"{str(path)!r} must hold a JSON object; re-run the command that wrote it."
        raise InputError(msg)
    for key, kind in types.items():
        if key in obj and obj[key] is not None and not isinstance(obj[key], kind[0]):
            msg = (
                f"{str(path)!r}: {key!r} must be {kind[1]}, not {type(obj[key]).__name__}; "
                "re-run the command that wrote it."
            )
            raise InputError(msg)
    return obj


def load_run(run_dir: str | os.PathLike[str]) -> RunData:
    """Read the outputs of ``antigenscout rank|demo|gates|simulate`` from ``run_dir``.

    Parameters
    ----------
    run_dir
        Directory holding ``targets.tsv``, ``risk.tsv``, ``patient_coverage.tsv``,
        ``run.json`` and optionally ``gates.tsv`` and simulation outputs (``cohort.tsv``,
        ``summary.json``, ``curves.tsv``).

    Returns
    -------
    The parsed tables; absent files give ``None``.

    Raises
    ------
    InputError
        If ``run_dir`` is not a directory, holds none of :data:`PRIMARY_FILES`, or a file
        is unreadable or lacks required columns.
    """
    path = Path(run_dir)
    if not path.is_dir():
        msg = (
            f"run directory {str(path)!r} does not exist or is not a directory; pass the --out "
            "directory of 'antigenscout rank', 'demo', 'gates' or 'simulate'."
        )
        raise InputError(msg)
    if not any((path / f).is_file() for f in PRIMARY_FILES):
        msg = (
            f"run directory {str(path)!r} holds none of {', '.join(PRIMARY_FILES)}; pass the "
            "--out directory of 'antigenscout rank', 'demo', 'gates' or 'simulate'."
        )
        raise InputError(msg)
    data = RunData(run_dir=path)
    if (p := path / "targets.tsv").is_file():
        data.targets = _targets_table(_read_tsv(p, _TARGET_REQUIRED))
    if (p := path / "risk.tsv").is_file():
        r = _read_tsv(p, _RISK_REQUIRED)
        r["target"] = r["target"].astype(str)
        data.risk = r
    if (p := path / "patient_coverage.tsv").is_file():
        data.patient_coverage = _patient_table(_read_tsv(p, (), index_col=0))
    if (p := path / "run.json").is_file():
        data.run = _read_json(p)
    if (p := path / "gates.tsv").is_file():
        data.gates = _gates_table(_read_tsv(p, _GATES_REQUIRED))
    if (p := path / "designs.tsv").is_file():
        data.designs = _read_tsv(p, ("design", *_GATES_REQUIRED))
    if (p := path / "set_aside.tsv").is_file():
        data.set_aside = _read_tsv(p, (*_GATES_REQUIRED, "set_aside"))
    if (p := path / "cohort.tsv").is_file():
        data.cohort = _read_tsv(p, ())
    if (p := path / "summary.json").is_file():
        data.summary = _read_json(p, _SUMMARY_TYPES)
    if (p := path / "curves.tsv").is_file():
        data.curves = _read_tsv(p, _CURVES_REQUIRED)
    return data


def _plain(df: pd.DataFrame) -> pd.DataFrame:
    """Convert categorical, pandas-string and nullable columns to plain NumPy dtypes.

    These are the dtypes a TSV read gives, so an in-memory table renders exactly like its file.
    """
    out = df.copy()
    for c in out.columns:
        dt = out[c].dtype
        if isinstance(dt, pd.CategoricalDtype) or pd.api.types.is_string_dtype(dt):
            out[c] = out[c].astype(object).where(out[c].notna(), np.nan)
        elif isinstance(dt, pd.BooleanDtype):
            col = out[c]
            out[c] = col.astype(bool) if col.notna().all() else col.astype(object)
        elif pd.api.types.is_extension_array_dtype(dt) and pd.api.types.is_numeric_dtype(dt):
            out[c] = out[c].astype(float)
    return out


def _targets_table(t: pd.DataFrame) -> pd.DataFrame:
    t = t.copy()
    t["target"] = t["target"].astype(str)
    if "rank" in t.columns:
        return t.sort_values("rank", kind="stable").reset_index(drop=True)
    t["rank"] = np.arange(1, len(t) + 1)
    return t


def _patient_table(pc: pd.DataFrame) -> pd.DataFrame:
    pc = pc.copy()
    pc.index = pc.index.astype(str)
    pc.index.name = "target"
    pc.columns = pc.columns.astype(str)
    return pc.apply(pd.to_numeric, errors="coerce")


def _gates_table(g: pd.DataFrame) -> pd.DataFrame:
    if "rank" in g.columns:
        return g.sort_values("rank", kind="stable").reset_index(drop=True)
    return g


def is_anndata(obj: Any) -> bool:
    """Whether ``obj`` is an :class:`anndata.AnnData` (without importing anndata eagerly)."""
    try:
        from anndata import AnnData  # noqa: PLC0415
    except ImportError:  # pragma: no cover - anndata is a dependency
        return False
    return isinstance(obj, AnnData)


def from_anndata(  # noqa: PLR0913
    adata: Any,
    *,
    include: Sequence[str] = (),
    n_risk: int = N_RISK_TARGETS,
    reference: Any = None,
    targets_key: str = TARGETS_KEY,
    gates_key: str = GATES_KEY,
) -> RunData:
    """Return the :class:`RunData` of results stored in an AnnData by ``antigenscout.tl``.

    Reads what :func:`antigenscout.tl.score_targets` and :func:`antigenscout.tl.search_gates`
    wrote to ``adata.uns`` through the tidy tables of :mod:`antigenscout.get`, exactly as
    ``antigenscout rank``/``gates`` write them to a run directory, so a report or plot of
    the AnnData shows the same numbers as one of that directory.

    Parameters
    ----------
    adata
        AnnData scored by ``tl.score_targets`` and/or ``tl.search_gates``.
    include
        Targets whose per-context healthy risk is always computed (e.g. highlighted ones),
        besides the ``n_risk`` best-ranked.
    n_risk
        Best-ranked targets with a per-context risk table (as ``risk.tsv``).
    reference
        Healthy reference for the per-context risk; the embedded default when ``None``.
    targets_key, gates_key
        ``adata.uns`` keys of the results.

    Returns
    -------
    The run; ``run_dir`` is ``None``.

    Raises
    ------
    InputError
        If ``adata.uns`` holds neither result, or ``include`` names an unranked target.
    """
    from .. import get  # noqa: PLC0415
    from ..reference import load_reference  # noqa: PLC0415

    has_t, has_g = targets_key in adata.uns, gates_key in adata.uns
    if not (has_t or has_g):
        msg = (
            f"the AnnData holds no antigenscout results (adata.uns[{targets_key!r}] or "
            f"[{gates_key!r}]); run antigenscout.tl.score_targets or tl.search_gates first."
        )
        raise InputError(msg)
    data = RunData()
    meta: dict[str, Any] = {}
    if has_t:
        reference = load_reference() if reference is None else reference
        res = adata.uns[targets_key]
        data.targets = _targets_table(_plain(get.targets_df(adata, key=targets_key)))
        risk = get.risk_df(
            adata, key=targets_key, n_top=n_risk, include=tuple(include), reference=reference
        )
        data.risk = _plain(risk).assign(target=lambda d: d["target"].astype(str))
        data.patient_coverage = _patient_table(get.patient_coverage_df(adata, key=targets_key))
        meta = {
            "command": "tl.score_targets",
            "params": res.get("params", {}),
            "denominators": res.get("denominators", {}),
            "reference": dict(getattr(reference, "metadata", {}) or {}),
        }
    if has_g:
        res_g = adata.uns[gates_key]
        data.gates = _gates_table(_plain(get.gates_df(adata, key=gates_key)))
        if "designs" in res_g:
            data.designs = _plain(res_g["designs"])
        if "set_aside" in res_g:
            data.set_aside = _plain(res_g["set_aside"])
        if not has_t:
            meta = {
                "command": "tl.search_gates",
                "params": res_g.get("params", {}),
                "denominators": res_g.get("denominators", {}),
            }
    data.run = meta
    return data


def as_run(obj: Any, *, include: Sequence[str] = ()) -> RunData:
    """Return ``obj`` as :class:`RunData`.

    Parameters
    ----------
    obj
        A run directory path, an AnnData scored by ``antigenscout.tl`` (see
        :func:`from_anndata`) or an existing RunData.
    include
        For an AnnData: targets whose per-context risk is always computed.

    Returns
    -------
    The run.

    Raises
    ------
    InputError
        If ``obj`` is none of these, or the directory / AnnData holds no results.
    """
    if isinstance(obj, RunData):
        return obj
    if isinstance(obj, str | os.PathLike):
        return load_run(obj)
    if is_anndata(obj):
        return from_anndata(obj, include=include)
    msg = (
        f"expected a run directory path, an AnnData scored by antigenscout.tl or RunData, "
        f"got {type(obj).__name__}; pass the --out directory of an antigenscout command."
    )
    raise InputError(msg)


# --------------------------------------------------------------------------- derived tables


def top_contexts(risk: pd.DataFrame, target: str, n: int = 5) -> pd.DataFrame:
    """Return the ``n`` healthy contexts with the highest weighted risk for ``target``."""
    sub = risk[risk["target"] == target]
    return sub.sort_values(["risk", "positive_fraction"], ascending=False).head(n)


def risk_matrix(
    risk: pd.DataFrame,
    targets: list[str],
    *,
    max_contexts: int = 45,
    min_risk: float = 0.02,
) -> tuple[pd.DataFrame, pd.Series]:
    """Contexts × targets weighted risk, rows grouped by anatomical system.

    Parameters
    ----------
    risk
        Long table as in ``risk.tsv``.
    targets
        Columns, in display order; targets absent from ``risk`` get zeros.
    max_contexts
        Keep at most this many contexts (those with the highest maximum risk).
    min_risk
        Drop contexts whose maximum risk over ``targets`` is below this.

    Returns
    -------
    ``(matrix, system)``: the matrix indexed by context name, and each row's system. Systems
    are ordered by their highest risk, contexts within a system likewise.
    """
    sub = risk[risk["target"].isin(targets)].copy()
    if "system" not in sub.columns:
        sub["system"] = "unknown"
    sub["system"] = sub["system"].fillna("unknown").astype(str)
    key = "context" if "context" in sub.columns else "name"
    mat = sub.pivot_table(index=key, columns="target", values="risk", aggfunc="max", fill_value=0.0)
    mat = mat.reindex(columns=targets, fill_value=0.0)
    meta = sub.drop_duplicates(key).set_index(key)
    peak = mat.max(axis=1)
    keep = peak[peak >= min_risk].sort_values(ascending=False).head(max_contexts).index
    mat = mat.loc[keep]
    system = meta.loc[mat.index, "system"]
    sys_peak = mat.groupby(system.to_numpy()).max().max(axis=1)
    order = sorted(
        mat.index,
        key=lambda c: (-sys_peak[system[c]], system[c], -mat.loc[c].max(), str(c)),
    )
    mat = mat.loc[order]
    names = meta.loc[order, "name"].astype(str).to_numpy() if "name" in meta.columns else order
    system = pd.Series(system.loc[order].to_numpy(), index=names, name="system")
    mat.index = names
    mat.columns.name = None
    return mat, system


def system_matrix(risk: pd.DataFrame, targets: list[str]) -> pd.DataFrame:
    """Systems × targets maximum weighted risk (systems ordered by their highest risk)."""
    sub = risk[risk["target"].isin(targets)].copy()
    if "system" not in sub.columns:
        sub["system"] = "unknown"
    sub["system"] = sub["system"].fillna("unknown").astype(str)
    mat = sub.pivot_table(
        index="system", columns="target", values="risk", aggfunc="max", fill_value=0.0
    )
    mat = mat.reindex(columns=targets, fill_value=0.0)
    mat = mat.loc[mat.max(axis=1).sort_values(ascending=False, kind="stable").index]
    mat.columns.name = None
    return mat


def patient_matrix(patient_coverage: pd.DataFrame, targets: list[str]) -> pd.DataFrame:
    """Targets × patients coverage for ``targets`` present in the table, in that order."""
    keep = [t for t in targets if t in patient_coverage.index]
    return patient_coverage.loc[keep]


def coverage_by_compartment(targets: pd.DataFrame) -> pd.DataFrame:
    """Targets × compartments coverage from the ``coverage__<compartment>`` columns."""
    cols = [c for c in targets.columns if c.startswith("coverage__")]
    out = targets.set_index("target")[cols]
    out.columns = [c.removeprefix("coverage__") for c in cols]
    return out


def cohort_summary(cohort: pd.DataFrame) -> pd.DataFrame:
    """Summarise a virtual-patient cohort column by column.

    Returns
    -------
    One row per metric: ``metric``, ``kind`` (``'fraction'`` for yes/no columns, whose
    ``median`` holds the fraction true, else ``'distribution'``), ``n`` (finite values),
    ``median``, ``p05``, ``p95`` and ``n_missing`` (empty or infinite values, e.g. no
    relapse within the simulated horizon).
    """
    rows = []
    for col in cohort.columns:
        s = cohort[col]
        if str(col).lower() in {"patient", "patient_id", "id", "seed", "replicate"}:
            continue
        # yes/no columns are written True/False (empty where unknown); a numeric column is a
        # distribution even when every value is 0 or 1
        is_flag = s.dtype == bool or str(s.dtype) == "boolean"
        if s.dtype == object:
            lowered = s.dropna().astype(str).str.lower()
            if len(lowered) and lowered.isin(["true", "false"]).all():
                s = s.astype(str).str.lower().map({"true": 1.0, "false": 0.0})
                is_flag = True
            else:
                continue
        v = pd.to_numeric(s, errors="coerce").astype(float)
        finite = v[np.isfinite(v)]
        if finite.empty:
            continue
        rows.append(
            {
                "metric": str(col),
                "kind": "fraction" if is_flag else "distribution",
                "n": len(finite),
                "median": float(finite.mean() if is_flag else finite.median()),
                "p05": np.nan if is_flag else float(finite.quantile(0.05)),
                "p95": np.nan if is_flag else float(finite.quantile(0.95)),
                "n_missing": int(len(v) - len(finite)),
            }
        )
    return pd.DataFrame(rows, columns=["metric", "kind", "n", "median", "p05", "p95", "n_missing"])


# --------------------------------------------------------------------------- kinetics labels

#: Quantity in ``curves.tsv`` → (what it is, unit). ``None`` unit: the CAR-T unit of the model.
_QUANTITIES: dict[str, tuple[str, str | None]] = {
    "car_t": ("CAR-T cells", None),
    "normal_t": ("normal T cells", "cells/µL"),
    "tumour_burden": ("tumour burden", "fold of day 0"),
    "stem_fraction": ("leukaemic stem cells", "fraction of day 0"),
    "bcr_abl_ratio": ("BCR-ABL / (BCR-ABL + 2 ABL)", "ratio"),
    "healthy_fraction": ("healthy target cells", "fraction of day 0"),
}
#: CAR-T level unit per model, for runs whose summary states none: Stein 2019 kinetics
#: (stein2019, cart-leukaemia) measure transgene copies by qPCR; the Kimmel 2021 based models
#: (kimmel2021, cart-cml) count cells per µL blood.
_CAR_T_UNIT = {"stein2019": "copies/µg DNA", "cart-leukaemia": "copies/µg DNA"}


@dataclass(frozen=True)
class CurveLabel:
    """Human-readable title and y-axis label of one simulated quantity."""

    title: str
    ylabel: str
    unit: str


def _model_and_scenario(data: RunData) -> tuple[str | None, dict[str, Any]]:
    summ = data.summary or {}
    settings = summ.get("settings") if isinstance(summ.get("settings"), dict) else {}
    params = data.run.get("params") if isinstance(data.run.get("params"), dict) else {}
    model = summ.get("model") or settings.get("model") or params.get("model")
    scen = summ.get("scenario") if isinstance(summ.get("scenario"), dict) else {}
    return (str(model) if model is not None else None), scen


def _summary_units(data: RunData) -> dict[str, str]:
    """Return the units ``summary.json`` states per quantity (empty for a run without them)."""
    units = (data.summary or {}).get("units")
    return {str(k): str(v) for k, v in units.items()} if isinstance(units, dict) else {}


def curve_label(data: RunData, quantity: str) -> CurveLabel:
    """Title (with the target when the run simulated one) and y label with units.

    Parameters
    ----------
    data
        The run (reads the model and scenario from ``summary.json`` / ``run.json``).
    quantity
        A ``quantity`` value of ``curves.tsv``.

    Returns
    -------
    The labels: the unit ``summary.json`` states for the quantity, else the built-in one;
    unknown quantities keep their name, with no unit.
    """
    model, scen = _model_and_scenario(data)
    what, unit = _QUANTITIES.get(quantity, (quantity.replace("_", " "), ""))
    if unit is None:
        unit = _CAR_T_UNIT.get(model or "", "cells/µL")
    stated = _summary_units(data).get(quantity)
    if stated is not None:
        # the unit the summary states (its "(0-1)" range dropped; the title says what is
        # plotted, and a cap such as "(capped at 100)" stays)
        unit = stated.replace(" (0-1)", "")
        ylabel = unit
    else:
        ylabel = f"{what} ({unit})" if unit else what  # generic, so it fits the axis
    if quantity == "healthy_fraction" and scen.get("healthy_cell_type"):
        what = f"healthy {scen['healthy_cell_type']}"
    title = what
    if scen.get("target"):
        title = f"{scen['target']}: {what}"
    if model:
        title += f" ({model})"
    return CurveLabel(title=title, ylabel=ylabel, unit=unit)


def metric_unit(data: RunData, metric: str) -> str:  # noqa: PLR0911
    """Return the unit of a ``cohort.tsv`` column ("" when unknown or dimensionless).

    Parameters
    ----------
    data
        The run (its model decides the CAR-T unit).
    metric
        Column name of ``cohort.tsv``.

    Returns
    -------
    The unit ``summary.json`` states for it, else a built-in one, e.g. ``"days"``,
    ``"1/day"`` or the model's CAR-T unit.
    """
    stated = _summary_units(data).get(metric)
    if stated is not None:
        return "" if stated == "-" else stated
    model, _ = _model_and_scenario(data)
    cart = _CAR_T_UNIT.get(model or "", "cells/µL")
    m = metric.lower()
    if m.startswith("car_t_day") or m == "cmax" or m.startswith("cmax_"):
        return cart
    if m.endswith(("_days", "_day")) or m in {"tmax", "time_to_relapse", "time_to_remission"}:
        return "days"
    if m in {"alpha", "beta", "rho_c", "r_n", "r_b", "gamma_b"}:
        return "1/day"
    if m in {"k_c", "k_n", "k_b", "n0", "c0"}:
        return "cells/µL"
    if m == "cmax" or m.startswith("car_t_day") or m.startswith("cmax_"):
        return cart
    if m.startswith("auc"):
        return f"{cart} × day"
    return ""
