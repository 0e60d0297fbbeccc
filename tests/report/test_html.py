"""HTML report on synthetic run directories: sections, offline-ness, numbers, errors."""

from __future__ import annotations

import json
import math
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import antigenscout_tests_synthetic_run as synthetic  # registered by conftest.py
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from antigenscout._errors import InputError
from antigenscout.report import SECTIONS, add_report, load_run, render_html, write_html
from antigenscout.report._cli import report_command
from antigenscout.report._run import cohort_summary, risk_matrix, system_matrix


class _Page(HTMLParser):
    """Collects sections, URLs, explain-card fields and JSON datasets."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, str] = {}
        self.urls: list[tuple[str, str, str]] = []
        self.cards: dict[str, dict[str, str]] = {}
        self.drivers: dict[str, list[dict[str, str]]] = {}
        self.datasets: dict[str, str] = {}
        self.stack_section: str | None = None
        self._h2 = False
        self._card: str | None = None
        self._ctx: dict[str, str] | None = None
        self._json: str | None = None
        self.tags: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append(tag)
        for k in ("src", "href", "action", "xlink:href", "data"):
            if k in a:
                self.urls.append((tag, k, a[k]))
        if tag == "section":
            self.stack_section = a.get("id", "")
            self.sections[self.stack_section] = ""
        elif tag == "h2" and self.stack_section is not None:
            self._h2 = True
        elif tag == "article" and "data-target" in a:
            self._card = a["data-target"]
            self.cards[self._card] = {}
            self.drivers[self._card] = []
        elif tag == "tr" and self._card and "data-context" in a:
            self._ctx = {"name": a["data-context"]}
            self.drivers[self._card].append(self._ctx)
        elif tag == "span" and "data-field" in a and self._card:
            target = self._ctx if self._ctx is not None else self.cards[self._card]
            target[a["data-field"]] = a["data-value"]
        elif tag == "script" and a.get("type") == "application/json":
            self._json = a["id"]
            self.datasets[self._json] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "h2":
            self._h2 = False
        elif tag == "article":
            self._card = None
        elif tag == "tr":
            self._ctx = None
        elif tag == "section":
            self.stack_section = None
        elif tag == "script":
            self._json = None

    def handle_data(self, data: str) -> None:
        if self._h2 and self.stack_section is not None:
            self.sections[self.stack_section] += data
        if self._json is not None:
            self.datasets[self._json] += data


def _parse(html: str) -> _Page:
    p = _Page()
    p.feed(html)
    return p


def _close(a: str, b: object) -> bool:
    if isinstance(b, bool | np.bool_):
        return a == ("true" if b else "false")
    try:
        fa, fb = float(a), float(b)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return a == str(b)
    if math.isnan(fb):
        return math.isnan(fa)
    return math.isclose(fa, fb, rel_tol=1e-12, abs_tol=1e-12)


# ------------------------------------------------------------------------------ sections


def test_all_sections_present_with_headings(full_run: Path) -> None:
    out = write_html(full_run)
    assert out == full_run / "report.html"
    page = _parse(out.read_text(encoding="utf-8"))
    assert list(page.sections) == list(SECTIONS)
    for sid, heading in SECTIONS.items():
        assert page.sections[sid].strip() == heading
    html = out.read_text(encoding="utf-8")
    assert "CC BY-SA 4.0" in html
    assert "@media print" in html


def test_targets_only_run_has_no_gates_or_kinetics(targets_run: Path) -> None:
    page = _parse(render_html(targets_run))
    assert set(page.sections) == set(SECTIONS) - {"gates", "kinetics"}


def test_gates_only_run(gates_run: Path) -> None:
    page = _parse(render_html(gates_run))
    assert list(page.sections) == ["overview", "gates", "provenance"]


def test_simulation_only_run(sim_run: Path) -> None:
    html = render_html(sim_run)
    page = _parse(html)
    assert list(page.sections) == ["kinetics", "provenance"]
    assert html.count('class="chart bands"') == 3  # one chart per quantity


def test_optional_tables_drive_sections(tmp_path: Path) -> None:
    run = synthetic.write_targets_run(
        tmp_path / "r",
        with_risk=False,
        with_patient_coverage=False,
        with_compartments=False,
        with_run_json=False,
    )
    page = _parse(render_html(run))
    assert list(page.sections) == ["overview", "coverage-risk", "explain", "provenance"]
    # compartments alone still give the patients section
    run2 = synthetic.write_targets_run(tmp_path / "r2", with_patient_coverage=False)
    assert "patients" in _parse(render_html(run2)).sections


def test_missing_optional_columns(tmp_path: Path) -> None:
    run = synthetic.write_targets_run(tmp_path / "r")
    t = pd.read_csv(run / "targets.tsv", sep="\t")
    keep = ["target", "tumor_coverage", "n_tumor_cells", "n_positive_cells", "vital_risk", "rank"]
    t[keep].to_csv(run / "targets.tsv", sep="\t", index=False)
    page = _parse(render_html(run))
    assert {"overview", "coverage-risk", "explain", "body-map"} <= set(page.sections)


# ------------------------------------------------------------------------------ offline


def test_no_external_urls_and_small(full_run: Path) -> None:
    html = write_html(full_run).read_text(encoding="utf-8")
    page = _parse(html)
    for tag, attr, url in page.urls:
        assert url.startswith("#"), f"<{tag} {attr}={url!r}> is not an in-page link"
    assert "link" not in page.tags  # no external stylesheets
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.I)
    assert not re.search(r"@import|url\(\s*['\"]?https?:", html, re.I)
    assert len(html.encode()) < 2_000_000


def test_many_candidates_stay_small(tmp_path: Path) -> None:
    run = synthetic.write_targets_run(tmp_path / "big", n_extra=6000)
    html = write_html(run).read_text(encoding="utf-8")
    assert len(html.encode()) < 2_000_000
    page = _parse(html)
    cand = json.loads(page.datasets["data-candidates"])
    assert cand["n_total"] == 6012
    t = pd.read_csv(run / "targets.tsv", sep="\t")
    n_front_beyond = int((t["pareto_rank"].iloc[4000:] == 1).sum())
    assert len(cand["cols"]["target"]) == 4000 + n_front_beyond
    assert "Showing the" in html


# ------------------------------------------------------------------------------ numbers


def test_explain_cards_equal_tsv(full_run: Path) -> None:
    page = _parse(render_html(full_run))
    targets = pd.read_csv(full_run / "targets.tsv", sep="\t")
    risk = pd.read_csv(full_run / "risk.tsv", sep="\t")
    top = targets.head(10)
    assert list(page.cards) == top["target"].tolist()
    for _, row in top.iterrows():
        fields = page.cards[row["target"]]
        for col in (
            "tumor_coverage",
            "n_positive_cells",
            "n_tumor_cells",
            "patients_covered_fraction",
            "n_patients",
            "patient_coverage_median",
            "patient_coverage_min",
            "ihc_max_level",
            "ihc_tissues_detected",
            "surface_evidence",
            "score",
            "vital_risk",
            "coverage__stem_progenitor",
        ):
            assert col in fields, (row["target"], col)
            assert _close(fields[col], row[col]), (row["target"], col, fields[col], row[col])
        # denominators: coverage = n_positive / n_tumor
        assert math.isclose(
            float(fields["n_positive_cells"]) / float(fields["n_tumor_cells"]),
            row["tumor_coverage"],
            abs_tol=1e-3,
        )
        expect = risk[risk["target"] == row["target"]].sort_values("risk", ascending=False).head(5)
        got = page.drivers[row["target"]]
        assert [d["name"] for d in got] == expect["name"].tolist()
        for d, (_, e) in zip(got, expect.iterrows(), strict=True):
            for col in ("positive_fraction", "vital_weight", "risk"):
                assert _close(d[col], e[col]), (row["target"], d["name"], col)


def test_candidates_dataset_equals_tsv(full_run: Path) -> None:
    page = _parse(render_html(full_run))
    cand = json.loads(page.datasets["data-candidates"])
    t = pd.read_csv(full_run / "targets.tsv", sep="\t")
    assert cand["cols"]["target"] == t["target"].tolist()
    np.testing.assert_allclose(cand["cols"]["tumor_coverage"], t["tumor_coverage"], atol=1e-5)
    np.testing.assert_allclose(cand["cols"]["vital_risk"], t["vital_risk"], atol=1e-5)
    assert cand["cols"]["pareto_rank"] == t["pareto_rank"].tolist()


def test_scatter_points_and_front(full_run: Path) -> None:
    html = render_html(full_run)
    svg = re.search(r'<svg class="chart scatter" data-set="candidates".*?</svg>', html, re.S).group(
        0
    )
    t = pd.read_csv(full_run / "targets.tsv", sep="\t")
    assert svg.count("<circle") == len(t)
    front = re.search(r'<g class="pts front".*?</g>', svg, re.S).group(0)
    assert front.count("<circle") == int((t["pareto_rank"] == 1).sum())


def test_body_map_tooltips_carry_fraction_and_weight(full_run: Path) -> None:
    html = render_html(full_run)
    body = re.search(r'<section id="body-map">.*?</section>', html, re.S).group(0)
    # IL3RA's top context is haematopoietic stem cells: 40 % positive × weight 1.0
    assert "IL3RA in Haematopoietic stem cells" in body
    assert "40.0 % of cells positive" in body
    assert "haematopoietic" in body


def test_gate_chips_mark_negation(full_run: Path) -> None:
    html = render_html(full_run)
    assert '<span class="op">NOT</span><span class="chip not">CD34</span>' in html
    assert "≤ " in html  # risk_is_bound rows show an upper bound


# ------------------------------------------------------------------------------ helpers


def test_risk_matrix_matches_bruteforce(full_run: Path) -> None:
    run = load_run(full_run)
    risk = run.risk
    order = run.target_order()[:20]
    mat, system = risk_matrix(risk, order, max_contexts=100, min_risk=0.0)
    for ctx_name in mat.index:
        for t in order:
            sub = risk[(risk["target"] == t) & (risk["name"] == ctx_name)]
            expect = sub["risk"].max() if len(sub) else 0.0
            assert mat.loc[ctx_name, t] == pytest.approx(expect)
    # rows of one system are contiguous
    seen: list[str] = []
    for s in system:
        if not seen or seen[-1] != s:
            assert s not in seen
            seen.append(s)
    smat = system_matrix(risk, order)
    for s in smat.index:
        for t in order:
            sub = risk[(risk["target"] == t) & (risk["system"] == s)]
            assert smat.loc[s, t] == pytest.approx(sub["risk"].max() if len(sub) else 0.0)
    assert list(smat.max(axis=1)) == sorted(smat.max(axis=1), reverse=True)


def test_cohort_summary_matches_numpy(sim_run: Path) -> None:
    cohort = pd.read_csv(sim_run / "cohort.tsv", sep="\t")
    s = cohort_summary(cohort).set_index("metric")
    assert "patient" not in s.index
    v = cohort["time_to_relapse_days"].to_numpy(float)
    fin = v[np.isfinite(v)]
    assert s.loc["time_to_relapse_days", "median"] == pytest.approx(np.median(fin))
    assert s.loc["time_to_relapse_days", "p05"] == pytest.approx(np.quantile(fin, 0.05))
    assert s.loc["time_to_relapse_days", "n_missing"] == int(np.isnan(v).sum())
    assert s.loc["remission_1y", "kind"] == "fraction"
    assert s.loc["remission_1y", "median"] == pytest.approx(cohort["remission_1y"].mean())


# ------------------------------------------------------------------------------ errors, CLI


def test_empty_directory_names_missing_files(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"targets\.tsv.*gates\.tsv"):
        write_html(tmp_path)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        write_html(tmp_path / "nope")


def test_bad_columns_and_json(targets_run: Path) -> None:
    bad = targets_run.parent / "bad"
    shutil.copytree(targets_run, bad)
    (bad / "run.json").write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        write_html(bad)
    (bad / "run.json").unlink()
    pd.DataFrame({"gene": ["A"]}).to_csv(bad / "targets.tsv", sep="\t", index=False)
    with pytest.raises(InputError, match=r"lacks the column.*target"):
        write_html(bad)


def test_out_path_options(targets_run: Path, tmp_path: Path) -> None:
    out = write_html(targets_run, tmp_path / "x.html")
    assert out.is_file()
    assert out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    with pytest.raises(InputError, match="is a directory"):
        write_html(targets_run, tmp_path)
    with pytest.raises(InputError, match="does not exist"):
        write_html(targets_run, tmp_path / "no" / "x.html")
    assert add_report(targets_run) == targets_run / "report.html"
    assert (targets_run / "report.html").is_file()
    # no temporary files left behind by the atomic writer
    assert not [p for p in targets_run.iterdir() if p.name.endswith(".tmp")]


def test_report_command(targets_run: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(report_command, [str(targets_run), "--out", str(tmp_path / "r.html")])
    assert res.exit_code == 0, res.output
    assert "r.html" in res.output
    assert (tmp_path / "r.html").is_file()
    res = runner.invoke(report_command, [str(tmp_path / "missing")])
    assert isinstance(res.exception, InputError)
