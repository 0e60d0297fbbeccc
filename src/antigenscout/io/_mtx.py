"""A guarded MatrixMarket reader: the header is validated before the body is parsed.

``scipy.io.mmread`` (fast_matrix_market underneath) dies with SIGFPE on degenerate
headers such as a size line ``0 0``; here the banner, comments and size line are parsed
in Python, the declared sizes are checked against the expected shape and the machine's
memory, and only then is the body parsed by pandas' C tokenizer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import IO

import numpy as np
import pandas as pd
from scipy import sparse

from .._errors import InputError
from ._guard import check_fits

__all__ = ["MtxHeader", "parse_header", "read_mtx"]

#: Longest header line accepted (banner, comment or size line), in bytes.
MAX_HEADER_LINE = 1 << 16
#: Most comment lines accepted before the size line.
MAX_COMMENT_LINES = 10_000
#: Bytes per stored entry while parsing a coordinate body (3 int64/float64 columns, the
#: parser's buffers and the COO → CSR conversion).
_COORD_BYTES = 64
_DENSE_BYTES = 24

_INT = re.compile(rb"^\d{1,19}$")
FIELDS = ("integer", "real", "double", "pattern")


@dataclass(frozen=True)
class MtxHeader:
    """What a MatrixMarket header declares."""

    format: str  #: ``'coordinate'`` or ``'array'``
    field: str  #: ``'integer'``, ``'real'``, ``'double'`` or ``'pattern'``
    rows: int
    cols: int
    nnz: int  #: stored entries (``rows × cols`` for the array format)


def parse_header(fh: IO[bytes], source: str) -> MtxHeader:
    """Read and validate the banner, comment lines and size line of a MatrixMarket file.

    Parameters
    ----------
    fh
        Binary file handle at the start of the file; left at the first body line.
    source
        Quoted file name, used in messages.

    Returns
    -------
    The declared :class:`MtxHeader`.

    Raises
    ------
    InputError
        For a missing or malformed banner, an object other than ``matrix``, a ``complex``
        or unknown field, a symmetry other than ``general``, or a size line that is not
        2 (array) or 3 (coordinate) non-negative integers, or declares more entries than
        ``rows × cols``.
    """
    banner = _line(fh, source)
    tokens = banner.split()
    if not tokens or tokens[0].lower() != b"%%matrixmarket":
        msg = (
            f"{source} does not start with a '%%MatrixMarket' banner; "
            "give the matrix.mtx written by CellRanger (or scipy.io.mmwrite)"
        )
        raise InputError(msg)
    words = [t.decode("ascii", "replace").lower() for t in tokens[1:]]
    if len(words) != 4 or words[0] != "matrix":  # noqa: PLR2004
        msg = (
            f"the MatrixMarket banner of {source} is {banner.decode('ascii', 'replace')!r}; "
            "expected '%%MatrixMarket matrix coordinate integer general'"
        )
        raise InputError(msg)
    fmt, field, symmetry = words[1:]
    if fmt not in ("coordinate", "array"):
        msg = f"{source} declares MatrixMarket format {fmt!r}; use 'coordinate' or 'array'"
        raise InputError(msg)
    if field == "complex":
        msg = (
            f"{source} holds complex numbers (MatrixMarket field 'complex'); expression "
            "values must be integer or real: give the raw count matrix"
        )
        raise InputError(msg)
    if field not in FIELDS:
        msg = f"{source} declares MatrixMarket field {field!r}; use 'integer' or 'real'"
        raise InputError(msg)
    if symmetry != "general":
        msg = (
            f"{source} declares a {symmetry!r} matrix; a genes × cells matrix is 'general': "
            "re-export it with scipy.io.mmwrite or CellRanger"
        )
        raise InputError(msg)
    for _ in range(MAX_COMMENT_LINES):
        line = _line(fh, source)
        if line.strip() and not line.lstrip().startswith(b"%"):
            break
    else:
        msg = f"{source} has more than {MAX_COMMENT_LINES} comment lines; the file is corrupt"
        raise InputError(msg)
    parts = line.split()
    want = 3 if fmt == "coordinate" else 2
    if len(parts) != want or not all(_INT.match(x) for x in parts):
        shown = line.strip().decode("ascii", "replace")[:80]
        msg = (
            f"the size line of {source} is {shown!r}; a {fmt} MatrixMarket file needs "
            f"{want} non-negative integers ({'rows cols entries' if want == 3 else 'rows cols'})"  # noqa: PLR2004
        )
        raise InputError(msg)
    rows, cols = int(parts[0]), int(parts[1])
    nnz = int(parts[2]) if fmt == "coordinate" else rows * cols
    if nnz > rows * cols:
        msg = (
            f"{source} declares {nnz:,} entries in a {rows:,} × {cols:,} matrix, more than "
            "it has cells; the size line is corrupt: re-export the file"
        )
        raise InputError(msg)
    return MtxHeader(format=fmt, field=field, rows=rows, cols=cols, nnz=nnz)


def _line(fh: IO[bytes], source: str) -> bytes:
    line = fh.readline(MAX_HEADER_LINE)
    if not line:
        msg = f"{source} ends inside its MatrixMarket header; the file is truncated"
        raise InputError(msg)
    if len(line) >= MAX_HEADER_LINE and not line.endswith(b"\n"):
        msg = (
            f"{source} has a header line longer than {MAX_HEADER_LINE} bytes; "
            "it is not a MatrixMarket file"
        )
        raise InputError(msg)
    return line


def read_mtx(
    fh: IO[bytes], source: str, *, shape: tuple[int, int] | None = None
) -> sparse.coo_matrix:
    """Read a MatrixMarket file defensively.

    Parameters
    ----------
    fh
        Binary file handle at the start of the file.
    source
        Quoted file name, used in messages.
    shape
        Expected ``(rows, cols)``; a header declaring another shape is refused before the
        body is read.

    Returns
    -------
    The matrix as COO, int64 values for ``integer``, float64 for ``real``, ones (int8)
    for ``pattern``.

    Raises
    ------
    InputError
        For a bad header (see :func:`parse_header`), a declared size that does not match
        ``shape`` or would not fit in memory, a body with the wrong number of entries or
        columns, non-numeric values, or indices outside the declared shape.
    """
    head = parse_header(fh, source)
    if shape is not None and (head.rows, head.cols) != shape:
        msg = (
            f"{source} declares a {head.rows:,} × {head.cols:,} matrix but there are "
            f"{shape[0]:,} features and {shape[1]:,} barcodes; the three files must come "
            "from the same run"
        )
        raise InputError(msg)
    per = _COORD_BYTES if head.format == "coordinate" else _DENSE_BYTES
    check_fits(
        float(head.nnz) * per,
        what=f"{head.nnz:,} entries in a {head.rows:,} × {head.cols:,} matrix",
        source=source,
    )
    value_dtype = np.int64 if head.field == "integer" else np.float64
    if head.format == "array":
        values = _body(fh, head, 1, {0: value_dtype}, source)
        dense = values[0].to_numpy().reshape((head.rows, head.cols), order="F")
        return sparse.coo_matrix(dense)
    if head.field == "pattern":
        body = _body(fh, head, 2, {0: np.int64, 1: np.int64}, source)
        data = np.ones(head.nnz, dtype=np.int8)
    else:
        body = _body(fh, head, 3, {0: np.int64, 1: np.int64, 2: value_dtype}, source)
        data = body[2].to_numpy() if head.nnz else np.zeros(0, dtype=value_dtype)
    i = body[0].to_numpy() if head.nnz else np.zeros(0, dtype=np.int64)
    j = body[1].to_numpy() if head.nnz else np.zeros(0, dtype=np.int64)
    for name, idx, n in (("row", i, head.rows), ("column", j, head.cols)):
        if idx.size and (idx.min() < 1 or idx.max() > n):
            bad = idx.min() if idx.min() < 1 else idx.max()
            msg = (
                f"{source} has a {name} index {bad} outside 1..{n}; "
                "the matrix body is corrupt: re-export it"
            )
            raise InputError(msg)
    return sparse.coo_matrix((data, (i - 1, j - 1)), shape=(head.rows, head.cols))


def _body(
    fh: IO[bytes], head: MtxHeader, ncols: int, dtypes: dict[int, type], source: str
) -> pd.DataFrame:
    """Parse exactly ``head.nnz`` lines of ``ncols`` whitespace-separated numbers."""
    if head.nnz == 0:
        if fh.read(1 << 16).strip():
            msg = f"{source} declares no entries but has data after its size line; re-export it"
            raise InputError(msg)
        return pd.DataFrame({k: np.zeros(0, dtype=v) for k, v in dtypes.items()})
    try:
        body = pd.read_csv(
            fh,
            sep=r"\s+",
            header=None,
            comment="%",
            nrows=head.nnz + 1,
            dtype=dtypes,  # type: ignore[arg-type]
            engine="c",
            on_bad_lines="error",
        )
    except pd.errors.EmptyDataError:
        body = pd.DataFrame()
    except (ValueError, OverflowError, pd.errors.ParserError) as e:
        msg = (
            f"the entries of {source} are not {ncols} numbers per line "
            f"({(str(e).splitlines() or [''])[0][:160]}); the matrix body is corrupt: "
            "re-export it"
        )
        raise InputError(msg) from e
    if body.shape[0] != head.nnz:
        msg = (
            f"{source} declares {head.nnz:,} entries but holds {body.shape[0]:,}"
            f"{'+' if body.shape[0] > head.nnz else ''}; the file is truncated or corrupt: "
            "re-export it"
        )
        raise InputError(msg)
    if body.shape[1] != ncols:
        msg = (
            f"the entries of {source} have {body.shape[1]} columns, not {ncols} as its "
            f"'{head.format} {head.field}' header says; re-export the file"
        )
        raise InputError(msg)
    return body
