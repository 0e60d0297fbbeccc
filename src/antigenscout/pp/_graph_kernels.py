"""Numba kernel of the shared-PCA projection (one sweep over CSR counts)."""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["knn_positive_block", "leaf_knn_update", "project_select"]


@njit(cache=True)
def project_select(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    scale: np.ndarray,
    W: np.ndarray,
    gene_row: np.ndarray,
    keep: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Scores ``Σ_g log1p(x_g * scale) W[row(g)]`` and the CSR of the ``keep`` columns.

    ``gene_row[g]`` is ``g``'s row of ``W`` (-1: not informative); ``keep[g]`` its output
    column (-1: dropped). Returns ``Y`` (cells × components) and ``indptr, indices, data``.
    Serial: numba parallel regions stall on a shared, loaded machine (measured 6-13x slower).
    """
    n = indptr.size - 1
    k = W.shape[1]
    Y = np.zeros((n, k), dtype=np.float32)
    counts = np.zeros(n, dtype=np.int64)
    for r in range(n):
        c = 0
        for j in range(indptr[r], indptr[r + 1]):
            if keep[indices[j]] >= 0 and data[j] != 0:
                c += 1
        counts[r] = c
    ptr = np.zeros(n + 1, dtype=np.int64)
    ptr[1:] = np.cumsum(counts)
    out_idx = np.empty(ptr[n], dtype=np.int32)
    out_val = np.empty(ptr[n], dtype=np.float32)
    for r in range(n):
        p = ptr[r]
        s = scale[r]
        acc = np.zeros(k, dtype=np.float32)
        for j in range(indptr[r], indptr[r + 1]):
            g = indices[j]
            x = float(data[j])
            if x == 0.0:
                continue
            row = gene_row[g]
            if row >= 0 and s > 0.0:
                v = np.log1p(np.float32(x * s))
                for q in range(k):
                    acc[q] += v * W[row, q]
            col = keep[g]
            if col >= 0:
                out_idx[p] = col
                out_val[p] = x
                p += 1
        for q in range(k):
            Y[r, q] = acc[q]
    return Y, ptr, out_idx, out_val


@njit(cache=True)
def knn_positive_block(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    lib: np.ndarray,
    nbr: np.ndarray,
    start: int,
    stop: int,
    median: np.ndarray,
    a0: float,
    lam0: float,
    n_genes: int,
) -> tuple[np.ndarray, np.ndarray]:
    """knn positivity of rows ``start:stop`` on a binary neighbour list (self weight 1).

    For a binary kNN graph the pooled count is the plain sum ``y`` over the cell and its
    neighbours (``nbr``, -1 = none) and the pooled library the sum ``s`` of their libraries;
    the cell is positive for a gene when ``P(λ ≥ λ0) = Q(a0 + y, a0 + s λ0) ≥ 0.5``, i.e. when
    ``a0 + s λ0 ≤ median[y]`` with ``median[y]`` the median of Gamma(a0 + y, 1) (whole counts).
    Returns the CSR ``indptr``
    and sorted column ``indices`` of the positive entries.
    """
    nb = stop - start
    k = nbr.shape[1]
    bound = np.zeros(nb + 1, dtype=np.int64)  # most entries a row can have: its pooled nnz
    for r in range(start, stop):
        c = indptr[r + 1] - indptr[r]
        for q in range(k):
            if nbr[r, q] >= 0:
                c += indptr[nbr[r, q] + 1] - indptr[nbr[r, q]]
        bound[r - start + 1] = bound[r - start] + min(c, n_genes)
    out = np.empty(bound[nb], dtype=np.int32)
    count = np.zeros(nb, dtype=np.int64)
    n_sub = 16
    step = (nb + n_sub - 1) // n_sub
    for sub in range(n_sub):
        acc = np.zeros(n_genes)
        mark = np.zeros(n_genes, dtype=np.bool_)
        touched = np.empty(n_genes, dtype=np.int64)
        for rr in range(sub * step, min(nb, (sub + 1) * step)):
            r = start + rr
            nt = 0
            s = lib[r]
            for q in range(-1, k):
                c = r if q < 0 else nbr[r, q]
                if c < 0:
                    continue
                if q >= 0:
                    s += lib[c]
                for j in range(indptr[c], indptr[c + 1]):
                    g = indices[j]
                    if not mark[g]:
                        mark[g] = True
                        touched[nt] = g
                        nt += 1
                    acc[g] += data[j]
            x = a0 + s * lam0
            p = bound[rr]
            for t in range(nt):
                g = touched[t]
                y = acc[g]
                if lib[r] > 0.0 and y > 0.0 and x <= median[int(y)]:
                    out[p] = g
                    p += 1
                acc[g] = 0.0
                mark[g] = False
            out[bound[rr] : p].sort()
            count[rr] = p - bound[rr]
    ptr = np.zeros(nb + 1, dtype=np.int64)
    ptr[1:] = np.cumsum(count)
    res = np.empty(ptr[nb], dtype=np.int32)
    for rr in range(nb):
        res[ptr[rr] : ptr[rr + 1]] = out[bound[rr] : bound[rr] + count[rr]]
    return ptr, res


@njit(cache=True)
def leaf_knn_update(
    Y: np.ndarray,
    order: np.ndarray,
    leaf_ptr: np.ndarray,
    best_d: np.ndarray,
    best_i: np.ndarray,
) -> None:
    """Exact neighbours within each leaf, merged into the running best lists (in place).

    ``order[leaf_ptr[L]:leaf_ptr[L + 1]]`` are the points of leaf ``L``; each point lies in one
    leaf. Lists stay sorted by distance; a point
    already listed is not added twice; on equal distances the earlier candidate is kept.
    """
    k = best_d.shape[1]
    dims = Y.shape[1]
    for leaf in range(leaf_ptr.size - 1):
        a = leaf_ptr[leaf]
        b = leaf_ptr[leaf + 1]
        for ii in range(a, b):
            i = order[ii]
            for jj in range(a, b):
                if jj == ii:
                    continue
                j = order[jj]
                d = 0.0
                for q in range(dims):
                    t = Y[i, q] - Y[j, q]
                    d += t * t
                if d >= best_d[i, k - 1]:
                    continue
                seen = False
                for m in range(k):
                    if best_i[i, m] == j:
                        seen = True
                        break
                if seen:
                    continue
                m = k - 1
                while m > 0 and best_d[i, m - 1] > d:
                    best_d[i, m] = best_d[i, m - 1]
                    best_i[i, m] = best_i[i, m - 1]
                    m -= 1
                best_d[i, m] = d
                best_i[i, m] = j
