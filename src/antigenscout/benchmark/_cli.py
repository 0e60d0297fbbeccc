"""``antigenscout benchmark``: score the engine and the baselines against the clinical record."""

from __future__ import annotations

import math
from pathlib import Path

import click

from .. import _cli_options as opt
from ._metrics import N_BOOT, SEED

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
@opt.out_option(help="Output folder.")
@click.option(
    "--extended",
    is_flag=True,
    default=False,
    help="Also score rows built from the approved/trialled agent lists in "
    "<shared>/data/reference_lists (evaluation only; reported apart as 'extended').",
)
@click.option(
    "--n-boot",
    "n_boot",
    type=click.IntRange(min=100),
    default=N_BOOT,
    show_default=True,
    help="Bootstrap resamples for the 95% intervals and paired differences.",
)
@click.option("--seed", type=int, default=SEED, show_default=True, help="Bootstrap seed.")
def benchmark_command(  # noqa: PLR0913, PLR0917
    targets: Path | None,
    toxicities: Path | None,
    shared: Path | None,
    out: Path,
    extended: bool,
    n_boot: int,
    seed: int,
) -> None:
    """Score the engine and the baselines against the clinical record.

    Rank each validated target among its modality's candidates for its indication, and check
    whether observed toxicities are among the target's top healthy risks, for antigenscout and
    two anchor baselines, with paired bootstrap 95% intervals. Writes metrics.json,
    targets_rows.tsv and toxicity_rows.tsv to OUT (with --extended also
    extended_targets_rows.tsv and extended_excluded.tsv).
    """
    from rich.table import Table

    from .._console import err_console, out_console
    from ..io._write import staged_run
    from ._run import run_benchmark

    err = err_console()
    with staged_run(out, "benchmark") as stage:
        res = run_benchmark(
            targets,
            toxicities,
            shared=shared,
            out_dir=stage,
            progress=lambda msg: err.print(f"[dim]{msg}…[/dim]"),
            extended=extended,
            n_boot=n_boot,
            seed=seed,
        )
    inputs = res.metrics.get("inputs", {})
    if str(inputs.get("tables", "")).startswith("packaged"):
        err.print(
            "note: no shared folder found, so the clinical tables are the copy shipped in the "
            "package; rows whose tumour data live in the shared folder (van Galen 2019 AML) "
            "are listed as not scored: --shared DIR scores them",
            markup=False,
        )
    summary = res.summary()
    table = Table(title="clinical benchmark (antigenscout vs anchor baselines)")
    table.add_column("metric")
    for m in summary.index:
        table.add_column(m, justify="right")
    for col in summary.columns:
        table.add_row(col, *(_fmt(summary.loc[m, col]) for m in summary.index))
    console = out_console()
    console.print(table)
    for b, d in res.metrics["paired_differences"].items():
        parts = [
            f"{name} {v['estimate']:+.3f} [{v['ci95'][0]:+.3f}, {v['ci95'][1]:+.3f}] {v['verdict']}"
            for name, v in (
                ("median pct", d["targets"]["median_percentile"]),
                ("top5", d["targets"]["top5_fraction"]),
                ("recall@3", d["toxicity"]["on_target"]["recall_at_3"]),
            )
            if v["estimate"] is not None
        ]
        console.print(f"antigenscout - {b}: " + "; ".join(parts))
    ext = res.metrics.get("extended")
    if ext:
        et = ext["targets"]
        console.print(
            f"extended set: {ext['counts']['rows']} rows, {et['n_scored']} scored; "
            f"antigenscout median percentile {_fmt(et['median_percentile'])}, top 5% "
            f"{_fmt(et['top5_fraction'])}"
        )
    t = res.targets_rows
    n_skip = int((t["status"] != "scored").sum()) if "status" in t else 0
    console.print(
        f"{n_skip} target rows not scored (reasons in targets_rows.tsv); "
        f"wrote {out} in {res.seconds:.1f} s"
    )
