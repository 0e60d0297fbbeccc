"""Dispatcher :func:`read` and the checks every reader shares.

Every reader returns an :class:`~anndata.AnnData` with cells or samples as ``obs``, genes as
``var``, raw values in ``.X`` (a float32 CSR matrix for single cells, a dense float32 array
for bulk samples), the identifiers as found in the file in ``var['gene_id_input']`` and
``uns['antigenscout'] = {'kind': 'single_cell' | 'bulk', 'source': <path>}``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from anndata import AnnData
from anndata.utils import make_index_unique
from scipy import sparse

from .._errors import InputError

__all__ = ["read"]

Kind = Literal["single_cell", "bulk"]
KINDS: tuple[str, ...] = ("single_cell", "bulk")

#: Largest integer a float32 holds exactly; larger counts are kept as float64.
_F32_EXACT = 2**24


def read(path: str | os.PathLike[str], **kwargs: Any) -> AnnData:
    """Read an expression matrix, choosing the reader from the path.

    ========================================  ==========================================
    path                                      reader
    ========================================  ==========================================
    ``*.h5ad``                                :func:`~antigenscout.io.read_h5ad`
    ``*.h5`` (CellRanger HDF5)                :func:`~antigenscout.io.read_10x_h5`
    directory, ``matrix.mtx(.gz)``            :func:`~antigenscout.io.read_10x_mtx`
    ``*.tsv``, ``*.csv``, ``*.txt`` (+.gz)    :func:`~antigenscout.io.read_table`
    ``soma://``, ``tiledb://``, SOMA folder   :func:`~antigenscout.io.read_soma`
    ========================================  ==========================================

    Parameters
    ----------
    path
        File, directory or SOMA URI.
    **kwargs
        Passed on to the chosen reader (e.g. ``layer="counts"`` for h5ad).

    Returns
    -------
    AnnData with cells/samples × genes, raw values in ``.X``.

    Examples
    --------
    >>> import antigenscout as asc
    >>> adata = asc.io.read("tumour.h5ad", layer="counts")  # doctest: +SKIP
    """
    from ._h5ad import read_h5ad
    from ._soma import read_soma
    from ._table import read_table
    from ._tenx import read_10x_h5, read_10x_mtx

    text = os.fspath(path)
    if "://" in text and not text.startswith("file://"):
        return read_soma(text, **kwargs)
    p = Path(text.removeprefix("file://"))
    name = p.name.lower()
    if p.is_dir():
        if (p / "__tiledb_group.tdb").exists() or (p / "__group").is_dir():
            return read_soma(str(p), **kwargs)
        return read_10x_mtx(p, **kwargs)
    check_file(p)
    if name.endswith(".h5ad"):
        return read_h5ad(p, **kwargs)
    if name.endswith((".h5", ".hdf5")):
        return read_10x_h5(p, **kwargs)
    if name.endswith((".mtx", ".mtx.gz")):
        return read_10x_mtx(p.parent, **kwargs)
    stem = name.removesuffix(".gz")
    if stem.endswith((".tsv", ".csv", ".txt", ".tab")):
        return read_table(p, **kwargs)
    msg = (
        f"cannot tell the format of {str(p)!r} from its name; use a .h5ad, .h5 (10x), "
        ".mtx folder, or .tsv/.csv(.gz) file"
    )
    raise InputError(msg)


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


def is_integer_valued(X: Any) -> bool:
    """Whether every stored value of ``X`` is a whole number."""
    data = X.data if isinstance(X, sparse.spmatrix | sparse.sparray) else np.asarray(X)
    if np.issubdtype(data.dtype, np.integer) or np.issubdtype(data.dtype, np.bool_):
        return True
    data = data[np.isfinite(data)]  # NaN/inf are reported by check_values
    return bool(np.all(np.equal(np.mod(data, 1), 0)))


def check_values(X: Any, source: str) -> None:
    """Raise :class:`InputError` for NaN, infinite or negative values in ``X``."""
    data = X.data if isinstance(X, sparse.spmatrix | sparse.sparray) else np.asarray(X)
    if not (np.issubdtype(data.dtype, np.number) or np.issubdtype(data.dtype, np.bool_)):
        msg = (
            f"the matrix in {source} holds non-numeric values (dtype {data.dtype}); "
            "keep only numeric expression values in it"
        )
        raise InputError(msg)
    if np.issubdtype(data.dtype, np.floating):
        bad = ~np.isfinite(data)
        if bad.any():
            msg = (
                f"the matrix in {source} contains {int(bad.sum())} NaN or infinite values; "
                "replace missing counts with 0 or drop those cells/genes"
            )
            raise InputError(msg)
    if data.size and data.min() < 0:
        n = int((data < 0).sum())
        msg = (
            f"the matrix in {source} contains {n} negative values (minimum {data.min():g}); "
            "antigenscout needs raw non-negative counts, not scaled or centred data"
        )
        raise InputError(msg)


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
) -> AnnData:
    """Validate a cells/samples × genes matrix and wrap it as AnnData.

    Parameters
    ----------
    X
        Matrix, obs × var, dense or sparse.
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
    """
    check_kind(kind)
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
        msg = (
            f"the matrix in {source} holds non-integer values (normalised data?); "
            "antigenscout needs raw integer counts: supply the unnormalised matrix"
        )
        raise InputError(msg)
    if kind == "single_cell":
        X = sparse.csr_matrix(X)
        X.sum_duplicates()
        X.eliminate_zeros()
    elif isinstance(X, sparse.spmatrix | sparse.sparray):
        X = X.toarray()
    X = _as_float(X)
    if "gene_id_input" not in var.columns:
        var.insert(0, "gene_id_input", var.index.to_numpy(dtype=object))
    if obsm:
        obsm = {k: _align_obsm(v, obs.index) for k, v in obsm.items()}
    adata = AnnData(X=X, obs=obs, var=var, obsm=obsm)
    adata.uns["antigenscout"] = {"kind": kind, "source": source}
    return adata


def _align_obsm(value: Any, index: pd.Index) -> Any:
    if isinstance(value, pd.DataFrame):
        value = value.copy()
        value.index = index
    return value
