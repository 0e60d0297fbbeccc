"""Self-contained HTML report of a run directory: assembly of the page.

One file: styles, scripts, data and charts (inline SVG drawn here in Python) are all
inlined, so the report opens offline, can be mailed or archived, and prints on A4. This
module puts the sections (built in ``_targets``, ``_explain``, ``_gates``, ``_kinetics`` and
``_provenance``) into the page template and writes it.
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from html import escape
from importlib import resources
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .._errors import InputError
from ..io._write import write_text
from ._explain import _explain
from ._gates import _gates
from ._kinetics import _kinetics
from ._markup import SECTIONS, _int, _num
from ._provenance import _provenance
from ._run import RunData, as_run
from ._targets import _body_map, _coverage_risk, _overview, _patients

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = ["Safe", "fill_template", "render_html", "write_html"]


def _asset(name: str) -> str:
    return (
        resources.files("antigenscout.report")
        .joinpath("templates", name)
        .read_text(encoding="utf-8")
    )


def _raw_text_asset(name: str, element: str) -> str:
    """Return an inlined asset, checked not to close the ``<style>`` or ``<script>`` it fills."""
    text = _asset(name)
    if f"</{element}" in text.lower() or "<!--" in text:
        msg = f"template asset {name!r} contains '</{element}' or '<!--'"  # pragma: no cover
        raise RuntimeError(msg)  # pragma: no cover
    return text


class Safe(str):
    """A string of pre-rendered, already escaped HTML that :func:`fill_template` keeps as is.

    Everything not wrapped in :class:`Safe` is HTML-escaped when filled in.
    """

    __slots__ = ()


_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


def fill_template(template: str, values: Mapping[str, str | Safe]) -> str:
    """Replace every ``{{name}}`` of ``template`` in one pass.

    Parameters
    ----------
    template
        Text with ``{{name}}`` placeholders.
    values
        Value of each placeholder: a :class:`Safe` value is inserted verbatim, any other
        string HTML-escaped. Inserted text is never scanned for placeholders again, so a
        label such as ``P{{data}}`` stays literal.

    Returns
    -------
    The filled template.

    Raises
    ------
    KeyError
        If the template names a placeholder missing from ``values``.
    """

    def sub(m: re.Match[str]) -> str:
        v = values[m.group(1)]
        return str(v) if isinstance(v, Safe) else escape(str(v))

    return _PLACEHOLDER.sub(sub, template)


def _version() -> str:
    try:
        return version("antigenscout")
    except PackageNotFoundError:  # pragma: no cover - source tree without metadata
        return "0.0.0"


def _with_highlight(data: RunData, highlight: Sequence[str]) -> RunData:
    """Move the highlighted targets to the front so every section shows them first."""
    if not highlight:
        return data
    if data.targets is None:
        msg = "highlight needs a run with targets.tsv (rank or demo output)"
        raise InputError(msg, param="highlight")
    names = data.targets["target"].astype(str)
    present = set(names)
    if any(h not in present for h in highlight):
        # synonyms and Ensembl ids, as rank's --highlight takes them (CD123 for IL3RA)
        from ..reference import load_reference  # noqa: PLC0415

        absent = [h for h in highlight if h not in present]
        mapped, _ = load_reference().map_genes(absent)
        symbol = {h: str(m) for h, m in zip(absent, mapped, strict=True) if pd.notna(m)}
        highlight = list(dict.fromkeys(symbol.get(h, h) for h in highlight))
    missing = [h for h in highlight if h not in present]
    if missing:
        msg = f"highlight target(s) not in targets.tsv: {', '.join(missing)}"
        raise InputError(msg, param="highlight")
    first = data.targets[names.isin(highlight)]
    first = first.set_index(first["target"].astype(str)).loc[list(highlight)].reset_index(drop=True)
    rest = data.targets[~names.isin(highlight)]
    return replace(
        data, targets=pd.concat([first, rest], ignore_index=True), highlight=tuple(highlight)
    )


def render_html(
    run: RunData | AnnData | str | os.PathLike[str], *, highlight: Sequence[str] = ()
) -> str:
    """Build the report as one HTML string.

    Parameters
    ----------
    run
        A run directory, an AnnData scored by :func:`antigenscout.tl.score_targets` and/or
        :func:`antigenscout.tl.search_gates` (results in ``adata.uns``), or a
        :class:`~antigenscout.report._run.RunData`.
    highlight
        Targets shown first in every per-target section (body map, patients, explanations).

    Returns
    -------
    The complete, self-contained HTML document.
    """
    data = _with_highlight(as_run(run, include=highlight), highlight)
    sections: list[str] = []
    scripts: list[str] = []
    present: list[str] = []

    def add(sid: str, html: str, extra: list[str] | None = None) -> None:
        sections.append(html)
        present.append(sid)
        scripts.extend(extra or [])

    if data.targets is not None or data.run or data.gates is not None:
        add("overview", _overview(data))
    if data.targets is not None and len(data.targets):
        html, s = _coverage_risk(data)
        add("coverage-risk", html, s)
    if data.risk is not None and len(data.risk):
        add("body-map", _body_map(data))
    if (data.patient_coverage is not None and data.patient_coverage.shape[1]) or (
        data.targets is not None and any(c.startswith("coverage__") for c in data.targets.columns)
    ):
        add("patients", _patients(data))
    if data.gates is not None and len(data.gates):
        html, s = _gates(data)
        add("gates", html, s)
    if data.targets is not None and len(data.targets):
        add("explain", _explain(data))
    if data.has_kinetics:
        add("kinetics", _kinetics(data))
    add("provenance", _provenance(data))

    order = {sid: k for k, sid in enumerate(SECTIONS)}
    pairs = sorted(zip(present, sections, strict=True), key=lambda p: order[p[0]])
    nav = "".join(f'<a href="#{sid}">{escape(SECTIONS[sid].split(":")[0])}</a>' for sid, _ in pairs)
    cmd = data.run.get("command")
    title = "antigenscout report" + (f" — {cmd}" if cmd else "")
    den = data.run.get("denominators") or {}
    sub_bits = []
    if data.run_dir is not None:
        sub_bits.append(data.run_dir.resolve().name)
    if "n_tumor_cells" in den:
        sub_bits.append(f"{_int(den['n_tumor_cells'])} tumour cells")
    if "n_patients" in den:
        n_p = den["n_patients"]
        sub_bits.append(f"{_int(n_p)} {'patient' if _num(n_p) == 1 else 'patients'}")
    if "n_candidates" in den:
        sub_bits.append(f"{_int(den['n_candidates'])} candidates")
    now = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = _asset("report.html")
    fills: dict[str, str | Safe] = {
        "title": title,
        "subtitle": " · ".join(sub_bits),
        "version": _version(),
        "generated": now,
        "nav": Safe(nav),
        "body": Safe("\n".join(html for _, html in pairs)),
        "data": Safe("\n".join(scripts)),
        "css": Safe(_raw_text_asset("report.css", "style")),
        "js": Safe(_raw_text_asset("report.js", "script")),
    }
    return fill_template(page, fills)


def write_html(
    run_dir: str | os.PathLike[str] | AnnData | RunData,
    out_path: str | os.PathLike[str] | None = None,
    *,
    highlight: Sequence[str] = (),
) -> Path:
    """Write a self-contained HTML report of a run directory or a scored AnnData.

    Parameters
    ----------
    run_dir
        Output directory of ``antigenscout rank``, ``demo``, ``gates`` or ``simulate``; or an
        AnnData scored by :func:`antigenscout.tl.score_targets` / ``tl.search_gates``.
    out_path
        Where to write the report; default ``<run_dir>/report.html`` (required for an
        AnnData).
    highlight
        Targets shown first in every per-target section.

    Returns
    -------
    Path of the written file.

    Raises
    ------
    InputError
        If ``run_dir`` holds no antigenscout outputs, a file in it is malformed, or
        ``out_path`` cannot be written.

    Examples
    --------
    >>> from antigenscout.report import write_html
    >>> write_html("runs/demo")  # doctest: +SKIP
    PosixPath('runs/demo/report.html')
    >>> asc.tl.score_targets(adata, malignant_key="malignant=malignant")  # doctest: +SKIP
    >>> write_html(adata, "report.html")  # doctest: +SKIP
    PosixPath('report.html')
    """
    data = as_run(run_dir, include=highlight)
    if out_path is None:
        if data.run_dir is None:
            msg = "write_html of an AnnData needs out_path, e.g. write_html(adata, 'report.html')"
            raise InputError(msg)
        out_path = data.run_dir / "report.html"
    out = Path(out_path)
    if out.is_dir():
        msg = (
            f"--out {str(out)!r} is a directory; give a file path such as "
            f"{str(out / 'report.html')!r}."
        )
        raise InputError(msg)
    if not out.parent.is_dir():
        msg = f"the folder of --out {str(out)!r} does not exist; create it or choose another path."
        raise InputError(msg)
    html = render_html(data, highlight=highlight)
    try:
        return write_text(out, html)
    except OSError as e:
        msg = f"cannot write the report to {str(out)!r}: {e.strerror}; choose a writable path."
        raise InputError(msg) from None
