"""``antigenscout gates``: logic-gated antigen combinations, written and shown."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from .. import _cli_options as opt
from .._console import err_console, out_console, steps
from .._errors import InputError
from .._types import (
    DEFAULT_MAX_GENES,
    DEFAULT_MAX_VITAL_RISK,
    DEFAULT_OBJECTIVE,
    DEFAULT_TOP_K,
    GATE_OPS,
    GATES_KEY,
    OBJECTIVES,
)
from ._common import (
    _graph_key_value,
    _maybe_report,
    _print_exposure_params,
    _print_notes,
    _read_input,
    _source_column,
    _write_run_json,
)

__all__ = ["gates"]


@click.command()
@opt.INPUT
@opt.MALIGNANT_KEY
@opt.PATIENT_KEY
@opt.COMPARTMENT_KEY
@click.option(
    "--healthy-key",
    default=None,
    help="With --healthy-value: obs column naming cell types of the input's healthy cells, "
    "used as an exact single-cell healthy reference.",
)
@click.option(
    "--healthy-value",
    default=None,
    help="COLUMN=VALUE selecting the input's healthy cells, from healthy people (e.g. "
    "condition=healthy; a patient's non-malignant cells are not a healthy marrow).",
)
@click.option(
    "--healthy-only",
    is_flag=True,
    help="Judge risk on the healthy cells alone (a whole-body atlas), without the reference.",
)
@click.option(
    "--max-genes", type=click.IntRange(1, 5), default=DEFAULT_MAX_GENES, show_default=True
)
@click.option("--ops", default=",".join(GATE_OPS), show_default=True, help="Allowed operators.")
@click.option(
    "--max-vital-risk",
    type=opt.Number(0, 1),
    default=DEFAULT_MAX_VITAL_RISK,
    show_default=True,
    help="Cap on a gate's worst vital-weighted healthy risk (0 to 1).",
)
@click.option(
    "--objective", type=click.Choice(OBJECTIVES), default=DEFAULT_OBJECTIVE, show_default=True
)
@click.option(
    "--candidates",
    "--n-candidates",
    "n_candidates",
    type=opt.Number(1, integer=True),
    default=None,
    help="Top-N genes only (≥ 1); --n-candidates, as the API names it.",
)
@click.option(
    "--top",
    "--top-k",
    "top_k",
    type=opt.Number(1, integer=True),
    default=DEFAULT_TOP_K,
    show_default=True,
    help="Gates written (≥ 1); --top-k, as the API names it.",
)
@click.option(
    "--triple-budget",
    type=opt.Number(0, integer=True),
    default=None,
    help="Work allowed for exact OR triples, as (pair gates whose OR children can pass the "
    "bound) x (feasible genes); above it OR triples are searched by a beam and rows it "
    "cannot prove optimal are marked (optimal, optimality_gap). Default 1e8; 0 never "
    "expands OR triples.",
)
@click.option(
    "--exact-triples",
    is_flag=True,
    help="Search OR triples exactly whatever the work (no beam; can take very long).",
)
@click.option(
    "--design",
    "designs",
    multiple=True,
    help='A gate to evaluate beside the search, in quotes ("ADGRE2 AND CLEC12A"); '
    "repeatable. Scored as found gates are; written to designs.tsv.",
)
@opt.MODALITY
@opt.POSITIVITY
@opt.THRESHOLD
@opt.LAYER
@opt.KIND
@opt.BACKED
@opt.atlas_option()
@opt.GRAPH_KEY
@opt.AMBIENT
@opt.out_option()
@opt.REPORT
@opt.OBS
@opt.ORIENTATION
def gates(  # noqa: PLR0913, PLR0915, PLR0917
    input_path: Path,
    malignant_key: str | None,
    patient_key: str | None,
    compartment_key: str | None,
    healthy_key: str | None,
    healthy_value: str | None,
    healthy_only: bool,
    max_genes: int,
    ops: str,
    max_vital_risk: float,
    objective: str,
    n_candidates: int | None,
    top_k: int,
    triple_budget: int | None,
    exact_triples: bool,
    designs: tuple[str, ...],
    modality: str,
    positivity: str,
    threshold: float | None,
    layer: str | None,
    kind: str,
    backed: bool | None,
    atlas_path: Path | None,
    graph_key: str,
    ambient: bool,
    out: Path,
    with_report: bool,
    obs_path: Path | None,
    orientation: str,
) -> None:
    """Search AND / OR / NOT gates of 2-5 antigens on INPUT; writes gates.tsv."""
    from .. import get, tl
    from .._load import load_reference_with_atlas
    from ..io._write import staged_run, write_table
    from ..tl._gates import TRIPLE_BUDGET, check_gate_shape
    from ..tl._groups import _parse_key_value

    if exact_triples and triple_budget is not None:
        msg = "--exact-triples and --triple-budget exclude each other; pass one"
        raise InputError(msg)
    budget = None if exact_triples else (TRIPLE_BUDGET if triple_budget is None else triple_budget)

    op_list = check_gate_shape([o.strip().lower() for o in ops.split(",") if o.strip()], max_genes)
    t0 = time.perf_counter()
    reference = load_reference_with_atlas(None, atlas_path)
    adata = _read_input(input_path, layer, kind, reference, backed, obs_path, orientation)
    healthy = None
    if healthy_value is not None:
        col, value = _parse_key_value(healthy_value)
        if col not in adata.obs:
            msg = f"healthy column {col!r} is not in the input's obs"
            raise InputError(msg)
        healthy = adata[adata.obs[col].astype(str) == value].copy()
        if healthy.n_obs == 0:
            msg = f"no healthy cells: no row has {col} == {value!r}"
            raise InputError(msg)
    err = err_console()
    with staged_run(out, "gates") as stage:
        with steps(err) as progress:
            tl.search_gates(
                adata,
                malignant_key=malignant_key,
                patient_key=patient_key,
                compartment_key=compartment_key,
                modality=modality,
                reference=reference,
                healthy=healthy,
                healthy_key=healthy_key,
                healthy_only=healthy_only,
                max_genes=max_genes,
                ops=op_list,
                max_vital_risk=max_vital_risk,
                objective=objective,  # type: ignore[arg-type]
                n_candidates=n_candidates,
                top_k=top_k,
                triple_budget=budget,
                positivity=positivity,  # type: ignore[arg-type]
                ambient=ambient,
                threshold=threshold,
                graph_key=_graph_key_value(graph_key),
                designs=list(designs),
                progress=progress,
            )
        res = adata.uns[GATES_KEY]
        table = get.gates_df(adata)
        if reference.atlas is not None:
            table["worst_healthy_source"] = _source_column(
                table["worst_healthy_cell_type"], reference
            )
        write_table(table, stage / "gates.tsv")
        if "designs" in res:
            write_table(res["designs"], stage / "designs.tsv")
        if "set_aside" in res:
            write_table(res["set_aside"], stage / "set_aside.tsv")
        notes = _write_run_json(stage, "gates", adata, input_path, res, reference, t0)
    _print_notes(notes)
    _print_gates(table, res["denominators"], max_vital_risk)
    _print_exposure_params(res["params"].get("exposure") or {})
    if table.empty:
        err.print("no gate within the risk cap; relax --max-vital-risk")
    elif "optimal" in table and not table["optimal"].all():
        search = res["params"].get("search", {})
        bound = search.get("skipped_upper_bound", float("nan"))
        why = (
            f"OR triples beamed (work estimate {search.get('triple_or_work', 0):,} > budget "
            f"{budget:,}; --exact-triples for the exact search)"
            if search.get("triple_beam")
            else "4-5 gene gates searched by a beam"
        )
        err.print(
            f"not proven optimal: {int((~table['optimal']).sum())} of {len(table)} rows; {why}; "
            f"an unexamined gate scores at most {bound:.4f} (see optimality_gap)"
        )
    if "designs" in res:
        for r in res["designs"].itertuples(index=False):
            err.print(
                f"design {r.design}: coverage {r.tumor_coverage:.2f}, worst healthy "
                f"{r.worst_healthy_cell_type} {r.worst_healthy_risk:.2f}"
                + ("" if r.feasible else f" (above the cap {max_vital_risk:g})")
            )
    arms = res["params"].get("arms") or {}
    if arms.get("set_aside"):
        err.print(
            f"arms: {arms['set_aside']} of {arms['examined']} gates examined set aside, an arm "
            f"not shown to beat noise at {arms['confidence']:.0%} (set_aside.tsv says why; "
            "docs/gates.md, Arms that beat noise)"
        )
    extra = (", designs.tsv" if "designs" in res else "") + (
        ", set_aside.tsv" if "set_aside" in res else ""
    )
    err.print(f"wrote {out}/gates.tsv{extra}, run.json")
    _maybe_report(out, with_report)


def _print_gates(table: Any, den: dict[str, Any], max_vital_risk: float) -> None:
    from rich.table import Table

    t = Table(
        title=f"Top gates ({den['n_tumor_cells']:,} tumour cells, "
        f"{den['n_candidates']:,} candidates, risk ≤ {max_vital_risk})"
    )
    for col in ("rank", "gate", "coverage", "patients ≥ thr", "worst healthy", "risk"):
        t.add_column(col)
    for row in table.head(10).itertuples():
        bound = "≤" if row.risk_is_bound else ""
        t.add_row(
            str(row.rank),
            row.gate,
            f"{row.tumor_coverage:.2f}",
            f"{row.patients_covered_fraction:.2f}",
            str(row.worst_healthy_cell_type),
            f"{bound}{row.worst_healthy_risk:.2f}",
        )
    out_console().print(t)
