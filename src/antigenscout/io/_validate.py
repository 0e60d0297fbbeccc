"""Checks shared by every reader, the CLI and the API, and :func:`finalise`.

:func:`finalise` wraps a validated matrix as AnnData.

A leaf module: it imports nothing else from :mod:`antigenscout.io`, so the readers, the
dispatcher :func:`~antigenscout.io.read` and the tools (``tl``) all import their checks from
here and the imports point one way.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData
from anndata.utils import make_index_unique
from scipy import sparse

from .._errors import InputError, warn
from .._types import DATA_KINDS, DataKind

Kind = DataKind
KINDS: tuple[str, ...] = DATA_KINDS

#: Largest integer a float32 holds exactly; larger counts are kept as float64.
_F32_EXACT = 2**24
#: Single-cell values below this maximum that are not whole numbers look log1p-normalised.
LOG_MAX = 20.0
#: Bulk values whose maximum is at most this, mostly non-integer, look log-scale.
BULK_LOG_MAX = 25.0


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


def check_threshold(threshold: float | None, *, default: float) -> float:
    """Check a positivity or engagement threshold: a finite number above 0, in CP10k.

    Parameters
    ----------
    threshold
        The threshold given; ``None`` takes ``default``.
    default
        The caller's default (the positivity threshold, or an agent's engagement floor).

    Returns
    -------
    The threshold, as a float.
    """
    value = default if threshold is None else threshold
    try:
        value = float(value)
    except (TypeError, ValueError):
        value = float("nan")  # refused below, with the value as given
    if not (np.isfinite(value) and value > 0):
        msg = f"threshold must be a finite number > 0 (CP10k); got {threshold!r}"
        raise InputError(msg, param="threshold")
    return value


def check_kind(kind: str) -> None:
    """Validate the ``kind`` parameter."""
    if kind not in KINDS:
        msg = f"kind must be one of {KINDS}; got {kind!r}"
        raise InputError(msg, param="kind")


def _examples(names: pd.Index | list[str] | np.ndarray, n: int = 5) -> str:
    items = [str(x) for x in list(names)[:n]]
    more = len(names) - len(items)
    return ", ".join(repr(x) for x in items) + (f" and {more} more" if more > 0 else "")


def _stored(X: Any) -> np.ndarray:
    """Return the stored values of a dense or sparse matrix, as a NumPy array."""
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
    """Refuse a CSR/CSC matrix whose pointers or indices are corrupt.

    Corrupt: an index outside the shape, pointers that decrease or disagree with the number of
    values. The compiled code that reads it would read outside its arrays and crash the process.

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
    """Raise :class:`InputError` for a non-numeric dtype or NaN, infinite or negative values.

    With ``allow_nan``, NaN marks a gene not measured, as in bulk medians, and passes.
    """
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
    if totals.size >= 2 and totals.std() <= 1e-3 * totals.mean():  # noqa: PLR2004
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
    return bool(nz.max() <= BULK_LOG_MAX and np.mean(np.mod(nz, 1) != 0) > 0.5)  # noqa: PLR2004


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


def finalise(  # noqa: PLR0912, PLR0913
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
