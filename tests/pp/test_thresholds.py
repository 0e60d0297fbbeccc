"""The threshold methods (detected, cp10k) vs. numpy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from positivity_data import N_CELLS, collect

from antigenscout.pp._positivity import positive_blocks


@pytest.mark.parametrize("fmt", ["dense", "csr", "csc"])
@pytest.mark.parametrize("block_size", [1, 16, 1000])
def test_detected_and_cp10k_match_numpy(data, fmt, block_size):
    X, lib, _ = data
    Xin = {"dense": X, "csr": sp.csr_matrix(X), "csc": sp.csc_matrix(X)}[fmt]
    det = collect(positive_blocks(Xin, lib, method="detected", block_size=block_size), N_CELLS)
    assert det.dtype == bool
    np.testing.assert_array_equal(det, (X > 0) & (lib[:, None] > 0))
    with np.errstate(divide="ignore", invalid="ignore"):
        cp = X / lib[:, None] * 1e4
    for t in (1.0, 7.5, 40.0):
        got = collect(
            positive_blocks(Xin, lib, method="cp10k", threshold=t, block_size=block_size), N_CELLS
        )
        np.testing.assert_array_equal(got, (lib[:, None] > 0) & (cp >= t))
