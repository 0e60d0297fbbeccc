"""``antigenscout profile``: the healthy cells an agent binding a receptor engages."""

from __future__ import annotations

from pathlib import Path

import click

from .. import _cli_options as opt
from .._console import err_console, out_console
from .._types import DEFAULT_AGENT, DEFAULT_PROFILE_GATE, MODALITIES, PROFILE_GATES
from ._common import _print_exposure_params

__all__ = ["profile"]


@click.command()
@click.argument("receptor", nargs=-1, required=True)
@click.option(
    "--gate",
    type=click.Choice(PROFILE_GATES),
    default=DEFAULT_PROFILE_GATE,
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
    default=DEFAULT_AGENT,
    show_default=True,
    help="Agent class, which sets the antigen level a cell needs (docs/modalities.md); "
    "--modality is the same option, as rank and gates name it.",
)
@click.option("--tissues/--no-tissues", default=False, help="Also list whole tissues.")
@opt.THRESHOLD
@opt.PREGNANCY
@opt.ROUTE
@opt.atlas_option()
@opt.out_option()
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
    """Show which healthy cells, and what fraction of each, an agent binding RECEPTOR engages.

    RECEPTOR is one or more genes (combined by --gate) or a logic expression in quotes.
    """
    from rich.table import Table

    from .._load import load_reference_with_atlas
    from .._provenance import invocation
    from ..io._write import staged_run, write_json, write_table
    from ..tl import profile_agent

    words = " ".join(receptor)
    is_expr = any(t.upper() in {"AND", "OR", "NOT"} or "(" in t for t in words.split())
    query: str | list[str] = words if is_expr else list(receptor)
    reference = load_reference_with_atlas(None, atlas_path)
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
