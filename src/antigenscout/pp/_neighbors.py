"""Knn calls on a binary neighbour list: numba kernels, listed as blocks or counted per group.

The neighbour lists come from the streamed pass (:mod:`antigenscout.pp._streamed`). Whole
counts are called against a table of posterior medians (:func:`_knn_table`); other counts
take the general path, :func:`~antigenscout.pp._positivity.positive_blocks` on the list's
binary graph.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp

from antigenscout._errors import InputError

from ._ambient import Soup
from ._checks import _check_codes, _check_library, _check_soup
from ._knn import _native_terms
from ._positivity import _check_threshold, positive_blocks

__all__ = ["count_blocks", "knn_blocks_from_neighbors", "knn_counts_from_neighbors"]


def _pool_terms(
    lib: np.ndarray,
    nbr: np.ndarray,
    threshold: float,
    prior_shape: float,
    soup: Soup | None,
) -> tuple[np.ndarray, ...]:
    """Return the per-cell terms of the pooled call on a binary neighbour list.

    These are :func:`_native_terms` of each cell's pooled library, then the soup background and
    each cell's sample.
    """
    n = lib.size
    soup = Soup.none(n) if soup is None else soup
    code = np.asarray(soup.code, dtype=np.int64)
    if code.shape != (n,):
        msg = f"soup.code must hold one sample per cell ({n}); got shape {code.shape}"
        raise InputError(msg)
    a0, lam0 = float(prior_shape), threshold / 1e4
    s = lib.astype(np.float64).copy()
    for q in range(nbr.shape[1]):
        ok = nbr[:, q] >= 0
        s[ok] += lib[nbr[ok, q]]
    x, q0, t0, r = _native_terms(s, code, soup, lam0, a0)
    bg = np.ascontiguousarray(soup.background, dtype=np.float64)
    return x, q0, t0, r, bg, code


#: Largest pooled count tabulated for the fast knn kernel (beyond: the general path).
_MAX_TABLE = 5_000_000


def _knn_table(
    Xg: sp.csr_matrix, nbr: np.ndarray, threshold: float, prior_shape: float
) -> np.ndarray | None:
    """Return the median of Gamma(a0 + y, 1) for every pooled whole count ``y`` the kernels meet.

    ``None`` when the counts are not whole or could pool beyond :data:`_MAX_TABLE` (then
    :func:`positive_blocks` evaluates the posterior itself).
    """
    from scipy.special import gammainccinv  # noqa: PLC0415

    data = Xg.data
    whole = all(
        bool(np.all(data[i : i + (1 << 24)] == np.round(data[i : i + (1 << 24)])))
        for i in range(0, data.size, 1 << 24)
    )
    top = (nbr.shape[1] + 1) * (float(data.max()) if data.size else 0.0)
    if not whole or top > _MAX_TABLE:
        return None
    return gammainccinv(float(prior_shape) + np.arange(int(top) + 1, dtype=np.float64), 0.5)


def _general_knn_blocks(  # noqa: PLR0913, PLR0917
    Xg: sp.csr_matrix,
    lib: np.ndarray,
    nbr: np.ndarray,
    threshold: float,
    prior_shape: float,
    block_size: int,
    soup: Soup | None = None,
) -> Iterator[tuple[slice, sp.csr_matrix]]:
    """:func:`positive_blocks` on the binary graph of a neighbour list."""
    n = Xg.shape[0]
    rows = np.repeat(np.arange(n), nbr.shape[1])
    cols = nbr.ravel()
    ok = cols >= 0
    graph = sp.csr_matrix(
        (np.ones(int(ok.sum()), dtype=np.float32), (rows[ok], cols[ok])), shape=(n, n)
    )
    yield from positive_blocks(
        Xg,
        lib,
        method="knn",
        threshold=threshold,
        graph=graph,
        block_size=block_size,
        prior_shape=prior_shape,
        soup=soup,
    )


def _in_pairs(call: Callable[[int], Any], starts: list[int], threads: int) -> Iterator[Any]:
    """Run ``call(start)`` for each start, in order, on up to two threads.

    With ``threads`` 2 a helper thread runs every second one (the kernels release the GIL), at
    most two in flight.
    """
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    if threads < 2:  # noqa: PLR2004
        for start in starts:
            yield call(start)
        return
    with ThreadPoolExecutor(1) as pool:
        for i in range(0, len(starts), 2):
            ahead = pool.submit(call, starts[i + 1]) if i + 1 < len(starts) else None
            yield call(starts[i])
            if ahead is not None:
                yield ahead.result()


def knn_blocks_from_neighbors(  # noqa: PLR0913
    Xg: sp.csr_matrix,
    lib: np.ndarray,
    nbr: np.ndarray,
    *,
    threshold: float,
    prior_shape: float,
    block_size: int,
    threads: int = 2,
    soup: Soup | None = None,
) -> Iterator[tuple[slice, sp.csr_matrix]]:
    """Knn calls on a binary neighbour list (the graph of :func:`positive_blocks` with 0/1 weights).

    A numba kernel makes them for whole counts, else :func:`positive_blocks` itself.

    Parameters
    ----------
    Xg
        Cells × genes raw counts (CSR) of the genes to call.
    lib
        Library size of each cell over all genes.
    nbr
        ``(cells, k)`` neighbour indices, -1 where a cell has fewer neighbours.
    threshold, prior_shape, block_size
        As in :func:`positive_blocks`.
    threads
        2: a helper thread calls every second block (the kernel releases the GIL); 1: all
        in this thread (a task of a single-threaded Dask worker).
    soup
        Soup reads to discount (:class:`Soup`, columns = those of ``Xg``); ``None``: none.

    Yields
    ------
    ``(rows, bool CSR block)`` in row order, equal to :func:`positive_blocks` on the same
    graph (tested).
    """
    from ._graph_kernels import knn_positive_block  # noqa: PLC0415

    n, m = Xg.shape
    threshold = _check_threshold(threshold, "knn")
    median = _knn_table(Xg, nbr, threshold, prior_shape)
    if median is None:
        yield from _general_knn_blocks(Xg, lib, nbr, threshold, prior_shape, block_size, soup)
        return
    _check_library(lib, Xg)
    _check_soup(soup, m)
    a0 = float(prior_shape)
    pool = _pool_terms(lib, nbr, threshold, prior_shape, soup)

    def call(start: int) -> tuple[slice, sp.csr_matrix]:
        stop = min(n, start + block_size)
        ptr, idx = knn_positive_block(
            Xg.indptr, Xg.indices, Xg.data, lib, nbr, start, stop, median, a0, pool, m
        )
        blk = sp.csr_matrix((np.ones(idx.size, dtype=bool), idx, ptr), shape=(stop - start, m))
        return slice(start, stop), blk

    yield from _in_pairs(call, list(range(0, n, block_size)), threads)


def count_blocks(
    blocks: Iterator[tuple[slice, sp.csr_matrix]],
    codes: np.ndarray,
    n_groups: int,
    n_genes: int,
    *,
    progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Positive cells per group over ``(rows, calls)`` blocks: ``(n_groups, n_genes)`` int64.

    ``codes`` holds the group of every row the blocks cover (checked: 0 .. ``n_groups`` - 1);
    ``progress(rows done, rows)`` is called after each block.
    """
    from ._kernels import count_rows_by_group  # noqa: PLC0415

    codes = _check_codes(codes, len(codes), n_groups)
    counts = np.zeros((n_groups, n_genes), dtype=np.int64)
    done = 0
    for sl, blk in blocks:
        blk = sp.csr_matrix(blk)  # noqa: PLW2901
        count_rows_by_group(blk.indptr, blk.indices, blk.data, codes[sl], counts)
        done += sl.stop - sl.start
        if progress is not None:
            progress(done, len(codes))
    return counts


def knn_counts_from_neighbors(  # noqa: PLR0913
    Xg: sp.csr_matrix,
    lib: np.ndarray,
    nbr: np.ndarray,
    codes: np.ndarray,
    n_groups: int,
    *,
    threshold: float,
    prior_shape: float,
    block_size: int = 8192,
    threads: int = 2,
    progress: Callable[[int, int], None] | None = None,
    soup: Soup | None = None,
) -> np.ndarray:
    """Count positive cells per group of :func:`knn_blocks_from_neighbors`'s calls.

    The kernel counts them without listing them (what a ranking needs; 2.2x faster pooling).

    Parameters
    ----------
    Xg, lib, nbr, threshold, prior_shape, block_size, threads
        As in :func:`knn_blocks_from_neighbors`.
    codes
        Group (0 .. ``n_groups`` - 1) of each cell.
    n_groups
        Number of groups.
    progress
        Optional ``f(cells done, cells)`` after each block.
    soup
        As in :func:`knn_blocks_from_neighbors`.

    Returns
    -------
    ``(n_groups, genes)`` int64 counts, equal to summing the blocks of
    :func:`knn_blocks_from_neighbors` per group (tested).
    """
    from ._graph_kernels import knn_count_block  # noqa: PLC0415

    n, m = Xg.shape
    codes = _check_codes(codes, n, n_groups)
    threshold = _check_threshold(threshold, "knn")
    median = _knn_table(Xg, nbr, threshold, prior_shape)
    if median is None:
        blocks = _general_knn_blocks(Xg, lib, nbr, threshold, prior_shape, block_size, soup)
        return count_blocks(blocks, codes, n_groups, m, progress=progress)
    _check_library(lib, Xg)
    _check_soup(soup, m)
    counts = np.zeros((n_groups, m), dtype=np.int64)
    done = 0
    a0 = float(prior_shape)
    pool = _pool_terms(lib, nbr, threshold, prior_shape, soup)

    def call(start: int) -> tuple[int, np.ndarray]:
        stop = min(n, start + block_size)
        part = np.zeros_like(counts)
        knn_count_block(
            Xg.indptr, Xg.indices, Xg.data, lib, nbr, start, stop, median, a0, pool, codes, part
        )
        return stop - start, part

    for cells, part in _in_pairs(call, list(range(0, n, block_size)), threads):
        counts += part
        done += cells
        if progress is not None:
            progress(done, n)
    return counts
