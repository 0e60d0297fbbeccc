"""Report section on simulated therapy kinetics: cohort curves and summary table."""

from __future__ import annotations

from html import escape

from . import _svg
from ._markup import (
    _flatten,
    _how,
    _kv_table,
    _pct,
    _section,
)
from ._run import (
    RunData,
    cohort_summary,
    curve_label,
    metric_unit,
)


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
