"""Numba kernels for the per-cell positivity rules that need no neighbour graph.

:func:`is_positive` is the single definition of the ``detected`` and ``cp10k`` rules;
the kernels below apply it straight to CSR arrays, so a million-cell matrix is called
and counted without building intermediate matrices.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

__all__ = [
    "CP10K",
    "DETECTED",
    "RULE_CODES",
    "count_positive_by_group",
    "count_rows_by_group",
    "is_positive",
    "select_positive",
]

DETECTED = 0
CP10K = 1
#: The kernels' rule code of each threshold method.
RULE_CODES = {"detected": DETECTED, "cp10k": CP10K}


@njit(inline="always")
def is_positive(x: float, lib: float, threshold: float, code: int) -> bool:
    """Return whether count ``x`` of library ``lib`` is positive under method ``code``.

    ``detected``: x > 0; ``cp10k``: x / lib * 1e4 >= threshold; never if lib == 0.
    """
    if lib <= 0.0 or x <= 0.0:
        return False
    if code == DETECTED:
        return True
    return x * 1e4 >= threshold * lib


@njit(parallel=True, cache=True)
def row_sums(indptr: np.ndarray, data: np.ndarray) -> np.ndarray:
    """Sum of each CSR row."""
    n = len(indptr) - 1
    out = np.zeros(n, dtype=np.float64)
    for r in prange(n):
        s = 0.0
        for k in range(indptr[r], indptr[r + 1]):
            s += data[k]
        out[r] = s
    return out


@njit(parallel=True, cache=True)
def count_positive_by_group(  # noqa: PLR0913, PLR0917
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    row_group: np.ndarray,
    lib: np.ndarray,
    threshold: float,
    code: int,
    colmap: np.ndarray,
    n_groups: int,
    n_out: int,
    n_threads: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Positive cells per (group, output gene) of a CSR block, and CP10k sums per gene.

    ``row_group[r] < 0`` skips row ``r``; ``colmap[j]`` is the output column of input
    column ``j`` or -1. Each thread owns a slice of rows and its own accumulators, so the
    result does not depend on scheduling. The second result is ``Σ x / lib * 1e4`` over the
    counted rows of each output gene (rows with ``lib == 0`` add 0): the tumour mean in the
    same pass.
    """
    n_rows = len(indptr) - 1
    acc = np.zeros((n_threads, n_groups, n_out), dtype=np.int32)
    acc_s = np.zeros((n_threads, n_out), dtype=np.float64)
    step = (n_rows + n_threads - 1) // n_threads
    for tid in prange(n_threads):
        for r in range(tid * step, min(n_rows, (tid + 1) * step)):
            g = row_group[r]
            if g < 0:
                continue
            lr = lib[r]
            sc = 1e4 / lr if lr > 0.0 else 0.0
            for k in range(indptr[r], indptr[r + 1]):
                j = colmap[indices[k]]
                if j >= 0:
                    acc_s[tid, j] += data[k] * sc
                    if is_positive(data[k], lr, threshold, code):
                        acc[tid, g, j] += 1
    out = np.zeros((n_groups, n_out), dtype=np.int64)
    sums = np.zeros(n_out, dtype=np.float64)
    for tid in range(n_threads):
        out += acc[tid]
        sums += acc_s[tid]
    return out, sums


@njit(cache=True)
def select_positive(  # noqa: PLR0913, PLR0917
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    lib: np.ndarray,
    threshold: float,
    code: int,
    colmap: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """CSR ``indptr`` and ``indices`` of the positive entries (columns remapped)."""
    n_rows = len(indptr) - 1
    out_ptr = np.zeros(n_rows + 1, dtype=np.int64)
    for r in range(n_rows):
        c = 0
        for k in range(indptr[r], indptr[r + 1]):
            if colmap[indices[k]] >= 0 and is_positive(data[k], lib[r], threshold, code):
                c += 1
        out_ptr[r + 1] = out_ptr[r] + c
    out_idx = np.empty(out_ptr[-1], dtype=np.int32)
    for r in range(n_rows):
        p = out_ptr[r]
        for k in range(indptr[r], indptr[r + 1]):
            j = colmap[indices[k]]
            if j >= 0 and is_positive(data[k], lib[r], threshold, code):
                out_idx[p] = j
                p += 1
    return out_ptr, out_idx


@njit(cache=True, nogil=True)
def count_rows_by_group(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    codes: np.ndarray,
    counts: np.ndarray,
) -> None:
    """Count positive cells per group from a CSR matrix of calls, without a sparse product.

    ``counts[codes[r], c]`` gains 1 for each non-zero entry (row ``r``, column ``c``) (in
    place).
    """
    for r in range(indptr.size - 1):
        g = codes[r]
        for j in range(indptr[r], indptr[r + 1]):
            counts[g, indices[j]] += data[j] != 0
