"""The click options several commands share, declared once.

Every command that has one of these options applies the same declaration (name, type,
default, help), and every ``click.Choice`` takes its values from the ``Literal`` aliases of
:mod:`antigenscout._types` that the API validates with. The command-line spelling of a value
writes ``-`` where the API writes ``_`` (``single-cell`` for ``single_cell``;
:func:`cli_spelling`). This module imports only click and the value sets, so ``--help`` stays
fast; the command modules (``antigenscout.cli`` and the subpackages' ``_cli`` modules) import it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import click

from ._types import (
    DEFAULT_GRAPH_KEY,
    DEFAULT_MODALITY,
    DEFAULT_POSITIVITY,
    DEFAULT_ROUTE,
    KIND_OPTIONS,
    MODALITIES,
    ORIENTATIONS,
    POSITIVITY_MODELS,
    ROUTES,
)

__all__ = [
    "AMBIENT",
    "BACKED",
    "GRAPH_KEY",
    "INPUT",
    "KIND",
    "LAYER",
    "MODALITY",
    "OBS",
    "ORIENTATION",
    "POSITIVITY",
    "PREGNANCY",
    "REPORT",
    "ROUTE",
    "THRESHOLD",
    "Number",
    "atlas_option",
    "cli_spelling",
    "highlight_option",
    "out_option",
]


def cli_spelling(values: Iterable[str]) -> tuple[str, ...]:
    """Spell API values as the command line does: ``single_cell`` becomes ``single-cell``.

    Parameters
    ----------
    values
        Values of a ``Literal`` option type.

    Returns
    -------
    The values with ``_`` written as ``-``, in their order.

    Examples
    --------
    >>> cli_spelling(("auto", "genes_by_samples"))
    ('auto', 'genes-by-samples')
    """
    return tuple(v.replace("_", "-") for v in values)


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


MALIGNANT_KEY = click.option(
    "--malignant-key",
    default=None,
    help="COLUMN=VALUE selecting malignant cells (omit: every cell or bulk sample is tumour).",
)
PATIENT_KEY = click.option(
    "--patient-key", default=None, help="obs column naming each cell's patient."
)
COMPARTMENT_KEY = click.option(
    "--compartment-key", default=None, help="obs column of compartments (e.g. stem-like)."
)
MODALITY = click.option(
    "--modality",
    type=click.Choice(MODALITIES),
    default=DEFAULT_MODALITY,
    show_default=True,
    help="Therapy modality: decides the candidates (reachable surface protein, any protein, "
    "or any gene) and what the score needs (fratricide, density, ...; docs/modalities.md).",
)
POSITIVITY = click.option(
    "--positivity",
    type=click.Choice(POSITIVITY_MODELS),
    default=DEFAULT_POSITIVITY,
    show_default=True,
    help="Positivity model for single cells (knn = dropout-aware neighbourhood pooling).",
)
THRESHOLD = click.option(
    "--threshold",
    type=Number(0, 1e4, lo_open=True),
    default=None,
    help="Positivity threshold in CP10k (> 0).",
)
LAYER = click.option(
    "--layer",
    default=None,
    help="Layer with raw counts in an .h5ad/.zarr/.loom input (default: X, else a counts layer).",
)


def out_option(
    help: str = "Output directory.",
) -> Any:
    """Declare the required ``--out`` folder a command writes into (parameter ``out``).

    Parameters
    ----------
    help
        The option's help, where a command's folder holds something particular.

    Returns
    -------
    The click decorator.
    """
    return click.option("--out", "out", type=click.Path(path_type=Path), required=True, help=help)


REPORT = click.option(
    "--report", "with_report", is_flag=True, help="Also write a self-contained report.html."
)


def highlight_option(
    help: str = "Comma-separated targets (symbols or synonyms, e.g. CD123) always kept in "
    "risk.tsv and shown first in the report; repeat the option to add more.",
) -> Any:
    """Declare ``--highlight``, the repeatable comma-separated targets shown first.

    Parameters
    ----------
    help
        The option's help, where the command shows the targets somewhere particular.

    Returns
    -------
    The click decorator.
    """
    return click.option("--highlight", multiple=True, help=help)


INPUT = click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
ORIENTATION = click.option(
    "--orientation",
    type=click.Choice(cli_spelling(ORIENTATIONS)),
    default="auto",
    show_default=True,
    help="For a TSV/CSV table: which axis holds genes (auto: the one whose labels look like "
    "genes, said on the terminal).",
)
OBS = click.option(
    "--obs",
    "obs_path",
    type=click.Path(path_type=Path),
    default=None,
    help="TSV/CSV of cell labels joined on the cell names (first column): how a 10x .h5, an "
    "mtx folder or a table gets its malignant, patient and compartment columns.",
)
BACKED = click.option(
    "--backed/--in-memory",
    default=None,
    help="Stream an .h5ad from disk instead of loading it [default: backed when the file is "
    "over 1/8 of the memory]; counts must be in X.",
)
KIND = click.option(
    "--kind",
    type=click.Choice(cli_spelling(KIND_OPTIONS)),
    default="auto",
    show_default=True,
    help="Whether INPUT holds single cells or bulk samples (auto: stored kind, else a table "
    "of > 1,000 integer-count samples is single cells).",
)


def atlas_option(
    help: str = "Healthy atlas (a folder from 'antigenscout atlas build', or an .h5ad of "
    "healthy cells with obs 'cell_type' and, if present, 'donor_id'): measured fractions and "
    "exact gate risk for its cell types, the embedded reference for the rest of the body.",
) -> Any:
    """Declare ``--atlas``, a healthy atlas folder or ``.h5ad`` (parameter ``atlas_path``).

    Parameters
    ----------
    help
        The option's help, where the command uses the atlas in a particular way.

    Returns
    -------
    The click decorator.
    """
    return click.option(
        "--atlas", "atlas_path", type=click.Path(path_type=Path), default=None, help=help
    )


PREGNANCY = click.option(
    "--pregnancy/--no-pregnancy",
    default=False,
    show_default=True,
    help="Keep the healthy contexts of pregnancy (placenta, trophoblasts), which are out of "
    "the default adult body (docs/engagement.md, Exposure).",
)
ROUTE = click.option(
    "--route",
    type=click.Choice(ROUTES),
    default=DEFAULT_ROUTE,
    show_default=True,
    help="How the agent is given: intrathecal (into the CSF: a protein agent reaches the CNS "
    "as it reaches blood) or intravesical (into the bladder: the urothelium fully, the rest of "
    "the body across it); docs/engagement.md, Exposure.",
)
AMBIENT = click.option(
    "--ambient/--no-ambient",
    default=True,
    show_default=True,
    help="Single cells, knn: estimate each patient's ambient RNA (soup) from all its cells and "
    "call a cell positive only where its counts exceed what the soup explains (ambient.tsv).",
)
GRAPH_KEY = click.option(
    "--graph-key",
    default=DEFAULT_GRAPH_KEY,
    show_default=True,
    help="obsp key of a precomputed cells × cells neighbour graph used by --positivity knn when "
    "the input has it ('none': always build the graph here).",
)
