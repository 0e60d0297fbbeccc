"""What a run read and which choices it made without being told, for ``run.json`` and the terminal.

See docs/bad_input.md, "Choices said, inputs recorded, outputs spreadsheet-safe".
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path
from typing import Any

__all__ = ["choices_made", "input_record", "invocation", "sha256_path"]

_CHUNK = 1 << 20
#: The command line of the CLI run in progress (set by ``cli.main``; ``None``: ``sys.argv``).
COMMAND_LINE: list[str] | None = None


def sha256_path(path: str | os.PathLike[str]) -> str:
    """Return the SHA-256 of a file or of a folder.

    A folder (a zarr store, a 10x mtx folder) is digested as its files' relative paths and
    contents in sorted order.

    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp()); (d / "a.txt").write_text("x")
    1
    >>> sha256_path(d / "a.txt") == hashlib.sha256(b"x").hexdigest()
    True
    """
    p = Path(path)
    h = hashlib.sha256()
    if p.is_dir():
        for f in sorted(q for q in p.rglob("*") if q.is_file()):
            h.update(str(f.relative_to(p)).encode() + b"\0")
            h.update(sha256_path(f).encode())
        return h.hexdigest()
    with open(p, "rb") as fh:
        while block := fh.read(_CHUNK):
            h.update(block)
    return h.hexdigest()


def invocation() -> dict[str, Any]:
    """Return the command line of this run and the package version, for every ``run.json``."""
    from . import __version__  # noqa: PLC0415

    return {
        "command_line": COMMAND_LINE or [Path(sys.argv[0]).name, *sys.argv[1:]],
        "version": __version__,
    }


def input_record(path: str | os.PathLike[str] | None, adata: Any) -> dict[str, Any]:
    """Return ``run.json["input"]``, the record of what a run read.

    The path (``None``: data embedded in the package), its SHA-256, the format and matrix read,
    the kind, the shape; with the command line and the package version.
    """
    from ._errors import InputError  # noqa: PLC0415
    from .io._read import detect_format  # noqa: PLC0415

    info = dict(adata.uns.get("antigenscout", {})) if hasattr(adata, "uns") else {}
    p = None if path is None else Path(path)
    fmt = None
    if p is not None:
        try:
            fmt = detect_format(p)[0]
        except InputError:  # read by a path the dispatcher does not name (the API)
            fmt = None
    return {
        "path": None if p is None else str(p.resolve()),
        "sha256": sha256_path(p) if p is not None and p.exists() else None,
        "format": fmt,
        "matrix": info.get("counts_from", "X"),
        "kind": info.get("kind"),
        "n_obs": int(adata.n_obs),
        "n_vars": int(adata.n_vars),
        "obs": _obs_record(info.get("obs_from")),
        "unmapped_genes": [str(g) for g in info.get("unmapped_genes", [])],
        "merged_genes": {str(k): list(v) for k, v in (info.get("merged_genes") or {}).items()},
        **invocation(),
    }


def _obs_record(joined: dict[str, Any] | None) -> dict[str, Any] | None:
    if not joined:
        return None
    path = joined.get("path")
    return {**joined, "sha256": sha256_path(path) if path else None}


def choices_made(params: dict[str, Any], adata: Any) -> list[str]:
    """Return a sentence for each choice that changed the result and that the user did not make.

    Those choices are: cells without a row of ``--obs``, the counts taken from another matrix
    than ``.X``, every row taken as tumour, all rows one patient, a neighbour graph found in the
    input used.

    >>> choices_made({"malignant_key": None, "patient_key": "p", "kind": "single_cell"}, None)[0]
    'no --malignant-key: every cell is taken as a tumour cell (COLUMN=VALUE selects them)'
    """
    notes: list[str] = []
    uns = getattr(adata, "uns", {}) or {}
    info = uns.get("antigenscout") or {}
    joined = info.get("obs_from")
    if joined and (joined["cells_without_row"] or joined["rows_without_cell"]):
        notes.append(
            f"--obs {joined['source']}: {joined['cells_without_row']:,} of "
            f"{joined['cells_matched'] + joined['cells_without_row']:,} cells have no row (their "
            f"labels are empty); {joined['rows_without_cell']:,} rows name no cell of the input"
        )
    guessed = info.get("guessed") or {}
    if "orientation" in guessed:
        notes.append(
            f"table read as {guessed['orientation']} (from which labels look like genes); "
            "--orientation names it"
        )
    if "kind" in guessed:
        notes.append(f"table read as {guessed['kind']}; --kind names it")
    merged = info.get("merged_genes") or {}
    if merged:
        sym, ids = next(iter(merged.items()))
        notes.append(
            f"{len(merged):,} gene symbols gather several input ids (synonyms, Ensembl "
            f"versions), whose counts were summed, e.g. {sym} = {' + '.join(ids)}"
        )
    where = info.get("counts_from")
    if where not in (None, "X"):
        notes.append(f"counts read from {where}: .X does not hold raw integer counts")
    single = params.get("kind") != "bulk"
    if params.get("malignant_key") is None and single:
        notes.append(
            "no --malignant-key: every cell is taken as a tumour cell (COLUMN=VALUE selects them)"
        )
    if params.get("patient_key") is None and single:
        notes.append("no --patient-key: all tumour cells are counted as one patient")
    graph = str((params.get("positivity") or {}).get("graph", ""))
    if graph.startswith("obsp"):
        notes.append(
            f"neighbour graph {graph.split(',', maxsplit=1)[0]} found in the input is used ({graph}); "  # noqa: E501
            "--graph-key none builds one here"
        )
    return notes
