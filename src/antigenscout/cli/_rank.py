"""``antigenscout demo`` and ``antigenscout rank``: single-antigen targets, written and shown."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .. import _cli_options as opt
from .._console import err_console, out_console, steps
from .._types import DEFAULT_PATIENT_THRESHOLD, N_RISK_TARGETS, TARGETS_KEY
from ._common import (
    _check_highlight_candidates,
    _graph_key_value,
    _maybe_report,
    _print_exposure_params,
    _print_notes,
    _read_input,
    _resolve_highlight,
    _source_column,
    _write_run_json,
)

if TYPE_CHECKING:
    from anndata import AnnData

    from ..reference import Reference

__all__ = ["demo", "rank"]


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
    """Score the input and write the ranking's tables and ``run.json``.

    The tables are ``targets.tsv``, ``risk.tsv``, ``patient_coverage.tsv`` and
    ``patient_model.tsv`` (single cells).
    """
    from .. import get, tl
    from ..io._write import staged_run, write_table

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
        res = adata.uns[TARGETS_KEY]
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


@click.command()
@opt.out_option()
@opt.MODALITY
@opt.AMBIENT
@opt.REPORT
@opt.highlight_option()
def demo(
    out: Path, modality: str, ambient: bool, with_report: bool, highlight: tuple[str, ...]
) -> None:
    """Rank targets on the embedded van Galen 2019 AML subset (offline, seconds)."""
    from .. import datasets
    from ..reference import load_reference

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


@click.command()
@opt.INPUT
@opt.MALIGNANT_KEY
@opt.PATIENT_KEY
@opt.COMPARTMENT_KEY
@opt.MODALITY
@opt.POSITIVITY
@opt.THRESHOLD
@opt.LAYER
@opt.KIND
@opt.BACKED
@click.option(
    "--patient-threshold",
    type=opt.Number(0, 1, lo_open=True),
    default=DEFAULT_PATIENT_THRESHOLD,
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
@opt.atlas_option()
@opt.GRAPH_KEY
@opt.AMBIENT
@opt.PREGNANCY
@opt.ROUTE
@opt.out_option()
@opt.REPORT
@opt.highlight_option()
@opt.OBS
@opt.ORIENTATION
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
    """Rank single-antigen targets of INPUT.

    INPUT is an .h5ad, .zarr, .loom, 10x .h5 or mtx folder, or a TSV/CSV table of single cells
    or bulk samples.
    """
    from .._load import load_reference_with_atlas

    # validate early, before any work
    reference = load_reference_with_atlas(reference_dir, atlas_path)
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
