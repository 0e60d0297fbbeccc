"""``antigenscout simulate``: therapy simulation over a virtual cohort."""

from __future__ import annotations

from pathlib import Path

import click

from .. import _cli_options as opt
from ._models import MODELS
from ._params import PRODUCTS

__all__ = ["simulate_command"]


@click.command("simulate")
@click.option(
    "--model", "model", required=True, type=click.Choice(sorted(MODELS)), help="Kinetic model."
)
@click.option(
    "--patients", "n_patients", default=200, show_default=True, type=int, help="Virtual patients."
)
@click.option("--seed", default=0, show_default=True, type=int, help="Sampling seed.")
@click.option("--days", default=365.0, show_default=True, type=float, help="Simulated days.")
@click.option("--typical", is_flag=True, help="Simulate only the typical patient.")
@click.option(
    "--from", "run_dir", type=click.Path(), default=None, help="Ranking output directory."
)
@click.option(
    "--target",
    default=None,
    help="Target: a row of the ranking's targets.tsv (with --from), or a name for the "
    "coverages given with --tumour-coverage (no ranking).",
)
@click.option(
    "--tumour-coverage",
    type=float,
    default=None,
    help="Antigen-positive share of the tumour, given by you (with --target, no --from; "
    "recorded as user-given).",
)
@click.option(
    "--stem-coverage",
    type=float,
    default=None,
    help="Antigen-positive share of the tumour's stem cells (with --tumour-coverage; "
    "default: the tumour coverage).",
)
@click.option(
    "--healthy-cell-type",
    default=None,
    help="Healthy cell type carrying the antigen (with --tumour-coverage), e.g. 'monocyte'.",
)
@click.option(
    "--healthy-positive-fraction",
    type=float,
    default=None,
    help="Share of that healthy cell type carrying the antigen (with --healthy-cell-type).",
)
@click.option("--with-inhibitor", is_flag=True, help="Give the imatinib-like kinase inhibitor.")
@click.option(
    "--inhibitor-stop-day", type=float, default=None, help="Stop the inhibitor on this day."
)
@click.option(
    "--healthy",
    "healthy",
    default=None,
    help="Healthy context to simulate (a 'name' of the target's rows in risk.tsv; with "
    "--from). Default: the most engaged context with a published turnover.",
)
@opt.atlas_option(
    help="Healthy atlas (as for rank/gates/profile; with --from): its cell types replace the "
    "ranking's contexts they map to, with their measured positive fractions."
)
@click.option(
    "--healthy-turnover",
    type=float,
    default=None,
    help="Turnover (1/day) of the healthy cell type (needed for one without a published rate).",
)
@click.option(
    "--product",
    type=click.Choice(sorted(PRODUCTS)),
    default="autologous-car-t",
    show_default=True,
    help="Cell-therapy product (cart-leukaemia, cart-cml).",
)
@click.option(
    "--allow-other-indication",
    is_flag=True,
    help="Simulate a ranking of another disease than the model's (recorded as a warning).",
)
@opt.out_option()
@opt.REPORT
def simulate_command(  # noqa: PLR0912, PLR0913, PLR0915, PLR0917
    model: str,
    n_patients: int,
    seed: int,
    days: float,
    typical: bool,
    run_dir: str | None,
    target: str | None,
    tumour_coverage: float | None,
    stem_coverage: float | None,
    healthy_cell_type: str | None,
    healthy_positive_fraction: float | None,
    with_inhibitor: bool,
    inhibitor_stop_day: float | None,
    healthy: str | None,
    atlas_path: Path | None,
    healthy_turnover: float | None,
    product: str,
    allow_other_indication: bool,
    out: Path,
    with_report: bool,
) -> None:
    """Simulate CAR-T kinetics, tumour response and healthy-cell depletion in a cohort.

    Writes cohort.tsv (one row per patient), summary.json and curves.tsv into --out;
    warnings (an engaged vital context not simulated, a ranking of another disease) are
    printed and kept in summary.json.
    """
    from .._console import err_console, steps
    from .._errors import InputError
    from .._provenance import invocation
    from .._types import counted
    from ..io._write import staged_run, write_json
    from ._scenario import Scenario, scenario_from_run
    from ._simulate import simulate, write_simulation

    given = {
        "--tumour-coverage": tumour_coverage,
        "--stem-coverage": stem_coverage,
        "--healthy-cell-type": healthy_cell_type,
        "--healthy-positive-fraction": healthy_positive_fraction,
    }
    named = [k for k, v in given.items() if v is not None]
    if run_dir is not None and named:
        msg = (
            f"{', '.join(named)} {'describes' if len(named) == 1 else 'describe'} a target "
            "without a ranking; with --from the ranking "
            "gives the coverages. Drop one or the other."
        )
        raise InputError(msg)
    if named and (tumour_coverage is None or target is None):
        verb = "needs" if len(named) == 1 else "need"
        msg = f"{', '.join(named)} {verb} --target NAME --tumour-coverage FRACTION."
        raise InputError(msg)
    if stem_coverage is not None and MODELS[model].tumour != "hierarchy":
        msg = (
            f"--stem-coverage applies to a tumour with a stem compartment (cart-cml); "
            f"{model!r} models a flat tumour: drop it"
        )
        raise InputError(msg)
    if (healthy_cell_type is None) != (healthy_positive_fraction is None):
        msg = "--healthy-cell-type and --healthy-positive-fraction go together: give both."
        raise InputError(msg)
    if run_dir is not None and target is None:
        msg = "--from needs --target NAME (a row of the ranking's targets.tsv)."
        raise InputError(msg)
    if target is not None and run_dir is None and tumour_coverage is None:
        msg = (
            "--target needs either --from DIR (a ranking that measured it) or "
            "--tumour-coverage FRACTION (coverages you give, recorded as user-given)."
        )
        raise InputError(msg)
    if healthy is not None and run_dir is None:
        msg = "--healthy names a context of a ranking: add --from DIR --target NAME."
        raise InputError(msg)
    if atlas_path is not None and run_dir is None:
        msg = "--atlas judges the healthy compartment of a ranking: add --from DIR --target NAME."
        raise InputError(msg)
    if target is not None and not MODELS[model].takes_scenario:
        msg = "--target needs a model that takes a target: cart-leukaemia or cart-cml."
        raise InputError(msg)
    scenario: Scenario | None = None
    if run_dir is not None and target is not None:
        reference = None
        if atlas_path is not None:
            from .._load import load_reference_with_atlas

            reference = load_reference_with_atlas(None, atlas_path)
        scenario = scenario_from_run(
            run_dir,
            target,
            healthy=healthy,
            healthy_turnover_per_day=healthy_turnover,
            reference=reference,
        )
    elif target is not None and tumour_coverage is not None:
        no_healthy = (
            "no healthy antigen-positive cell type given (--healthy-cell-type): "
            "on-target, off-tumour depletion is not simulated"
        )
        scenario = Scenario(
            target=target,
            tumour_coverage=tumour_coverage,
            stem_coverage=stem_coverage,
            healthy_cell_type=healthy_cell_type,
            healthy_positive_fraction=healthy_positive_fraction or 0.0,
            healthy_turnover_per_day=healthy_turnover,
            source="user-given on the command line (no ranking)",
            warnings=() if healthy_cell_type is not None else (no_healthy,),
        )
    elif healthy_turnover is not None:
        spec = MODELS[model]
        if spec.default_scenario is None:
            msg = "--healthy-turnover needs a scenario: add --from DIR --target NAME."
            raise InputError(msg)
        d = spec.default_scenario
        scenario = Scenario(
            target=d.target,
            tumour_coverage=d.tumour_coverage,
            healthy_cell_type=d.healthy_cell_type,
            healthy_positive_fraction=d.healthy_positive_fraction,
            healthy_turnover_per_day=healthy_turnover,
            source=d.source,
        )
    console = err_console()
    kwargs = {
        "n_patients": n_patients,
        "seed": seed,
        "typical": typical,
        "days": days,
        "scenario": scenario,
        "with_inhibitor": True if with_inhibitor else None,
        "inhibitor_stop_day": inhibitor_stop_day,
        "product": product,
        "allow_other_indication": allow_other_indication,
    }
    if typical or n_patients < 5000:  # noqa: PLR2004
        result = simulate(model, **kwargs)  # type: ignore[arg-type]
    else:
        with steps(console, unit="patients") as progress:
            result = simulate(
                model,
                **kwargs,  # type: ignore[arg-type]
                progress=counted(progress, "simulating"),
            )
    with staged_run(out, "simulate") as stage:
        write_simulation(result, stage)
        write_json(
            stage / "run.json",
            {
                "command": "simulate",
                "input": {"path": None if run_dir is None else str(run_dir), **invocation()},
                "params": {
                    "model": model,
                    "n_patients": n_patients,
                    "seed": seed,
                    "days": days,
                    "typical": typical,
                    "from": run_dir,
                    "target": target,
                    "tumour_coverage": tumour_coverage,
                    "stem_coverage": stem_coverage,
                    "healthy_cell_type": healthy_cell_type,
                    "healthy_positive_fraction": healthy_positive_fraction,
                    "coverage_source": (
                        "ranking"
                        if run_dir
                        else "user-given"
                        if tumour_coverage is not None
                        else "model default"
                    ),
                    "with_inhibitor": with_inhibitor,
                    "inhibitor_stop_day": inhibitor_stop_day,
                    "healthy": healthy,
                    "atlas": None if atlas_path is None else str(atlas_path),
                    "healthy_turnover_per_day": healthy_turnover,
                    "product": product,
                    "allow_other_indication": allow_other_indication,
                },
            },
        )
    paths = [out / name for name in ("cohort.tsv", "summary.json", "curves.tsv")]
    s = result.summary
    parts = [f"{model}: {s['n_patients']} patients"]
    units = s.get("units", {})
    for key in ("cmax", "auc_0_28", "bcr_abl_ratio_12m"):
        if key in s:
            unit = str(units.get(key, "")).split(" (")[0]  # type: ignore[union-attr]
            parts.append(f"median {key} {s[key]['median']:.4g} {unit}".rstrip())  # type: ignore[index]
    for key in (
        "remission_fraction",
        "healthy_depleted_fraction_day30",
        "healthy_recovered_fraction_1y",
        "mmr_fraction_12m",
    ):
        if key in s:
            parts.append(f"{key} {s[key]:.2f}")
    console.print("; ".join(parts))
    for w in s.get("warnings", []):  # type: ignore[union-attr]
        console.print(f"warning: {w}", markup=False, highlight=False)
    for p in paths:
        click.echo(str(p))
    if with_report:
        from ..report.html import write_html

        click.echo(str(write_html(out)))
