"""check_counts: the API's validation of an in-memory matrix, as the readers validate files."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy import sparse

from antigenscout._errors import AntigenscoutWarning, InputError
from antigenscout.io._validate import check_counts


def _counts(n: int, g: int, seed: int = 0) -> sparse.csr_matrix:
    rng = np.random.default_rng(seed)
    X = rng.poisson(0.3, (n, g)).astype(np.float32)
    X[:, 0] = rng.poisson(40.0, n)  # a highly expressed gene, as MALAT1 in real data
    return sparse.csr_matrix(X)


def test_raw_counts_pass_silently() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_counts(_counts(300, 1200), "'x'", "single_cell")


@pytest.mark.parametrize(
    ("transform", "word"),
    [
        (lambda X: (X > 0).astype(np.float32), "binarised"),
        (lambda X: np.rint(np.log1p(X)), "rounded"),
    ],
)
def test_binarised_or_rounded_log_transcriptomes_are_named(transform, word) -> None:
    X = sparse.csr_matrix(transform(_counts(300, 1200).toarray()))
    with pytest.warns(AntigenscoutWarning, match=word):
        check_counts(X, "'x'", "single_cell")


def test_a_small_panel_of_shallow_counts_is_not_suspected() -> None:
    X = sparse.csr_matrix(np.random.default_rng(1).poisson(2.0, (300, 8)).astype(np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_counts(X, "'x'", "single_cell")


def test_bad_values_are_refused_for_bulk_too() -> None:
    with pytest.raises(InputError, match="negative"):
        check_counts(np.array([[1.0, -2.0]]), "'x'", "bulk")
    check_counts(np.array([[1.5, 2.25]]), "'x'", "bulk")  # TPM-like bulk values are fine
    check_counts(np.array([[1.5, np.nan]]), "'x'", "bulk")  # NaN: a gene not measured
    with pytest.raises(InputError, match="infinite"):
        check_counts(np.array([[1.5, np.inf]]), "'x'", "bulk")
    with pytest.raises(InputError, match="NaN"):
        check_counts(np.array([[1.0, np.nan]]), "'x'", "single_cell")
    with pytest.raises(InputError, match="non-integer"):
        check_counts(np.array([[1.5, 2.25]]), "'x'", "single_cell")


def test_a_corrupt_sparse_matrix_is_refused_before_compiled_code_reads_it() -> None:
    ok = sparse.csr_matrix(np.array([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]]))
    out_of_range = ok.copy()
    out_of_range.indices = out_of_range.indices.copy()
    out_of_range.indices[1] = 99
    with pytest.raises(InputError, match=r"column indices outside 0\.\.2"):
        check_counts(out_of_range, "'x'", "single_cell")
    bad_ptr = ok.copy()
    bad_ptr.indptr = np.array([0, 3, 2])
    with pytest.raises(InputError, match="corrupt pointers"):
        check_counts(bad_ptr, "'x'", "bulk")
