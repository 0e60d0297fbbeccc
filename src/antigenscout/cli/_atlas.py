"""``antigenscout atlas build``: a healthy reference measured from a single-cell atlas."""

from __future__ import annotations

import time
from pathlib import Path

import click

from .. import _cli_options as opt
from .._console import err_console, steps

__all__ = ["atlas"]


@click.group()
def atlas() -> None:
    """Build a healthy reference from a single-cell atlas (use it with --atlas)."""


@atlas.command("build")
@opt.INPUT
@click.option(
    "--cell-type-key",
    required=True,
    help="obs column of cell types (Cell Ontology names map to body systems and vital "
    "weights; docs/atlas.md).",
)
@click.option(
    "--donor-key",
    default=None,
    help="obs column of donors: chunks never mix donors and sampled cells are pooled within "
    "their donor (default: one donor).",
)
@click.option(
    "--dask",
    default=None,
    help="Run on dask.distributed: local:N (N worker processes here) or tcp://HOST:PORT "
    "(an existing scheduler). Default: in this process.",
)
@click.option("--name", default=None, help="Atlas name (rows say source atlas:NAME).")
@opt.THRESHOLD
@click.option(
    "--chunk-cells",
    type=opt.Number(2, 10_000_000, integer=True),
    default=None,
    help="Most cells per chunk (one task) [default: 10,000].",
)
@click.option(
    "--sample-cells",
    type=opt.Number(0, 1_000_000, integer=True),
    default=None,
    help="Cells per cell type kept (bit-packed) for exact gate co-positivity [default: 500].",
)
@click.option(
    "--measurement",
    default="RNA",
    show_default=True,
    help="TileDB-SOMA measurement (SOMA input only).",
)
@click.option(
    "--soma-layer",
    default="raw",
    show_default=True,
    help="TileDB-SOMA X layer with raw counts (SOMA input only).",
)
@click.option(
    "--obs-filter",
    default=None,
    help="TileDB-SOMA value filter on cells, e.g. \"disease == 'normal'\" (SOMA input only).",
)
@click.option(
    "--healthy-primary",
    is_flag=True,
    help="SOMA input: keep only cells with is_primary_data == True and disease == 'normal' "
    "(the CELLxGENE Census's healthy cells, each counted once), with --obs-filter if given.",
)
@opt.out_option()
def atlas_build(  # noqa: PLR0913, PLR0917
    input_path: Path,
    cell_type_key: str,
    donor_key: str | None,
    dask: str | None,
    name: str | None,
    threshold: float | None,
    chunk_cells: int | None,
    sample_cells: int | None,
    measurement: str,
    soma_layer: str,
    obs_filter: str | None,
    healthy_primary: bool,
    out: Path,
) -> None:
    """Measure every cell type of INPUT and write an atlas folder.

    INPUT is an .h5ad (read backed), a TileDB-SOMA experiment such as a CELLxGENE Census copy,
    or a 10x, .zarr or .loom input.
    """
    from .._provenance import invocation
    from ..atlas import DEFAULT_CHUNK_CELLS, DEFAULT_SAMPLE_CELLS, build_atlas
    from ..io._write import OUTPUT_FILES, staged_run, write_json
    from ..pp import DEFAULT_THRESHOLD

    if healthy_primary:
        census = "is_primary_data == True and disease == 'normal'"
        obs_filter = census if obs_filter is None else f"({obs_filter}) and {census}"
    # finished chunks are kept beside --out until the atlas is written: a killed build,
    # started again with the same command, computes only the chunks it had not finished
    resume = out.parent / f".{out.name}.chunks"
    t0 = time.perf_counter()
    with steps(err_console()) as progress:
        built = build_atlas(
            str(input_path),
            cell_type_key=cell_type_key,
            donor_key=donor_key,
            name=name,
            dask=dask,
            threshold=DEFAULT_THRESHOLD if threshold is None else threshold,
            chunk_cells=DEFAULT_CHUNK_CELLS if chunk_cells is None else int(chunk_cells),
            sample_cells=DEFAULT_SAMPLE_CELLS if sample_cells is None else int(sample_cells),
            measurement=measurement,
            layer=soma_layer,
            obs_filter=obs_filter,
            resume=resume,
            progress=progress,
        )
    with staged_run(out, "atlas") as stage:
        built.write(stage)
        write_json(
            stage / "run.json",
            {
                "command": "atlas build",
                "input": {"path": str(input_path), **invocation()},
                "params": {
                    "input": str(input_path),
                    "cell_type_key": cell_type_key,
                    "donor_key": donor_key,
                    "dask": dask,
                    "obs_filter": obs_filter,
                },
                "build": built.metadata["build"],
                "seconds": round(time.perf_counter() - t0, 3),
            },
        )
    meta = built.metadata
    b = meta["build"]
    err = err_console()
    rate = meta["n_cells"] / max(b["wall_seconds"], 1e-9)
    err.print(
        f"{meta['n_cells']:,} cells, {len(built.cell_types)} cell types, {meta['n_genes']:,} "
        f"genes; {b['chunks']} chunks ({b['chunks_resumed']} resumed from {resume}) on "
        f"{b['workers']} "
        f"worker(s) in {b['wall_seconds']:.1f} s ({rate:,.0f} cells/s)",
        soft_wrap=True,
        markup=False,
    )
    unmapped = meta.get("unmapped_cell_types") or []
    if unmapped:
        err.print(
            f"{len(unmapped)} cell types map to no body context (vital weight 1.0): "
            f"{', '.join(unmapped)}",
            soft_wrap=True,
            markup=False,
        )
    err.print(f"wrote {out}/ ({', '.join(sorted(OUTPUT_FILES['atlas']))}, run.json)")
