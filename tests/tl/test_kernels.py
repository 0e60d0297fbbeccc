"""Bitset and BLAS kernels against plain numpy boolean logic."""

from __future__ import annotations

import numba
import numpy as np
import pytest
from scipy import sparse

from antigenscout._errors import InputError
from antigenscout.tl._kernels import (
    MODE_AND,
    MODE_ANDNOT,
    MODE_OR,
    TILE_MAX_WORDS,
    _and_popcount_tile,
    count_ext,
    frechet_pair_risk,
    gram_counts,
    group_gene_popcount,
    group_popcount,
    pack_groups,
    pair_and_counts_bits,
    pair_group_counts,
    pair_layout,
    pair_stats_fused,
    update_pair_risk,
)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.random((333, 9)) < rng.uniform(0.05, 0.9, 9)
    labels = rng.integers(0, 4, 333)  # groups of odd sizes: every group has padding
    return X, labels


@pytest.mark.parametrize(
    "to_array", [np.asarray, sparse.csr_array, sparse.csc_matrix], ids=["dense", "csr", "csc"]
)
def test_pack_roundtrip_and_padding(data, to_array):
    X, labels = data
    p = pack_groups(to_array(X), labels)
    for k, lab in enumerate(p.groups):
        w0, w1 = p.word_ptr[k], p.word_ptr[k + 1]
        for gi in range(X.shape[1]):
            bits = np.unpackbits(p.words[gi, w0:w1].view(np.uint8), bitorder="little")
            sub = X[labels == lab, gi]
            np.testing.assert_array_equal(bits[: sub.size].astype(bool), sub)
            assert not bits[sub.size :].any()  # padding is zero
        vbits = np.unpackbits(p.valid[w0:w1].view(np.uint8), bitorder="little")
        assert vbits.sum() == (labels == lab).sum()


@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("dtype", [bool, np.float32])
def test_pack_non_canonical_sparse(data, fmt, dtype):
    """CSR / CSC input is packed in its own format: explicit zeros do not count, duplicate
    entries are one positive cell, and the per-group gene counts match numpy."""
    X, labels = data
    m = sparse.csr_array(X) if fmt == "csr" else sparse.csc_array(X)
    rng = np.random.default_rng(3)
    indptr, indices = m.indptr, m.indices
    # every stored entry twice, plus an explicit zero in each row / column
    new_ptr = [0]
    new_idx: list[int] = []
    new_dat: list[float] = []
    n_minor = m.shape[1] if fmt == "csr" else m.shape[0]
    for r in range(len(indptr) - 1):
        cols = indices[indptr[r] : indptr[r + 1]].tolist()
        zero = [c for c in range(n_minor) if c not in cols][:1]
        row = cols + cols + zero
        rng.shuffle(row)
        new_idx += row
        new_dat += [0.0 if c in zero else 1.0 for c in row]
        new_ptr.append(len(new_idx))
    cls = sparse.csr_array if fmt == "csr" else sparse.csc_array
    odd = cls((np.array(new_dat, dtype=dtype), np.array(new_idx), np.array(new_ptr)), m.shape)
    assert not odd.has_canonical_format
    a, b = pack_groups(odd, labels), pack_groups(X, labels)
    np.testing.assert_array_equal(a.words, b.words)
    counts = group_gene_popcount(a.words, a.word_ptr)
    expect = np.stack([X[labels == lab].sum(0) for lab in a.groups])
    np.testing.assert_array_equal(counts, expect)


def test_count_ext_modes(data):
    X, labels = data
    p = pack_groups(X, labels)
    base = p.words[0].copy()
    genes = np.arange(1, 9, dtype=np.int64)
    for mode, f in [
        (MODE_AND, lambda a, b: a & b),
        (MODE_ANDNOT, lambda a, b: a & ~b),
        (MODE_OR, lambda a, b: a | b),
    ]:
        got = count_ext(base, p.words, genes, mode, p.valid, p.word_ptr)
        for c, g in enumerate(genes):
            for k, lab in enumerate(p.groups):
                m = labels == lab
                assert got[c, k] == f(X[m, 0], X[m, g]).sum()


def test_pair_group_counts(data):
    X, labels = data
    p = pack_groups(X, labels)
    fs = [lambda a, b: a & b, lambda a, b: a & ~b, lambda a, b: a | b]
    trip = [(k, a, b) for k in range(3) for a in range(9) for b in range(9) if a != b]
    kind, pa, pb = (np.array(x, dtype=np.int64) for x in zip(*trip, strict=True))
    got = pair_group_counts(kind, pa, pb, p.words, p.valid, p.word_ptr)
    assert got.shape == (len(trip), p.groups.size)
    for r, (k, a, b) in enumerate(trip):
        for q, lab in enumerate(p.groups):
            m = labels == lab
            assert got[r, q] == fs[k](X[m, a], X[m, b]).sum()


def test_not_masks_tail(data):
    X, labels = data
    p = pack_groups(X, labels)
    comp = (~p.words[3]) & p.valid
    got = group_popcount(comp, p.word_ptr)
    expect = [(~X[labels == lab, 3]).sum() for lab in p.groups]
    np.testing.assert_array_equal(got, expect)


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


def test_bad_input():
    with pytest.raises(InputError, match="0 and 1"):
        pack_groups(np.full((3, 2), 0.5))
    with pytest.raises(InputError, match="2-D"):
        pack_groups(np.zeros(3, dtype=bool))
    with pytest.raises(InputError, match="group labels"):
        pack_groups(np.zeros((3, 2), dtype=bool), np.zeros(4))
