"""``antigenscout report RUN_DIR [--out FILE]`` and the ``--report`` hook of other commands."""

from __future__ import annotations

import os
from pathlib import Path

import click

from .. import _cli_options as opt

__all__ = ["add_report", "report_command"]


def add_report(run_dir: str | os.PathLike[str]) -> Path:
    """Write ``<run_dir>/report.html`` for a finished run (used by ``--report`` flags).

    Parameters
    ----------
    run_dir
        The ``--out`` directory of ``rank``, ``demo``, ``gates`` or ``simulate``.

    Returns
    -------
    Path of the report.
    """
    from .html import write_html

    return write_html(run_dir)


@click.command("report")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out",
    type=click.Path(path_type=Path),
    default=None,
    help="HTML file to write [default: RUN_DIR/report.html].",
)
@opt.highlight_option(
    help="Comma-separated targets shown first in every per-target section (e.g. CD33,IL3RA); "
    "repeat the option to add more."
)
def report_command(run_dir: Path, out: Path | None, highlight: tuple[str, ...]) -> None:
    """Write a self-contained HTML report of RUN_DIR.

    RUN_DIR is an --out directory of rank, demo, gates or simulate. The file opens offline in
    any browser.
    """
    from .html import write_html

    names = tuple(h.strip() for part in highlight for h in part.split(",") if h.strip())
    path = write_html(run_dir, out, highlight=names)
    click.echo(f"report written to {path}")
