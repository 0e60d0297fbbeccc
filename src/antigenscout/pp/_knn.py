"""The knn method on a graph: pooled counts and the posterior tail of the expression rate.

The graph is given self-weights and a pooling scale (:func:`_prepare_graph`), each block's
pooled counts are ``graph[rows] @ X`` and the call is the Gamma-Poisson tail, plain
(:func:`_tail_probability`) or with the soup discounted (:func:`_soup_probability`); the model
is derived in :mod:`antigenscout.pp._positivity`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from scipy.special import gammaincc

from antigenscout._errors import InputError

if TYPE_CHECKING:
    from ._ambient import Soup


def _prepare_graph(graph: object, n_cells: int) -> tuple[sp.csr_matrix, np.ndarray]:
    """Return the affinity graph with self-weights and the per-row pooling scale ``n_i/Σg``.

    The pooled value of row ``i`` is ``scale_i * (G @ x)_i`` with ``scale_i = Σ_j g_ij /
    Σ_j g_ij²`` (= ``n_i Σ_j w_ij x_j`` with ``w = g / Σg`` and ``n_i = 1/Σ w²``).
    """
    if graph is None:
        msg = (
            "method='knn' needs a cells × cells neighbour graph. Build one with "
            "antigenscout.pp.neighbor_graph(adata) or pass adata.obsp['connectivities']; "
            "or use method='cp10k'."
        )
        raise InputError(msg)
    if not sp.issparse(graph):
        msg = f"The 'graph' must be a scipy.sparse matrix. Got {type(graph).__name__}."
        raise InputError(msg)
    G = sp.csr_matrix(graph, dtype=np.float64, copy=True)
    if G.shape != (n_cells, n_cells):
        msg = f"The 'graph' must be {n_cells} × {n_cells} (cells × cells). Got {G.shape}."
        raise InputError(msg)
    bad = ~np.isfinite(G.data) | (G.data < 0)
    if bad.any():
        msg = (
            f"The 'graph' has {int(bad.sum())} negative or non-finite weights; pass affinities "
            "(larger = closer) such as adata.obsp['connectivities'], not distances."
        )
        raise InputError(msg)
    diag = G.diagonal()
    if diag.any():
        G = sp.csr_matrix(G - sp.diags(diag, format="csr"))
    G.eliminate_zeros()
    rowmax = np.asarray(G.max(axis=1).toarray(), dtype=np.float64).ravel()
    rowmax[rowmax == 0] = 1.0
    G = sp.csr_matrix(G + sp.diags(rowmax, format="csr"))
    G.sort_indices()
    rowsum = np.asarray(G.sum(axis=1), dtype=np.float64).ravel()
    sq = G.multiply(G).sum(axis=1)
    scale = rowsum / np.asarray(sq, dtype=np.float64).ravel()
    return G, scale


def _tail_probability(
    pooled_counts: np.ndarray,
    pooled_library: np.ndarray,
    lam0: float,
    prior_shape: float,
) -> np.ndarray:
    """P(λ ≥ λ0) under the posterior Gamma(a0 + y, a0/λ0 + s); vectorised.

    Parameters
    ----------
    pooled_counts
        Pooled counts ``y`` of the gene.
    pooled_library
        Pooled library sizes ``s`` (same shape as ``pooled_counts``).
    lam0
        Threshold rate per UMI (CP10k / 1e4).
    prior_shape
        Prior shape ``a0``.
    """
    shape = prior_shape + pooled_counts
    x = (prior_shape / lam0 + pooled_library) * lam0
    return gammaincc(shape, x)


def _soup_probability(  # noqa: PLR0913, PLR0917
    pooled_counts: np.ndarray,
    pooled_library: np.ndarray,
    code: np.ndarray,
    col: np.ndarray,
    lam0: float,
    prior_shape: float,
    soup: Soup,
) -> np.ndarray:
    """Return P(λ ≥ λ0) per entry with the pool's soup reads discounted.

    That is the mixture posterior of :func:`~antigenscout.pp._graph_kernels.soup_tail` on the
    rounded pooled count.
    """
    from ._graph_kernels import soup_tail_many  # noqa: PLC0415

    a0 = float(prior_shape)
    x, q0, t0, r = _native_terms(pooled_library, code, soup, lam0, a0)
    bg = np.asarray(soup.background, dtype=np.float64)
    b = np.where(code >= 0, bg[np.maximum(code, 0), col], 0.0) * pooled_library
    y = np.rint(pooled_counts).astype(np.int64)
    plain = gammaincc(a0 + y, x)
    mix = soup_tail_many(y, b, x, q0, t0, a0, r)
    return np.where(b > 0, mix, plain)


def _native_terms(
    pooled_library: np.ndarray, code: np.ndarray, soup: Soup, lam0: float, a0: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return the native-rate terms for pools of library ``s`` in samples ``code`` (-1: no soup).

    The terms are ``x = a0 + λ0 s'``, ``Q(a0, x)``, ``x^a0 e^-x / Γ(a0 + 1)`` and
    ``r = s' / (a0/λ0 + s')``, where ``s' = (1 - ρ) s`` is the pool's native library.
    """
    from scipy.special import gammaln  # noqa: PLC0415

    rho = np.where(code >= 0, np.asarray(soup.contamination, np.float64)[np.maximum(code, 0)], 0.0)
    native = pooled_library * (1.0 - rho)
    x = a0 + lam0 * native
    t0 = np.exp(a0 * np.log(x) - x - gammaln(a0 + 1.0))
    return x, gammaincc(a0, x), t0, native / (a0 / lam0 + native)


def _csr_from_entries(  # noqa: PLR0913, PLR0917
    n_rows: int,
    n_cols: int,
    rows: np.ndarray,
    cols: np.ndarray,
    values: np.ndarray,
    dtype: type,
) -> sp.csr_matrix:
    out = sp.csr_matrix(
        (values.astype(dtype, copy=False), (rows, cols)), shape=(n_rows, n_cols), dtype=dtype
    )
    out.sort_indices()
    return out


def _block_entries(
    block: sp.csr_matrix | np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row, column and value of the non-zero entries of a block (dense or CSR)."""
    if sp.issparse(block):
        coo = sp.coo_matrix(block)
        keep = coo.data != 0
        return coo.row[keep], coo.col[keep], np.asarray(coo.data[keep], dtype=np.float64)
    rows, cols = np.nonzero(block)
    return rows, cols, np.asarray(block[rows, cols], dtype=np.float64)


def _iter_knn_blocks(  # noqa: PLR0913, PLR0917
    X: sp.csr_matrix | np.ndarray,
    lib: np.ndarray,
    method: str,
    t: float,
    G: sp.csr_matrix | None,
    scale: np.ndarray | None,
    cols: np.ndarray | None,
    block_size: int,
    return_probability: bool,
    a0: float,
    soup: Soup | None = None,
) -> Iterator[tuple[slice, sp.csr_matrix]]:
    """Yield the ``knn`` calls (or probabilities) block by block, pooled over ``G``.

    The registry's function of the ``knn`` method (:class:`~antigenscout.pp.PositivityMethod`);
    the arguments are those :func:`~antigenscout.pp.positive_blocks` has checked (``method``
    is unused).
    """
    Xg = X if cols is None else X[:, cols]
    if sp.issparse(Xg):
        Xg = sp.csr_matrix(Xg)
    n_cells, n_out = Xg.shape
    lam0 = t / 1e4
    dtype = np.float32 if return_probability else np.bool_
    for start in range(0, n_cells, block_size):
        rows = slice(start, min(start + block_size, n_cells))
        nb = rows.stop - rows.start
        lib_b = lib[rows]
        Gb = G[rows]
        pooled = Gb @ Xg
        r, c, v = _block_entries(pooled)
        sc = scale[rows]
        y = v * sc[r]
        s = (np.asarray(Gb @ lib, dtype=np.float64) * sc)[r]
        if soup is None:
            p = _tail_probability(y, s, lam0, a0)
        else:
            p = _soup_probability(y, s, np.asarray(soup.code)[rows][r], c, lam0, a0, soup)
        ok = lib_b[r] > 0
        if return_probability:
            keep, val = ok & (p > 0), p
        else:
            keep, val = ok & (p >= 0.5), np.ones_like(p)  # noqa: PLR2004
        yield rows, _csr_from_entries(nb, n_out, r[keep], c[keep], val[keep], dtype)
