"""Command-line interface: ``antigenscout demo | rank | gates | profile | ...``.

``main(argv)`` does the work and returns an exit code; ``console_main`` calls
``sys.exit``. Every failure a user can cause (bad input or options, a missing or
unwritable path, a full disk) ends in one ``error:`` line on stderr and exit code 2;
a fault in antigenscout's own code shows its traceback and asks to be reported (exit 1).

Heavy modules (numpy, pandas, anndata, numba) are imported inside the commands, and the
commands of other subpackages are loaded on first use, so ``--help`` answers at once.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import math
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ._console import err_console, out_console, steps
from ._errors import AntigenscoutError, InputError
from ._types import MODALITIES

if TYPE_CHECKING:
    from anndata import AnnData

    from .reference import Reference

__all__ = ["console_main", "main"]

N_RISK_TARGETS = 100
#: Issue tracker text shown with a traceback of an internal fault.
REPORT_BUG = (
    "this is a bug in antigenscout, not in your input: please report it with the command "
    "you ran and the traceback above"
)


class LazyGroup(click.Group):
    """A group whose commands from other subpackages are imported on first use.

    ``lazy`` maps a command name to ``("module:attribute", "short help")``; the short help
    is kept here so that ``--help`` lists the commands without importing them.
    """

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]], **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *self.lazy])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.lazy:
            target, _ = self.lazy[cmd_name]
            module, attr = target.split(":")
            return getattr(importlib.import_module(module, __package__), attr)
        return super().get_command(ctx, cmd_name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = []
        for name in self.list_commands(ctx):
            if name in self.lazy:
                rows.append((name, self.lazy[name][1]))
            else:
                cmd = super().get_command(ctx, name)
                if cmd is not None and not cmd.hidden:
                    rows.append((name, cmd.get_short_help_str(formatter.width)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    lazy={
        "simulate": (
            ".kinetics._cli:simulate_command",
            "Simulate CAR-T kinetics, tumour response and healthy-cell depletion in a cohort.",
        ),
        "report": (".report._cli:report_command", "Write a self-contained HTML report of RUN_DIR."),
        "benchmark": (
            ".benchmark._cli:benchmark_command",
            "Score the engine and the baselines against the clinical record.",
        ),
    },
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.version_option(package_name="antigenscout")
def cli() -> None:
    """antigenscout: choose immunotherapy targets that cover the tumour and spare the body."""


# ----------------------------------------------------------------------------- options


class Number(click.ParamType):
    """A finite number within bounds (click's ranges let NaN and infinity through)."""

    name = "number"

    def __init__(
        self,
        lo: float | None = None,
        hi: float | None = None,
        *,
        lo_open: bool = False,
        integer: bool = False,
    ) -> None:
        self.lo, self.hi, self.lo_open, self.integer = lo, hi, lo_open, integer
        self.name = "integer" if integer else "number"

    def _range(self) -> str:
        lo = "" if self.lo is None else f"{'>' if self.lo_open else '≥'} {self.lo:g}"
        hi = "" if self.hi is None else f"≤ {self.hi:g}"
        return " and ".join(x for x in (lo, hi) if x)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, int | float) and not isinstance(value, bool):
            v = value
        else:
            try:
                v = int(str(value)) if self.integer else float(str(value))
            except ValueError:
                self.fail(f"{value!r} is not {'an integer' if self.integer else 'a number'}")
        if not math.isfinite(v):
            self.fail(f"{value!r} is not a finite number; give a value {self._range()}")
        low = self.lo is not None and (v <= self.lo if self.lo_open else v < self.lo)
        if low or (self.hi is not None and v > self.hi):
            self.fail(f"{value!r} is out of range; give a value {self._range()}")
        return v


_modality = click.option(
    "--modality",
    type=click.Choice(MODALITIES),
    default="car-t",
    show_default=True,
    help="Therapy modality: decides the candidates (reachable surface protein, any protein, "
    "or any gene) and what the score needs (fratricide, density, ...; docs/modalities.md).",
)
_positivity = click.option(
    "--positivity",
    type=click.Choice(["knn", "cp10k", "detected"]),
    default="knn",
    show_default=True,
    help="Positivity model for single cells (knn = dropout-aware neighbourhood pooling).",
)
_threshold = click.option(
    "--threshold",
    type=Number(0, 1e4, lo_open=True),
    default=None,
    help="Positivity threshold in CP10k (> 0).",
)
_layer = click.option(
    "--layer",
    default=None,
    help="Layer with raw counts in an .h5ad/.zarr/.loom input (default: X, else a counts layer).",
)
_out = click.option(
    "--out", "out", type=click.Path(path_type=Path), required=True, help="Output directory."
)
_report = click.option(
    "--report", "with_report", is_flag=True, help="Also write a self-contained report.html."
)
_highlight = click.option(
    "--highlight",
    multiple=True,
    help="Comma-separated targets (symbols or synonyms, e.g. CD123) always kept in risk.tsv "
    "and shown first in the report; repeat the option to add more.",
)
_input = click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
_orientation = click.option(
    "--orientation",
    type=click.Choice(["auto", "genes-by-samples", "samples-by-genes"]),
    default="auto",
    show_default=True,
    help="For a TSV/CSV table: which axis holds genes (auto: the one whose labels look like "
    "genes, said on the terminal).",
)
_obs = click.option(
    "--obs",
    "obs_path",
    type=click.Path(path_type=Path),
    default=None,
    help="TSV/CSV of cell labels joined on the cell names (first column): how a 10x .h5, an "
    "mtx folder or a table gets its malignant, patient and compartment columns.",
)
_backed = click.option(
    "--backed/--in-memory",
    default=None,
    help="Stream an .h5ad from disk instead of loading it [default: backed when the file is "
    "over 1/8 of the memory]; counts must be in X.",
)
_kind = click.option(
    "--kind",
    type=click.Choice(["auto", "single-cell", "bulk"]),
    default="auto",
    show_default=True,
    help="Whether INPUT holds single cells or bulk samples (auto: stored kind, else a table "
    "of > 1,000 integer-count samples is single cells).",
)


_atlas_opt = click.option(
    "--atlas",
    "atlas_path",
    type=click.Path(path_type=Path),
    default=None,
    help="Healthy atlas (a folder from 'antigenscout atlas build', or an .h5ad of healthy cells "
    "with obs 'cell_type' and, if present, 'donor_id'): measured fractions and exact gate risk "
    "for its cell types, the embedded reference for the rest of the body.",
)
_pregnancy = click.option(
    "--pregnancy/--no-pregnancy",
    default=False,
    show_default=True,
    help="Keep the healthy contexts of pregnancy (placenta, trophoblasts), which are out of "
    "the default adult body (docs/engagement.md, Exposure).",
)
_route = click.option(
    "--route",
    type=click.Choice(["systemic", "intrathecal", "intravesical"]),
    default="systemic",
    show_default=True,
    help="How the agent is given: intrathecal (into the CSF: a protein agent reaches the CNS "
    "as it reaches blood) or intravesical (into the bladder: the urothelium fully, the rest of "
    "the body across it); docs/engagement.md, Exposure.",
)
_ambient = click.option(
    "--ambient/--no-ambient",
    default=True,
    show_default=True,
    help="Single cells, knn: estimate each patient's ambient RNA (soup) from all its cells and "
    "call a cell positive only where its counts exceed what the soup explains (ambient.tsv).",
)
_graph_key = click.option(
    "--graph-key",
    default="connectivities",
    show_default=True,
    help="obsp key of a precomputed cells × cells neighbour graph used by --positivity knn when "
    "the input has it ('none': always build the graph here).",
)


def _load_reference(reference_dir: Path | None, atlas_path: Path | None) -> Reference:
    """The reference (embedded or ``--reference``), with ``--atlas`` merged in when given."""  # noqa: D401
    from .reference import load_reference

    reference = load_reference(reference_dir)
    if atlas_path is None:
        return reference
    from .atlas import load_atlas

    if not atlas_path.exists():
        msg = f"--atlas {str(atlas_path)!r} does not exist; give an atlas folder or an .h5ad"
        raise InputError(msg)
    donor = None
    if atlas_path.is_file():
        import h5py

        with contextlib.suppress(OSError, KeyError), h5py.File(atlas_path, "r") as f:
            donor = "donor_id" if "donor_id" in f["obs"] else None
    atlas = load_atlas(atlas_path, cell_type_key="cell_type", donor_key=donor)
    unmapped = atlas.metadata.get("unmapped_cell_types") or []
    if unmapped:
        err_console().print(
            f"atlas {atlas.name}: {len(unmapped)} cell types map to no body context and weigh "
            f"1.0: {', '.join(unmapped[:8])}{' …' if len(unmapped) > 8 else ''}",  # noqa: PLR2004
            soft_wrap=True,
            markup=False,
        )
    return reference.with_atlas(atlas)


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

    from .tl import candidate_genes

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
    from . import io, pp
    from .io._guard import memory_budget

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
        from .report.html import write_html

        err_console().print(f"wrote {write_html(out, highlight=highlight)}")


# ----------------------------------------------------------------------------- ranking


def _run_rank(  # noqa: PLR0913
    adata: AnnData,
    out: Path,
    *,
    label: str,
    reference: Reference,
    highlight: tuple[str, ...] = (),
    input_path: Path | None = None,
    **kw: Any,
) -> Path:
    """Score and write ``targets.tsv``, ``risk.tsv``, ``patient_coverage.tsv``,
    ``patient_model.tsv`` (single cells) and ``run.json``.
    """  # noqa: D205
    from . import get, tl
    from .io._write import staged_run, write_table

    _check_highlight_candidates(highlight, adata, reference, kw.get("modality", "car-t"))
    t0 = time.perf_counter()
    err = err_console()
    with staged_run(out, label) as stage, steps(err) as progress:
        rate_stats: dict = {}  # the rate model's sums, from the same pass over the cells
        tl.score_targets(adata, reference=reference, progress=progress, rate_stats=rate_stats, **kw)
        progress("risk tables", 0, None)
        targets = get.targets_df(adata)
        risk = get.risk_df(adata, n_top=N_RISK_TARGETS, include=highlight, reference=reference)
        if reference.atlas is not None:  # say which source judged each row
            targets["worst_healthy_source"] = _source_column(
                targets["worst_healthy_cell_type"], reference
            )
        write_table(targets, stage / "targets.tsv")
        write_table(risk, stage / "risk.tsv")
        patient_cov = get.patient_coverage_df(adata)
        write_table(patient_cov, stage / "patient_coverage.tsv", index=True)
        res = adata.uns["antigenscout_targets"]
        params = res["params"]
        if params["kind"] != "bulk":
            # the per-patient rate model of the targets risk.tsv describes (docs/engagement.md)
            progress("per-patient rate model", 0, None)
            genes = list(dict.fromkeys([*targets["target"].head(N_RISK_TARGETS), *highlight]))
            genes = [g for g in genes if g in set(adata.var_names)]
            model = tl.patient_rate_coverage(
                adata,
                genes,
                malignant_key=kw.get("malignant_key"),
                patient_key=kw.get("patient_key"),
                compartment_key=kw.get("compartment_key"),
                threshold=params["positivity"]["threshold_cp10k"],
                layer=kw.get("layer"),
                observed=patient_cov,
                stats=rate_stats,
            )
            write_table(model, stage / "patient_model.tsv")
        if "ambient" in res:
            write_table(res["ambient"], stage / "ambient.tsv")
        notes = _write_run_json(stage, label, adata, input_path, res, reference, t0)
    _print_notes(notes)
    _print_targets(targets, res["denominators"])
    if "ambient" in res:
        _print_ambient(res["ambient"])
    _print_exposure_params(params.get("exposure") or {})
    model = "patient_model.tsv, " if params["kind"] != "bulk" else ""
    amb = "ambient.tsv, " if "ambient" in res else ""
    err.print(f"wrote {out}/targets.tsv, risk.tsv, patient_coverage.tsv, {model}{amb}run.json")
    return out


def _write_run_json(  # noqa: PLR0913, PLR0917
    stage: Path,
    command: str,
    adata: AnnData,
    input_path: Path | None,
    res: dict[str, Any],
    reference: Reference,
    t0: float,
) -> list[str]:
    """Write a rank or gates run's ``run.json`` (input, the choices made unasked, params,
    denominators, reference, seconds); return those choices to print.
    """  # noqa: D205
    from ._provenance import choices_made, input_record
    from .io._write import write_json

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


def _print_ambient(table: Any) -> None:
    """One line on the soup subtracted: the range of contamination and how it was found."""
    rho = table["contamination"].dropna()
    if rho.empty:
        err_console().print(
            "ambient RNA: no sample's contamination could be estimated; nothing subtracted "
            "(ambient.tsv)",
            markup=False,
        )
        return
    own = int((~table["source"].astype(str).str.startswith(("borrowed", "not"))).sum())
    others = "" if own == len(table) else ", the others take the run's median"
    err_console().print(
        f"ambient RNA: contamination {rho.min():.1%}–{rho.max():.1%} of each droplet's UMIs "
        f"(median {rho.median():.1%}); estimated for {own} of {len(table)} samples{others}; "
        "soup reads discounted from every call (ambient.tsv; --no-ambient to count every read)",
        markup=False,
        soft_wrap=True,
    )


def _print_targets(targets: Any, den: dict[str, Any], n: int = 10) -> None:
    from rich.table import Table

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
    out_console().print(table)


@cli.command()
@_out
@_modality
@_ambient
@_report
@_highlight
def demo(
    out: Path, modality: str, ambient: bool, with_report: bool, highlight: tuple[str, ...]
) -> None:
    """Rank targets on the embedded van Galen 2019 AML subset (offline, seconds)."""
    from . import datasets
    from .reference import load_reference

    reference = load_reference()
    names = _resolve_highlight(highlight, reference)
    adata = datasets.demo()
    datasets.add_vangalen_compartment(adata)
    _run_rank(
        adata,
        out,
        label="demo",
        reference=reference,
        malignant_key="malignant=malignant",
        patient_key="patient",
        compartment_key="compartment",
        modality=modality,
        ambient=ambient,
        highlight=names,
    )
    _maybe_report(out, with_report, names)


@cli.command()
@_input
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
@_layer
@_kind
@_backed
@click.option(
    "--patient-threshold",
    type=Number(0, 1, lo_open=True),
    default=0.8,
    show_default=True,
    help="Coverage at which a patient counts as covered (0 < x ≤ 1).",
)
@click.option(
    "--cancer",
    default=None,
    help="Bulk tumours: HPA cancer type (e.g. 'breast cancer'); coverage becomes the fraction "
    "of that cancer's patients whose tumour carries the antigen at High/Medium level, fused "
    "from HPA tumour IHC, CPTAC detection and the input's RNA by fitted reliability, with a "
    "90% interval (coverage_low/high, coverage_source; docs/engagement.md).",
)
@click.option(
    "--reference",
    "reference_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Directory of a reference built by scripts/build_reference.py (default: embedded).",
)
@_atlas_opt
@_graph_key
@_ambient
@_pregnancy
@_route
@_out
@_report
@_highlight
@_obs
@_orientation
def rank(  # noqa: PLR0913, PLR0917
    input_path: Path,
    malignant_key: str | None,
    patient_key: str | None,
    compartment_key: str | None,
    modality: str,
    positivity: str,
    threshold: float | None,
    layer: str | None,
    kind: str,
    backed: bool | None,
    patient_threshold: float,
    cancer: str | None,
    reference_dir: Path | None,
    atlas_path: Path | None,
    graph_key: str,
    ambient: bool,
    pregnancy: bool,
    route: str,
    out: Path,
    with_report: bool,
    highlight: tuple[str, ...],
    obs_path: Path | None,
    orientation: str,
) -> None:
    """Rank single-antigen targets of INPUT (.h5ad, .zarr, .loom, 10x .h5 or mtx folder,
    TSV/CSV table of single cells or bulk samples).
    """  # noqa: D205
    reference = _load_reference(reference_dir, atlas_path)  # validate early, before any work
    names = _resolve_highlight(highlight, reference)
    adata = _read_input(input_path, layer, kind, reference, backed, obs_path, orientation)
    _run_rank(
        adata,
        out,
        label="rank",
        reference=reference,
        input_path=input_path,
        malignant_key=malignant_key,
        patient_key=patient_key,
        compartment_key=compartment_key,
        modality=modality,
        positivity=positivity,
        threshold=threshold,
        patient_threshold=patient_threshold,
        cancer=cancer,
        graph_key=_graph_key_value(graph_key),
        ambient=ambient,
        pregnancy=pregnancy,
        route=route,
        highlight=names,
    )
    _maybe_report(out, with_report, names)


# ----------------------------------------------------------------------------- gates


@cli.command()
@_input
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
    help="COLUMN=VALUE selecting the input's healthy cells, from healthy people (e.g. "
    "condition=healthy; a patient's non-malignant cells are not a healthy marrow).",
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
    type=Number(0, 1),
    default=0.5,
    show_default=True,
    help="Cap on a gate's worst vital-weighted healthy risk (0 to 1).",
)
@click.option(
    "--objective", type=click.Choice(["coverage", "score"]), default="coverage", show_default=True
)
@click.option(
    "--candidates",
    "--n-candidates",
    "n_candidates",
    type=Number(1, integer=True),
    default=None,
    help="Top-N genes only (≥ 1); --n-candidates, as the API names it.",
)
@click.option(
    "--top",
    "--top-k",
    "top_k",
    type=Number(1, integer=True),
    default=50,
    show_default=True,
    help="Gates written (≥ 1); --top-k, as the API names it.",
)
@click.option(
    "--triple-budget",
    type=Number(0, integer=True),
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
@_modality
@_positivity
@_threshold
@_layer
@_kind
@_backed
@_atlas_opt
@_graph_key
@_ambient
@_out
@_report
@_obs
@_orientation
def gates(  # noqa: PLR0912, PLR0913, PLR0915, PLR0917
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
    from . import get, tl
    from .io._write import staged_run, write_table
    from .tl._gates import TRIPLE_BUDGET
    from .tl._groups import _parse_key_value

    if exact_triples and triple_budget is not None:
        msg = "--exact-triples and --triple-budget exclude each other; pass one"
        raise InputError(msg)
    budget = None if exact_triples else (TRIPLE_BUDGET if triple_budget is None else triple_budget)

    t0 = time.perf_counter()
    reference = _load_reference(None, atlas_path)
    op_list = [o.strip().lower() for o in ops.split(",") if o.strip()]
    bad = sorted(set(op_list) - {"and", "or", "not"})
    if bad or not op_list:
        msg = f"--ops {ops!r}: allowed operators are and, or, not (comma-separated)"
        raise InputError(msg)
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
        res = adata.uns["antigenscout_gates"]
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


# ----------------------------------------------------------------------------- profile


@cli.command()
@click.argument("receptor", nargs=-1, required=True)
@click.option(
    "--gate",
    type=click.Choice(["all", "any"]),
    default="all",
    show_default=True,
    help="For a list of genes: all = one receptor made of every gene (a heterodimer); "
    "any = alternatives. An expression such as '(HLA-DRA AND HLA-DRB1) OR HLA-DPA1' "
    "needs no --gate.",
)
@click.option(
    "--agent",
    "--modality",
    "agent",
    type=click.Choice(MODALITIES),
    default="agonist",
    show_default=True,
    help="Agent class, which sets the antigen level a cell needs (docs/modalities.md); "
    "--modality is the same option, as rank and gates name it.",
)
@click.option("--tissues/--no-tissues", default=False, help="Also list whole tissues.")
@_threshold
@_pregnancy
@_route
@_atlas_opt
@_out
def profile(  # noqa: PLR0913, PLR0917
    receptor: tuple[str, ...],
    gate: str,
    agent: str,
    tissues: bool,
    threshold: float | None,
    pregnancy: bool,
    route: str,
    atlas_path: Path | None,
    out: Path,
) -> None:
    """Which healthy cells, and what fraction of each, does an agent binding RECEPTOR engage?

    RECEPTOR is one or more genes (combined by --gate) or a logic expression in quotes.
    """  # noqa: D400
    from rich.table import Table

    from ._provenance import invocation
    from .io._write import staged_run, write_json, write_table
    from .tl import profile_agent

    words = " ".join(receptor)
    is_expr = any(t.upper() in {"AND", "OR", "NOT"} or "(" in t for t in words.split())
    query: str | list[str] = words if is_expr else list(receptor)
    reference = _load_reference(None, atlas_path)
    kinds = ("cell_type", "tissue") if tissues else ("cell_type",)
    prof = profile_agent(
        query,
        gate=gate,  # type: ignore[arg-type]
        agent=agent,
        threshold=threshold,
        kinds=kinds,
        reference=reference,
        pregnancy=pregnancy,
        route=route,
    )
    text = prof.attrs["receptor"]
    with staged_run(out, "profile") as stage:
        write_table(prof, stage / "profile.tsv")
        write_json(
            stage / "run.json",
            {
                "command": "profile",
                "input": invocation(),
                "params": {
                    "receptor": text,
                    "agent": agent,
                    "threshold_cp10k": prof.attrs["threshold_cp10k"],
                    "exposure": prof.attrs["exposure"],
                    "atlas": None if atlas_path is None else str(atlas_path),
                },
                "isoform_notes": prof.attrs.get("isoform_notes", {}),
                **({"atlas": reference.metadata["atlas"]} if reference.atlas is not None else {}),
            },
        )
    engaged = prof[prof["engaged"]]
    table = Table(
        title=f"{text}: at least half of the cells engaged in {len(engaged)} of {len(prof)} "
        f"contexts (antigen ≥ {prof.attrs['threshold_cp10k']:g} CP10k, {agent})"
    )
    for col in ("cell type", "system", "cells engaged", "interval", "source"):
        table.add_column(col)
    for row in prof.head(12).itertuples():
        table.add_row(
            row.cell_type,
            row.system,
            f"{row.positive_fraction:.0%}",
            f"{row.fraction_low:.0%}–{row.fraction_high:.0%}",
            row.source,
        )
    out_console().print(table)
    _print_exposure_params(prof.attrs["exposure"])
    err_console().print(f"wrote {out}/profile.tsv")


# ----------------------------------------------------------------------------- atlas


@cli.group()
def atlas() -> None:
    """Build a healthy reference from a single-cell atlas (use it with --atlas)."""


@atlas.command("build")
@_input
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
    "dask_address",
    default=None,
    help="Run on dask.distributed: local:N (N worker processes here) or tcp://HOST:PORT "
    "(an existing scheduler). Default: in this process.",
)
@click.option("--name", default=None, help="Atlas name (rows say source atlas:NAME).")
@_threshold
@click.option(
    "--chunk-cells",
    type=Number(2, 10_000_000, integer=True),
    default=None,
    help="Most cells per chunk (one task) [default: 10,000].",
)
@click.option(
    "--sample-cells",
    type=Number(0, 1_000_000, integer=True),
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
@_out
def atlas_build(  # noqa: PLR0913, PLR0917
    input_path: Path,
    cell_type_key: str,
    donor_key: str | None,
    dask_address: str | None,
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
    """Measure every cell type of INPUT (.h5ad read backed, a TileDB-SOMA experiment such as a
    CELLxGENE Census copy, or a 10x/.zarr/.loom input) and write an atlas folder.
    """  # noqa: D205
    from ._provenance import invocation
    from .atlas import DEFAULT_CHUNK_CELLS, DEFAULT_SAMPLE_CELLS, build_atlas
    from .io._write import OUTPUT_FILES, staged_run, write_json
    from .pp import DEFAULT_THRESHOLD

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
            dask=dask_address,
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
                    "dask": dask_address,
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


# ----------------------------------------------------------------------------- main


def _show_warning(message: Warning | str, category: type[Warning], *args: Any, **kw: Any) -> None:
    err_console().print(f"warning: {message}", soft_wrap=True, markup=False)


#: A hint per errno for failures of the file system.
_OS_HINTS: dict[int, str] = {
    errno.ENOSPC: "the disk is full: free space or choose another --out",
    errno.EDQUOT: "the disk quota is exceeded: free space or choose another --out",
    errno.EACCES: "permission denied: check the path's permissions or choose another path",
    errno.EPERM: "operation not permitted: check the path's permissions",
    errno.EROFS: "the file system is read-only: choose another --out",
    errno.ENOENT: "no such file or directory: check the path",
    errno.ENOTDIR: "a part of the path is not a directory: check the path",
    errno.EISDIR: "the path is a directory: give a file",
    errno.ENAMETOOLONG: "the file name is too long: choose a shorter path",
    errno.EFBIG: "a file grew past the size the file system or a limit allows: free space, "
    "raise the limit or choose another --out",
}


def _os_message(e: OSError) -> str:
    where = f" ({e.filename})" if e.filename else ""
    hint = _OS_HINTS.get(e.errno or -1, f"{e.strerror or e}: check the paths and the disk")
    return f"{hint}{where}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI and return its exit code.

    0 on success; 2 for any failure the user can fix (the message says how); 130 when
    interrupted; 1, with a traceback, for a fault in antigenscout itself.
    """
    from . import _provenance

    _provenance.COMMAND_LINE = ["antigenscout", *(sys.argv[1:] if argv is None else argv)]
    try:
        return _main(argv)
    finally:
        _provenance.COMMAND_LINE = None


def _main(argv: Sequence[str] | None) -> int:
    err = None
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            cli.main(args=list(argv) if argv is not None else None, standalone_mode=False)
    except AntigenscoutError as e:
        err = f"error: {e}"
    except click.exceptions.Abort as e:
        if isinstance(e.__context__, EOFError):  # click turns EOFError into Abort
            err = "error: unexpected end of input; check that the input file is complete"
        else:
            err_console().print("aborted")
            return 130
    except click.ClickException as e:
        err = f"error: {e.format_message()}"
    except MemoryError:
        err = "error: out of memory; try a smaller input, fewer genes or --candidates"
    except OSError as e:
        err = f"error: {_os_message(e)}"
    except KeyboardInterrupt:
        err_console().print("aborted")
        return 130
    except Exception:
        import traceback

        traceback.print_exc()
        err_console().print(f"internal error: {REPORT_BUG}", soft_wrap=True, markup=False)
        return 1
    if err is not None:
        err_console().print(" ".join(err.split()), soft_wrap=True, markup=False)
        return 2
    return 0


def console_main() -> None:
    """Entry point of the ``antigenscout`` script."""
    sys.exit(main())
