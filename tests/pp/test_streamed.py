"""The streamed pass's row store."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from antigenscout.pp._streamed import _RowStore


def test_row_store_equals_vstack_when_it_must_grow():
    """Parts appended in order (sparse first, then dense: the buffers are reallocated) give
    exactly scipy's vstack; parts that are views of a reused buffer are copied at once."""
    rng = np.random.default_rng(5)
    parts = [
        sp.random(m, 12, density=d, format="csr", random_state=rng, dtype=np.float32)
        for m, d in [(7, 0.05), (3, 0.0), (11, 0.5), (5, 0.9), (9, 0.2)]
    ]
    store = _RowStore(sum(p.shape[0] for p in parts))
    scratch = np.empty(200, dtype=np.float32)
    for p in parts:
        scratch[: p.nnz] = p.data
        view = sp.csr_matrix(p.shape, dtype=np.float32)  # as the sweep builds it: no copy
        view.data, view.indices, view.indptr = scratch[: p.nnz], p.indices, p.indptr
        assert p.nnz == 0 or np.shares_memory(view.data, scratch)
        store.append(view)
        scratch[:] = -1  # the next sweep overwrites the scratch
    got = store.matrix(12)
    want = sp.vstack(parts, format="csr")
    np.testing.assert_array_equal(got.indptr, want.indptr)
    np.testing.assert_array_equal(got.indices, want.indices)
    np.testing.assert_array_equal(got.data, want.data)
