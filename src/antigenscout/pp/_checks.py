"""Checks of the positivity inputs: counts, library sizes, genes, soups and group codes.

Each refuses what the kernels would otherwise read unchecked with an
:class:`~antigenscout._errors.InputError` that says what to pass instead.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from antigenscout._errors import InputError

if TYPE_CHECKING:
    from ._ambient import Soup


def _check_counts(X: sp.spmatrix | sp.sparray | np.ndarray, block_size: int) -> None:
    """Raise InputError if X holds negative or non-finite entries (streamed for dense X)."""
    n_nan = n_neg = n_inf = 0
    if sp.issparse(X):
        data = X.data
        n_nan = int(np.isnan(data).sum())
        n_inf = int(np.isinf(data).sum())
        n_neg = int((data < 0).sum())
    else:
        for start in range(0, X.shape[0], block_size):
            blk = np.asarray(X[start : start + block_size])
            n_nan += int(np.isnan(blk).sum())
            n_inf += int(np.isinf(blk).sum())
            n_neg += int((blk < 0).sum())
    if n_nan or n_inf or n_neg:
        msg = (
            f"The counts contain {n_nan} NaN, {n_inf} infinite and {n_neg} negative entries. "
            "Positivity needs raw, non-negative UMI counts: pass the raw counts layer "
            "(e.g. layer='counts'), not log-normalised or scaled values."
        )
        raise InputError(msg)


def _as_counts(X: object) -> sp.csr_matrix | np.ndarray:
    if sp.issparse(X):
        X = sp.csr_matrix(X)
    elif isinstance(X, np.ndarray):
        if X.ndim != 2:  # noqa: PLR2004
            msg = f"The counts must be a 2-D cells × genes array. Got {X.ndim} dimensions."
            raise InputError(msg)
    else:
        msg = (
            "The counts must be a scipy.sparse matrix or a numpy.ndarray (cells × genes). "
            f"Got {type(X).__name__}; convert it with scipy.sparse.csr_matrix(...)."
        )
        raise InputError(msg)
    if not (np.issubdtype(X.dtype, np.number) and not np.issubdtype(X.dtype, np.complexfloating)):
        msg = f"The counts must be numeric. Got dtype {X.dtype}."
        raise InputError(msg)
    return X


def _check_library(library_size: object, X: sp.csr_matrix | np.ndarray) -> np.ndarray:
    lib = np.asarray(library_size, dtype=np.float64).ravel()
    if lib.shape[0] != X.shape[0]:
        msg = (
            f"library_size has {lib.shape[0]} entries but the counts have {X.shape[0]} cells; "
            "pass one total count per cell (e.g. adata.obs['total_counts'])."
        )
        raise InputError(msg)
    bad = ~np.isfinite(lib) | (lib < 0)
    if bad.any():
        msg = (
            f"library_size has {int(bad.sum())} negative or non-finite entries; pass the total "
            "UMI count of each cell (>= 0)."
        )
        raise InputError(msg)
    rowsum = np.asarray(X.sum(axis=1), dtype=np.float64).ravel()
    over = rowsum > lib * (1 + 1e-6) + 1e-6
    if over.any():
        msg = (
            f"{int(over.sum())} cells have more counts in X than their library_size "
            f"(first: cell {int(np.flatnonzero(over)[0])}). library_size must be each cell's "
            "total count over all genes; pass adata.obs['total_counts'] or the row sums."
        )
        raise InputError(msg)
    return lib


def _check_genes(genes: object, n_genes: int) -> np.ndarray | None:
    if genes is None:
        return None
    g = np.asarray(genes)
    if g.dtype == bool:
        if g.shape != (n_genes,):
            msg = f"A boolean 'genes' mask must have length {n_genes}. Got shape {g.shape}."
            raise InputError(msg)
        return np.flatnonzero(g)
    if g.ndim != 1 or not np.issubdtype(g.dtype, np.integer):
        msg = "The 'genes' parameter must be a 1-D array of column indices or a boolean mask."
        raise InputError(msg)
    if g.size and (g.min() < -n_genes or g.max() >= n_genes):
        msg = f"The 'genes' indices must lie in [0, {n_genes}). Got min {g.min()}, max {g.max()}."
        raise InputError(msg)
    return np.where(g < 0, g + n_genes, g).astype(np.intp)


def _colmap(cols: np.ndarray | None, n_genes: int) -> np.ndarray:
    """Input column -> output column (-1 = not evaluated)."""
    if cols is None:
        return np.arange(n_genes, dtype=np.int64)
    if len(np.unique(cols)) != len(cols):
        msg = "The 'genes' indices contain duplicates; pass each gene once."
        raise InputError(msg)
    colmap = np.full(n_genes, -1, dtype=np.int64)
    colmap[cols] = np.arange(len(cols))
    return colmap


def _check_soup(soup: Soup | None, n_genes: int) -> None:
    """Refuse a soup that does not fit the genes called or the sample codes.

    Its background must cover the genes called, and no sample code may point past its rows (the
    kernels index with them unchecked).
    """
    if soup is None:
        return
    bg, code = np.asarray(soup.background), np.asarray(soup.code)
    if bg.ndim != 2 or bg.shape[1] != n_genes or len(soup.contamination) != bg.shape[0]:  # noqa: PLR2004
        msg = (
            f"soup.background must be samples × {n_genes} genes with one contamination per "
            f"sample; got {bg.shape} and {len(soup.contamination)}"
        )
        raise InputError(msg)
    if code.size and code.max() >= bg.shape[0]:
        msg = f"soup.code must lie in -1..{bg.shape[0] - 1}"
        raise InputError(msg)
    if not (np.all(np.isfinite(bg)) and (bg >= 0).all()):
        msg = "soup.background must be finite and >= 0"
        raise InputError(msg)


def _check_codes(codes: np.ndarray, n: int, n_groups: int) -> np.ndarray:
    """Return ``codes`` as int64, refused unless there is one per cell, each in range.

    Each code must lie in ``0 .. n_groups - 1``: the counting kernels index with them unchecked.
    """
    codes = np.asarray(codes)
    if codes.shape != (n,) or not np.issubdtype(codes.dtype, np.integer):
        msg = f"codes must hold one integer group per cell ({n}); got shape {codes.shape}"
        raise InputError(msg)
    if n and (codes.min() < 0 or codes.max() >= n_groups):
        msg = f"codes must lie in 0..{n_groups - 1} (n_groups={n_groups})"
        raise InputError(msg)
    return codes.astype(np.int64, copy=False)
