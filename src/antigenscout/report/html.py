"""Self-contained HTML report of a run directory.

One file: styles, scripts, data and charts (inline SVG drawn here in Python) are all
inlined, so the report opens offline, can be mailed or archived, and prints on A4.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from html import escape
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._errors import InputError
from ..get._glossary import describe_column
from ..io._write import write_text
from . import _svg
from ._run import (
    RunData,
    as_run,
    cohort_summary,
    coverage_by_compartment,
    curve_label,
    metric_unit,
    patient_matrix,
    risk_matrix,
    system_matrix,
    top_contexts,
)

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["SECTIONS", "Safe", "fill_template", "json_for_script", "render_html", "write_html"]

#: Section ids in page order, with their headings.
SECTIONS: dict[str, str] = {
    "overview": "Overview",
    "coverage-risk": "Tumour coverage vs healthy-tissue risk",
    "body-map": "Body map: where the healthy risk sits",
    "patients": "Coverage per patient",
    "gates": "Logic gates",
    "explain": "Why each top candidate ranks where it does",
    "kinetics": "Simulated therapy kinetics",
    "provenance": "Provenance",
}

N_TOP_BODY = 20
N_TOP_PATIENTS = 20
N_EXPLAIN = 10
N_GATES = 25
MAX_POINTS = 4000  # candidates drawn/tabled; the rest are counted, keeping the file small
HPA_LICENCE = (
    "Human Protein Atlas (HPA) data are used under the Creative Commons Attribution-ShareAlike "
    "4.0 International licence (CC BY-SA 4.0); derived reference tables are shared alike."
)


# ----------------------------------------------------------------------------- formatting


def _num(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


def _pct(v: Any, digits: int = 1) -> str:
    f = _num(v)
    return "–" if not math.isfinite(f) else f"{100 * f:.{digits}f} %"


def _f(v: Any, digits: int = 3) -> str:
    f = _num(v)
    return "–" if not math.isfinite(f) else f"{f:.{digits}f}"


def _int(v: Any) -> str:
    f = _num(v)
    return "–" if not math.isfinite(f) else f"{round(f):,}"


def _txt(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return str(v)


def _raw(v: Any) -> str:
    """Machine-readable value for ``data-value`` attributes (round-trips the TSV value)."""
    if isinstance(v, bool | np.bool_):
        return "true" if v else "false"
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        return "nan" if not math.isfinite(v) else repr(float(v))
    return "" if v is None else str(v)


def _field(name: str, value: Any, shown: str) -> str:
    raw = escape(_raw(value))
    return f'<span data-field="{escape(name)}" data-value="{raw}">{escape(shown)}</span>'


def _truthy(v: Any) -> bool | None:
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, str):
        if v.strip().lower() in {"true", "yes", "1"}:
            return True
        if v.strip().lower() in {"false", "no", "0"}:
            return False
        return None
    f = _num(v)
    return None if not math.isfinite(f) else bool(f)


def _bar(v: Any, kind: str) -> str:
    f = _num(v)
    w = 0.0 if not math.isfinite(f) else min(max(f, 0.0), 1.0) * 100
    shown = _pct(f) if kind == "cov" else _f(f)
    return (
        f'<div class="barcell"><div class="bar {kind}"><i style="width:{w:.1f}%"></i></div>'
        f"<span>{shown}</span></div>"
    )


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return round(v, 5) if math.isfinite(v) else None
    if v is pd.NA or v is pd.NaT:
        return None
    return v


#: Characters escaped as ``\\uXXXX`` inside inline JSON: ``<``, ``>`` and ``&`` (so no
#: ``</script>``, ``<!--`` or entity can end or alter the script element) and the JavaScript
#: line terminators U+2028 / U+2029.
_JSON_SCRIPT_ESCAPES = {
    ord("<"): "\\u003c",
    ord(">"): "\\u003e",
    ord("&"): "\\u0026",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def json_for_script(obj: Any) -> str:
    """Serialise ``obj`` as JSON that is inert inside an HTML ``<script>`` element.

    Parameters
    ----------
    obj
        A JSON-serialisable value (NaN and infinities are rejected).

    Returns
    -------
    JSON text in which ``<``, ``>``, ``&``, U+2028 and U+2029 appear only as ``\\u``
    escapes; ``json.loads`` of it gives back ``obj``.
    """  # noqa: D301
    text = json.dumps(obj, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    return text.translate(_JSON_SCRIPT_ESCAPES)


def _dataset_script(name: str, obj: dict[str, Any]) -> str:
    return (
        f'<script type="application/json" id="data-{escape(name)}">{json_for_script(obj)}</script>'
    )


def _columns_json(df: pd.DataFrame, cols: Iterable[str]) -> dict[str, list[Any]]:
    return {c: [_jsonable(v) for v in df[c].tolist()] for c in cols if c in df.columns}


def _section(sid: str, body: str, *, heading: str | None = None) -> str:
    h = escape(heading or SECTIONS[sid])
    return f'<section id="{sid}">\n<h2>{h}</h2>\n{body}\n</section>'


def _how(text: str) -> str:
    return f'<p class="how">{text}</p>'


def _risk_col(t: pd.DataFrame) -> str | None:
    for c in ("vital_risk", "worst_healthy_risk"):
        if c in t.columns:
            return c
    return None


def _kv_table(items: Iterable[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><td>{escape(k)}</td><td>{escape(_txt(v))}</td></tr>" for k, v in items)
    return f'<table class="kv">{rows}</table>'


def _flatten(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(obj, dict):
        out: list[tuple[str, Any]] = []
        for k, v in obj.items():
            out += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(obj, list) and obj and all(not isinstance(v, dict | list) for v in obj):
        return [(prefix, ", ".join(str(v) for v in obj))]
    if isinstance(obj, list):
        out = []
        for k, v in enumerate(obj):
            out += _flatten(v, f"{prefix}[{k}]")
        return out
    return [(prefix, obj)]


# ----------------------------------------------------------------------------- sections


#: What the ranking's numbers mean, said once in the overview of a rank or gates report.
RANKING_TERMS = (
    "Tumour coverage is the fraction of malignant cells called antigen-positive by the "
    "positivity model (docs/positivity.md). "
    "Healthy risk of a context (cell type or tissue) = its engagement (the fraction of "
    "its cells carrying enough antigen for the agent, docs/engagement.md) × the "
    "context's vital weight (1 = vital and non-regenerating, e.g. cardiomyocytes; "
    "0.1–0.3 = dispensable or replaceable). A candidate's <i>vital risk</i> is its "
    "largest risk over all healthy contexts, or, for CAR-T, TCR-T and vaccines (living "
    "drugs that persist), the probability that at least one organ system is harmed, "
    "each at its worst context (docs/engagement.md); the score also weighs what the "
    "modality needs (docs/modalities.md). Good targets sit at high coverage and low risk."
)


def _overview(data: RunData) -> str:
    run = data.run
    den = run.get("denominators") or {}
    parts = []
    cmd = run.get("command")
    bits = []
    if cmd and str(cmd).startswith("tl."):
        bits.append(f"Computed in Python by <code>antigenscout.{escape(str(cmd))}</code>")
    elif cmd:
        bits.append(f"Command <code>antigenscout {escape(str(cmd))}</code>")
    if data.run_dir is not None:
        bits.append(f"run directory <code>{escape(str(data.run_dir))}</code>")
    if run.get("seconds") is not None:
        bits.append(f"computed in {_f(run['seconds'], 1)} s")
    if bits:
        parts.append(f"<p>{'; '.join(bits)}.</p>")
    labels = {
        "n_tumor_cells": "tumour cells",
        "n_patients": "patients",
        "n_candidates": "candidate antigens scored",
        "n_genes_input": "genes in the input",
    }
    if _num(den.get("n_patients", 0)) == 1:
        labels["n_patients"] = "patient"
    stats = [(labels.get(k, k.removeprefix("n_").replace("_", " ")), v) for k, v in den.items()]
    if not stats and data.targets is not None:
        stats = [("candidate antigens scored", len(data.targets))]
    if stats:
        parts.append(
            '<div class="stats">'
            + "".join(
                '<div class="stat" '
                f'data-denominator="{escape(k)}"><b>{_int(v)}</b><span>{escape(k)}</span></div>'
                for k, v in stats
            )
            + "</div>"
        )
    t = data.targets
    if t is not None and len(t):
        parts.append(_findings(data))
        parts.append(
            "<h3>Highlighted, then top-ranked candidates</h3>"
            if data.highlight
            else "<h3>Top candidates</h3>"
        )
        parts.append(_top_table(t.head(10), data))
    elif data.gates is not None and len(data.gates):
        g = data.gates.iloc[0]
        parts.append(
            f"<p>Best-ranked gate: <b>{escape(str(g['gate']))}</b>, covering "
            f"{_pct(g['tumor_coverage'])} "
            "of tumour cells.</p>"
        )
    if data.has_kinetics and t is None:
        parts.append(
            '<p>This run holds a therapy simulation; see <a href="#kinetics">kinetics</a>.</p>'
        )
    if t is not None or data.gates is not None:  # what a ranking's numbers mean
        parts.append(_how(RANKING_TERMS))
    return _section("overview", "\n".join(parts))


def _findings(data: RunData) -> str:
    t = data.targets
    assert t is not None
    rc = _risk_col(t)
    items = []
    ranks = pd.to_numeric(t["rank"], errors="coerce")
    best = t.loc[ranks.idxmin()] if ranks.notna().any() else t.iloc[0]
    items.append(_target_line("Top-ranked", best, rc))
    for name in data.highlight:
        rows = t[t["target"].astype(str) == name]
        if len(rows) and rows.index[0] != best.name:
            r = rows.iloc[0]
            items.append(_target_line(f"Highlighted (rank {_int(r['rank'])})", r, rc))
    if "pareto_rank" in t.columns:
        front = t[t["pareto_rank"] == 1]["target"].tolist()
        if front:
            shown = ", ".join(escape(x) for x in front[:12]) + (" …" if len(front) > 12 else "")  # noqa: PLR2004
            items.append(
                f"{len(front)} candidate(s) on the coverage-vs-risk Pareto front (no other "
                "candidate "
                f"has both higher coverage and lower risk): {shown}."
            )
    if rc:
        top = t.head(N_TOP_BODY)
        risky = top[top[rc] >= 0.3].sort_values(rc, ascending=False).head(4)  # noqa: PLR2004
        for _, r in risky.iterrows():
            why = _risk_driver(data, r)
            items.append(f"<b>{escape(r['target'])}</b> (rank {_int(r['rank'])}) is risky: {why}.")
    return '<ul class="findings">' + "".join(f"<li>{i}</li>" for i in items) + "</ul>"


def _where(name: Any, system: Any) -> str:
    """``"name (system)"`` escaped, without doubled parentheses for systems such as
    ``immune (lymphoid)``.
    """  # noqa: D205
    out = escape(_txt(name))
    if isinstance(system, str) and system:
        out += f" · {escape(system)}" if "(" in system else f" ({escape(system)})"
    return out


def _target_line(lead: str, r: pd.Series, rc: str | None) -> str:
    """One findings sentence about target row ``r``."""
    line = f"{escape(lead)}: <b>{escape(str(r['target']))}</b> covers {_pct(r['tumor_coverage'])}"
    line += " of tumour cells"
    if "patients_covered_fraction" in r.index:
        line += f" and {_pct(r['patients_covered_fraction'], 0)} of patients"
    if rc and _num(r[rc]) <= 0:
        line += "; it is not expressed in any healthy context of the reference"
    elif rc:
        ctx = r.get("worst_context", r.get("worst_healthy_cell_type"))
        what = "vital risk" if rc == "vital_risk" else "largest healthy risk"
        line += f"; its {what} is {_f(r[rc])}"
        if isinstance(ctx, str):
            line += f", worst in {_where(ctx, r.get('worst_system'))}"
        if "consequence" in r.index and not pd.isna(r["consequence"]):
            line += f"; lasting loss beyond the organ's reserve {_f(r['consequence'])}"
            where = r.get("consequence_context")
            if isinstance(where, str) and where != "none":
                line += f" ({escape(where)})"
    return line + "."


def _risk_driver(data: RunData, row: pd.Series) -> str:
    """One phrase naming the healthy context that drives a target's risk, with numbers."""
    rc = _risk_col(data.targets) if data.targets is not None else None
    if rc and _num(row.get(rc)) <= 0:
        return "not expressed in any healthy context of the reference"
    if data.risk is not None:
        top = top_contexts(data.risk, row["target"], 1)
        if len(top):
            c = top.iloc[0]
            where = _where(c["name"], c.get("system"))
            return (
                f"{_pct(c['positive_fraction'], 0)} of {where} express it, vital weight "
                f"{_f(c.get('vital_weight'), 2)} → risk {_f(c['risk'])}"
            )
    ctx = row.get("worst_context", row.get("worst_healthy_cell_type", "?"))
    sysname = row.get("worst_system")
    return f"risk {_f(row[rc]) if rc else '–'} in {_where(ctx, sysname)}"


def _top_table(t: pd.DataFrame, data: RunData) -> str:
    rc = _risk_col(t)
    head = ["#", "target", "tumour coverage", "patients covered", "vital risk", "driven by"]
    if "is_surface" in t.columns:
        head.append("surface")
    rows = []
    for _, r in t.iterrows():
        ctx = r.get("worst_context", r.get("worst_healthy_cell_type"))
        drv = escape(_txt(ctx))
        if rc and _num(r[rc]) <= 0:
            drv = '<span class="muted">no healthy expression</span>'
        elif isinstance(r.get("worst_system"), str):
            drv += f' <span class="muted">· {escape(r["worst_system"])}</span>'
        badge = (
            ' <span class="badge front" title="on the Pareto front">front</span>'
            if r.get("pareto_rank") == 1
            else ""
        )
        if str(r["target"]) in data.highlight:
            badge += ' <span class="badge hl" title="chosen with --highlight">highlighted</span>'

        cells = [
            f'<td class="num">{_int(r["rank"])}</td>',
            f'<td><a href="#explain-{escape(r["target"])}">{escape(r["target"])}</a>{badge}</td>',
            f"<td>{_bar(r['tumor_coverage'], 'cov')}</td>",
            f"<td>{_bar(r.get('patients_covered_fraction'), 'cov')}</td>",
            f"<td>{_bar(r[rc] if rc else None, 'risk')}</td>",
            f"<td>{drv}</td>",
        ]
        if "is_surface" in t.columns:
            cells.append(f"<td>{'yes' if _truthy(r['is_surface']) else 'no'}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    return (
        f'<div class="scroll"><table class="top"><thead><tr>{th}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def _candidates_subset(t: pd.DataFrame) -> pd.DataFrame:
    if len(t) <= MAX_POINTS:
        return t
    keep = t.head(MAX_POINTS)
    if "pareto_rank" in t.columns:
        extra = t.iloc[MAX_POINTS:]
        keep = pd.concat([keep, extra[extra["pareto_rank"] == 1]])
    return keep


def _coverage_risk(data: RunData) -> tuple[str, list[str]]:  # noqa: PLR0912, PLR0915
    t = data.targets
    assert t is not None
    rc = _risk_col(t)
    sub = _candidates_subset(t).reset_index(drop=True)
    cols = [
        "target",
        "rank",
        "score",
        "tumor_coverage",
        "patients_covered_fraction",
        "patient_coverage_median",
        "vital_risk",
        "worst_healthy_risk",
        "worst_healthy_cell_type",
        "worst_context",
        "worst_system",
        "consequence",
        "n_positive_cells",
        "n_tumor_cells",
        "is_surface",
        "pareto_rank",
        "ihc_max_level",
    ]
    ds = {"key": "target", "n_total": len(t), "cols": _columns_json(sub, cols)}
    if "is_surface" in ds["cols"]:
        ds["cols"]["is_surface"] = [_truthy(v) for v in sub["is_surface"]]
    tip = [
        ["target", "target", "text"],
        ["rank", "rank", "int"],
        ["tumour coverage", "tumor_coverage", "pct"],
    ]
    if "patients_covered_fraction" in sub.columns:
        tip.append(["patients covered", "patients_covered_fraction", "pct"])
    if rc:
        tip.append([rc.replace("_", " "), rc, "f3"])
    if "consequence" in sub.columns:
        tip.append(["lasting loss beyond reserve", "consequence", "f3"])
    for c, lab in (
        ("worst_context", "worst context"),
        ("worst_healthy_cell_type", "worst cell type"),
        ("worst_system", "system"),
    ):
        if c in sub.columns:
            tip.append([lab, c, "text"])
    ds["tip"] = tip
    table = [["rank", "#", "int", "rank by score"], ["target", "target", "text", ""]]
    if "score" in sub.columns:
        table.append(["score", "score", "f3", "ranking score"])
    table.append(["tumor_coverage", "coverage", "covbar", "fraction of tumour cells positive"])
    if "patients_covered_fraction" in sub.columns:
        table.append(
            ["patients_covered_fraction", "patients", "covbar", "fraction of patients covered"]
        )
    if "patient_coverage_median" in sub.columns:
        table.append(
            ["patient_coverage_median", "median / patient", "pct", "median per-patient coverage"]
        )
    if rc:
        table.append([rc, "vital risk", "riskbar", "largest vital-weighted healthy risk"])
    worst = "worst_context" if "worst_context" in sub.columns else "worst_healthy_cell_type"
    for c, lab, desc in (
        (worst, "worst context", "healthy context with the largest risk"),
        ("worst_system", "system", "its anatomical system"),
    ):
        if c in sub.columns:
            table.append([c, lab, "text", desc])
    if "is_surface" in sub.columns:
        table.append(["is_surface", "surface", "bool", "surface protein evidence"])
    if "pareto_rank" in sub.columns:
        table.append(["pareto_rank", "Pareto", "front", "Pareto rank (★ = front)"])
    # each header's hover text: the glossary's meaning of the column (docs/outputs.md)
    ds["table"] = [[*t[:3], describe_column("targets.tsv", t[0]) or t[3]] for t in table]
    ds["search"] = [
        c
        for c in ("target", "worst_context", "worst_healthy_cell_type", "worst_system")
        if c in sub.columns
    ]
    ds["filters"] = {}
    if "pareto_rank" in sub.columns:
        ds["filters"]["front"] = ["pareto_rank", 1]
    if "is_surface" in sub.columns:
        ds["filters"]["surface"] = ["is_surface", True]

    parts = []
    if rc:
        x = sub["tumor_coverage"].to_numpy(dtype=float)
        y = sub[rc].to_numpy(dtype=float)
        front = (
            (sub["pareto_rank"] == 1).to_numpy()
            if "pareto_rank" in sub.columns
            else np.zeros(len(sub), bool)
        )
        lab_idx = list(range(min(8, len(sub)))) + [int(i) for i in np.flatnonzero(front)[:10]]
        labels = {i: str(sub.loc[i, "target"]) for i in dict.fromkeys(lab_idx)}
        parts.append(
            _how(
                "Each point is a candidate antigen. Right = covers more tumour cells; up = more "
                "vital-weighted healthy expression. <span style='color:#d95f02'>Orange</span> "
                "points "
                "form the Pareto front (nothing beats them on both axes). Hover a point for "
                "details, "
                "click it to jump to its card."
            )
        )
        parts.append(
            '<div class="chartwrap">'
            + _svg.scatter_svg(
                x,
                y,
                highlight=front,
                labels=labels,
                dataset="candidates",
                xlabel="tumour coverage (fraction of tumour cells positive)",
                ylabel="vital risk",
                title="coverage vs risk",
            )
            + "</div>"
        )
        parts.append(
            '<div class="legendrow"><span><i class="dot" style="background:#d95f02"></i>Pareto '
            "front</span>"
            '<span><i class="dot" style="background:#9e9e9e"></i>other candidates</span>'
            '<span><i class="dot" style="background:#e5f5e0;border-radius:2px"></i>coverage ≥ 0.8 '
            "and risk in the lowest fifth of the axis</span></div>"
        )
    if len(t) > len(sub):
        parts.append(
            f'<p class="muted">Showing the {len(sub):,} best-ranked of {len(t):,} candidates (plus '
            "the whole Pareto front).</p>"
        )
    checks = ""
    if "pareto_rank" in sub.columns:
        checks += '<label><input type="checkbox" data-filter="front"> Pareto front only</label>'
    if "is_surface" in sub.columns:
        checks += (
            '<label><input type="checkbox" data-filter="surface"> surface proteins only</label>'
        )
    parts.append(
        '<h3>All candidates</h3><div class="candtable" data-table="candidates" data-limit="50">'
        '<div class="controls"><input type="search" placeholder="filter by target, context or '
        'system…" '
        f'aria-label="filter candidates">{checks}<span class="count muted"></span></div>'
        '<div class="tablewrap scroll"></div>'
        '<div class="controls"><button type="button" class="showmore">show all '
        "rows</button></div></div>"
        "<noscript><p>The interactive candidate table needs JavaScript; targets.tsv holds the same "
        "data.</p></noscript>"
    )
    return _section("coverage-risk", "\n".join(parts)), [_dataset_script("candidates", ds)]


def _body_map(data: RunData) -> str:
    risk = data.risk
    assert risk is not None
    unlisted = _risk_unlisted(data)
    order = [x for x in data.target_order() if x not in unlisted][:N_TOP_BODY]
    if not set(order) & set(risk["target"]):
        order = list(dict.fromkeys(risk["target"]))[:N_TOP_BODY]
    lookup: dict[tuple[str, str], pd.Series] = {}
    for _, r in risk.iterrows():
        lookup.setdefault((str(r["target"]), str(r["name"])), r)
    parts = [
        _how(
            f"The {len(order)} best-ranked candidates (columns, in rank order) against healthy "
            "contexts (rows). A cell's colour is the vital-weighted risk, positive fraction × "
            "vital "
            "weight; dark red = many cells of a vital context express the antigen. Hover a cell "
            "for the fraction and weight behind it."
        )
    ]
    shown_unlisted = [x for x in data.target_order()[:N_TOP_BODY] if x in unlisted]
    if shown_unlisted:
        parts.append(
            "<p class='muted'>Not shown: "
            + ", ".join(f"<b>{escape(x)}</b>" for x in shown_unlisted)
            + " — risk.tsv holds per-context rows only for the best-ranked targets and those "
            "passed to <code>--highlight</code> of the ranking command; re-run it with "
            "<code>--highlight</code> to map these.</p>"
        )
    smat = system_matrix(risk, order)

    def stip(row: str, col: str, v: float) -> str:
        sub = risk[
            (risk["target"] == col)
            & (risk.get("system", pd.Series(index=risk.index, dtype=object)) == row)
        ]
        lines = [f"{col} · {row}", f"max risk {v:.3f}"]
        if len(sub):
            c = sub.sort_values("risk", ascending=False).iloc[0]
            lines.append(
                f"driven by {c['name']} ({_pct(c['positive_fraction'], 0)} positive × weight "
                f"{_f(c.get('vital_weight'), 2)})"
            )
        return "\n".join(lines)

    legend = _svg.legend_svg(_svg.RISK_RAMP, "healthy risk (fraction × vital weight)")
    parts.append("<h3>By anatomical system</h3>")
    parts.append(
        '<div class="chartwrap">'
        + _svg.heatmap_svg(
            smat, stops=_svg.RISK_RAMP, tip=stip, annotate=True, label_w=170, title="risk by system"
        )
        + "</div>"
        + legend
    )
    mat, system = risk_matrix(risk, order)

    def ctip(row: str, col: str, v: float) -> str:
        r = lookup.get((col, row))
        lines = [f"{col} in {row}"]
        if r is not None:
            lines.append(f"{r.get('tissue', '')} · {r.get('system', '')}".strip(" ·"))
            lines.append(f"{_pct(r['positive_fraction'], 1)} of cells positive")
            lines.append(f"vital weight {_f(r.get('vital_weight'), 2)} → risk {_f(r['risk'])}")
        else:
            lines.append("not detected (risk 0)")
        return "\n".join(lines)

    if len(mat):
        parts.append(
            f"<h3>By healthy context</h3>"
            f"<p class='muted'>{len(mat)} contexts with risk ≥ 0.02 for at least one of these "
            "candidates, grouped by system (systems with the highest risk first).</p>"
        )
        parts.append(
            '<div class="chartwrap">'
            + _svg.heatmap_svg(
                mat,
                stops=_svg.RISK_RAMP,
                tip=ctip,
                row_groups=system,
                group_w=150,
                label_w=190,
                title="risk by context",
            )
            + "</div>"
            + legend
        )
    else:
        parts.append("<p>No healthy context reaches risk 0.02 for these candidates.</p>")
    return _section("body-map", "\n".join(parts))


def _risk_unlisted(data: RunData) -> set[str]:
    """Targets with a healthy risk above 0 in ``targets.tsv`` but no rows in ``risk.tsv``
    (the ranking writes per-context rows only for its best-ranked and highlighted targets).
    """  # noqa: D205
    t = data.targets
    if t is None or data.risk is None:
        return set()
    rc = _risk_col(t)
    have = set(data.risk["target"].astype(str))
    risky = t if rc is None else t[~(pd.to_numeric(t[rc], errors="coerce") <= 0)]
    return {x for x in risky["target"].astype(str) if x not in have}


def _patients(data: RunData) -> str:
    parts = []
    order = data.target_order()[:N_TOP_PATIENTS]
    pc = data.patient_coverage
    if pc is not None and pc.shape[1]:
        mat = patient_matrix(pc, order) if order else pc.head(N_TOP_PATIENTS)
        if not len(mat):
            mat = pc.head(N_TOP_PATIENTS)
        parts.append(
            _how(
                "Fraction of each patient's tumour cells called antigen-positive, for "
                "the "
                f"{len(mat)} best-ranked candidates (rows) and {mat.shape[1]} "
                f"{'patient' if mat.shape[1] == 1 else 'patients'} (columns). "
                "A pale "
                "column is a patient the candidate would leave uncovered; a pale row is "
                "heterogeneous "
                "expression."
            )
        )

        def tip(row: str, col: str, v: float) -> str:
            return f"{row} · patient {col}\n{_pct(v)} of tumour cells positive"

        parts.append(
            '<div class="chartwrap">'
            + _svg.heatmap_svg(
                mat,
                stops=_svg.COVERAGE_RAMP,
                tip=tip,
                annotate=mat.shape[1] <= 30,  # noqa: PLR2004
                label_w=110,
                cell_w=30 if mat.shape[1] <= 30 else 16,  # noqa: PLR2004
                title="coverage per patient",
            )
            + "</div>"
            + _svg.legend_svg(_svg.COVERAGE_RAMP, "tumour coverage")
        )
    t = data.targets
    if t is not None and any(c.startswith("coverage__") for c in t.columns):
        comp = coverage_by_compartment(t).loc[[x for x in order if x in set(t["target"])]]
        stored = {compartment_label(c): c for c in comp.columns}
        comp = comp.rename(columns=compartment_label)
        tt = t.set_index("target")

        def ctip(row: str, col: str, v: float) -> str:
            n = tt.loc[row].get(f"n_cells__{stored[col]}") if row in tt.index else None
            extra = f" of {_int(n)} cells" if n is not None and math.isfinite(_num(n)) else ""
            return f"{row} · {col}\n{_pct(v)} positive{extra}"

        parts.append(
            "<h3>Coverage by tumour compartment</h3>"
            + _how(
                "Compartments are tumour cell states (e.g. stem/progenitor-like cells that can "
                "re-seed the disease); a candidate that misses one leaves an escape route."
            )
            + '<div class="chartwrap">'
            + _svg.heatmap_svg(
                comp,
                stops=_svg.COVERAGE_RAMP,
                tip=ctip,
                annotate=True,
                label_w=110,
                cell_w=34,
                col_label_h=100,
                title="coverage by compartment",
            )
            + "</div>"
        )
    return _section("patients", "\n".join(parts))


#: HPA immunohistochemistry staining levels (``ihc_max_level``), in the HPA's words.
IHC_LEVELS = {0: "not detected", 1: "low", 2: "medium", 3: "high"}


def _ihc_words(r: pd.Series) -> str:
    """``ihc_max_level`` and ``ihc_tissues_detected`` as a phrase in the HPA's words, each
    number kept in its ``data-field`` span.

    >>> "high at most (HPA staining 3 of 3)" in _ihc_words(
    ...     pd.Series({"ihc_max_level": 3.0, "ihc_tissues_detected": 7})
    ... )
    True
    """  # noqa: D205
    level, n = _num(r.get("ihc_max_level")), r.get("ihc_tissues_detected")
    if not math.isfinite(level):
        shown = "no HPA antibody staining on record"
    elif int(level) == 0:
        shown = "stained, not detected in any tissue"
    else:
        words = IHC_LEVELS.get(int(level), f"level {level:g}")
        shown = f"{words} at most (HPA staining {int(level)} of 3)"
    text = _field("ihc_max_level", r.get("ihc_max_level"), shown)
    if n is None:
        return text
    tissues = f"{_int(n)} tissue{'' if _num(n) == 1 else 's'}"
    if math.isfinite(level) and int(level) > 0:
        return text + "; detected in " + _field("ihc_tissues_detected", n, tissues)
    return text + f"<span hidden>{_field('ihc_tissues_detected', n, tissues)}</span>"


def compartment_label(name: str) -> str:
    """A compartment's label as read: underscores as spaces (``stem_progenitor`` →
    ``stem progenitor``).
    """  # noqa: D205, D401
    return str(name).replace("_", " ")


def _gate_chips(gate: str) -> str:
    out = []
    negate = False
    for tok in str(gate).replace("(", " ( ").replace(")", " ) ").split():
        up = tok.upper()
        if up in {"AND", "OR", "NOT"}:
            out.append(f'<span class="op">{up}</span>')
            negate = up == "NOT"
        elif tok in "()":
            out.append(f'<span class="op">{tok}</span>')
        else:
            cls = "chip not" if negate else "chip"
            out.append(f'<span class="{cls}">{escape(tok)}</span>')
            negate = False
    return "".join(out)


def _gates(data: RunData) -> tuple[str, list[str]]:
    g = data.gates
    assert g is not None
    parts = [
        _how(
            "Logic-gated combinations: <span class='chip'>A</span><span class='op'>AND</span>"
            "<span class='chip'>B</span> kills only cells that express both (safer: a healthy "
            "cell must carry both); <span class='chip'>A</span><span class='op'>OR</span>"
            "<span class='chip'>B</span> kills cells that express either (covers more tumour, "
            "and reaches the healthy cells of both); <span class='op'>NOT</span>"
            "<span class='chip not'>C</span> spares cells expressing C (a veto, red). Coverage "
            "is the fraction of tumour cells the gate still kills; risk is the worst healthy "
            "cell type's vital-weighted risk under the gate (docs/gates.md)."
        )
    ]
    scripts: list[str] = []
    gsub = g.head(MAX_POINTS).reset_index(drop=True)
    if "worst_healthy_risk" in gsub.columns and len(gsub) > 1:
        front = (
            gsub["pareto"].map(_truthy).fillna(False).to_numpy(dtype=bool)
            if "pareto" in gsub.columns
            else np.zeros(len(gsub), bool)
        )
        lab = list(range(min(6, len(gsub)))) + [int(i) for i in np.flatnonzero(front)[:8]]
        labels = {i: str(gsub.loc[i, "gate"]) for i in dict.fromkeys(lab)}
        parts.append(
            '<div class="chartwrap">'
            + _svg.scatter_svg(
                gsub["tumor_coverage"].to_numpy(float),
                gsub["worst_healthy_risk"].to_numpy(float),
                highlight=front,
                labels=labels,
                dataset="gates",
                xlabel="tumour coverage",
                ylabel="worst healthy risk",
                title="gates: coverage vs risk",
            )
            + "</div>"
        )
        ds = {
            "key": "gate",
            "n_total": len(g),
            "cols": _columns_json(
                gsub,
                [
                    "gate",
                    "rank",
                    "tumor_coverage",
                    "patients_covered_fraction",
                    "worst_healthy_cell_type",
                    "worst_healthy_risk",
                    "score",
                ],
            ),
        }
        tip = [
            ["gate", "gate", "text"],
            ["rank", "rank", "int"],
            ["tumour coverage", "tumor_coverage", "pct"],
        ]
        if "patients_covered_fraction" in gsub.columns:
            tip.append(["patients covered", "patients_covered_fraction", "pct"])
        tip.append(["worst healthy risk", "worst_healthy_risk", "f3"])
        if "worst_healthy_cell_type" in gsub.columns:
            tip.append(["worst cell type", "worst_healthy_cell_type", "text"])
        ds["tip"] = tip
        scripts.append(_dataset_script("gates", ds))
    head = [
        "#",
        "gate",
        "tumour coverage",
        "patients covered",
        "worst healthy cell type",
        "risk",
        "score",
    ]
    rows = []
    for _, r in g.head(N_GATES).iterrows():
        risk = _risk_cell(r)
        front = ' <span class="badge front">front</span>' if _truthy(r.get("pareto")) else ""
        rows.append(
            "<tr>"
            f'<td class="num">{_int(r.get("rank"))}</td>'
            f'<td data-gate="{escape(str(r["gate"]))}">{_gate_chips(r["gate"])}{front}</td>'
            f"<td>{_bar(r['tumor_coverage'], 'cov')}</td>"
            f"<td>{_bar(r.get('patients_covered_fraction'), 'cov')}</td>"
            f"<td>{escape(_txt(r.get('worst_healthy_cell_type')))}</td>"
            f"<td>{risk}</td>"
            f'<td class="num">{_f(r.get("score"))}</td>'
            "</tr>"
        )
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    parts.append(f"<h3>Top {min(N_GATES, len(g))} of {len(g):,} gates</h3>")
    parts.append(
        '<div class="scroll"><table '
        f'class="gates"><thead><tr>{th}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'
    )
    if "risk_is_bound" in g.columns and g["risk_is_bound"].map(_truthy).any():
        parts.append(
            '<p class="muted">≤ marks an upper bound: the healthy reference cannot resolve whether '
            "the gate's genes are co-expressed in the same healthy cells, so the risk shown is the "
            "largest it could be.</p>"
        )
    if data.designs is not None and len(data.designs):
        parts.append(_designs(data.designs))
    if data.set_aside is not None and len(data.set_aside):
        parts.append(_set_aside(data.set_aside))
    return _section("gates", "\n".join(parts)), scripts


def _risk_cell(r: pd.Series) -> str:
    """A gate's worst healthy risk as a bar, marked ``≤`` where it is an upper bound."""  # noqa: D401
    risk = _bar(r.get("worst_healthy_risk"), "risk")
    if _truthy(r.get("risk_is_bound")):
        risk = risk.replace(
            "<span>",
            '<span title="upper bound: the healthy reference cannot resolve co-expression '
            'of this gate in single cells">≤ ',
            1,
        )
    return risk


def _designs(d: pd.DataFrame) -> str:
    """The designs the user asked about (``--design``), scored as found gates are."""  # noqa: D401
    rows = []
    for _, r in d.iterrows():
        verdict = "within the cap" if _truthy(r.get("feasible")) else "above the risk cap"
        why = [_txt(r.get("set_aside"))] if _txt(r.get("set_aside")) not in ("", "–") else []
        note = _txt(r.get("design_note"))
        if note not in ("", "–", "none"):
            why.append(note)
        rows.append(
            "<tr>"
            f'<td data-gate="{escape(str(r["gate"]))}">{_gate_chips(r["gate"])}</td>'
            f"<td>{_bar(r['tumor_coverage'], 'cov')}</td>"
            f"<td>{_bar(r.get('patients_covered_fraction'), 'cov')}</td>"
            f"<td>{escape(_txt(r.get('worst_healthy_cell_type')))}</td>"
            f"<td>{_risk_cell(r)}</td>"
            f"<td>{escape(verdict)}</td>"
            f"<td>{escape('; '.join(why)) or '–'}</td>"
            "</tr>"
        )
    head = "".join(
        f"<th>{h}</th>"
        for h in (
            "design",
            "tumour coverage",
            "patients covered",
            "worst healthy cell type",
            "risk",
            "verdict",
            "arms and notes",
        )
    )
    return (
        f"<h3>Your designs ({len(d)})</h3>"
        + _how(
            "Each <code>--design</code>, scored as the found gates are, with what judging its "
            "arms found (designs.tsv)."
        )
        + f'<div class="scroll"><table class="gates designs"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


#: Set-aside gates listed in the report (all of them are in ``set_aside.tsv``).
N_SET_ASIDE = 10


def _set_aside(sa: pd.DataFrame) -> str:
    """The gates examined but set aside, best first, each with its reason."""  # noqa: D401
    rows = "".join(
        "<tr>"
        f'<td data-gate="{escape(str(r["gate"]))}">{_gate_chips(r["gate"])}</td>'
        f"<td>{_bar(r['tumor_coverage'], 'cov')}</td>"
        f"<td>{_risk_cell(r)}</td>"
        f"<td>{escape(_txt(r.get('set_aside')))}</td>"
        "</tr>"
        for _, r in sa.head(N_SET_ASIDE).iterrows()
    )
    head = "<th>gate</th><th>tumour coverage</th><th>risk</th><th>why set aside</th>"
    return (
        f"<h3>Set aside: {len(sa):,} gates</h3>"
        + _how(
            "Gates the search found but set aside because an arm was not shown to beat noise "
            "(an AND arm or a veto that does not lower the risk, an OR arm that adds no "
            "coverage, a healthy context too small to show the risk under the cap; "
            f"docs/gates.md). The best {min(N_SET_ASIDE, len(sa))} are listed; set_aside.tsv "
            "has all of them."
        )
        + f'<div class="scroll"><table class="gates"><thead><tr>{head}</tr></thead>'
        f"<tbody>{rows}</tbody></table></div>"
    )


def _driver_row(c: pd.Series) -> str:
    name = escape(str(c["name"]))
    frac = _field("positive_fraction", c["positive_fraction"], _pct(c["positive_fraction"]))
    weight = _field("vital_weight", c.get("vital_weight"), _f(c.get("vital_weight"), 2))
    risk = _field("risk", c["risk"], _f(c["risk"]))
    return (
        f'<tr data-context="{name}"><td>{name}'
        f'<span class="sub">{escape(_txt(c.get("system")))}</span></td>'
        f"<td class='num'>{frac}</td><td class='num'>{weight}</td>"
        f"<td>{_bar(c['risk'], 'risk')}<span hidden>{risk}</span></td></tr>"
    )


def _explain(data: RunData) -> str:  # noqa: PLR0912, PLR0915
    t = data.targets
    assert t is not None
    rc = _risk_col(t)
    den = data.run.get("denominators") or {}
    cards = []
    pc = data.patient_coverage
    for _, r in t.head(N_EXPLAIN).iterrows():
        name = str(r["target"])
        badges = ""
        if r.get("pareto_rank") == 1:
            badges += '<span class="badge front">Pareto front</span>'
        surf = _truthy(r.get("is_surface")) if "is_surface" in t.columns else None
        if surf is True:
            badges += '<span class="badge surface">surface</span>'
        elif surf is False:
            badges += '<span class="badge nosurface">not surface</span>'
        dl = []
        n_tum = r.get("n_tumor_cells", den.get("n_tumor_cells"))
        cov = _field("tumor_coverage", r["tumor_coverage"], _pct(r["tumor_coverage"]))
        if "n_positive_cells" in t.columns:
            cov += (
                " = "
                + _field("n_positive_cells", r["n_positive_cells"], _int(r["n_positive_cells"]))
                + " / "
                + _field("n_tumor_cells", n_tum, _int(n_tum))
                + " tumour cells"
            )
        dl.append(("tumour coverage", cov))
        if "patients_covered_fraction" in t.columns:
            n_pat = r.get("n_patients", den.get("n_patients"))
            frac = _num(r["patients_covered_fraction"])
            k = (
                round(frac * _num(n_pat))
                if math.isfinite(frac) and math.isfinite(_num(n_pat))
                else None
            )
            txt = _field("patients_covered_fraction", r["patients_covered_fraction"], _pct(frac, 0))
            if k is not None:
                noun = "patient" if _num(n_pat) == 1 else "patients"
                txt += f" ({k} of " + _field("n_patients", n_pat, _int(n_pat)) + f" {noun})"
            dl.append(("patients covered", txt))
        if "patient_coverage_median" in t.columns:
            txt = "median " + _field(
                "patient_coverage_median",
                r["patient_coverage_median"],
                _pct(r["patient_coverage_median"]),
            )
            if "patient_coverage_min" in t.columns:
                txt += ", lowest " + _field(
                    "patient_coverage_min",
                    r["patient_coverage_min"],
                    _pct(r["patient_coverage_min"]),
                )
            if pc is not None and name in pc.index:
                strip = "".join(
                    f'<i style="background:{_svg.ramp(v, _svg.COVERAGE_RAMP)}" '
                    f'data-tip="{escape(f"patient {p}: {_pct(v)}")}"></i>'
                    for p, v in pc.loc[name].items()
                )
                txt += f' <span class="strip" aria-label="per-patient coverage">{strip}</span>'
            dl.append(("per-patient coverage", txt))
        comps = [c for c in t.columns if c.startswith("coverage__")]
        if comps:
            dl.append(
                (
                    "by compartment",
                    ", ".join(
                        f"{escape(compartment_label(c.removeprefix('coverage__')))} "
                        + _field(c, r[c], _pct(r[c]))
                        for c in comps
                    ),
                )
            )
        ev = []
        if "ihc_max_level" in t.columns:
            ev.append(_ihc_words(r))
        if ev:
            dl.append(("protein (HPA IHC)", "; ".join(ev)))
        if "surface_evidence" in t.columns:
            dl.append(
                (
                    "surface evidence",
                    _field("surface_evidence", r["surface_evidence"], _txt(r["surface_evidence"])),
                )
            )
        if "score" in t.columns:
            dl.append(
                (
                    "score",
                    _field("score", r["score"], _f(r["score"])) + f" (rank {_int(r['rank'])})",
                )
            )
        dl_html = "".join(f"<dt>{escape(k)}</dt><dd>{v}</dd>" for k, v in dl)
        risk_html = ""
        if data.risk is not None:
            top = top_contexts(data.risk, name, 5)
            if len(top):
                rows = "".join(_driver_row(c) for _, c in top.iterrows())
                risk_html = (
                    "<h4>Healthy contexts driving the risk</h4>"
                    '<table class="drivers"><thead><tr><th>context · system</th>'
                    "<th class='num'>cells positive</th><th class='num'>vital "
                    "weight</th><th>risk</th></tr></thead>"
                    f"<tbody>{rows}</tbody></table>"
                )
            elif name in _risk_unlisted(data):
                risk_html = (
                    "<p class='muted'>risk.tsv has no per-context rows for this target (the "
                    "ranking writes them for its best-ranked and <code>--highlight</code> "
                    "targets); the vital risk above comes from targets.tsv.</p>"
                )
            else:
                risk_html = (
                    "<p class='muted'>Not detected in any healthy context of the reference.</p>"
                )
        verdict = ""
        if rc:
            vr = _field(rc, r[rc], _f(r[rc]))
            verdict = f"<p class='verdict'>Vital risk {vr}: {_risk_driver(data, r)}.</p>"
        cards.append(
            f'<article class="card" id="explain-{escape(name)}" data-target="{escape(name)}">'
            f'<h3><span class="rank">#{_int(r["rank"])}</span>{escape(name)}{badges}</h3>{verdict}'
            f"<dl>{dl_html}</dl>{risk_html}</article>"
        )
    body = (
        _how(
            "One card per top candidate, with the denominators behind each number. Risk drivers "
            "are the "
            "five healthy contexts with the highest vital-weighted risk (fraction of the context's "
            "cells "
            "expressing the antigen × the context's vital weight)."
        )
        + f'<div class="cards">{"".join(cards)}</div>'
    )
    return _section("explain", body)


def _kinetics(data: RunData) -> str:
    parts = [
        _how(
            "Simulated virtual-patient cohort. Lines are the cohort median, shaded bands the "
            "5th–95th percentile across virtual patients, dashed lines the typical patient (when "
            "simulated). Hover a chart for the values on that day."
        )
    ]
    cv = data.curves
    if cv is not None and len(cv):
        groups = [
            c
            for c in cv.columns
            if c not in {"time_days", "p05", "p50", "p95", "typical"} and cv[c].dtype == object
        ]
        charts = []
        for key, sub in cv.groupby(groups, sort=False) if groups else [((), cv)]:
            key = key if isinstance(key, tuple) else (key,)  # noqa: PLW2901
            if groups == ["quantity"]:
                lab = curve_label(data, str(key[0]))
                title, ylabel, unit = lab.title, lab.ylabel, lab.unit
            else:
                title, ylabel, unit = " · ".join(str(k) for k in key) or "curve", "", ""
            charts.append(_svg.bands_svg(sub, title=title, ylabel=ylabel, unit=unit))
        parts.append(f'<div class="kin-grid">{"".join(charts)}</div>')
    if data.cohort is not None and len(data.cohort):
        summ = cohort_summary(data.cohort)
        rows = []
        for _, s in summ.iterrows():
            if s["kind"] == "fraction":
                val = f"{_pct(s['median'])} of virtual patients"
                rng = "–"
            else:
                val = _svg._fmt_val(s["median"])
                rng = f"{_svg._fmt_val(s['p05'])} – {_svg._fmt_val(s['p95'])}"
            miss = f" ({int(s['n_missing'])} without event)" if s.get("n_missing", 0) else ""
            unit = metric_unit(data, str(s["metric"]))
            rows.append(
                f"<tr><td>{escape(str(s['metric']))}</td><td>{escape(unit)}</td>"
                f"<td class='num'>{val}</td>"
                f"<td class='num'>{rng}</td><td class='num'>{int(s['n'])}{miss}</td></tr>"
            )
        parts.append(
            f"<h3>Cohort of {len(data.cohort):,} virtual patients</h3>"
            "<table class='cohort'><thead><tr><th>metric</th><th>unit</th>"
            "<th class='num'>median</th>"
            "<th class='num'>5–95 %</th><th class='num'>n</th></tr></thead>"
            f"<tbody>{''.join(rows)}</tbody></table>"
        )
    if data.summary:
        items = _flatten(data.summary)
        parts.append(
            "<details><summary>summary.json (all values)</summary>"
            + _kv_table(
                (
                    k,
                    _svg._fmt_val(v)
                    if isinstance(v, int | float) and not isinstance(v, bool)
                    else v,
                )
                for k, v in items
            )
            + "</details>"
        )
    return _section("kinetics", "\n".join(parts))


def _fold(title: str, items: list[tuple[str, Any]]) -> str:
    """A key–value table folded under its title (opened by a click, and for printing)."""  # noqa: D401
    return (
        f'<details class="fold"><summary>{escape(title)} ({len(items):,})</summary>'
        f"{_kv_table(items)}</details>"
    )


def _provenance(data: RunData) -> str:
    run = data.run
    parts = []
    meta = [("command", run.get("command")), ("seconds", run.get("seconds"))]
    meta += [(f"denominators.{k}", v) for k, v in (run.get("denominators") or {}).items()]
    inp = run.get("input") if isinstance(run.get("input"), dict) else {}
    for key in ("path", "sha256", "format", "matrix", "version"):
        meta.append((f"input.{key}", inp.get(key)))
    if inp.get("command_line"):
        meta.append(("command line", " ".join(str(a) for a in inp["command_line"])))
    meta = [(k, v) for k, v in meta if v is not None]
    if meta:
        parts.append("<h3>Run</h3>" + _kv_table(meta))
    notes = run.get("notes") or []
    if notes:
        items = "".join(f"<li>{escape(str(n))}</li>" for n in notes)
        parts.append(
            "<h3>Choices made for you</h3><p>Each changed the result and was not asked for "
            f"on the command line (also printed as <code>note:</code>):</p><ul>{items}</ul>"
        )
    if run.get("params"):
        parts.append(_fold("Parameters", _flatten(run["params"])))
    ref = run.get("reference")
    if ref:
        parts.append(_fold("Reference data", _flatten(ref)))
    if data.run_dir is not None:
        files = []
        for f in sorted(data.run_dir.iterdir()):
            if f.is_file() and f.suffix in {".tsv", ".json"}:
                files.append((f.name, f"{f.stat().st_size:,} bytes"))
        if files:
            parts.append(_fold("Files read", files))
    parts.append(f"<h3>Licences</h3><p>{escape(HPA_LICENCE)}</p>")
    return _section("provenance", "\n".join(parts))


# ----------------------------------------------------------------------------- assembly


def _asset(name: str) -> str:
    return (
        resources.files("antigenscout.report")
        .joinpath("templates", name)
        .read_text(encoding="utf-8")
    )


def _raw_text_asset(name: str, element: str) -> str:
    """An inlined asset, checked not to close the ``<style>``/``<script>`` element it fills."""  # noqa: D401
    text = _asset(name)
    if f"</{element}" in text.lower() or "<!--" in text:
        msg = f"template asset {name!r} contains '</{element}' or '<!--'"  # pragma: no cover
        raise RuntimeError(msg)  # pragma: no cover
    return text


class Safe(str):
    """A string of pre-rendered, already escaped HTML that :func:`fill_template` keeps as is.

    Everything not wrapped in :class:`Safe` is HTML-escaped when filled in.
    """

    __slots__ = ()


_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def fill_template(template: str, values: Mapping[str, str | Safe]) -> str:
    """Replace every ``{{name}}`` of ``template`` in one pass.

    Parameters
    ----------
    template
        Text with ``{{name}}`` placeholders.
    values
        Value of each placeholder: a :class:`Safe` value is inserted verbatim, any other
        string HTML-escaped. Inserted text is never scanned for placeholders again, so a
        label such as ``P{{data}}`` stays literal.

    Returns
    -------
    The filled template.

    Raises
    ------
    KeyError
        If the template names a placeholder missing from ``values``.
    """

    def sub(m: re.Match[str]) -> str:
        v = values[m.group(1)]
        return str(v) if isinstance(v, Safe) else escape(str(v))

    return _PLACEHOLDER.sub(sub, template)


def _version() -> str:
    try:
        return version("antigenscout")
    except PackageNotFoundError:  # pragma: no cover - source tree without metadata
        return "0.0.0"


def _with_highlight(data: RunData, highlight: Sequence[str]) -> RunData:
    """Move the highlighted targets to the front so every section shows them first."""
    if not highlight:
        return data
    if data.targets is None:
        msg = "--highlight needs a run with targets.tsv (rank or demo output)"
        raise InputError(msg)
    names = data.targets["target"].astype(str)
    present = set(names)
    if any(h not in present for h in highlight):
        # synonyms and Ensembl ids, as rank's --highlight takes them (CD123 for IL3RA)
        from ..reference import load_reference  # noqa: PLC0415

        absent = [h for h in highlight if h not in present]
        mapped, _ = load_reference().map_genes(absent)
        symbol = {h: str(m) for h, m in zip(absent, mapped, strict=True) if pd.notna(m)}
        highlight = list(dict.fromkeys(symbol.get(h, h) for h in highlight))
    missing = [h for h in highlight if h not in present]
    if missing:
        msg = f"--highlight target(s) not in targets.tsv: {', '.join(missing)}"
        raise InputError(msg)
    first = data.targets[names.isin(highlight)]
    first = first.set_index(first["target"].astype(str)).loc[list(highlight)].reset_index(drop=True)
    rest = data.targets[~names.isin(highlight)]
    return replace(
        data, targets=pd.concat([first, rest], ignore_index=True), highlight=tuple(highlight)
    )


def render_html(
    run: RunData | AnnData | str | os.PathLike[str], *, highlight: Sequence[str] = ()
) -> str:
    """Build the report as one HTML string.

    Parameters
    ----------
    run
        A run directory, an AnnData scored by :func:`antigenscout.tl.score_targets` and/or
        :func:`antigenscout.tl.search_gates` (results in ``adata.uns``), or a
        :class:`~antigenscout.report._run.RunData`.
    highlight
        Targets shown first in every per-target section (body map, patients, explanations).

    Returns
    -------
    The complete, self-contained HTML document.
    """
    data = _with_highlight(as_run(run, include=highlight), highlight)
    sections: list[str] = []
    scripts: list[str] = []
    present: list[str] = []

    def add(sid: str, html: str, extra: list[str] | None = None) -> None:
        sections.append(html)
        present.append(sid)
        scripts.extend(extra or [])

    if data.targets is not None or data.run or data.gates is not None:
        add("overview", _overview(data))
    if data.targets is not None and len(data.targets):
        html, s = _coverage_risk(data)
        add("coverage-risk", html, s)
    if data.risk is not None and len(data.risk):
        add("body-map", _body_map(data))
    if (data.patient_coverage is not None and data.patient_coverage.shape[1]) or (
        data.targets is not None and any(c.startswith("coverage__") for c in data.targets.columns)
    ):
        add("patients", _patients(data))
    if data.gates is not None and len(data.gates):
        html, s = _gates(data)
        add("gates", html, s)
    if data.targets is not None and len(data.targets):
        add("explain", _explain(data))
    if data.has_kinetics:
        add("kinetics", _kinetics(data))
    add("provenance", _provenance(data))

    order = {sid: k for k, sid in enumerate(SECTIONS)}
    pairs = sorted(zip(present, sections, strict=True), key=lambda p: order[p[0]])
    nav = "".join(f'<a href="#{sid}">{escape(SECTIONS[sid].split(":")[0])}</a>' for sid, _ in pairs)
    cmd = data.run.get("command")
    title = "antigenscout report" + (f" — {cmd}" if cmd else "")
    den = data.run.get("denominators") or {}
    sub_bits = []
    if data.run_dir is not None:
        sub_bits.append(data.run_dir.resolve().name)
    if "n_tumor_cells" in den:
        sub_bits.append(f"{_int(den['n_tumor_cells'])} tumour cells")
    if "n_patients" in den:
        n_p = den["n_patients"]
        sub_bits.append(f"{_int(n_p)} {'patient' if _num(n_p) == 1 else 'patients'}")
    if "n_candidates" in den:
        sub_bits.append(f"{_int(den['n_candidates'])} candidates")
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = _asset("report.html")
    fills: dict[str, str | Safe] = {
        "title": title,
        "subtitle": " · ".join(sub_bits),
        "version": _version(),
        "generated": now,
        "nav": Safe(nav),
        "body": Safe("\n".join(html for _, html in pairs)),
        "data": Safe("\n".join(scripts)),
        "css": Safe(_raw_text_asset("report.css", "style")),
        "js": Safe(_raw_text_asset("report.js", "script")),
    }
    return fill_template(page, fills)


def write_html(
    run_dir: str | os.PathLike[str] | AnnData | RunData,
    out_path: str | os.PathLike[str] | None = None,
    *,
    highlight: Sequence[str] = (),
) -> Path:
    """Write a self-contained HTML report of a run directory or a scored AnnData.

    Parameters
    ----------
    run_dir
        Output directory of ``antigenscout rank``, ``demo``, ``gates`` or ``simulate``; or an
        AnnData scored by :func:`antigenscout.tl.score_targets` / ``tl.search_gates``.
    out_path
        Where to write the report; default ``<run_dir>/report.html`` (required for an
        AnnData).
    highlight
        Targets shown first in every per-target section.

    Returns
    -------
    Path of the written file.

    Raises
    ------
    InputError
        If ``run_dir`` holds no antigenscout outputs, a file in it is malformed, or
        ``out_path`` cannot be written.

    Examples
    --------
    >>> from antigenscout.report import write_html
    >>> write_html("runs/demo")  # doctest: +SKIP
    PosixPath('runs/demo/report.html')
    >>> asc.tl.score_targets(adata, malignant_key="malignant=malignant")  # doctest: +SKIP
    >>> write_html(adata, "report.html")  # doctest: +SKIP
    PosixPath('report.html')
    """
    data = as_run(run_dir, include=highlight)
    if out_path is None:
        if data.run_dir is None:
            msg = "write_html of an AnnData needs out_path, e.g. write_html(adata, 'report.html')"
            raise InputError(msg)
        out_path = data.run_dir / "report.html"
    out = Path(out_path)
    if out.is_dir():
        msg = (
            f"--out {str(out)!r} is a directory; give a file path such as "
            f"{str(out / 'report.html')!r}."
        )
        raise InputError(msg)
    if not out.parent.is_dir():
        msg = f"the folder of --out {str(out)!r} does not exist; create it or choose another path."
        raise InputError(msg)
    html = render_html(data, highlight=highlight)
    try:
        return write_text(out, html)
    except OSError as e:
        msg = f"cannot write the report to {str(out)!r}: {e.strerror}; choose a writable path."
        raise InputError(msg) from None
