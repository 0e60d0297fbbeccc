"""Report polish (issue #9): label collisions, highlight wording, kinetics units, risk gaps."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from antigenscout._errors import InputError
from antigenscout.report import load_run, render_html
from antigenscout.report._run import curve_label, metric_unit
from antigenscout.report._svg import label_width, place_labels, scatter_svg


def _overlap(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def test_place_labels_never_overlap_and_stay_near() -> None:
    rng = np.random.default_rng(3)
    # a dense cluster (the smudge case) plus scattered points
    pts = [(400 + rng.normal(0, 6), 200 + rng.normal(0, 6), f"GENE{k}") for k in range(25)]
    pts += [(rng.uniform(60, 740), rng.uniform(20, 400), f"T{k}X") for k in range(15)]
    bounds = (60.0, 14.0, 744.0, 422.0)
    spots = place_labels(pts, bounds=bounds)
    placed = [(p, s) for p, s in zip(pts, spots, strict=True) if s is not None]
    assert 10 <= len(placed) < len(pts)  # some labels placed, crowded ones skipped
    for (_, a), (_, b) in itertools.combinations(placed, 2):
        assert not _overlap(a.box, b.box)
    for (px, py, text), s in placed:
        x0, y0, x1, y1 = s.box
        assert bounds[0] <= x0 < x1 <= bounds[2]
        assert bounds[1] <= y0 < y1 <= bounds[3]
        assert x1 - x0 == pytest.approx(label_width(text))
        # the label touches its point's neighbourhood, or a leader line joins them
        dist = np.hypot(px - min(max(px, x0), x1), py - min(max(py, y0), y1))
        assert dist <= 20 or s.leader
        assert dist <= 60
    # the first label always gets a spot: priority order
    assert spots[0] is not None


def test_scatter_labels_in_svg_do_not_collide() -> None:
    x = np.r_[np.full(12, 0.5) + np.linspace(0, 0.01, 12), 0.9]
    y = np.r_[np.full(12, 0.5), 0.1]
    svg = scatter_svg(
        x,
        y,
        highlight=np.zeros(13, bool),
        labels={i: f"TARGET{i}" for i in range(13)},
        dataset="d",
        xlabel="x",
        ylabel="y",
    )
    found = re.findall(r'<text x="([\d.]+)" y="([\d.]+)"[^>]*data-label-for="(\d+)"', svg)
    assert "12" in {f[2] for f in found}  # the lone point is labelled
    assert 3 <= len(found) < 13  # the stack of 12 cannot all be labelled legibly
    ys = sorted(float(f[1]) for f in found if f[2] != "12")
    assert all(b - a >= 11 for a, b in itertools.pairwise(ys)) or len({f[0] for f in found}) > 1


def test_highlight_is_not_called_top_ranked(targets_run: Path) -> None:
    t = pd.read_csv(targets_run / "targets.tsv", sep="\t").sort_values("rank")
    low = t.iloc[-3]["target"]  # a poorly ranked target
    html = render_html(targets_run, highlight=[low])
    findings = re.search(r'<ul class="findings">(.*?)</ul>', html, re.S).group(1)
    top = re.search(r"Top-ranked: <b>(.*?)</b>", findings).group(1)
    assert top == t.iloc[0]["target"]
    m = re.search(r"Highlighted \(rank (\d+)\): <b>(.*?)</b>", findings)
    assert m is not None
    assert m.group(2) == low
    assert int(m.group(1)) == int(t.iloc[-3]["rank"])
    assert "Highlighted, then top-ranked candidates" in html
    plain = render_html(targets_run)
    assert "Highlighted" not in plain
    assert "<h3>Top candidates</h3>" in plain


def test_unlisted_risk_is_not_called_undetected(targets_run: Path) -> None:
    r = pd.read_csv(targets_run / "risk.tsv", sep="\t")
    t = pd.read_csv(targets_run / "targets.tsv", sep="\t").sort_values("rank")
    gone = t[t["vital_risk"] > 0]["target"].iloc[0]
    r[r["target"] != gone].to_csv(targets_run / "risk.tsv", sep="\t", index=False)
    html = render_html(targets_run)
    card = re.search(rf'<article class="card" id="explain-{gone}".*?</article>', html, re.S)
    assert "Not detected in any healthy context" not in card.group(0)
    assert "risk.tsv has no per-context rows" in card.group(0)
    body = re.search(r'<section id="body-map">.*?</section>', html, re.S).group(0)
    assert f"Not shown: <b>{gone}</b>" in body
    # its column is dropped from the heatmaps instead of drawn as zero risk
    assert f">{gone}</text>" not in body


def _sim_dir(tmp_path: Path, model: str, quantities: list[str], scenario: dict | None) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    t = np.linspace(0, 30, 7)
    frames = [
        pd.DataFrame({"time_days": t, "quantity": q, "p05": t + 1, "p50": t + 2, "p95": t + 3})
        for q in quantities
    ]
    pd.concat(frames).to_csv(tmp_path / "curves.tsv", sep="\t", index=False)
    summary: dict = {"model": model, "n_patients": 10}
    if scenario:
        summary["scenario"] = scenario
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    return tmp_path


def test_kinetics_axes_have_units_and_target(tmp_path: Path) -> None:
    run = _sim_dir(tmp_path / "stein", "stein2019", ["car_t"], None)
    lab = curve_label(load_run(run), "car_t")
    assert lab.ylabel == "CAR-T cells (copies/µg DNA)"
    html = render_html(run)
    kin = re.search(r'<section id="kinetics">.*?</section>', html, re.S).group(0)
    assert ">CAR-T cells (copies/µg DNA)</text>" in kin
    assert ">time (days)</text>" in kin
    assert "median 2 copies/µg DNA" in kin  # tooltip values carry the unit

    scen = {"target": "FLT3", "healthy_cell_type": "B cell"}
    qs = ["car_t", "tumour_burden", "healthy_fraction"]
    run2 = _sim_dir(tmp_path / "leuk", "cart-leukaemia", qs, scen)
    html2 = render_html(run2)
    titles = re.findall(r'<text x="[\d.]+" y="15"[^>]*>(.*?)</text>', html2)
    assert titles == [
        "FLT3: CAR-T cells (cart-leukaemia)",
        "FLT3: tumour burden (cart-leukaemia)",
        "FLT3: healthy B cell (cart-leukaemia)",
    ]
    assert ">CAR-T cells (copies/µg DNA)</text>" in html2  # Stein kinetics
    assert ">tumour burden (fold of day 0)</text>" in html2
    assert ">healthy target cells (fraction of day 0)</text>" in html2


def test_the_units_the_summary_states_win(tmp_path: Path) -> None:
    run = _sim_dir(tmp_path, "cart-cml", ["car_t", "stem_fraction"], None)
    summary = json.loads((run / "summary.json").read_text())
    summary["units"] = {
        "car_t": "CAR-T cells/uL blood",
        "stem_fraction": "fold of baseline",
        "cmax": "CAR-T cells/uL blood",
        "remission": "-",
    }
    (run / "summary.json").write_text(json.dumps(summary))
    data = load_run(run)
    assert curve_label(data, "car_t").ylabel == "CAR-T cells/uL blood"
    assert curve_label(data, "stem_fraction").ylabel == "fold of baseline"
    assert curve_label(data, "stem_fraction").title == "leukaemic stem cells (cart-cml)"
    assert metric_unit(data, "cmax") == "CAR-T cells/uL blood"
    assert metric_unit(data, "remission") == ""  # dimensionless


@pytest.mark.parametrize(
    ("metric", "unit"),
    [
        ("cmax", "copies/µg DNA"),
        ("car_t_day28", "copies/µg DNA"),
        ("auc_0_28", "copies/µg DNA × day"),
        ("tmax_days", "days"),
        ("healthy_recovery_day", "days"),
        ("K_C", "cells/µL"),
        ("alpha", "1/day"),
        ("foldx", ""),
    ],
)
def test_cohort_metric_units(tmp_path: Path, metric: str, unit: str) -> None:
    run = _sim_dir(tmp_path, "stein2019", ["car_t"], None)
    assert metric_unit(load_run(run), metric) == unit


def test_highlight_takes_the_synonyms_rank_takes(targets_run: Path) -> None:
    """CD123 is IL3RA's common name: the report highlights IL3RA, as rank's --highlight
    would; an unknown name is still refused."""
    html = render_html(targets_run, highlight=["CD123"])
    assert re.search(r"Highlighted \(rank \d+\): <b>IL3RA</b>", html)
    with pytest.raises(InputError, match=r"not in targets\.tsv: NOTAGENE42"):
        render_html(targets_run, highlight=["NOTAGENE42"])


def test_provenance_shows_the_input_and_the_choices_made(targets_run: Path) -> None:
    run = json.loads((targets_run / "run.json").read_text())
    run["input"] = {
        "path": "/data/tumour.h5ad",
        "sha256": "ab" * 32,
        "format": "h5ad",
        "matrix": "layers['counts']",
        "version": "9.9",
        "command_line": ["antigenscout", "rank", "tumour.h5ad", "--out", "o"],
    }
    run["notes"] = ["no --patient-key: all tumour cells are counted as one patient"]
    (targets_run / "run.json").write_text(json.dumps(run))
    html = render_html(targets_run)
    prov = re.search(r'<section id="provenance">.*?</section>', html, re.S).group(0)
    assert "ab" * 32 in prov
    assert "antigenscout rank tumour.h5ad --out o" in prov
    assert "<li>no --patient-key: all tumour cells are counted as one patient</li>" in prov


def test_one_patient_is_not_called_patients(targets_run: Path) -> None:
    run = json.loads((targets_run / "run.json").read_text())
    run.setdefault("denominators", {})["n_patients"] = 1
    (targets_run / "run.json").write_text(json.dumps(run))
    html = render_html(targets_run)
    assert not re.search(r"\b1 patients\b", html)
    assert re.search(r"\b1 patient\b", html)


def _section_html(html: str, sid: str) -> str:
    return re.search(rf'<section id="{sid}">.*?</section>', html, re.S).group(0)


def test_provenance_folds_the_long_tables_and_keeps_the_input_open(targets_run: Path) -> None:
    prov = _section_html(render_html(targets_run), "provenance")
    folded = re.findall(r"<details class=\"fold\"><summary>([^<(]+) \(", prov)
    assert folded[:2] == ["Parameters", "Reference data"]
    before = prov.split("<details", 1)[0]
    assert "<h3>Run</h3>" in before  # the run and its input are shown unfolded
    assert "<details open" not in prov


def test_gates_legend_defines_every_operator_and_no_chip_is_struck(gates_run: Path) -> None:
    html = render_html(gates_run)
    legend = re.search(r'<p class="how">Logic-gated.*?</p>', html, re.S).group(0)
    for op in ("AND", "OR", "NOT"):
        assert f"<span class='op'>{op}</span>" in legend
    css = html[html.index("<style") : html.index("</style>")]
    assert "line-through" not in css


def test_designs_and_set_aside_gates_are_shown_as_written(gates_run: Path) -> None:
    g = pd.read_csv(gates_run / "gates.tsv", sep="\t")
    designs = g.head(2).assign(
        design=["CD33 AND NOT CD34", "IL3RA OR CLEC12A"],
        feasible=[False, True],
        set_aside=["NOT CD34 lowers the risk by no more than noise", np.nan],
        design_note=["none", "IL3RA is not a candidate"],
    )
    designs.to_csv(gates_run / "designs.tsv", sep="\t", index=False)
    aside = pd.concat([g] * 3, ignore_index=True).assign(set_aside="an arm adds nothing")
    aside.to_csv(gates_run / "set_aside.tsv", sep="\t", index=False)
    gates = _section_html(render_html(gates_run), "gates")
    assert "Your designs (2)" in gates
    assert "NOT CD34 lowers the risk by no more than noise" in gates
    assert "IL3RA is not a candidate" in gates
    assert gates.count("above the risk cap") == 1
    assert f"Set aside: {len(aside)} gates" in gates
    shown = re.search(r"Set aside:.*", gates, re.S).group(0)
    assert shown.count("an arm adds nothing") == min(len(aside), 10)


def test_compartments_and_ihc_read_as_words(full_run: Path) -> None:
    t = pd.read_csv(full_run / "targets.tsv", sep="\t")
    t.loc[:2, "ihc_max_level"] = [3.0, 0.0, np.nan]
    t.loc[:2, "ihc_tissues_detected"] = [7, 0, 0]
    t.to_csv(full_run / "targets.tsv", sep="\t", index=False)
    html = render_html(full_run)
    assert "stem_progenitor" not in re.sub(r'data-field="[^"]*"', "", html.split("<script")[0])
    assert "stem progenitor" in html
    assert "IHC max level" not in html
    cards = _section_html(html, "explain")
    for text in (
        "high at most (HPA staining 3 of 3)",
        "7 tissues</span>",
        "stained, not detected in any tissue",
        "no HPA antibody staining on record",
    ):
        assert text in cards, text


def test_candidate_table_headers_explain_their_columns(full_run: Path) -> None:
    from antigenscout.get import describe_column

    html = render_html(full_run)
    blob = re.search(r'<script type="application/json" id="data-candidates">(.*?)</script>', html)
    table = json.loads(blob.group(1))["table"]
    for col, _label, _fmt, title in table:
        assert title == describe_column("targets.tsv", col), col
