"""Reports and plots of an AnnData scored in Python equal those of its run directory."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import antigenscout as asc
from antigenscout import get, tl
from antigenscout._errors import InputError
from antigenscout._types import N_RISK_TARGETS
from antigenscout.io._write import write_json, write_table
from antigenscout.reference import load_reference
from antigenscout.report import load_run, render_html, write_html
from antigenscout.report._run import as_run

pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning")


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> tuple[object, Path]:
    """The demo AnnData scored in Python, and the run directory the CLI would write of it."""
    adata = asc.datasets.demo()
    tl.score_targets(
        adata, malignant_key="malignant=malignant", patient_key="patient", positivity="cp10k"
    )
    tl.search_gates(
        adata,
        malignant_key="malignant=malignant",
        patient_key="patient",
        positivity="cp10k",
        max_genes=2,
        n_candidates=25,
        top_k=20,
        max_vital_risk=1.0,  # the 25 most frequent candidates hold no gate under 0.5
    )
    # what antigenscout rank/gates write (cli._rank._run_rank, cli._gates.gates), with the
    # same functions
    out = tmp_path_factory.mktemp("scored")
    ref = load_reference()
    write_table(get.targets_df(adata), out / "targets.tsv")
    write_table(get.risk_df(adata, n_top=N_RISK_TARGETS, reference=ref), out / "risk.tsv")
    write_table(get.patient_coverage_df(adata), out / "patient_coverage.tsv", index=True)
    write_table(get.gates_df(adata), out / "gates.tsv")
    res = adata.uns["antigenscout_targets"]
    write_json(
        out / "run.json",
        {
            "command": "tl.score_targets",
            "params": res["params"],
            "denominators": res["denominators"],
            "reference": ref.metadata,
        },
    )
    return adata, out


def test_rundata_tables_equal_run_directory(scored: tuple[object, Path]) -> None:
    adata, out = scored
    a, d = as_run(adata), load_run(out)
    assert a.run_dir is None
    for name in ("targets", "risk", "gates"):
        pd.testing.assert_frame_equal(
            getattr(a, name), getattr(d, name), check_dtype=False, rtol=1e-5, atol=1e-7
        )
    pd.testing.assert_frame_equal(a.patient_coverage, d.patient_coverage, rtol=1e-5, atol=1e-7)
    # independent check against uns itself: rank order and the rank-1 target's numbers
    t = adata.uns["antigenscout_targets"]["targets"]
    best = t.sort_values("rank").iloc[0]
    assert a.targets.iloc[0]["target"] == best.name
    assert a.targets.iloc[0]["tumor_coverage"] == pytest.approx(best["tumor_coverage"])
    assert a.run["denominators"] == adata.uns["antigenscout_targets"]["denominators"]


_NUM = re.compile(r"(-?\d[\d,]*(?:\.\d+)?(?:e[-+]?\d+)?)")


_HEX = re.compile(r"#([0-9a-f]{2})([0-9a-f]{2})([0-9a-f]{2})\b")


def _rgb(m: re.Match[str]) -> str:
    return "rgb " + " ".join(str(int(h, 16)) for h in m.groups())


def _same_up_to_rounding(a: str, b: str) -> None:
    """Equal text; numbers (and colour channels) equal within one unit of their last digit.

    The run directory stores values to 6 significant digits, the AnnData holds them in
    full, so a value on a rounding edge may show one unit apart.
    """
    ta, tb = _NUM.split(_HEX.sub(_rgb, a)), _NUM.split(_HEX.sub(_rgb, b))
    assert len(ta) == len(tb)
    for k, (x, y) in enumerate(zip(ta, tb, strict=True)):
        if k % 2 == 0:
            assert x == y
        elif x != y:
            dec = min(len(v.split(".")[1]) if "." in v else 0 for v in (x, y))
            fx, fy = float(x.replace(",", "")), float(y.replace(",", ""))
            assert abs(fx - fy) <= max(1.01 * 10.0**-dec, 1e-5 * abs(fy)), (x, y)


def _section(html: str, sid: str) -> str:
    return re.search(rf'<section id="{sid}">.*?</section>', html, re.S).group(0)


@pytest.mark.parametrize("highlight", [(), ("CD33",)])
def test_report_of_anndata_equals_report_of_run_dir(
    scored: tuple[object, Path], highlight: tuple[str, ...]
) -> None:
    adata, out = scored
    if highlight:  # the CLI keeps highlighted targets in risk.tsv
        ref = load_reference()
        risk = get.risk_df(adata, n_top=N_RISK_TARGETS, include=highlight, reference=ref)
        out = out.parent / "hl"
        out.mkdir(exist_ok=True)
        for f in ("targets.tsv", "patient_coverage.tsv", "gates.tsv", "run.json"):
            (out / f).write_bytes((scored[1] / f).read_bytes())
        write_table(risk, out / "risk.tsv")
    ha = render_html(adata, highlight=highlight)
    hd = render_html(out, highlight=highlight)
    for sid in ("coverage-risk", "body-map", "patients", "gates", "explain"):
        _same_up_to_rounding(_section(ha, sid), _section(hd, sid))
    fa = re.search(r'<ul class="findings">.*?</table>', ha, re.S).group(0)
    fd = re.search(r'<ul class="findings">.*?</table>', hd, re.S).group(0)
    _same_up_to_rounding(fa, fd)
    assert "antigenscout.tl.score_targets" in _section(ha, "overview")
    ja = json.loads(re.search(r'id="data-candidates">(.*?)</script>', ha, re.S).group(1))
    jd = json.loads(re.search(r'id="data-candidates">(.*?)</script>', hd, re.S).group(1))
    assert ja["cols"]["target"] == jd["cols"]["target"]
    np.testing.assert_allclose(ja["cols"]["vital_risk"], jd["cols"]["vital_risk"], atol=2e-5)


def test_write_html_of_anndata(scored: tuple[object, Path], tmp_path: Path) -> None:
    adata, _ = scored
    path = write_html(adata, tmp_path / "r.html")
    html = path.read_text()
    assert '<section id="gates">' in html
    assert '<section id="coverage-risk">' in html
    with pytest.raises(InputError, match="needs out_path"):
        write_html(adata)
    empty = asc.datasets.demo()
    with pytest.raises(InputError, match="no antigenscout results"):
        render_html(empty)


def _offsets(fig: object) -> np.ndarray:
    ax = fig.axes[0]  # type: ignore[attr-defined]
    return np.vstack([c.get_offsets() for c in ax.collections if len(c.get_offsets())])


def _image(fig: object) -> np.ndarray:
    ax = fig.axes[0]  # type: ignore[attr-defined]
    return np.asarray(ax.images[0].get_array() if ax.images else ax.collections[0].get_array())


def test_pl_accepts_anndata(scored: tuple[object, Path]) -> None:
    adata, out = scored
    np.testing.assert_allclose(
        _offsets(asc.pl.coverage_risk(adata)), _offsets(asc.pl.coverage_risk(out)), atol=1e-5
    )
    np.testing.assert_allclose(
        _offsets(asc.pl.gate_scatter(adata)), _offsets(asc.pl.gate_scatter(out)), atol=1e-5
    )
    np.testing.assert_allclose(
        _image(asc.pl.patient_coverage(adata)), _image(asc.pl.patient_coverage(out)), atol=1e-5
    )
    np.testing.assert_allclose(
        _image(asc.pl.risk_heatmap(adata)), _image(asc.pl.risk_heatmap(out)), atol=1e-5
    )
    # a target outside the best N_RISK_TARGETS is computed for the AnnData on request
    far = get.targets_df(adata)["target"].iloc[-1]
    fig = asc.pl.risk_heatmap(adata, targets=[far], min_risk=0.0)
    labels = [t.get_text() for t in fig.axes[0].get_xticklabels()]
    assert labels == [far]
