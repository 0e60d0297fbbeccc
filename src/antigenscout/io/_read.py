"""Dispatcher :func:`read` and the checks every reader shares.

Every reader returns an :class:`~anndata.AnnData` with cells or samples as ``obs``, genes as
``var``, raw values in ``.X`` (a float32 CSR matrix for single cells, a dense float32 array
for bulk samples), the identifiers as found in the file in ``var['gene_id_input']`` and
``uns['antigenscout'] = {'kind': 'single_cell' | 'bulk', 'source': <path>}``.
"""

from __future__ import annotations

import inspect
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from anndata import AnnData
from anndata.utils import make_index_unique
from scipy import sparse

from .._errors import InputError, warn

__all__ = ["join_obs", "read"]

Kind = Literal["single_cell", "bulk"]
KINDS: tuple[str, ...] = ("single_cell", "bulk")

#: Largest integer a float32 holds exactly; larger counts are kept as float64.
_F32_EXACT = 2**24
#: Single-cell values below this maximum that are not whole numbers look log1p-normalised.
LOG_MAX = 20.0
#: Bulk values whose maximum is at most this, mostly non-integer, look log-scale.
BULK_LOG_MAX = 25.0


#: Formats whose files hold several matrices, so that ``layer=`` can pick one.
LAYERED: frozenset[str] = frozenset({"h5ad", "zarr", "loom", "soma"})

#: Human names of the formats, used in messages.
FORMAT_NAMES: dict[str, str] = {
    "h5ad": "AnnData .h5ad",
    "zarr": "AnnData .zarr",
    "loom": "loom",
    "10x_h5": "10x HDF5 (.h5)",
    "10x_mtx": "10x MatrixMarket",
    "table": "delimited table (TSV/CSV)",
    "soma": "TileDB-SOMA",
}


def read(
    path: str | os.PathLike[str],
    *,
    layer: str | None = None,
    kind: str | None = None,
    backed: bool = False,
    obs: str | os.PathLike[str] | pd.DataFrame | None = None,
    **options: Any,
) -> AnnData:
    """Read an expression matrix, choosing the reader from the path.

    ========================================  ==========================================
    path                                      reader
    ========================================  ==========================================
    ``*.h5ad``                                :func:`~antigenscout.io.read_h5ad`
    ``*.zarr`` folder (AnnData zarr store)    :func:`~antigenscout.io.read_zarr`
    ``*.loom``                                :func:`~antigenscout.io.read_loom`
    ``*.h5`` (CellRanger HDF5)                :func:`~antigenscout.io.read_10x_h5`
    directory, ``matrix.mtx(.gz)``            :func:`~antigenscout.io.read_10x_mtx`
    ``*.tsv``, ``*.csv``, ``*.txt`` (+.gz)    :func:`~antigenscout.io.read_table`
    ``soma://``, ``tiledb://``, SOMA folder   :func:`~antigenscout.io.read_soma`
    ========================================  ==========================================

    Parameters
    ----------
    path
        File, directory or SOMA URI.
    layer
        Matrix holding the raw counts, for formats with several (h5ad, zarr, loom, SOMA);
        ``None`` lets the reader find the counts. Giving a layer for a format without
        layers (10x, tables) raises :class:`~antigenscout.InputError`.
    kind
        ``'single_cell'`` or ``'bulk'``; ``None`` uses the reader's default.
    backed
        Open an ``.h5ad`` file read-only on disk (``backed='r'``) instead of loading ``.X``;
        see :func:`~antigenscout.io.read_h5ad`. Other formats are always read into memory,
        so ``backed=True`` with them raises :class:`~antigenscout.InputError`.
    obs
        Cell metadata to join on the cell names (barcodes): a TSV/CSV file whose first
        column holds them, or a DataFrame indexed by them (:func:`join_obs`). This is how a
        10x ``.h5``, an mtx folder or a table, which cannot carry labels, gets its malignant,
        patient and compartment columns (CLI: ``--obs FILE``).
    **options
        Format-specific options passed to the chosen reader (e.g. ``orientation=`` for
        tables, ``obs_value_filter=`` for SOMA); an option the format does not have raises
        :class:`~antigenscout.InputError`.

    Returns
    -------
    AnnData with cells/samples × genes, raw values in ``.X``.

    Examples
    --------
    >>> import antigenscout as asc
    >>> adata = asc.io.read("tumour.h5ad", layer="counts")  # doctest: +SKIP
    """
    fmt, target = detect_format(path)
    reader = _reader(fmt)
    if layer is not None and fmt not in LAYERED:
        msg = (
            f"layer={layer!r} was given but {FORMAT_NAMES[fmt]} files have no layers; "
            "drop the layer option (CLI: --layer) for this input"
        )
        raise InputError(msg)
    if backed and fmt != "h5ad":
        msg = (
            f"backed reading is only available for .h5ad files, not {FORMAT_NAMES[fmt]}; "
            "drop backed=True (the file is read into memory)"
        )
        raise InputError(msg)
    params = inspect.signature(reader).parameters
    unknown = [k for k in options if k not in params]
    if unknown:
        allowed = [k for k in params if k not in ("path", "uri", "layer", "kind", "backed")]
        msg = (
            f"option {unknown[0]!r} does not apply to {FORMAT_NAMES[fmt]} files "
            f"(their options: {', '.join(allowed) or 'none'}); drop it"
        )
        raise InputError(msg)
    kwargs: dict[str, Any] = dict(options)
    if layer is not None:
        kwargs["layer"] = layer
    if kind is not None:
        kwargs["kind"] = kind
    if backed:
        kwargs["backed"] = True
    adata = reader(target, **kwargs)
    if obs is not None:
        join_obs(adata, obs)
    return adata


def join_obs(adata: AnnData, obs: str | os.PathLike[str] | pd.DataFrame) -> AnnData:
    """Join a table of cell metadata onto ``adata.obs`` by cell name, in place.

    The table (a TSV/CSV file whose first column holds the cell names, or a DataFrame
    indexed by them) must name at least one of ``adata``'s cells, hold each name once and
    bring no column ``adata.obs`` already has. Cells without a row get empty labels, rows
    naming no cell are ignored; both counts are kept in ``adata.uns['antigenscout']
    ['obs_from']`` and said by the CLI.

    >>> import anndata as ad, numpy as np, pandas as pd
    >>> a = ad.AnnData(np.ones((3, 1)), obs=pd.DataFrame(index=["c1", "c2", "c3"]))
    >>> _ = join_obs(a, pd.DataFrame({"patient": ["P1", "P2"]}, index=["c1", "c3"]))
    >>> a.obs["patient"].tolist(), a.uns["antigenscout"]["obs_from"]["cells_without_row"]
    (['P1', nan, 'P2'], 1)
    """
    if isinstance(obs, pd.DataFrame):
        table, where = obs.copy(), "the obs table"
    else:
        p = check_file(obs, what="obs table")
        where = repr(str(p))
        sep = "," if p.name.lower().removesuffix(".gz").endswith(".csv") else "\t"
        try:
            table = pd.read_csv(p, sep=sep, index_col=0, dtype=str, compression="infer")
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, EOFError) as e:
            msg = (
                f"cannot read the obs table {where} ({type(e).__name__}: {e}); give a TSV or "
                "CSV file whose first column holds the cell names and whose other columns hold "
                "labels (malignant status, patient, ...)"
            )
            raise InputError(msg) from None
    table.index = table.index.astype(str)
    if table.empty or table.shape[1] == 0:
        msg = (
            f"the obs table {where} has no rows or no label columns; it needs the cell names "
            "in its first column and one column per label"
        )
        raise InputError(msg)
    dup = table.index[table.index.duplicated()].unique()
    if len(dup):
        msg = (
            f"the obs table {where} names {len(dup):,} cells more than once (e.g. "
            f"{_examples(dup)}); keep one row per cell"
        )
        raise InputError(msg)
    clash = [c for c in table.columns if c in adata.obs.columns]
    if clash:
        msg = (
            f"the obs table {where} has columns the input already has: {', '.join(clash)}; "
            "rename them in the table"
        )
        raise InputError(msg)
    names = pd.Index(adata.obs_names.astype(str))
    found = names.isin(table.index)
    if not found.any():
        msg = (
            f"no cell name of the obs table {where} matches the input's cells (input: "
            f"{_examples(names)}; table: {_examples(table.index)}); its first column must "
            "hold the cell names (barcodes) exactly as the input spells them"
        )
        raise InputError(msg)
    joined = table.reindex(names)
    joined.index = adata.obs_names
    adata.obs = pd.concat([adata.obs, joined], axis=1)
    info = adata.uns.setdefault("antigenscout", {})
    info["obs_from"] = {
        "source": where,
        "path": None if isinstance(obs, pd.DataFrame) else str(Path(obs).resolve()),
        "columns": [str(c) for c in table.columns],
        "cells_matched": int(found.sum()),
        "cells_without_row": int((~found).sum()),
        "rows_without_cell": int((~table.index.isin(names)).sum()),
    }
    return adata


def detect_format(path: str | os.PathLike[str]) -> tuple[str, Any]:
    """Return ``(format, target)`` for ``path``; ``target`` is what the reader is given.

    Raises :class:`InputError` when the path does not exist or its format is unknown.
    """
    text = os.fspath(path)
    if "://" in text and not text.startswith("file://"):
        return "soma", text
    p = Path(text.removeprefix("file://"))
    name = p.name.lower()
    if p.is_dir():
        if (p / "__tiledb_group.tdb").exists() or (p / "__group").is_dir():
            return "soma", str(p)
        if name.endswith(".zarr") or any(
            (p / marker).is_file() for marker in (".zgroup", "zarr.json", ".zattrs")
        ):
            return "zarr", p
        return "10x_mtx", p
    check_file(p)
    if name.endswith(".h5ad"):
        return "h5ad", p
    if name.endswith(".loom"):
        return "loom", p
    if name.endswith((".h5", ".hdf5")):
        return "10x_h5", p
    if name.endswith((".mtx", ".mtx.gz")):
        return "10x_mtx", p.parent
    stem = name.removesuffix(".gz")
    if stem.endswith((".tsv", ".csv", ".txt", ".tab")):
        return "table", p
    msg = (
        f"cannot tell the format of {str(p)!r} from its name; use a .h5ad, .zarr, .loom, "
        ".h5 (10x), .mtx folder, or .tsv/.csv(.gz) file"
    )
    raise InputError(msg)


def _reader(fmt: str) -> Callable[..., AnnData]:
    from ._h5ad import read_h5ad
    from ._loom import read_loom
    from ._soma import read_soma
    from ._table import read_table
    from ._tenx import read_10x_h5, read_10x_mtx
    from ._zarr import read_zarr

    readers: dict[str, Callable[..., AnnData]] = {
        "h5ad": read_h5ad,
        "zarr": read_zarr,
        "loom": read_loom,
        "10x_h5": read_10x_h5,
        "10x_mtx": read_10x_mtx,
        "table": read_table,
        "soma": read_soma,
    }
    return readers[fmt]


# --------------------------------------------------------------------------- shared checks


def check_file(path: str | os.PathLike[str], *, what: str = "input file") -> Path:
    """Raise :class:`InputError` unless ``path`` is an existing regular file."""
    p = Path(path)
    if not p.exists():
        msg = f"{what} {str(p)!r} does not exist; check the path"
        raise InputError(msg)
    if p.is_dir():
        msg = f"{what} {str(p)!r} is a directory, not a file; give the path of the file"
        raise InputError(msg)
    if not p.is_file():  # a FIFO, socket or device: reading it would wait for a writer
        msg = (
            f"{what} {str(p)!r} is not a regular file (a pipe, socket or device); save the "
            "data to a file and give its path"
        )
        raise InputError(msg)
    if not os.access(p, os.R_OK):
        msg = f"{what} {str(p)!r} is not readable; check its permissions"
        raise InputError(msg)
    return p


def check_kind(kind: str) -> None:
    """Validate the ``kind`` parameter."""
    if kind not in KINDS:
        msg = f"kind must be one of {KINDS}; got {kind!r}"
        raise InputError(msg)


def _examples(names: pd.Index | list[str] | np.ndarray, n: int = 5) -> str:
    items = [str(x) for x in list(names)[:n]]
    more = len(names) - len(items)
    return ", ".join(repr(x) for x in items) + (f" and {more} more" if more > 0 else "")


def _stored(X: Any) -> np.ndarray:
    """The stored values of a dense or sparse matrix, as a NumPy array."""
    return X.data if isinstance(X, sparse.spmatrix | sparse.sparray) else np.asarray(X)


def check_dtype(dtype: Any, source: str, *, where: str = "the matrix") -> None:
    """Raise :class:`InputError` unless ``dtype`` is integer, float or bool.

    Parameters
    ----------
    dtype
        The dtype of the values (anything :class:`numpy.dtype` accepts).
    source
        Quoted file name, used in the message.
    where
        Which matrix of the file, e.g. ``"layers['counts']"``.
    """
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = np.dtype(object)
    if dt.kind in "biuf":
        return
    what = {
        "c": "complex numbers",
        "U": "text",
        "S": "text",
        "O": "text or mixed objects",
        "M": "dates",
        "m": "time spans",
    }.get(dt.kind, "non-numeric values")
    msg = (
        f"{where} in {source} holds {what} (dtype {dt}); expression values must be integer, "
        "float or bool: store the raw counts as numbers"
    )
    raise InputError(msg)


def is_integer_valued(X: Any) -> bool:
    """Whether every stored value of ``X`` is a whole number (False for non-numeric X)."""
    data = _stored(X)
    if data.dtype.kind in "biu":
        return True
    if data.dtype.kind != "f":
        return False
    data = data[np.isfinite(data)]  # NaN/inf are reported by check_values
    return bool(np.all(np.equal(np.mod(data, 1), 0)))


def check_sparse_structure(X: Any, source: str) -> None:
    """Refuse a CSR/CSC matrix whose pointers or indices are corrupt (an index outside the
    shape, pointers that decrease or disagree with the number of values): the compiled code
    that reads it would read outside its arrays and crash the process.

    >>> from scipy import sparse
    >>> bad = sparse.csr_matrix((np.ones(2), np.array([0, 7]), np.array([0, 1, 2])), shape=(2, 3))
    >>> check_sparse_structure(bad, "'x'")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    antigenscout._errors.InputError: the sparse matrix in 'x' has column indices outside 0..2 ...
    """
    if not sparse.issparse(X) or X.format not in ("csr", "csc"):
        return
    n_major, n_minor = X.shape if X.format == "csr" else X.shape[::-1]
    axis = "column" if X.format == "csr" else "row"
    ptr, idx = np.asarray(X.indptr), np.asarray(X.indices)
    if (
        len(ptr) != n_major + 1
        or (len(ptr) and (ptr[0] != 0 or ptr[-1] != len(idx)))
        or len(X.data) != len(idx)
        or (len(ptr) > 1 and bool((np.diff(ptr) < 0).any()))
    ):
        msg = (
            f"the sparse matrix in {source} has corrupt pointers ({len(ptr):,} pointers for "
            f"{n_major:,} rows, {len(idx):,} indices, {len(X.data):,} values); the file is "
            "corrupt: re-export it"
        )
        raise InputError(msg)
    if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= n_minor):
        bad = int(((idx < 0) | (idx >= n_minor)).sum())
        msg = (
            f"the sparse matrix in {source} has {axis} indices outside 0..{n_minor - 1} "
            f"({bad:,} of them); the file is corrupt: re-export it"
        )
        raise InputError(msg)


def check_values(X: Any, source: str, *, allow_nan: bool = False) -> None:
    """Raise :class:`InputError` for a non-numeric dtype or NaN, infinite or negative values
    (``allow_nan``: NaN marks a gene not measured, as in bulk medians, and passes)."""
    data = _stored(X)
    check_dtype(data.dtype, source)
    if np.issubdtype(data.dtype, np.floating):
        bad = np.isinf(data) if allow_nan else ~np.isfinite(data)
        if bad.any():
            msg = (
                f"the matrix in {source} contains {int(bad.sum())} NaN or infinite values; "
                "replace missing counts with 0 or drop those cells/genes"
            )
            raise InputError(msg)
    if not data.size:
        return
    # NaN passed above only when allowed; nanmin then skips it (all NaN: nothing negative)
    with np.errstate(invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmin of an all-NaN array
        low = np.nanmin(data) if allow_nan and data.dtype.kind == "f" else data.min()
    if low < 0:
        n = int((data < 0).sum())
        msg = (
            f"the matrix in {source} contains {n} negative values (minimum {low:g}); "
            "antigenscout needs raw non-negative counts, not scaled, centred or log-ratio data"
        )
        raise InputError(msg)


#: Fewest cells and genes from which integer counts that never exceed
#: :data:`ROUNDED_LOG_MAX` are taken to be rounded log values rather than shallow counts (a
#: warning, not an error): over a transcriptome, some gene (MALAT1, a mitochondrial one)
#: reaches more reads than that in some cell; a small panel may not.
ROUNDED_LOG_CELLS = 200
ROUNDED_LOG_GENES = 1000
ROUNDED_LOG_MAX = 10.0


def check_counts(X: Any, source: str, kind: str, *, where: str = "X") -> None:
    """Validate an in-memory expression matrix as the readers do, for the API's functions.

    Refuses non-numeric, infinite and negative values, NaN in single cells (bulk values may
    be NaN where a gene was not measured), and, for single cells, non-integer values (with
    how they look normalised) (:func:`check_values`); warns when integer
    single-cell values over a transcriptome (:data:`ROUNDED_LOG_CELLS` cells and
    :data:`ROUNDED_LOG_GENES` genes or more) hold only 0 and 1 (binarised) or never exceed
    :data:`ROUNDED_LOG_MAX` (rounded log values). A backed (on-disk) matrix is left to the
    reader, which checked it.

    >>> import numpy as np
    >>> check_counts(np.array([[0, 3], [50, 1]]), "'x'", "single_cell")
    >>> logged = np.log1p(np.array([[0.0, 3.0], [5.0, 1.0]]))
    >>> check_counts(logged, "'x'", "single_cell")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    antigenscout._errors.InputError: X of 'x' holds non-integer values (it looks ...
    """
    if not isinstance(X, np.ndarray | sparse.spmatrix | sparse.sparray):
        return
    check_sparse_structure(X, source)
    # bulk values may be NaN where a gene was not measured (datasets.tcga_medians)
    check_values(X, source, allow_nan=kind != "single_cell")
    if kind != "single_cell":
        return
    if not is_integer_valued(X):
        hint = normalisation_hint(X) or "non-integer values"
        msg = (
            f"{where} of {source} holds non-integer values ({hint}); single cells need raw "
            "counts: pass layer= naming the raw counts layer (CLI: --layer)"
        )
        raise InputError(msg)
    n, g = X.shape
    if n < ROUNDED_LOG_CELLS or g < ROUNDED_LOG_GENES:
        return
    data = _stored(X)
    top = float(data.max()) if data.size else 0.0
    if data.size and top <= 1:
        warn(
            f"{where} of {source} holds only 0 and 1: it looks binarised, and positivity "
            "models need raw counts (check that this is the counts matrix)"
        )
    elif data.size and top <= ROUNDED_LOG_MAX:
        warn(
            f"{where} of {source} never exceeds {top:g} over {n:,} cells: it may be rounded "
            "log values rather than raw counts (check that this is the counts matrix)"
        )


def normalisation_hint(X: Any) -> str:
    """Describe how a non-integer matrix looks normalised, or ``''`` if it does not.

    ``'looks log1p-normalised …'`` when the values are small non-integers (maximum below
    :data:`LOG_MAX`), ``'looks CP10k/CPM-normalised …'`` when every non-empty row sums to
    about the same total (coefficient of variation below 1e-3).
    """
    data = _stored(X)
    if data.dtype.kind != "f":
        return ""
    finite = data[np.isfinite(data)]
    if finite.size == 0:
        return ""
    top = float(finite.max())
    if top < LOG_MAX:
        return f"it looks log1p-normalised (non-integer values, maximum {top:.3g})"
    totals = np.asarray(X.sum(axis=1), dtype=np.float64).ravel()
    totals = totals[np.isfinite(totals) & (totals > 0)]
    if totals.size >= 2 and totals.std() <= 1e-3 * totals.mean():
        return f"it looks CP10k/CPM-normalised (every cell sums to about {totals.mean():.6g})"
    return ""


def looks_log_scale(X: Any) -> bool:
    """Whether bulk values look log-transformed rather than linear TPM/FPKM/counts.

    True when the largest value is at most :data:`BULK_LOG_MAX` and more than half of the
    non-zero values are not whole numbers (linear TPM of a transcriptome reaches the
    thousands for its top genes; log2(TPM+1) stays below ~20).
    """
    data = _stored(X)
    if data.dtype.kind != "f":
        return False
    nz = data[np.isfinite(data) & (data != 0)]
    if nz.size == 0:
        return False
    return bool(nz.max() <= BULK_LOG_MAX and np.mean(np.mod(nz, 1) != 0) > 0.5)


def check_unique_genes(names: pd.Index, source: str) -> None:
    """Raise :class:`InputError` if gene identifiers repeat, naming a few of them."""
    dup = names[names.duplicated()].unique()
    if len(dup):
        msg = (
            f"{len(dup)} gene ids occur more than once in {source} ({_examples(dup)}); "
            "sum or drop the duplicated rows so each gene appears once"
        )
        raise InputError(msg)


def _as_float(X: Any) -> Any:
    """Cast to float32 unless that would round large integers, then float64."""
    data = X.data if isinstance(X, sparse.spmatrix | sparse.sparray) else np.asarray(X)
    big = data.size and np.abs(data).max() > _F32_EXACT
    dtype = np.float64 if big else np.float32
    return X.astype(dtype, copy=False)


def finalise(
    X: Any,
    obs: pd.DataFrame,
    var: pd.DataFrame,
    *,
    kind: str,
    source: str,
    require_counts: bool | None = None,
    obsm: dict[str, Any] | None = None,
    obsp: dict[str, Any] | None = None,
) -> AnnData:
    """Validate a cells/samples × genes matrix and wrap it as AnnData.

    Parameters
    ----------
    X
        Matrix, obs × var, dense or sparse, of integer, float or bool values.
    obs, var
        Annotation frames; their index gives ``obs_names`` and ``var_names``.
    kind
        ``'single_cell'`` (stored as CSR) or ``'bulk'`` (stored dense).
    source
        Text naming where the data came from, used in messages.
    require_counts
        Whether non-integer values are an error; defaults to ``kind == 'single_cell'``.
    obsm
        Extra per-cell matrices (e.g. protein counts).
    obsp
        Pairwise per-cell matrices (e.g. a neighbour graph's ``connectivities`` and
        ``distances``); each must be ``n_obs × n_obs`` in the order of ``obs``.

    Returns
    -------
    The AnnData, with ``uns['antigenscout'] = {'kind': kind, 'source': source}``.

    Raises
    ------
    InputError
        For an empty or all-zero matrix, a non-numeric dtype, NaN, infinite or negative
        values, repeated gene ids, non-integer single-cell values (the message says when
        they look log1p- or CP10k-normalised) or a mis-shaped ``obsp`` matrix. Bulk values
        that look log-scale give an :class:`~antigenscout.AntigenscoutWarning`.
    """
    check_kind(kind)
    check_sparse_structure(X, source)
    n_obs, n_var = X.shape
    if n_obs == 0 or n_var == 0:
        msg = (
            f"the matrix in {source} is empty ({n_obs} cells/samples × {n_var} genes); "
            "check that the file holds expression values"
        )
        raise InputError(msg)
    var = var.copy()
    var.index = pd.Index(var.index.astype(str), name=None)
    obs = obs.copy()
    obs.index = pd.Index(obs.index.astype(str), name=None)
    if not obs.index.is_unique:
        obs.index = make_index_unique(obs.index)
    check_unique_genes(var.index, source)
    check_values(X, source)
    if require_counts is None:
        require_counts = kind == "single_cell"
    if require_counts and not is_integer_valued(X):
        hint = normalisation_hint(X)
        msg = (
            f"the matrix in {source} holds non-integer values"
            f"{'; ' + hint if hint else ' (normalised data?)'}; "
            "antigenscout needs raw integer counts: supply the unnormalised matrix"
        )
        raise InputError(msg)
    if kind == "single_cell":
        X = sparse.csr_matrix(X)
        X.sum_duplicates()
        X.eliminate_zeros()
        empty = X.nnz == 0
    else:
        if isinstance(X, sparse.spmatrix | sparse.sparray):
            X = X.toarray()
        empty = not np.any(X)
    if empty:
        msg = (
            f"no counts in {source}: every value of its {n_obs} × {n_var} matrix is 0; "
            "give the file (or layer=) that holds the expression values"
        )
        raise InputError(msg)
    if kind == "bulk" and looks_log_scale(X):
        warn(
            f"the values in {source} look log-scale (all ≤ {BULK_LOG_MAX:g}, mostly "
            "non-integer); antigenscout expects linear-scale TPM/FPKM or counts: pass "
            "linear values (e.g. 2**x - 1 of log2(TPM+1))"
        )
    X = _as_float(X)
    if "gene_id_input" not in var.columns:
        var.insert(0, "gene_id_input", var.index.to_numpy(dtype=object))
    if obsm:
        obsm = {k: _align_obsm(v, obs.index) for k, v in obsm.items()}
    if obsp:
        for key, value in obsp.items():
            if tuple(value.shape) != (n_obs, n_obs):
                msg = (
                    f"obsp[{key!r}] in {source} is {value.shape[0]} × {value.shape[1]} but "
                    f"there are {n_obs} cells; recompute the neighbour graph on these cells"
                )
                raise InputError(msg)
    adata = AnnData(X=X, obs=obs, var=var, obsm=obsm, obsp=obsp or None)
    adata.uns["antigenscout"] = {"kind": kind, "source": source}
    return adata


def _align_obsm(value: Any, index: pd.Index) -> Any:
    if isinstance(value, pd.DataFrame):
        value = value.copy()
        value.index = index
    return value
