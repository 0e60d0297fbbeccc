"""Report section on logic gates: found gates, the user's designs and the gates set aside."""

from __future__ import annotations

from html import escape

import numpy as np
import pandas as pd

from .. import _theme
from . import _svg
from ._markup import (
    MAX_POINTS,
    _bar,
    _columns_json,
    _dataset_script,
    _f,
    _how,
    _int,
    _section,
    _truthy,
    _txt,
)
from ._run import (
    RunData,
)

N_GATES = 25


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
                xlabel=_theme.COVERAGE_AXIS_LABEL,
                ylabel=_theme.risk_axis_label("worst_healthy_risk"),
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
    """Render a gate's worst healthy risk as a bar, marked ``≤`` where it is an upper bound."""
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
    """Render the designs the user asked about (``--design``), scored as found gates are."""
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
    """Render the gates examined but set aside, best first, each with its reason."""
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
