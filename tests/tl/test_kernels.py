"""Bit packing and per-group popcounts against plain numpy boolean logic."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from antigenscout._errors import InputError
from antigenscout.tl._kernels import (
    MODE_AND,
    MODE_ANDNOT,
    MODE_OR,
    count_ext,
    group_gene_popcount,
    group_popcount,
    pack_groups,
    pair_group_counts,
)


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


def test_bad_input():
    with pytest.raises(InputError, match="0 and 1"):
        pack_groups(np.full((3, 2), 0.5))
    with pytest.raises(InputError, match="2-D"):
        pack_groups(np.zeros(3, dtype=bool))
    with pytest.raises(InputError, match="group labels"):
        pack_groups(np.zeros((3, 2), dtype=bool), np.zeros(4))
