"""``antigenscout benchmark``: score the engine and the baselines against the clinical record."""

from __future__ import annotations

import math
from pathlib import Path

import click

__all__ = ["benchmark_command"]


def _fmt(v: object) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        return str(int(v)) if v.is_integer() and v > 1 else f"{v:.3f}"
    return str(v)


@click.command("benchmark")
@click.option(
    "--targets",
    "targets",
    type=click.Path(path_type=Path),
    default=None,
    help="validated_targets.tsv [default: <shared>/benchmark/validated_targets.tsv].",
)
@click.option(
    "--toxicities",
    "toxicities",
    type=click.Path(path_type=Path),
    default=None,
    help="toxicities.tsv [default: <shared>/benchmark/toxicities.tsv].",
)
@click.option(
    "--shared",
    "shared",
    type=click.Path(path_type=Path),
    default=None,
    help="Shared folder with benchmark/ and data/ [default: $ANTIGENSCOUT_SHARED or "
    "../shared beside the repository].",
)
@click.option("--out", "out", type=click.Path(path_type=Path), required=True, help="Output folder.")
def benchmark_command(
    targets: Path | None, toxicities: Path | None, shared: Path | None, out: Path
) -> None:
    """Rank each validated target among its modality's candidates for its indication, and
    check whether observed toxicities are among the target's top healthy risks, for
    antigenscout and two anchor baselines. Writes metrics.json, targets_rows.tsv and
    toxicity_rows.tsv to OUT."""
    from rich.console import Console
    from rich.table import Table

    from ..io._write import staged_run
    from ._run import run_benchmark

    err = Console(stderr=True, highlight=False)
    with staged_run(out, "benchmark") as stage:
        res = run_benchmark(
            targets,
            toxicities,
            shared=shared,
            out_dir=stage,
            progress=lambda msg: err.print(f"[dim]{msg}…[/dim]"),
        )
    summary = res.summary()
    table = Table(title="clinical benchmark (antigenscout vs anchor baselines)")
    table.add_column("metric")
    for m in summary.index:
        table.add_column(m, justify="right")
    for col in summary.columns:
        table.add_row(col, *(_fmt(summary.loc[m, col]) for m in summary.index))
    console = Console(highlight=False)
    console.print(table)
    t = res.targets_rows
    n_skip = int((t["status"] != "scored").sum()) if "status" in t else 0
    console.print(
        f"{n_skip} target rows not scored (reasons in targets_rows.tsv); "
        f"wrote {out} in {res.seconds:.1f} s"
    )
