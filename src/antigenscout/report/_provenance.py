"""Report section on provenance: the run's command, inputs, choices, parameters and licences."""

from __future__ import annotations

from html import escape
from typing import Any

from ._markup import (
    _flatten,
    _kv_table,
    _section,
)
from ._run import (
    RunData,
)

HPA_LICENCE = (
    "Human Protein Atlas (HPA) data are used under the Creative Commons Attribution-ShareAlike "
    "4.0 International licence (CC BY-SA 4.0); derived reference tables are shared alike."
)


def _fold(title: str, items: list[tuple[str, Any]]) -> str:
    """Render a key–value table folded under its title (opened by a click, and for printing)."""
    return (
        f'<details class="fold"><summary>{escape(title)} ({len(items):,})</summary>'
        f"{_kv_table(items)}</details>"
    )


def _provenance(data: RunData) -> str:
    run = data.run
    parts = []
    meta = [("command", run.get("command")), ("seconds", run.get("seconds"))]
    meta += [(f"denominators.{k}", v) for k, v in (run.get("denominators") or {}).items()]
    inp = run.get("input") if isinstance(run.get("input"), dict) else {}
    for key in ("path", "sha256", "format", "matrix", "version"):
        meta.append((f"input.{key}", inp.get(key)))
    if inp.get("command_line"):
        meta.append(("command line", " ".join(str(a) for a in inp["command_line"])))
    meta = [(k, v) for k, v in meta if v is not None]
    if meta:
        parts.append("<h3>Run</h3>" + _kv_table(meta))
    notes = run.get("notes") or []
    if notes:
        items = "".join(f"<li>{escape(str(n))}</li>" for n in notes)
        parts.append(
            "<h3>Choices made for you</h3><p>Each changed the result and was not asked for "
            f"on the command line (also printed as <code>note:</code>):</p><ul>{items}</ul>"
        )
    if run.get("params"):
        parts.append(_fold("Parameters", _flatten(run["params"])))
    ref = run.get("reference")
    if ref:
        parts.append(_fold("Reference data", _flatten(ref)))
    if data.run_dir is not None:
        files = []
        for f in sorted(data.run_dir.iterdir()):
            if f.is_file() and f.suffix in {".tsv", ".json"}:
                files.append((f.name, f"{f.stat().st_size:,} bytes"))
        if files:
            parts.append(_fold("Files read", files))
    parts.append(f"<h3>Licences</h3><p>{escape(HPA_LICENCE)}</p>")
    return _section("provenance", "\n".join(parts))
