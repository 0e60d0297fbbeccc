"""Numba kernels of the default positivity: projection sweep, leaf neighbours, pooling."""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["gather_select", "knn_count_block", "knn_positive_block", "leaf_knn_update"]


@njit(cache=True, nogil=True)
def gather_select(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    scale: np.ndarray,
    gene_row: np.ndarray,
    keep: np.ndarray,
    keep_sums: np.ndarray,
    zidx: np.ndarray,
    zval: np.ndarray,
    sidx: np.ndarray,
    sval: np.ndarray,
    lib: np.ndarray,
    lib_given: bool,
) -> tuple[np.ndarray, np.ndarray, int]:
    """One sweep over CSR counts: scaled informative entries and the ``keep`` columns.

    ``gene_row[g]`` is ``g``'s row of the PCA axes (-1: not informative); ``keep[g]`` its
    output column (-1: dropped). Fills ``zidx, zval`` with the CSR entries of ``x_g * scale``
    over the informative genes (column ``gene_row[g]``; ``log1p`` and the product with the
    axes are left to vectorised numpy/scipy) and ``sidx, sval`` with the raw counts of the
    ``keep`` columns (explicit zeros dropped); ``keep_sums[1 + keep[g]]`` gains ``x_g *
    scale`` (slot 0 collects the dropped genes), the CP10k sums of the tumour mean. The four
    buffers need room for ``indptr[-1]`` entries; every entry is written and the positions
    advance only for the wanted ones, so the loop has no data-dependent branches (3x faster
    than branching on real counts). ``lib`` holds each row's library size when ``lib_given``,
    else it is filled with the row sums; ``scale`` is ``1e4 / lib`` (0 where ``lib`` is 0)
    and is filled here too. Returns the two ``indptr`` arrays and the number of negative or
    non-finite entries (the caller refuses them).
    Serial: numba parallel regions stall on a shared, loaded machine (measured 6-13x slower).
    """
    n = indptr.size - 1
    zptr = np.zeros(n + 1, dtype=np.int64)
    sptr = np.zeros(n + 1, dtype=np.int64)
    pz = 0
    ps = 0
    bad = 0
    for r in range(n):
        if not lib_given:
            t = 0.0
            for j in range(indptr[r], indptr[r + 1]):
                t += data[j]
            lib[r] = t
        s = 1e4 / lib[r] if lib[r] > 0.0 else 0.0
        scale[r] = s
        for j in range(indptr[r], indptr[r + 1]):
            x = data[j]
            bad += (x < 0) | (x != x) | (x == np.inf)
            g = indices[j]
            row = gene_row[g]
            zidx[pz] = row
            zval[pz] = x * s
            pz += row >= 0
            col = keep[g]
            sidx[ps] = col
            sval[ps] = x
            ps += (col >= 0) & (x != 0)
            keep_sums[col + 1] += x * s
        zptr[r + 1] = pz
        sptr[r + 1] = ps
    return zptr, sptr, bad


@njit(cache=True, nogil=True, inline="always")
def _pool_row(
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    lib: np.ndarray,
    nbr: np.ndarray,
    r: int,
    acc: np.ndarray,
    mark: np.ndarray,
    touched: np.ndarray,
) -> tuple[int, float]:
    """Pool row ``r`` with its neighbours: ``acc[g]`` = summed count of each gene ``g`` met,
    listed once in ``touched[:nt]`` (first-touch order; ``mark`` flags them). Returns ``nt``
    and the pooled library. The caller reads and resets ``acc`` and ``mark``."""
    nt = 0
    s = lib[r]
    for q in range(-1, nbr.shape[1]):
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
    return nt, s


@njit(cache=True, nogil=True)
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
    Returns the CSR ``indptr`` and sorted column ``indices`` of the positive entries.
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
    acc = np.zeros(n_genes)
    mark = np.zeros(n_genes, dtype=np.bool_)
    touched = np.empty(n_genes, dtype=np.int64)
    for rr in range(nb):
        r = start + rr
        nt, s = _pool_row(indptr, indices, data, lib, nbr, r, acc, mark, touched)
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


@njit(cache=True, nogil=True)
def knn_count_block(
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
    codes: np.ndarray,
    counts: np.ndarray,
) -> None:
    """:func:`knn_positive_block`'s calls of rows ``start:stop``, counted instead of listed:
    ``counts[codes[r], g]`` gains 1 for each positive (row ``r``, gene ``g``) (in place).

    No entry list is built, sorted or copied (2.2x faster than listing, measured on 100,000
    AML cells), for callers that need only the number of positive cells per group."""
    n_genes = counts.shape[1]
    acc = np.zeros(n_genes)
    mark = np.zeros(n_genes, dtype=np.bool_)
    touched = np.empty(n_genes, dtype=np.int64)
    for r in range(start, stop):
        nt, s = _pool_row(indptr, indices, data, lib, nbr, r, acc, mark, touched)
        x = a0 + s * lam0
        cr = codes[r]
        for t in range(nt):
            g = touched[t]
            y = acc[g]
            if lib[r] > 0.0 and y > 0.0 and x <= median[int(y)]:
                counts[cr, g] += 1
            acc[g] = 0.0
            mark[g] = False


@njit(cache=True, fastmath=True, nogil=True)
def leaf_knn_update(
    Y: np.ndarray,
    order: np.ndarray,
    leaf_ptr: np.ndarray,
    best_d: np.ndarray,
    best_i: np.ndarray,
) -> None:
    """Exact neighbours within each leaf, merged into the running best lists (in place).

    ``order[leaf_ptr[L]:leaf_ptr[L + 1]]`` are the points of leaf ``L``; each point lies in one
    leaf. The leaf's points are copied dimension-major into one block, and each point's
    squared Euclidean distances (float32) to all of the leaf are computed together, one
    dimension at a time over a contiguous row (vectorised; 2x faster than a pair at a time);
    then the point's current worst distance, held in a register, filters them. Lists stay
    sorted by distance; a point already listed is not added twice; on equal distances the
    earlier candidate is kept.
    """
    k = best_d.shape[1]
    dims = Y.shape[1]
    for leaf in range(leaf_ptr.size - 1):
        a = leaf_ptr[leaf]
        m = leaf_ptr[leaf + 1] - a
        P = np.empty((dims, m), dtype=np.float32)
        for ii in range(m):
            for q in range(dims):
                P[q, ii] = Y[order[a + ii], q]
        dist = np.empty(m, dtype=np.float32)
        for ii in range(m):
            i = order[a + ii]
            dist[:] = 0.0
            for q in range(dims):
                c = P[q, ii]
                row = P[q]
                for jj in range(m):
                    t = row[jj] - c
                    dist[jj] += t * t
            worst = best_d[i, k - 1]
            for jj in range(m):
                d = dist[jj]
                if d >= worst or jj == ii:
                    continue
                j = order[a + jj]
                seen = False
                for u in range(k):
                    if best_i[i, u] == j:
                        seen = True
                        break
                if seen:
                    continue
                u = k - 1
                while u > 0 and best_d[i, u - 1] > d:
                    best_d[i, u] = best_d[i, u - 1]
                    best_i[i, u] = best_i[i, u - 1]
                    u -= 1
                best_d[i, u] = d
                best_i[i, u] = j
                worst = best_d[i, k - 1]
