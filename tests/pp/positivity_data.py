"""Shared data of the positivity tests: random counts on a random kNN graph, and the
plain-numpy knn reference."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy import stats

from antigenscout.pp._positivity import DEFAULT_PRIOR_SHAPE

N_CELLS, N_GENES, K = 157, 23, 4


def make_data() -> tuple[np.ndarray, np.ndarray, sp.csr_matrix]:
    rng = np.random.default_rng(42)
    lib = rng.integers(200, 5000, N_CELLS).astype(np.float64)
    lib[[3, 77]] = 0  # zero-library cells
    rate = rng.gamma(0.5, 4e-3, N_GENES)
    X = rng.poisson(lib[:, None] * rate[None, :]).astype(np.float64)
    lib = np.maximum(lib, X.sum(axis=1))  # library ≥ counts in X (other genes unseen)
    lib[[3, 77]] = 0
    X[[3, 77]] = 0
    nbr = np.array(
        [rng.choice(np.delete(np.arange(N_CELLS), i), K, replace=False) for i in range(N_CELLS)]
    )
    graph = sp.csr_matrix(
        (np.ones(N_CELLS * K), nbr.ravel(), np.arange(0, N_CELLS * K + 1, K)),
        shape=(N_CELLS, N_CELLS),
    )
    return X, lib, graph


def collect(it, n_cells: int) -> np.ndarray:
    blocks = list(it)
    covered = np.zeros(n_cells, dtype=int)
    for rows, b in blocks:
        assert isinstance(b, sp.csr_matrix)
        assert b.shape[0] == rows.stop - rows.start
        covered[rows] += 1
    assert (covered == 1).all()
    return sp.vstack([b for _, b in blocks]).toarray()


def brute_knn(X, lib, adj, threshold, a0=DEFAULT_PRIOR_SHAPE):
    """Plain-numpy reference: weights with self = row max, Kish-effective pooled sums."""
    A = np.asarray(adj.toarray(), dtype=float)
    np.fill_diagonal(A, 0)
    rowmax = A.max(axis=1)
    rowmax[rowmax == 0] = 1
    A[np.diag_indices_from(A)] = rowmax
    W = A / A.sum(axis=1, keepdims=True)
    n_eff = 1 / (W**2).sum(axis=1)
    y = n_eff[:, None] * (W @ X)
    s = n_eff * (W @ lib)
    lam0 = threshold / 1e4
    shape = a0 + y
    rate = a0 / lam0 + s[:, None]
    p = stats.gamma.sf(lam0, shape, scale=1 / rate)
    p[lib == 0] = 0
    return p
