"""Report section explaining each top candidate: one card with its numbers and risk drivers."""

from __future__ import annotations

import math
from html import escape

import pandas as pd

from .. import _theme
from ._markup import (
    _bar,
    _f,
    _field,
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
    top_contexts,
)
from ._targets import _risk_driver, _risk_unlisted, compartment_label

N_EXPLAIN = 10


#: HPA immunohistochemistry staining levels (``ihc_max_level``), in the HPA's words.
IHC_LEVELS = {0: "not detected", 1: "low", 2: "medium", 3: "high"}


def _ihc_words(r: pd.Series) -> str:
    """Write ``ihc_max_level`` and ``ihc_tissues_detected`` as a phrase in the HPA's words.

    Each number is kept in its ``data-field`` span.

    >>> "high at most (HPA staining 3 of 3)" in _ihc_words(
    ...     pd.Series({"ihc_max_level": 3.0, "ihc_tissues_detected": 7})
    ... )
    True
    """
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
                    f'<i style="background:{_theme.ramp(v, _theme.COVERAGE_RAMP)}" '
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
