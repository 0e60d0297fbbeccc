"""Report sections on a target ranking: overview, coverage vs risk, body map, patients.

The overview's findings and top table, the coverage-vs-risk scatter with the interactive
candidate table, the healthy-risk heatmaps of the body map and the per-patient and
per-compartment coverage heatmaps.
"""

from __future__ import annotations

import math
from html import escape
from typing import Any

import numpy as np
import pandas as pd

from .. import _theme
from ..get._glossary import describe_column
from . import _svg
from ._markup import (
    MAX_POINTS,
    _bar,
    _columns_json,
    _dataset_script,
    _f,
    _how,
    _int,
    _num,
    _pct,
    _risk_col,
    _section,
    _truthy,
    _txt,
)
from ._run import (
    RunData,
    coverage_by_compartment,
    patient_matrix,
    risk_matrix,
    system_matrix,
    top_contexts,
)

N_TOP_BODY = 20
N_TOP_PATIENTS = 20


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
    """Return ``"name (system)"`` escaped, without doubled parentheses.

    Parentheses are not doubled for systems such as ``immune (lymphoid)``.
    """
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
                "vital-weighted healthy expression. "
                f"<span style='color:{_theme.FRONT}'>Orange</span> "
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
                xlabel=_theme.COVERAGE_AXIS_LABEL,
                ylabel=_theme.risk_axis_label(rc),
                title="coverage vs risk",
            )
            + "</div>"
        )
        parts.append(
            '<div class="legendrow">'
            f'<span><i class="dot" style="background:{_theme.FRONT}"></i>Pareto front</span>'
            f'<span><i class="dot" style="background:{_theme.OTHER}"></i>other candidates</span>'
            f'<span><i class="dot" style="background:{_theme.SWEET_SPOT};border-radius:2px"></i>'
            f"coverage ≥ {_theme.SWEET_SPOT_COVERAGE} "
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

    legend = _svg.legend_svg(_theme.RISK_RAMP, _theme.RISK_SCALE_LABEL)
    parts.append("<h3>By anatomical system</h3>")
    parts.append(
        '<div class="chartwrap">'
        + _svg.heatmap_svg(
            smat,
            stops=_theme.RISK_RAMP,
            tip=stip,
            annotate=True,
            label_w=170,
            title="risk by system",
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
                stops=_theme.RISK_RAMP,
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
    """Return targets with a healthy risk above 0 in ``targets.tsv`` but no rows in ``risk.tsv``.

    The ranking writes per-context rows only for its best-ranked and highlighted targets.
    """
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
                stops=_theme.COVERAGE_RAMP,
                tip=tip,
                annotate=mat.shape[1] <= 30,  # noqa: PLR2004
                label_w=110,
                cell_w=30 if mat.shape[1] <= 30 else 16,  # noqa: PLR2004
                title="coverage per patient",
            )
            + "</div>"
            + _svg.legend_svg(_theme.COVERAGE_RAMP, _theme.COVERAGE_SCALE_LABEL)
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
                stops=_theme.COVERAGE_RAMP,
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


def compartment_label(name: str) -> str:
    """Return a compartment's label as read: underscores as spaces.

    ``stem_progenitor`` → ``stem progenitor``.
    """
    return str(name).replace("_", " ")
