"""The knn method on a graph vs. brute-force numpy and scipy's Gamma distribution."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from positivity_data import N_CELLS, brute_knn, collect
from scipy import stats

from antigenscout.pp._knn import _tail_probability
from antigenscout.pp._positivity import positive_blocks


@pytest.mark.parametrize("threshold", [0.5, 5.0, 30.0])
@pytest.mark.parametrize("weighted", [False, True], ids=["binary", "weighted"])
def test_knn_matches_bruteforce(data, threshold, weighted):
    X, lib, graph = data
    if weighted:
        graph = graph.copy()
        graph.data = np.random.default_rng(1).uniform(0.1, 1.0, graph.nnz)
    ref = brute_knn(X, lib, graph, threshold)
    prob = collect(
        positive_blocks(
            sp.csr_matrix(X),
            lib,
            graph=graph,
            threshold=threshold,
            block_size=10,
            return_probability=True,
        ),
        N_CELLS,
    )
    calls = collect(
        positive_blocks(sp.csr_matrix(X), lib, graph=graph, threshold=threshold, block_size=10),
        N_CELLS,
    )
    # entries with any pooled count are stored exactly (float32); the rest are implicit 0
    pooled = (graph + sp.eye(N_CELLS)) @ X > 0
    stored = pooled & (lib[:, None] > 0)
    np.testing.assert_allclose(prob[stored], ref[stored], rtol=2e-6, atol=1e-7)
    assert (prob[~stored] == 0).all()
    assert (ref[~stored] < 0.5).all()  # prior-only tail never reaches a positive call
    np.testing.assert_array_equal(calls, ref >= 0.5)
    assert calls.any()
    assert not calls.all()


def test_tail_probability_vs_scipy_gamma():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 50, 200).astype(float) + rng.uniform(0, 1, 200)
    s = rng.uniform(0, 1e5, 200)
    for lam0 in (1e-5, 1e-4, 3e-3):
        got = _tail_probability(y, s, lam0, 0.5)
        ref = stats.gamma.sf(lam0, 0.5 + y, scale=1 / (0.5 / lam0 + s))
        np.testing.assert_allclose(got, ref, rtol=1e-10, atol=1e-300)


def test_knn_hand_worked():
    # 2 cells linked to each other: pooled y = 1 + 2 = 3 and s = 1000 + 3000 = 4000 for both.
    X = np.array([[1.0], [2.0]])
    lib = np.array([1000.0, 3000.0])
    g = sp.csr_matrix(np.array([[0.0, 1.0], [1.0, 0.0]]))
    ((_, b),) = positive_blocks(X, lib, graph=g, threshold=5.0, return_probability=True)
    # posterior Gamma(0.5 + 3, rate 0.5/5e-4 + 4000 = 5000); P(λ ≥ 5e-4) = Q(3.5, 2.5)
    expected = stats.gamma.sf(2.5, 3.5)
    np.testing.assert_allclose(b.toarray().ravel(), [expected, expected], rtol=1e-6)
    assert expected > 0.5  # so both cells are positive although cell 1 is at 10 CP10k alone
