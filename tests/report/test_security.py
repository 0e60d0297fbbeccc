"""Hostile labels in every field the report shows stay inert text (issue #9)."""

from __future__ import annotations

import json
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import antigenscout_tests_synthetic_run as synthetic  # registered by conftest.py
import pandas as pd
import pytest

from antigenscout.report import render_html
from antigenscout.report._markup import json_for_script
from antigenscout.report.html import Safe, fill_template

#: Attributes whose value the browser treats as a URL (or a document).
URL_ATTRS = {"href", "src", "xlink:href", "action", "formaction", "data", "srcdoc", "poster"}


class _Doc(HTMLParser):
    """Tag counts, event-handler and URL attributes, visible text and JSON blocks."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: Counter[str] = Counter()
        self.handlers: list[tuple[str, str, str]] = []
        self.urls: list[str] = []
        self.text: list[str] = []
        self.attr_values: list[str] = []
        self.json: dict[str, str] = {}
        self._raw: str | None = None  # inside <script>/<style>
        self._json: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags[tag] += 1
        for k, v in attrs:
            v = v or ""  # noqa: PLW2901
            self.attr_values.append(v)
            if k.lower().startswith("on"):
                self.handlers.append((tag, k, v))
            if k.lower() in URL_ATTRS:
                self.urls.append(v)
        if tag in {"script", "style"}:
            self._raw = tag
            a = dict(attrs)
            if a.get("type") == "application/json":
                self._json = a.get("id") or ""
                self.json[self._json] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag in {"script", "style"}:
            self._raw = None
            self._json = None

    def handle_data(self, data: str) -> None:
        if self._json is not None:
            self.json[self._json] += data
        elif self._raw is None:
            self.text.append(data)


def _doc(html: str) -> _Doc:
    d = _Doc()
    d.feed(html)
    d.close()
    return d


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, _Doc, _Doc, str]:
    root = tmp_path_factory.mktemp("hostile")
    run = synthetic.write_hostile_run(root)
    benign = synthetic.write_full_run(root / "benign")
    html = render_html(run)
    return run, _doc(html), _doc(render_html(benign)), html


def test_no_script_or_handler_injected(pages: tuple[Path, _Doc, _Doc, str]) -> None:
    _, bad, good, html = pages
    assert bad.handlers == []
    assert good.handlers == []
    assert not [u for u in bad.urls if u.strip().lower().startswith(("javascript:", "data:"))]
    # same page structure as the benign run: no extra script/img/svg-onload elements
    assert bad.tags["script"] == good.tags["script"] == 3
    assert bad.tags["style"] == good.tags["style"] == 1
    assert set(bad.tags) <= set(good.tags)
    assert "img" not in bad.tags
    # the raw markup of a label never appears unescaped outside the JSON blocks
    outside = html.split('<script type="application/json"')[0]
    for label in synthetic.HOSTILE.values():
        if any(c in label for c in "<>\"'"):
            assert label not in outside, label


def test_hostile_labels_show_as_text(pages: tuple[Path, _Doc, _Doc, str]) -> None:
    run, bad, _, _ = pages
    text = "".join(bad.text)
    for key, label in synthetic.HOSTILE.items():
        assert label in text, key
    # where each kind of field is shown: run dir, file name, patients, compartments, gates
    assert run.resolve().name in text
    assert synthetic.HOSTILE_FILE in text
    pc = pd.read_csv(run / "patient_coverage.tsv", sep="\t", index_col=0)
    for p in pc.columns:
        assert p in text or any(p in v for v in bad.attr_values), p
    gates = pd.read_csv(run / "gates.tsv", sep="\t")["gate"]
    assert all(g in bad.attr_values for g in gates)  # data-gate holds the whole expression
    t = pd.read_csv(run / "targets.tsv", sep="\t")
    comps = [c.removeprefix("coverage__") for c in t.columns if c.startswith("coverage__")]
    assert all(c in text for c in comps)
    # template placeholders inside labels stay literal, never filled
    assert "P{{data}}" in text
    assert "{{js}}" in text


def test_json_blocks_round_trip_hostile_labels(pages: tuple[Path, _Doc, _Doc, str]) -> None:
    run, bad, _, _ = pages
    assert set(bad.json) == {"data-candidates", "data-gates"}
    for raw in bad.json.values():
        assert not any(c in raw for c in "<>&\u2028\u2029")
    cands = json.loads(bad.json["data-candidates"])
    t = pd.read_csv(run / "targets.tsv", sep="\t")
    assert cands["cols"]["target"] == t.sort_values("rank")["target"].tolist()
    gates = json.loads(bad.json["data-gates"])
    g = pd.read_csv(run / "gates.tsv", sep="\t").sort_values("rank")
    assert gates["cols"]["gate"] == g["gate"].tolist()


def test_fill_template_is_one_pass_and_escapes() -> None:
    page = "<title>{{title}}</title><main>{{body}}</main>{{ data }}"
    out = fill_template(
        page,
        {"title": "a{{body}}<b>&", "body": Safe("<p>{{data}}</p>"), "data": Safe("<i>x</i>")},
    )
    assert out == "<title>a{{body}}&lt;b&gt;&amp;</title><main><p>{{data}}</p></main><i>x</i>"
    with pytest.raises(KeyError):
        fill_template("{{missing}}", {})


@pytest.mark.parametrize(
    "obj",
    [
        {"a": "</script><script>alert(1)</script>"},
        {"<!--": ["&amp;", "\u2028\u2029", "é–µ"]},
        ["plain", 1, 2.5, None, True],
    ],
)
def test_json_for_script(obj: object) -> None:
    text = json_for_script(obj)
    assert not any(c in text for c in "<>&\u2028\u2029")
    assert json.loads(text) == obj
