"""Command-line interface: ``antigenscout demo | rank | profile | ...``.

``main(argv)`` does the work and returns an exit code; ``console_main`` calls
``sys.exit``. Errors a user can cause end in one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click
import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ._errors import AntigenscoutError
from ._types import MODALITIES

__all__ = ["console_main", "main"]

err_console = Console(stderr=True, highlight=False)
console = Console(highlight=False)

N_RISK_TARGETS = 100
#: van Galen 2019 malignant cell types counted as the stem/progenitor compartment.
STEM_PROGENITOR = ("HSC-like", "Prog-like")


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        TextColumn("{task.completed:,}/{task.total:,} cells"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
        disable=not err_console.is_terminal,
    )


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="antigenscout")
def cli() -> None:
    """antigenscout: choose immunotherapy targets that cover the tumour and spare the body."""


def _run_rank(
    adata: Any,
    out: Path,
    *,
    label: str,
    reference_dir: Path | None = None,
    highlight: tuple[str, ...] = (),
    **kw: Any,
) -> Path:
    """Score, write ``targets.tsv``, ``risk.tsv``, ``patient_coverage.tsv``, ``run.json``."""
    from . import get, tl
    from .io._write import prepare_out_dir, write_json, write_table
    from .reference import load_reference

    out = prepare_out_dir(out)
    t0 = time.perf_counter()
    reference = load_reference(reference_dir)
    with _progress() as bar:
        task = bar.add_task("positivity + coverage", total=None)

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        tl.score_targets(adata, reference=reference, progress=progress, **kw)
    targets = get.targets_df(adata)
    write_table(targets, out / "targets.tsv")
    risk = get.risk_df(adata, n_top=N_RISK_TARGETS, include=highlight, reference=reference)
    write_table(risk, out / "risk.tsv")
    write_table(get.patient_coverage_df(adata), out / "patient_coverage.tsv", index=True)
    res = adata.uns["antigenscout_targets"]
    write_json(
        out / "run.json",
        {
            "command": label,
            "params": res["params"],
            "denominators": res["denominators"],
            "reference": reference.metadata,
            "seconds": round(time.perf_counter() - t0, 3),
        },
    )
    _print_targets(targets, res["denominators"])
    err_console.print(f"wrote {out}/targets.tsv, risk.tsv, patient_coverage.tsv, run.json")
    return out


def _print_targets(targets: Any, den: dict[str, Any], n: int = 10) -> None:
    table = Table(
        title=(
            f"Top {min(n, len(targets))} of {den['n_candidates']:,} candidates "
            f"({den['n_tumor_cells']:,} tumour cells, {den['n_patients']} patients)"
        )
    )
    for col in ("rank", "target", "coverage", "patients ≥ thr", "worst healthy", "risk", "score"):
        table.add_column(col)
    for row in targets.head(n).itertuples():
        table.add_row(
            str(row.rank),
            row.target,
            f"{row.tumor_coverage:.2f}",
            f"{row.patients_covered_fraction:.2f}",
            str(row.worst_healthy_cell_type),
            f"{row.vital_risk:.2f}",
            f"{row.score:.3f}",
        )
    console.print(table)


_modality = click.option(
    "--modality",
    type=click.Choice(MODALITIES),
    default="car-t",
    show_default=True,
    help="Therapy modality; decides the candidate filter (surface vs any protein).",
)
_positivity = click.option(
    "--positivity",
    type=click.Choice(["knn", "cp10k", "detected"]),
    default="knn",
    show_default=True,
    help="Positivity model for single cells (knn = dropout-aware neighbourhood pooling).",
)
_threshold = click.option(
    "--threshold", type=float, default=None, help="Positivity threshold in CP10k."
)
_out = click.option(
    "--out", "out", type=click.Path(path_type=Path), required=True, help="Output directory."
)
_report = click.option(
    "--report", "with_report", is_flag=True, help="Also write a self-contained report.html."
)
_highlight = click.option(
    "--highlight",
    default="",
    help="Comma-separated targets always kept in risk.tsv and shown first in the report.",
)


def _names(text: str) -> tuple[str, ...]:
    return tuple(h.strip() for h in text.split(",") if h.strip())


def _maybe_report(out: Path, with_report: bool, highlight: tuple[str, ...] = ()) -> None:
    if with_report:
        from .report.html import write_html

        err_console.print(f"wrote {write_html(out, highlight=highlight)}")


@cli.command()
@_out
@_modality
@_report
@_highlight
def demo(out: Path, modality: str, with_report: bool, highlight: str) -> None:
    """Rank targets on the embedded van Galen 2019 AML subset (offline, seconds)."""
    from . import datasets

    adata = datasets.demo()
    stem = adata.obs["cell_type"].astype(str).isin(STEM_PROGENITOR)
    adata.obs["compartment"] = np.where(stem, "stem_progenitor", "other")
    _run_rank(
        adata,
        out,
        label="demo",
        malignant_key="malignant=malignant",
        patient_key="patient",
        compartment_key="compartment",
        modality=modality,
        highlight=_names(highlight),
    )
    _maybe_report(out, with_report, _names(highlight))


@cli.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option(
    "--malignant-key",
    default=None,
    help="COLUMN=VALUE selecting malignant cells (omit for bulk tumours: all samples).",
)
@click.option("--patient-key", default=None, help="obs column naming each cell's patient.")
@click.option(
    "--compartment-key", default=None, help="obs column of compartments (e.g. stem-like)."
)
@_modality
@_positivity
@_threshold
@click.option("--layer", default=None, help="Layer with raw counts (default: X).")
@click.option(
    "--patient-threshold",
    type=float,
    default=0.8,
    show_default=True,
    help="Coverage at which a patient counts as covered.",
)
@click.option(
    "--reference",
    "reference_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Directory of a reference built by scripts/build_reference.py (default: embedded).",
)
@_out
@_report
@_highlight
def rank(
    input_path: Path,
    malignant_key: str | None,
    patient_key: str | None,
    compartment_key: str | None,
    modality: str,
    positivity: str,
    threshold: float | None,
    layer: str | None,
    patient_threshold: float,
    reference_dir: Path | None,
    out: Path,
    with_report: bool,
    highlight: str,
) -> None:
    """Rank single-antigen targets of INPUT (.h5ad, 10x .h5/mtx folder, TSV/CSV table)."""
    from . import io, pp
    from .reference import load_reference

    reference = load_reference(reference_dir)  # validate early, before any work
    adata = io.read(input_path, layer=layer)
    pp.harmonise_genes(adata, reference)
    _run_rank(
        adata,
        out,
        label="rank",
        reference_dir=reference_dir,
        malignant_key=malignant_key,
        patient_key=patient_key,
        compartment_key=compartment_key,
        modality=modality,
        positivity=positivity,
        threshold=threshold,
        patient_threshold=patient_threshold,
        highlight=_names(highlight),
    )
    _maybe_report(out, with_report, _names(highlight))


@cli.command()
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("--malignant-key", default=None, help="COLUMN=VALUE selecting malignant cells.")
@click.option("--patient-key", default=None, help="obs column naming each cell's patient.")
@click.option("--compartment-key", default=None, help="obs column of compartments.")
@click.option(
    "--healthy-key",
    default=None,
    help="With --healthy-value: obs column naming cell types of the input's healthy cells, "
    "used as an exact single-cell healthy reference.",
)
@click.option(
    "--healthy-value",
    default=None,
    help="COLUMN=VALUE selecting the input's healthy cells (e.g. malignant=normal).",
)
@click.option(
    "--healthy-only",
    is_flag=True,
    help="Judge risk on the healthy cells alone (a whole-body atlas), without the reference.",
)
@click.option("--max-genes", type=click.IntRange(1, 5), default=2, show_default=True)
@click.option("--ops", default="and,or,not", show_default=True, help="Allowed operators.")
@click.option(
    "--max-vital-risk",
    type=float,
    default=0.5,
    show_default=True,
    help="Cap on a gate's worst vital-weighted healthy risk.",
)
@click.option(
    "--objective", type=click.Choice(["coverage", "score"]), default="coverage", show_default=True
)
@click.option("--candidates", "n_candidates", type=int, default=None, help="Top-N genes only.")
@click.option("--top", "top_k", type=int, default=50, show_default=True, help="Gates written.")
@_modality
@_positivity
@_threshold
@click.option("--layer", default=None, help="Layer with raw counts (default: X).")
@_out
@_report
def gates(
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
    modality: str,
    positivity: str,
    threshold: float | None,
    layer: str | None,
    out: Path,
    with_report: bool,
) -> None:
    """Search AND / OR / NOT gates of 2-5 antigens on INPUT; writes gates.tsv."""
    from . import get, io, pp, tl
    from .io._write import prepare_out_dir, write_json, write_table
    from .reference import load_reference
    from .tl._score import _parse_key_value

    out = prepare_out_dir(out)
    t0 = time.perf_counter()
    reference = load_reference()
    adata = io.read(input_path, layer=layer)
    pp.harmonise_genes(adata, reference)
    healthy = None
    if healthy_value is not None:
        col, value = _parse_key_value(healthy_value)
        if col not in adata.obs:
            msg = f"healthy column {col!r} is not in the input's obs"
            raise AntigenscoutError(msg)
        healthy = adata[adata.obs[col].astype(str) == value].copy()
        if healthy.n_obs == 0:
            msg = f"no healthy cells: no row has {col} == {value!r}"
            raise AntigenscoutError(msg)
    with err_console.status("searching gates…"):
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
            ops=[o.strip() for o in ops.split(",") if o.strip()],
            max_vital_risk=max_vital_risk,
            objective=objective,  # type: ignore[arg-type]
            n_candidates=n_candidates,
            top_k=top_k,
            positivity=positivity,  # type: ignore[arg-type]
            threshold=threshold,
        )
    res = adata.uns["antigenscout_gates"]
    table = get.gates_df(adata)
    write_table(table, out / "gates.tsv")
    write_json(
        out / "run.json",
        {
            "command": "gates",
            "params": res["params"],
            "denominators": res["denominators"],
            "reference": reference.metadata,
            "seconds": round(time.perf_counter() - t0, 3),
        },
    )
    t = Table(
        title=f"Top gates ({res['denominators']['n_tumor_cells']:,} tumour cells, "
        f"{res['denominators']['n_candidates']:,} candidates, risk ≤ {max_vital_risk})"
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
    console.print(t)
    if table.empty:
        err_console.print("no gate within the risk cap; relax --max-vital-risk")
    err_console.print(f"wrote {out}/gates.tsv, run.json")
    _maybe_report(out, with_report)


@cli.command()
@click.argument("genes", nargs=-1, required=True)
@click.option(
    "--gate",
    type=click.Choice(["all", "any"]),
    default="all",
    show_default=True,
    help="all = the receptor needs every gene (heterodimer); any = one gene suffices.",
)
@click.option("--tissues/--no-tissues", default=False, help="Also list whole tissues.")
@_threshold
@_out
def profile(
    genes: tuple[str, ...], gate: str, tissues: bool, threshold: float | None, out: Path
) -> None:
    """Which healthy cell types does an agent binding GENES engage?"""
    from .io._write import prepare_out_dir, write_table
    from .tl import profile_agent

    out = prepare_out_dir(out)
    kinds = ("cell_type", "tissue") if tissues else ("cell_type",)
    prof = profile_agent(list(genes), gate=gate, threshold=threshold, kinds=kinds)  # type: ignore[arg-type]
    write_table(prof, out / "profile.tsv")
    engaged = prof[prof["engaged"]]
    table = Table(title=f"{' + '.join(genes)}: {len(engaged)} of {len(prof)} contexts engaged")
    for col in ("cell type", "system", "nTPM", "positive fraction"):
        table.add_column(col)
    for row in prof.head(12).itertuples():
        table.add_row(
            row.cell_type, row.system, f"{row.expression:.1f}", f"{row.positive_fraction:.2f}"
        )
    console.print(table)
    err_console.print(f"wrote {out}/profile.tsv")


def _register_subcommands() -> None:
    from .benchmark._cli import benchmark_command
    from .kinetics._cli import simulate_command
    from .report._cli import report_command

    cli.add_command(simulate_command, "simulate")
    cli.add_command(report_command, "report")
    cli.add_command(benchmark_command, "benchmark")


_register_subcommands()


def _show_warning(message: Warning | str, category: type[Warning], *args: Any, **kw: Any) -> None:
    err_console.print(f"warning: {message}", soft_wrap=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code (0 success, 2 user error)."""
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except AntigenscoutError as e:
        err_console.print(f"error: {e}", soft_wrap=True)
        return 2
    except click.exceptions.Abort:
        err_console.print("aborted")
        return 130
    except click.ClickException as e:
        err_console.print(f"error: {e.format_message()}", soft_wrap=True)
        return 2
    except FileNotFoundError as e:
        err_console.print(f"error: file not found: {e.filename}; check the path", soft_wrap=True)
        return 2
    except MemoryError:
        err_console.print("error: out of memory; try a smaller input or fewer genes")
        return 2
    return 0


def console_main() -> None:
    """Entry point of the ``antigenscout`` script."""
    sys.exit(main())
