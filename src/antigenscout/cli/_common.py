"""Helpers the top-level commands share: reading INPUT and checking ``--highlight``.

Also the run record (``run.json``) of rank and gates, and the lines printed after a run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .._console import err_console, steps
from .._errors import InputError

if TYPE_CHECKING:
    from anndata import AnnData

    from ..reference import Reference


def _graph_key_value(graph_key: str) -> str | None:
    return None if graph_key.strip().lower() in {"", "none"} else graph_key


def _source_column(names: Any, reference: Reference) -> Any:
    """Which source judged each row, from context names (``atlas:<name>`` or the embedded)."""
    ctx = reference.contexts
    by_name = dict(zip(ctx["name"].astype(str), ctx["source"].astype(str), strict=True))
    return [by_name.get(str(n), "") for n in names]


def _names(text: str | tuple[str, ...]) -> tuple[str, ...]:
    """Names of a comma-separated option, or of every use of a repeated one, in order."""
    parts = [text] if isinstance(text, str) else list(text)
    return tuple(h.strip() for part in parts for h in part.split(",") if h.strip())


def _resolve_highlight(text: str | tuple[str, ...], reference: Reference) -> tuple[str, ...]:
    """Canonical symbols of ``--highlight`` names (synonyms allowed), checked before work."""
    names = _names(text)
    if not names:
        return ()
    mapped, missing = reference.map_genes(list(names))
    if missing:
        msg = (
            f"--highlight names unknown genes: {', '.join(missing)}; give HGNC symbols, "
            "Ensembl ids or common synonyms (e.g. CD123 for IL3RA)"
        )
        raise InputError(msg)
    return tuple(dict.fromkeys(str(s) for s in mapped))


def _check_highlight_candidates(
    highlight: tuple[str, ...], adata: AnnData, reference: Reference, modality: str
) -> None:
    """Refuse highlighted targets that will not be ranked, before the work starts."""
    if not highlight:
        return
    import pandas as pd

    from ..tl import candidate_genes

    genes = pd.Index(adata.var_names.astype(str))
    absent = [g for g in highlight if g not in genes]
    if absent:
        msg = f"--highlight {', '.join(absent)}: not among the input's genes; drop it"
        raise InputError(msg)
    cands = candidate_genes(pd.Index(list(highlight)), reference, modality)
    other = [g for g in highlight if g not in cands]
    surface = reference.surface
    if "protein_coding" in surface.columns:
        coding = surface["protein_coding"].fillna(False).astype(bool)
        not_coding = [g for g in other if g in coding.index and not coding[g]]
        if not_coding:
            msg = (
                f"--highlight {', '.join(not_coding)}: not a protein-coding nuclear locus "
                "(a pseudogene, a mitochondrially encoded gene or an unnamed locus), so no therapy "
                "can aim at it; drop it"
            )
            raise InputError(msg)
    if other:
        msg = (
            f"--highlight {', '.join(other)}: not a {modality} candidate (no surface evidence); "
            "drop it or choose --modality tcr-t/vaccine, which accept any protein"
        )
        raise InputError(msg)


#: An ``.h5ad`` larger than this share of the memory budget is read backed (streamed).
BACKED_SHARE = 0.125


def _read_input(  # noqa: PLR0913, PLR0917
    path: Path,
    layer: str | None,
    kind: str,
    reference: Reference,
    backed: bool | None = None,
    obs: Path | None = None,
    orientation: str = "auto",
) -> AnnData:
    """Read INPUT with the one reader path every format shares, then harmonise genes.

    A large ``.h5ad`` (over :data:`BACKED_SHARE` of the memory budget, or ``backed=True``)
    is opened backed: its matrix stays on disk and is streamed in row chunks.
    """
    from .. import io, pp
    from ..io._guard import memory_budget

    if backed is None:
        big = path.is_file() and path.stat().st_size > BACKED_SHARE * memory_budget()
        backed = path.name.lower().endswith(".h5ad") and big and layer is None
    opts: dict[str, Any] = {"backed": True} if backed else {}
    if orientation != "auto":
        opts["orientation"] = orientation.replace("-", "_")
    kind_opt = None if kind == "auto" else kind.replace("-", "_")
    with steps(err_console()) as progress:
        progress(f"reading {path.name}", 0, None)
        adata = io.read(path, layer=layer, kind=kind_opt, obs=obs, **opts)
        progress("harmonising gene names", 0, None)
        pp.harmonise_genes(adata, reference)
    return adata


def _maybe_report(out: Path, with_report: bool, highlight: tuple[str, ...] = ()) -> None:
    if with_report:
        from ..report.html import write_html

        err_console().print(f"wrote {write_html(out, highlight=highlight)}")


def _write_run_json(  # noqa: PLR0913, PLR0917
    stage: Path,
    command: str,
    adata: AnnData,
    input_path: Path | None,
    res: dict[str, Any],
    reference: Reference,
    t0: float,
) -> list[str]:
    """Write a rank or gates run's ``run.json``; return the choices made unasked, to print.

    The file records the input, the choices made unasked, params, denominators, reference and
    seconds.
    """
    from .._provenance import choices_made, input_record
    from ..io._write import write_json

    notes = choices_made(res["params"], adata)
    write_json(
        stage / "run.json",
        {
            "command": command,
            "input": input_record(input_path, adata),
            "notes": notes,
            "params": res["params"],
            "denominators": res["denominators"],
            "reference": reference.metadata,
            "seconds": round(time.perf_counter() - t0, 3),
        },
    )
    return notes


def _print_notes(notes: list[str]) -> None:
    """Each choice the run made without being told (run.json ``notes``), one line each."""
    for note in notes:
        err_console().print(f"note: {note}", markup=False)


def _print_exposure_params(exp: dict[str, Any]) -> None:
    """One line on what the agent was taken to reach (run.json ``params.exposure``)."""
    parts = []
    route = exp.get("route", "systemic")
    if route != "systemic":
        parts.append(
            f"route {route}: "
            + (
                "the CNS reached as blood is"
                if route == "intrathecal"
                else "the bladder reached fully, the rest of the body across the urothelium"
            )
        )
    if exp.get("contexts_left_out"):
        parts.append(
            f"{exp['contexts_left_out']} pregnancy contexts left out (--pregnancy keeps them)"
        )
    if exp.get("contexts_behind_barrier"):
        where = {
            "intravesical": "reached in part (outside the bladder or behind a barrier), "
            "engaged × at most",
            "intrathecal": "behind the blood–retina or –testis barrier engaged ×",
        }.get(route, "behind the blood–brain, –retina or –testis barrier engaged ×")
        parts.append(
            f"{exp['contexts_behind_barrier']} contexts {where} {exp['barrier_exposure']:g}"
            + (" (a protein agent)" if route != "intravesical" else "")
        )
    if parts:
        err_console().print("exposure: " + "; ".join(parts) + " (docs/engagement.md, Exposure)")
