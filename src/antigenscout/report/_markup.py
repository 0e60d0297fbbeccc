"""HTML building blocks shared by every report section.

The page's section list (:data:`SECTIONS`), values formatted as text, ``data-field`` spans,
coverage and risk bars, inline JSON datasets, key–value tables and the ``<section>`` wrapper.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from html import escape
from typing import Any

import numpy as np
import pandas as pd

#: Section ids in page order, with their headings.
SECTIONS: dict[str, str] = {
    "overview": "Overview",
    "coverage-risk": "Tumour coverage vs healthy-tissue risk",
    "body-map": "Body map: where the healthy risk sits",
    "patients": "Coverage per patient",
    "gates": "Logic gates",
    "explain": "Why each top candidate ranks where it does",
    "kinetics": "Simulated therapy kinetics",
    "provenance": "Provenance",
}


MAX_POINTS = 4000  # candidates drawn/tabled; the rest are counted, keeping the file small


def _num(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return math.nan
    return f


def _pct(v: Any, digits: int = 1) -> str:
    f = _num(v)
    return "–" if not math.isfinite(f) else f"{100 * f:.{digits}f} %"


def _f(v: Any, digits: int = 3) -> str:
    f = _num(v)
    return "–" if not math.isfinite(f) else f"{f:.{digits}f}"


def _int(v: Any) -> str:
    f = _num(v)
    return "–" if not math.isfinite(f) else f"{round(f):,}"


def _txt(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return str(v)


def _raw(v: Any) -> str:
    """Machine-readable value for ``data-value`` attributes (round-trips the TSV value)."""
    if isinstance(v, bool | np.bool_):
        return "true" if v else "false"
    if isinstance(v, int | np.integer):
        return str(int(v))
    if isinstance(v, float | np.floating):
        return "nan" if not math.isfinite(v) else repr(float(v))
    return "" if v is None else str(v)


def _field(name: str, value: Any, shown: str) -> str:
    raw = escape(_raw(value))
    return f'<span data-field="{escape(name)}" data-value="{raw}">{escape(shown)}</span>'


def _truthy(v: Any) -> bool | None:
    if isinstance(v, bool | np.bool_):
        return bool(v)
    if isinstance(v, str):
        if v.strip().lower() in {"true", "yes", "1"}:
            return True
        if v.strip().lower() in {"false", "no", "0"}:
            return False
        return None
    f = _num(v)
    return None if not math.isfinite(f) else bool(f)


def _bar(v: Any, kind: str) -> str:
    f = _num(v)
    w = 0.0 if not math.isfinite(f) else min(max(f, 0.0), 1.0) * 100
    shown = _pct(f) if kind == "cov" else _f(f)
    return (
        f'<div class="barcell"><div class="bar {kind}"><i style="width:{w:.1f}%"></i></div>'
        f"<span>{shown}</span></div>"
    )


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float):
        return round(v, 5) if math.isfinite(v) else None
    if v is pd.NA or v is pd.NaT:
        return None
    return v


#: Characters escaped as ``\\uXXXX`` inside inline JSON: ``<``, ``>`` and ``&`` (so no
#: ``</script>``, ``<!--`` or entity can end or alter the script element) and the JavaScript
#: line terminators U+2028 / U+2029.
_JSON_SCRIPT_ESCAPES = {
    ord("<"): "\\u003c",
    ord(">"): "\\u003e",
    ord("&"): "\\u0026",
    0x2028: "\\u2028",
    0x2029: "\\u2029",
}


def json_for_script(obj: Any) -> str:
    r"""Serialise ``obj`` as JSON that is inert inside an HTML ``<script>`` element.

    Parameters
    ----------
    obj
        A JSON-serialisable value (NaN and infinities are rejected).

    Returns
    -------
    JSON text in which ``<``, ``>``, ``&``, U+2028 and U+2029 appear only as ``\u``
    escapes; ``json.loads`` of it gives back ``obj``.
    """
    text = json.dumps(obj, separators=(",", ":"), allow_nan=False, ensure_ascii=False)
    return text.translate(_JSON_SCRIPT_ESCAPES)


def _dataset_script(name: str, obj: dict[str, Any]) -> str:
    return (
        f'<script type="application/json" id="data-{escape(name)}">{json_for_script(obj)}</script>'
    )


def _columns_json(df: pd.DataFrame, cols: Iterable[str]) -> dict[str, list[Any]]:
    return {c: [_jsonable(v) for v in df[c].tolist()] for c in cols if c in df.columns}


def _section(sid: str, body: str, *, heading: str | None = None) -> str:
    h = escape(heading or SECTIONS[sid])
    return f'<section id="{sid}">\n<h2>{h}</h2>\n{body}\n</section>'


def _how(text: str) -> str:
    return f'<p class="how">{text}</p>'


def _risk_col(t: pd.DataFrame) -> str | None:
    for c in ("vital_risk", "worst_healthy_risk"):
        if c in t.columns:
            return c
    return None


def _kv_table(items: Iterable[tuple[str, Any]]) -> str:
    rows = "".join(f"<tr><td>{escape(k)}</td><td>{escape(_txt(v))}</td></tr>" for k, v in items)
    return f'<table class="kv">{rows}</table>'


def _flatten(obj: Any, prefix: str = "") -> list[tuple[str, Any]]:
    if isinstance(obj, dict):
        out: list[tuple[str, Any]] = []
        for k, v in obj.items():
            out += _flatten(v, f"{prefix}.{k}" if prefix else str(k))
        return out
    if isinstance(obj, list) and obj and all(not isinstance(v, dict | list) for v in obj):
        return [(prefix, ", ".join(str(v) for v in obj))]
    if isinstance(obj, list):
        out = []
        for k, v in enumerate(obj):
            out += _flatten(v, f"{prefix}[{k}]")
        return out
    return [(prefix, obj)]
