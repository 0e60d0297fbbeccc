"""One style for both renderers: the report's SVG charts and the pl figures take their colours,
colour ramps and axis rules from antigenscout._theme."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest

from antigenscout import _theme, pl
from antigenscout.report import render_html
from antigenscout.report._run import RunData

TARGETS = pd.DataFrame(
    {
        "target": ["A", "B", "C", "D"],
        "rank": [1, 2, 3, 4],
        "tumor_coverage": [0.95, 0.6, 0.3, 0.1],
        "vital_risk": [0.08, 0.3, 0.02, 0.2],
        "pareto_rank": [1, 2, 1, 2],
    }
)


def _figure_svg(fig) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg")
    return buf.getvalue().lower()


def test_scatter_colours_come_from_the_theme_in_both_renderers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # colours nobody else uses: they can only reach the output through the theme
    monkeypatch.setattr(_theme, "FRONT", "#123456")
    monkeypatch.setattr(_theme, "OTHER", "#654321")
    monkeypatch.setattr(_theme, "SWEET_SPOT", "#abcdef")
    html = render_html(RunData(targets=TARGETS)).lower()
    drawn = _figure_svg(pl.coverage_risk(TARGETS))
    for colour in ("#123456", "#654321", "#abcdef"):
        assert colour in html
        assert colour in drawn


def test_risk_ramp_is_the_same_in_both_renderers() -> None:
    from antigenscout.pl._plots import _cmap

    cmap = _cmap("risk")
    for v in (0.0, 0.03, 0.2, 0.55, 1.0):
        svg = np.array(_theme.hex_rgb(_theme.ramp(v, _theme.RISK_RAMP))) / 255
        assert np.allclose(cmap(v)[:3], svg, atol=2 / 255)


def test_heatmap_cell_values_use_the_themes_ink_in_both_renderers() -> None:
    from antigenscout.report._svg import heatmap_svg

    mat = pd.DataFrame([[0.2, 0.9]], index=["A"], columns=["p1", "p2"])
    svg = heatmap_svg(
        mat, stops=_theme.COVERAGE_RAMP, tip=lambda r, c, v: "", annotate=True, title="t"
    )
    fig = pl.patient_coverage(mat, annotate=True)
    texts = {t.get_text(): t.get_color() for t in fig.axes[0].texts}
    for v in (0.2, 0.9):
        ink = _theme.ink(_theme.ramp(v, _theme.COVERAGE_RAMP))
        assert f'fill="{ink}"' in svg
        assert texts[f"{v:.2f}".lstrip("0")] == ink


def test_risk_axis_follows_the_same_rule_in_both_renderers() -> None:
    fig = pl.coverage_risk(TARGETS)
    ax = fig.axes[0]
    top = _theme.risk_axis_top(0.3)
    assert top == 0.35
    assert ax.get_ylim() == (0, top)
    assert ax.get_xlim() == (0, 1)
    assert list(ax.get_yticks()) == _theme.nice_ticks(0, top)
    html = render_html(RunData(targets=TARGETS))
    ticks = [f">{v:g}</text>" for v in _theme.nice_ticks(0, top)]
    assert all(t in html for t in ticks)
    assert _theme.risk_axis_label("vital_risk") in html
    assert ax.get_ylabel() == _theme.risk_axis_label("vital_risk")


def test_theme_imports_neither_renderer() -> None:
    import ast
    from pathlib import Path

    tree = ast.parse(Path(_theme.__file__).read_text(encoding="utf-8"))
    imported = [n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level]
    assert imported == []
