"""Knn calls on a neighbour list, listed and counted per group, vs. brute force."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from positivity_data import N_CELLS, K, brute_knn, collect

from antigenscout._errors import InputError
from antigenscout.pp._kernels import count_rows_by_group
from antigenscout.pp._neighbors import knn_blocks_from_neighbors, knn_counts_from_neighbors
from antigenscout.pp._positivity import DEFAULT_PRIOR_SHAPE


@pytest.mark.parametrize("whole", [True, False], ids=["kernel", "general"])
@pytest.mark.parametrize("threads", [1, 2])
def test_knn_counts_equal_bruteforce_calls_per_group(data, whole, threads):
    """Counted calls per group == brute-force calls (numpy/scipy Gamma) summed per group,
    and == the listed calls of knn_blocks_from_neighbors, on the kernel path (whole counts)
    and the general path (fractional counts)."""
    X, lib, graph = data
    X = X if whole else X * 1.5  # not whole: the general path
    nbr = graph.indices.reshape(N_CELLS, K).astype(np.int64)
    nbr[5, 2:] = -1  # a cell with fewer neighbours
    kept = nbr[nbr >= 0]
    G = sp.csr_matrix(
        (np.ones(kept.size), (np.repeat(np.arange(N_CELLS), K)[nbr.ravel() >= 0], kept)),
        shape=(N_CELLS, N_CELLS),
    )
    want_calls = brute_knn(X, lib, G, 5.0) >= 0.5
    codes = np.random.default_rng(7).integers(0, 3, N_CELLS)
    want = np.stack([want_calls[codes == g].sum(axis=0) for g in range(3)])
    kw = {"threshold": 5.0, "prior_shape": DEFAULT_PRIOR_SHAPE, "block_size": 10}
    Xs = sp.csr_matrix(X, dtype=np.float32)
    got = knn_counts_from_neighbors(Xs, lib, nbr, codes, 3, threads=threads, **kw)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, want)
    listed = collect(knn_blocks_from_neighbors(Xs, lib, nbr, threads=threads, **kw), N_CELLS)
    np.testing.assert_array_equal(listed, want_calls)
    assert want.sum() > 0


def test_knn_counts_refuse_bad_codes(data):
    """Group codes index the counts unchecked in numba: out-of-range codes are refused."""
    X, lib, graph = data
    nbr = graph.indices.reshape(N_CELLS, K).astype(np.int64)
    Xs = sp.csr_matrix(X, dtype=np.float32)
    kw = {"threshold": 5.0, "prior_shape": DEFAULT_PRIOR_SHAPE}
    for codes in (np.full(N_CELLS, 2), np.full(N_CELLS, -1), np.zeros(N_CELLS - 1, dtype=int)):
        with pytest.raises(InputError, match="codes"):
            knn_counts_from_neighbors(Xs, lib, nbr, codes, 2, **kw)


def test_count_rows_by_group_vs_numpy():
    """Non-zero entries per (group, column); explicit zeros are not counted."""
    rng = np.random.default_rng(11)
    M = sp.random(40, 9, density=0.3, format="csr", random_state=3)
    M.data[::4] = 0  # explicit zeros stay stored
    codes = rng.integers(0, 4, 40)
    counts = np.zeros((4, 9), dtype=np.int64)
    count_rows_by_group(M.indptr, M.indices, M.data, codes, counts)
    dense = M.toarray() != 0
    np.testing.assert_array_equal(counts, np.stack([dense[codes == g].sum(0) for g in range(4)]))
