"""Where the clinical record is read from: the shared folder or the packaged tables.

The targets and toxicity tables are read with the columns they must have, and a row's gene
symbols are mapped onto the reference.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .._errors import InputError

if TYPE_CHECKING:
    from ..reference import Reference

__all__ = ["default_shared"]

#: The clinical record's tables shipped in the package (scripts/build_benchmark_data.py).
PACKAGED_TABLES = Path(__file__).resolve().parent / "data"
TARGET_COLUMNS = ("id", "indication", "target_genes", "antigen_note", "modality")
TOXICITY_COLUMNS = (
    "id",
    "therapy",
    "modality",
    "target_genes",
    "antigen_note",
    "off_tumor_tissue_or_cell",
    "evidence_type",
    "attribution",
)


def default_shared() -> Path | None:
    """``$ANTIGENSCOUT_SHARED``, else ``shared/`` beside the repository, else ``None``."""
    env = os.environ.get("ANTIGENSCOUT_SHARED")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[3].parent / "shared")
    candidates.append(Path.cwd().parent / "shared")
    for c in candidates:
        if (c / "benchmark").is_dir():
            return c
    return None


def _read_table(path: Path, columns: tuple[str, ...], what: str) -> pd.DataFrame:
    if not path.is_file():
        msg = f"{what} table {str(path)!r} does not exist; pass an existing TSV with --{what}"
        raise InputError(msg)
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        msg = f"{what} table {str(path)!r} is empty; it needs a header with {', '.join(columns)}"
        raise InputError(msg) from None
    except (UnicodeDecodeError, pd.errors.ParserError) as e:
        msg = (
            f"{what} table {str(path)!r} is not a UTF-8 tab-separated table "
            f"({type(e).__name__}); give a TSV with the columns {', '.join(columns)}"
        )
        raise InputError(msg) from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        msg = (
            f"{str(path)!r} lacks the columns {missing}; the {what} table needs "
            f"{', '.join(columns)}"
        )
        raise InputError(msg)
    if df.empty:
        msg = f"{what} table {str(path)!r} has a header but no rows; add at least one row"
        raise InputError(msg)
    return df


def _map_genes(genes: list[str], reference: Reference) -> tuple[list[str], list[str]]:
    if not genes:
        return [], []
    mapped, unmapped = reference.map_genes(genes)
    return [str(s) for s in mapped.dropna()], unmapped
