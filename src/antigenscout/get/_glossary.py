"""What each column of the tables the command-line tools write means.

The tables are ``targets.tsv``, ``risk.tsv``, ``gates.tsv``, ...; the descriptions come from the
packaged ``data/columns.tsv``.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

import pandas as pd

from .._errors import InputError

__all__ = ["column_glossary", "describe_column"]

#: Placeholders in the glossary's column names: a name the data supplies.
_PLACEHOLDER = re.compile(r"<[a-z]+>")


@functools.cache
def _table() -> pd.DataFrame:
    with resources.files("antigenscout.get").joinpath("data", "columns.tsv").open("rb") as fh:
        return pd.read_csv(fh, sep="\t", dtype=str, keep_default_na=False)


def column_glossary(file: str | None = None) -> pd.DataFrame:
    """Return the glossary of the written tables: one row per ``file`` and ``column``.

    Each row has its ``description`` (what it is, its unit or range, how it is computed, and the
    docs/ section that explains it). A column written once per patient, compartment or receptor
    gene is named with a placeholder (``coverage__<compartment>``, ``<patient>``,
    ``frac__<gene>``).

    Parameters
    ----------
    file
        One table, e.g. ``"targets.tsv"``; ``None``: all of them.

    Examples
    --------
    >>> from antigenscout import get
    >>> g = get.column_glossary("targets.tsv")
    >>> g.loc[g["column"] == "vital_risk", "description"].iloc[0][:28]
    'Risk the score uses (0–1): d'
    """
    table = _table()
    if file is None:
        return table.copy()
    files = list(dict.fromkeys(table["file"]))
    if file not in files:
        msg = f"no glossary for {file!r}; the tables described are {', '.join(files)}"
        raise InputError(msg)
    return table[table["file"] == file].reset_index(drop=True)


def describe_column(file: str, column: str) -> str | None:
    """Return the description of ``column`` of ``file``; ``None`` if undescribed.

    Placeholders are matched (a patient's column of ``patient_coverage.tsv``,
    ``coverage__<compartment>``).

    >>> describe_column("targets.tsv", "coverage__stem_progenitor")[:14]
    'Only with --co'
    """
    rows = column_glossary(file)
    exact = rows[rows["column"] == column]
    if len(exact):
        return str(exact["description"].iloc[0])
    for name, text in zip(rows["column"], rows["description"], strict=True):
        if _PLACEHOLDER.search(name):
            pattern = "".join(
                ".+" if _PLACEHOLDER.fullmatch(part) else re.escape(part)
                for part in re.split(r"(<[a-z]+>)", name)
                if part
            )
            if re.fullmatch(pattern, column):
                return str(text)
    return None
