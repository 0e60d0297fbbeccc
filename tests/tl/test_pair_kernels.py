"""All-pairs kernels (tile, scalar, BLAS and the worst-risk folds) against plain numpy."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from scipy import sparse

from antigenscout.tl._kernels import pack_groups
from antigenscout.tl._pair_kernels import (
    TILE_MAX_WORDS,
    _and_popcount_tile,
    frechet_pair_risk,
    gram_counts,
    pair_and_counts_bits,
    pair_layout,
    pair_stats_fused,
    update_pair_risk,
)


def test_pair_counts_bits_and_gram_agree(data):
    X, labels = data
    expect = X.T.astype(np.int64) @ X.astype(np.int64)
    p = pack_groups(sparse.csr_array(X), labels)
    np.testing.assert_array_equal(pair_and_counts_bits(p), expect)
    np.testing.assert_array_equal(gram_counts(sparse.csr_array(X), block=50), expect)
    k = 2
    m = labels == p.groups[k]
    np.testing.assert_array_equal(
        pair_and_counts_bits(p, k), X[m].T.astype(np.int64) @ X[m].astype(np.int64)
    )
    np.testing.assert_array_equal(
        gram_counts(sparse.csr_array(X), np.flatnonzero(m)),
        X[m].T.astype(np.int64) @ X[m].astype(np.int64),
    )


@numba.njit
def _tile(words, i0, j0, w0, w1, out, off):  # noqa: PLR0913, PLR0917
    _and_popcount_tile(words, i0, j0, w0, w1, out, off)


@pytest.mark.parametrize("n_words", [8, 16, 48])
def test_and_popcount_tile_vs_numpy(n_words):
    rng = np.random.default_rng(n_words)
    words = rng.integers(0, 2**63, (12, n_words + 8), dtype=np.int64).view(np.uint64)
    words[:, -8:] = rng.integers(0, 2**63, (12, 8), dtype=np.int64).view(np.uint64)
    out = np.full(3 + 16, 7, dtype=np.int64)  # adds into out[3:19]; out[:3] untouched
    _tile(words, 1, 6, 8, 8 + n_words, out, 3)
    expect = [
        int(np.bitwise_count(words[1 + a, 8 : 8 + n_words] & words[6 + b, 8 : 8 + n_words]).sum())
        for a in range(4)
        for b in range(4)
    ]
    np.testing.assert_array_equal(out[3:], 7 + np.array(expect))
    np.testing.assert_array_equal(out[:3], 7)


def test_and_popcount_tile_largest_counts():
    """At the largest word range a call may sweep, counts near 2^16 do not spill between the
    16-bit fields of the packed horizontal sums."""
    n = TILE_MAX_WORDS
    words = np.full((8, n), np.uint64(0xFFFFFFFFFFFFFFFF))
    words[5, :] = np.uint64(0x7FFFFFFFFFFFFFFF)  # 63 bits per word in one column gene
    out = np.zeros(16, dtype=np.int64)
    _tile(words, 0, 4, 0, n, out, 0)
    expect = np.full((4, 4), 64 * n)
    expect[:, 1] = 63 * n
    np.testing.assert_array_equal(out, expect.ravel())


def test_pair_layout_aligns_and_pads():
    rng = np.random.default_rng(1)
    a = rng.integers(0, 2**63, (5, 3), dtype=np.int64).view(np.uint64)
    b = rng.integers(0, 2**63, (5, 9), dtype=np.int64).view(np.uint64)
    words, ptr = pair_layout([a, b])
    assert words.shape == (8, 24)
    assert list(ptr) == [0, 8, 24]
    np.testing.assert_array_equal(words[:5, :3], a)
    np.testing.assert_array_equal(words[:5, 8:17], b)
    assert not words[5:].any()
    assert not words[:, 3:8].any()
    assert not words[:, 17:].any()


@pytest.mark.parametrize("g", [1, 9, 23])
@pytest.mark.parametrize(("block", "chunk"), [(4, 8), (8, 16), (64, 512)])
def test_pair_stats_fused_vs_brute_force(g, block, chunk):
    """Tumour pair counts and the worst per-type pair risks of the fused one-pass kernel equal
    numpy counts per group (odd group sizes, several gene blocks, chunks across segments)."""
    rng = np.random.default_rng(g + block)
    T = rng.random((700, g)) < rng.uniform(0.05, 0.9, g)
    H = rng.random((950, g)) < rng.uniform(0.05, 0.9, g)
    pat = rng.integers(0, 3, 700)
    ct = rng.integers(0, 5, 950)
    w = rng.uniform(0.1, 1.0, 5)
    tp, hp = pack_groups(T, pat), pack_groups(H, ct)
    segs = [tp.words] + [hp.words[:, hp.word_ptr[k] : hp.word_ptr[k + 1]] for k in range(5)]
    words, ptr = pair_layout(segs)
    single = np.stack([H[ct == k].sum(0) for k in range(5)]).astype(np.int64)
    scale = w / np.bincount(ct, minlength=5)
    P = np.full((g, g), -1, dtype=np.int64)
    r = [np.zeros((g, g)) for _ in range(3)]
    pair_stats_fused(words, ptr, g, single, scale, P, *r, block, chunk)
    np.testing.assert_array_equal(P, T.T.astype(np.int64) @ T.astype(np.int64))
    want = [np.zeros((g, g)) for _ in range(3)]
    for k in range(5):
        Hk = H[ct == k].astype(np.int64)
        update_pair_risk(*want, Hk.T @ Hk, single[k], float(Hk.shape[0]), float(w[k]))
    for got, exp in zip(r, want, strict=True):
        np.testing.assert_array_equal(got, exp)  # same float operations: bit for bit


def test_pair_stats_fused_long_segment_large_chunk():
    """A segment longer than TILE_MAX_WORDS with a larger chunk: counts above 2^16 come out
    exact (the kernel splits the sweep so that each tile call stays within 16-bit sums)."""
    rng = np.random.default_rng(5)
    n, g = 140_000, 6
    T = rng.random((n, g)) < np.array([0.99, 0.95, 0.9, 0.5, 0.98, 0.7])
    words, ptr = pair_layout([pack_groups(T).words])
    P = np.full((g, g), -1, dtype=np.int64)
    r = [np.zeros((g, g)) for _ in range(3)]
    pair_stats_fused(words, ptr, g, np.zeros((0, g), dtype=np.int64), np.zeros(0), P, *r, 4, 4096)
    np.testing.assert_array_equal(P, T.T.astype(np.int64) @ T.astype(np.int64))
    assert P.max() > 2**17


def _pair_risk_numpy(X, labels, w, frac, w_pb):
    """Worst pair risks in plain numpy: exact per cell type, Fréchet upper per pseudobulk type."""
    g = X.shape[1]
    r = {k: np.zeros((g, g)) for k in ("and", "or", "andnot")}
    for i in range(g):
        for j in range(g):
            vals = {k: [] for k in r}
            for t, lab in enumerate(np.unique(labels)):
                a, b = X[labels == lab, i], X[labels == lab, j]
                vals["and"].append(w[t] * (a & b).mean())
                vals["or"].append(w[t] * (a | b).mean())
                vals["andnot"].append(w[t] * (a & ~b).mean())
            for t in range(frac.shape[0]):
                a, b = frac[t, i], frac[t, j]
                vals["and"].append(w_pb[t] * min(a, b))
                vals["or"].append(w_pb[t] * min(1.0, a + b))
                vals["andnot"].append(w_pb[t] * min(a, 1 - b))
            for k in r:  # noqa: PLC0206
                r[k][i, j] = max(vals[k], default=0.0)
    return r


@pytest.mark.parametrize("order", ["bulk_first", "cells_first"])
@pytest.mark.parametrize("parts", ["cells", "bulk", "mixed"])
def test_pair_risk_kernels_fold_into_running_max(data, order, parts):
    # both kernels fold into the same matrices, so a mixed input gets the max of its parts
    X, labels = data
    rng = np.random.default_rng(5)
    g = X.shape[1]
    w = rng.uniform(0.1, 1.0, 4)
    frac = rng.uniform(0.0, 1.0, (3, g))
    w_pb = rng.uniform(0.1, 1.0, 3)
    use_cells, use_bulk = parts in ("cells", "mixed"), parts in ("bulk", "mixed")
    r_and, r_or, r_an = np.zeros((g, g)), np.zeros((g, g)), np.zeros((g, g))
    p = pack_groups(X, labels)

    def cells():
        for k, lab in enumerate(p.groups):
            single = X[labels == lab].sum(0).astype(np.int64)
            n = float((labels == lab).sum())
            update_pair_risk(r_and, r_or, r_an, pair_and_counts_bits(p, k), single, n, w[k])

    def bulk():
        frechet_pair_risk(frac, frac, w_pb, r_and, r_or, r_an)

    steps = [s for s, u in ((bulk, use_bulk), (cells, use_cells)) if u]
    for step in steps if order == "bulk_first" else steps[::-1]:
        step()
    want = _pair_risk_numpy(
        X, labels if use_cells else np.array([], int), w, frac[: 3 if use_bulk else 0], w_pb
    )
    np.testing.assert_allclose(r_and, want["and"], atol=1e-12)
    np.testing.assert_allclose(r_or, want["or"], atol=1e-12)
    np.testing.assert_allclose(r_an, want["andnot"], atol=1e-12)
