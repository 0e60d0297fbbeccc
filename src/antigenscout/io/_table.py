"""Read a dense delimited expression table (TSV/CSV, optionally gzip-compressed)."""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData

from .._errors import InputError
from .._types import ORIENTATIONS, Orientation
from ._guard import (
    EXPANSION_FLOOR,
    MAX_EXPANSION,
    check_expansion,
    describe_failure,
    reader_errors,
)
from ._validate import check_file, check_kind, finalise, is_integer_valued

__all__ = ["read_table"]


#: Tables with more samples than this whose values are integer UMI-like counts are read
#: as single cells (see :func:`read_table`).
SINGLE_CELL_MIN_SAMPLES = 1000
#: Median counts per sample below which an integer table is taken as single-cell UMIs.
SINGLE_CELL_MAX_MEDIAN_TOTAL = 100_000

_ENSEMBL = re.compile(r"^ENS[A-Z]*G\d{6,}(\.\d+)?$")
# HGNC-like symbols: letters first, then letters/digits, optional -/./@ parts (HLA-A, MT-CO1,
# NKX2-1, C1orf112, RP11-34P13.7); at most 20 characters.
_SYMBOL = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:[-.@][A-Za-z0-9]+){0,3}$")
# Labels that look like cells or samples rather than genes.
_BARCODE = re.compile(r"[ACGTN]{10,}")
_SAMPLE = re.compile(r"^(TCGA|GTEX|GSM|SRR|ERR|SAMN|sample|patient|donor|cell)", re.IGNORECASE)


@reader_errors("a delimited table")
def read_table(
    path: str | os.PathLike[str],
    *,
    orientation: Orientation = "auto",
    kind: str | None = None,
    sep: str | None = None,
) -> AnnData:
    """Read a dense expression table with gene and sample labels.

    The first column holds row labels and the first line column labels. Gzip-compressed
    files (``.gz``) are read directly.

    Parameters
    ----------
    path
        ``.tsv``, ``.txt``, ``.tab`` or ``.csv`` file, optionally ``.gz``.
    orientation
        ``'genes_by_samples'`` (genes are rows), ``'samples_by_genes'`` or ``'auto'``: the
        axis whose labels look more like gene identifiers (Ensembl ids or HGNC-like symbols,
        not barcodes or sample ids) holds the genes; on a tie the longer axis does. If the
        labels give no clear answer, an :class:`~antigenscout.InputError` asks for the
        orientation.
    kind
        ``'bulk'`` or ``'single_cell'``. By default a table is bulk unless it has more than
        1000 samples, all values are integers and the median total per sample is below
        100,000 (UMI counts per cell, not read counts per library): then it is single-cell.
    sep
        Delimiter; by default ``','`` for ``.csv`` and tab otherwise.

    Returns
    -------
    AnnData, samples × genes: dense float32 ``.X`` for bulk, float32 CSR for single cells;
    ``var['gene_id_input']`` and ``uns['antigenscout']['kind']``. Bulk values may be
    non-integer (TPM, FPKM); single-cell values must be integer counts.

    Examples
    --------
    >>> import antigenscout as asc
    >>> path = "tcga_counts.tsv.gz"
    >>> adata = asc.io.read_table(path, orientation="genes_by_samples")  # doctest: +SKIP
    """
    if orientation not in ORIENTATIONS:
        msg = f"orientation must be one of {ORIENTATIONS}; got {orientation!r}"
        raise InputError(msg, param="orientation")
    if kind is not None:
        check_kind(kind)
    p = check_file(path)
    source = repr(str(p))
    df = _read_frame(p, sep=sep, source=source)
    guessed: dict[str, str] = {}
    if orientation == "auto":
        orientation = _detect_orientation(df, source)
        guessed["orientation"] = (
            "genes in rows, samples in columns"
            if orientation == "genes_by_samples"
            else "samples in rows, genes in columns"
        )
    if orientation == "genes_by_samples":
        df = df.T
    values = df.to_numpy()
    if kind is None:
        kind = _guess_kind(values)
        guessed["kind"] = (
            f"bulk samples ({values.shape[0]:,} columns of values; single cells are taken to "
            f"come in more than {SINGLE_CELL_MIN_SAMPLES:,} integer-count columns)"
            if kind == "bulk"
            else f"single cells ({values.shape[0]:,} integer-count columns)"
        )
    obs = pd.DataFrame(index=df.index.astype(str))
    var = pd.DataFrame(index=df.columns.astype(str))
    adata = finalise(values, obs, var, kind=kind, source=source)
    adata.uns["antigenscout"]["orientation"] = orientation
    if guessed:
        adata.uns["antigenscout"]["guessed"] = guessed
    return adata


def _check_gzip_expansion(p: Path, source: str) -> None:
    """Decompress a .gz table in chunks, counting, and stop if it expands too far.

    Too far is past what any expression table does
    (:func:`~antigenscout.io._guard.check_expansion`).

    A pass of its own, before the parser's: counting inside the parser's stream instead
    (one decompression) let pandas hold what it had parsed: a 1.7 MB .tsv.gz of 120,000
    rows of 5,000 zeros was refused after 40 s at 5.3 GB, against 3.5 s and 360 MB this
    way.
    """
    on_disk = p.stat().st_size
    limit = max(MAX_EXPANSION * on_disk, EXPANSION_FLOOR)
    total = 0
    try:
        with gzip.open(p, "rb") as fh:
            while block := fh.read(1 << 24):
                total += len(block)
                if total > limit:
                    check_expansion(total, on_disk, what="text", source=source)
    except InputError:
        raise
    except Exception as e:  # EOFError, zlib.error, BadGzipFile
        raise InputError(describe_failure(source, "a delimited table", e)) from e


def _read_frame(p: Path, *, sep: str | None, source: str) -> pd.DataFrame:
    if p.suffix.lower() == ".gz":
        _check_gzip_expansion(p, source)
    name = p.name.lower().removesuffix(".gz")
    if sep is None:
        sep = "," if name.endswith(".csv") else _sniff(p)
    try:
        df = pd.read_csv(p, sep=sep, index_col=0, compression="infer")
    except pd.errors.EmptyDataError:
        msg = f"input file {source} is empty; give a table with gene and sample labels"
        raise InputError(msg) from None
    except Exception as e:  # EOFError, zlib.error, UnicodeDecodeError, ParserError, …
        raise InputError(describe_failure(source, "a delimited table", e)) from e
    bad = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    if bad:
        example = df[bad[0]].dropna().astype(str).head(1).tolist()
        msg = (
            f"{len(bad)} columns of {source} are not numeric ({', '.join(map(repr, bad[:3]))}"
            f"{', …' if len(bad) > 3 else ''}; e.g. value {example[0] if example else ''!r}); "  # noqa: PLR2004
            "keep one label column followed by numeric expression columns only"
        )
        raise InputError(msg)
    return df


def _sniff(p: Path) -> str:
    opener = gzip.open if p.suffix == ".gz" else open
    try:
        with opener(p, "rt", encoding="utf-8", errors="replace") as fh:
            line = fh.readline(1 << 20)
    except Exception as e:  # EOFError, zlib.error, BadGzipFile (OSError), …
        raise InputError(describe_failure(repr(str(p)), "a delimited table", e)) from e
    return "," if line.count(",") > line.count("\t") else "\t"


def gene_like_fraction(labels: pd.Index | list[str]) -> float:
    """Fraction of ``labels`` that look like gene identifiers (heuristic, no reference)."""
    labels = [str(x) for x in labels]
    if not labels:
        return 0.0
    hits = 0
    for s in labels:
        if _ENSEMBL.match(s) or (
            len(s) <= 20  # noqa: PLR2004
            and _SYMBOL.match(s)
            and not _BARCODE.search(s)
            and not _SAMPLE.match(s)
            and not s.isdigit()
        ):
            hits += 1
    return hits / len(labels)


def _detect_orientation(df: pd.DataFrame, source: str) -> str:
    rows = gene_like_fraction(df.index[:2000])
    cols = gene_like_fraction(df.columns[:2000])
    if rows - cols > 0.2:  # noqa: PLR2004
        return "genes_by_samples"
    if cols - rows > 0.2:  # noqa: PLR2004
        return "samples_by_genes"
    if max(rows, cols) >= 0.5 and max(df.shape) >= 2 * min(df.shape):  # noqa: PLR2004
        return "genes_by_samples" if df.shape[0] > df.shape[1] else "samples_by_genes"
    msg = (
        f"cannot tell which axis of {source} holds genes (rows {rows:.0%} and columns "
        f"{cols:.0%} gene-like); pass orientation='genes_by_samples' or 'samples_by_genes' "
        "(CLI: --orientation genes-by-samples or samples-by-genes)"
    )
    raise InputError(msg)


def _guess_kind(values: np.ndarray) -> str:
    """Bulk unless many samples of integer UMI-scale counts (see :func:`read_table`)."""
    if values.shape[0] <= SINGLE_CELL_MIN_SAMPLES:
        return "bulk"
    finite = np.isfinite(values).all() if values.dtype.kind == "f" else True
    if not finite or not is_integer_valued(values):
        return "bulk"
    median_total = float(np.median(values.sum(axis=1)))
    return "single_cell" if median_total < SINGLE_CELL_MAX_MEDIAN_TOTAL else "bulk"
