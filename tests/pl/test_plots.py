"""Static matplotlib figures: build from run directories and tables, save PNG and SVG."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image

from antigenscout import pl
from antigenscout._errors import InputError

CASES = [
    ("coverage_risk", {}),
    ("risk_heatmap", {}),
    ("risk_heatmap", {"level": "system"}),
    ("patient_coverage", {}),
    ("gate_scatter", {}),
    ("kinetics_curves", {}),
]


@pytest.mark.parametrize(("name", "kw"), CASES, ids=[f"{n}-{k.get('level', '')}" for n, k in CASES])
def test_saves_png_and_svg(full_run: Path, tmp_path: Path, name: str, kw: dict) -> None:
    fig = getattr(pl, name)(full_run, **kw)
    assert isinstance(fig, Figure)
    png, svg = tmp_path / f"{name}.png", tmp_path / f"{name}.svg"
    fig.savefig(png, dpi=100)
    fig.savefig(svg)
    w_in, h_in = fig.get_size_inches()
    with Image.open(png) as im:
        assert im.size == (round(w_in * 100), round(h_in * 100))
        assert 250 <= im.size[0] <= 3000
        assert 200 <= im.size[1] <= 3000
        colours = im.convert("RGB").getcolors(maxcolors=1_000_000)
        assert len(colours) > 50  # drawn, not blank
    assert png.stat().st_size > 10_000
    text = svg.read_text(encoding="utf-8")
    assert text.lstrip().startswith("<?xml")
    assert "<svg" in text
    assert svg.stat().st_size > 10_000


def test_accepts_tables(full_run: Path) -> None:
    t = pd.read_csv(full_run / "targets.tsv", sep="\t")
    fig = pl.coverage_risk(t, n_labels=3)
    texts = [a.get_text() for a in fig.axes[0].texts]
    assert texts[:3] == t["target"].head(3).tolist()
    risk = pd.read_csv(full_run / "risk.tsv", sep="\t")
    fig = pl.risk_heatmap(risk, targets=["CD33", "IL3RA", "TNNT2"], level="system")
    ax = fig.axes[0]
    assert [x.get_text() for x in ax.get_xticklabels()] == ["CD33", "IL3RA", "TNNT2"]
    ylabels = [y.get_text() for y in ax.get_yticklabels()]
    assert ylabels[0] in {"cardiovascular", "haematopoietic"}  # both reach risk >= 0.9
    pc = pd.read_csv(full_run / "patient_coverage.tsv", sep="\t", index_col=0)
    fig = pl.patient_coverage(pc, targets=["CD33", "CLEC12A"])
    assert fig.axes[0].get_images()[0].get_array().shape == (2, pc.shape[1])


SINGLE_PANEL = ["coverage_risk", "risk_heatmap", "patient_coverage", "gate_scatter"]


@pytest.mark.parametrize("name", SINGLE_PANEL)
def test_ax_argument_draws_into_existing_figure(full_run: Path, name: str) -> None:
    fig = Figure()
    left, right = fig.subplots(1, 2)
    assert getattr(pl, name)(full_run, ax=right) is fig
    assert right.has_data() or right.get_images()
    assert not left.has_data()  # the other panel is untouched
    assert not left.get_images()


def test_kinetics_curves_take_one_axes_per_quantity(full_run: Path) -> None:
    names = ["tumour_cells", "car_t_cells_per_ul"]
    fig = Figure()
    axes = fig.subplots(1, 3)
    assert pl.kinetics_curves(full_run, quantities=names, ax=axes[1:]) is fig
    assert not axes[0].has_data()
    assert [a.has_data() for a in axes[1:]] == [True, True]
    single = Figure().add_subplot()
    pl.kinetics_curves(full_run, quantities=["tumour_cells"], ax=single)
    assert single.has_data()
    with pytest.raises(InputError, match="2 axes for 1 quantities"):
        pl.kinetics_curves(full_run, quantities=["tumour_cells"], ax=axes[1:])


def test_no_pyplot_and_no_global_style(full_run: Path, tmp_path: Path) -> None:
    import matplotlib as mpl

    before = dict(mpl.rcParams)
    pl.kinetics_curves(full_run, quantities=["tumour_cells"])
    assert dict(mpl.rcParams) == before
    code = (
        "import sys, antigenscout.pl as pl; "
        f"pl.coverage_risk({str(full_run)!r}).savefig({str(tmp_path / 'a.png')!r}); "
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
    assert (tmp_path / "a.png").stat().st_size > 0


def test_errors(full_run: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="level"):
        pl.risk_heatmap(full_run, level="organ")
    with pytest.raises(InputError, match="unknown quantities"):
        pl.kinetics_curves(full_run, quantities=["nope"])
    (tmp_path / "gates.tsv").write_text("gate\ttumor_coverage\nA\t0.5\n")
    with pytest.raises(InputError, match=r"no risk\.tsv"):
        pl.risk_heatmap(tmp_path)
    with pytest.raises(InputError, match="worst_healthy_risk"):
        pl.gate_scatter(tmp_path)
    with pytest.raises(InputError, match="expected a run directory"):
        pl.coverage_risk(42)  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted({n for n, _ in CASES}))
def test_save_and_show_as_scanpy(full_run: Path, tmp_path: Path, name: str, monkeypatch) -> None:
    """save= writes the figure (format from the suffix), show= hands it to IPython's
    display; the figure is returned either way."""
    import types

    shown = []
    ipython = types.ModuleType("IPython")
    display = types.ModuleType("IPython.display")
    display.display = shown.append  # type: ignore[attr-defined]
    ipython.display = display  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "IPython", ipython)
    monkeypatch.setitem(sys.modules, "IPython.display", display)
    out = tmp_path / f"{name}.png"
    fig = getattr(pl, name)(full_run, save=out, show=True)
    assert isinstance(fig, Figure)
    with Image.open(out) as im:
        assert im.size[0] > 250
    assert shown == [fig]


def test_show_outside_jupyter_says_so(full_run: Path, monkeypatch) -> None:
    from antigenscout._errors import AntigenscoutWarning

    monkeypatch.setitem(sys.modules, "IPython", None)  # not installed
    with pytest.warns(AntigenscoutWarning, match="Jupyter only"):
        pl.coverage_risk(full_run, show=True)
