"""Knn positivity at any scale: one streamed pass over a possibly backed matrix.

The pass projects each chunk of cells on one shared PCA, keeps the called genes' columns
and finds neighbours within each batch (:func:`knn_neighbors_streamed`); the calls are then
made on the neighbour lists (:mod:`antigenscout.pp._neighbors`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._checks import _check_counts
from ._neighbors import knn_blocks_from_neighbors
from ._positivity import DEFAULT_N_NEIGHBORS, DEFAULT_PRIOR_SHAPE, DEFAULT_THRESHOLD

if TYPE_CHECKING:
    from ._ambient import Soup

__all__ = ["knn_blocks_streamed", "knn_neighbors_streamed"]


def knn_blocks_streamed(  # noqa: PLR0913
    X: Any,
    rows: np.ndarray,
    batches: np.ndarray,
    genes: np.ndarray,
    *,
    library: np.ndarray | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    n_neighbors: int = DEFAULT_N_NEIGHBORS,
    prior_shape: float = DEFAULT_PRIOR_SHAPE,
    block_size: int = 8192,
    random_state: int = 0,
    column_sums: np.ndarray | None = None,
    on_chunk: Callable[..., None] | None = None,
    progress: Callable[[int, int], None] | None = None,
    soup: Soup | None = None,
) -> Iterator[tuple[slice, sp.csr_matrix]]:
    """Compute default (``knn``) positivity of ``rows`` of a possibly backed matrix, at any scale.

    It runs :func:`knn_neighbors_streamed`, then :func:`knn_blocks_from_neighbors`.

    Parameters are those of the two (``soup.code`` one sample per entry of ``rows``);
    ``column_sums``, ``on_chunk`` and ``progress`` are filled or called before the first
    block is yielded.

    Yields
    ------
    ``(slice into rows, bool CSR block)`` in the order of ``rows``.
    """
    Xg, lib, nbr = knn_neighbors_streamed(
        X,
        rows,
        batches,
        genes,
        library=library,
        n_neighbors=n_neighbors,
        block_size=block_size,
        random_state=random_state,
        column_sums=column_sums,
        on_chunk=on_chunk,
        progress=progress,
    )
    yield from knn_blocks_from_neighbors(
        Xg,
        lib,
        nbr,
        threshold=threshold,
        prior_shape=prior_shape,
        block_size=block_size,
        soup=soup,
    )


def knn_neighbors_streamed(  # noqa: PLR0913, PLR0915
    X: Any,
    rows: np.ndarray,
    batches: np.ndarray,
    genes: np.ndarray,
    *,
    library: np.ndarray | None = None,
    n_neighbors: int = DEFAULT_N_NEIGHBORS,
    block_size: int = 8192,
    random_state: int = 0,
    column_sums: np.ndarray | None = None,
    on_chunk: Callable[..., None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """Run the one pass of ``knn`` positivity over ``rows`` of a possibly backed matrix.

    ``knn`` is the default positivity; the pass works at any scale and gives the ``genes``
    columns, library sizes and neighbour lists.

    One pass over the rows, chunk by chunk: each cell is projected on one shared PCA of
    informative genes (:func:`antigenscout.pp._graph.fit_embedding`, fitted first on at most
    10,000 cells) and only the ``genes`` columns are kept. Neighbours are found within each
    batch (patient) on the projections (exact up to 20,000 cells, partition trees above), in
    a helper thread as soon as a batch's last cell is projected. The pooled posterior is
    evaluated on the result by :func:`knn_blocks_from_neighbors` (calls) or
    :func:`knn_counts_from_neighbors` (positive cells per group). Memory: the ``genes``
    columns of the rows, ``n_pcs`` floats per cell and the graph — never the whole matrix.

    Parameters
    ----------
    X
        Cells × genes raw counts, in memory or backed (an on-disk AnnData matrix).
    rows
        Sorted row positions of the cells to call.
    batches
        Integer batch (patient) code per entry of ``rows``; neighbours stay within a batch.
    genes
        Column indices to call.
    library
        Library size per entry of ``rows`` (default: row sums over all genes).
    n_neighbors, block_size
        As in :func:`positive_blocks` (``block_size``: rows of a chunk whose counts must be
        checked when the pass finds negative or non-finite ones).
    random_state
        Seed of the PCA and the neighbour trees.
    column_sums
        Optional float64 array, one entry per gene: ``count / library * 1e4`` summed over
        the rows is added to it during the pass, so a caller needing the mean CP10k reads
        the matrix once.
    on_chunk
        Optional ``f(slice into rows, counts of the genes columns, library sizes,
        duplicates=bool)``, called once per chunk in row order during the pass, so a caller
        needing more per-cell sums reads the matrix once. The counts block is a view of the
        sweeping thread's scratch buffers, valid only during the call: copy it to keep it.
    progress
        Optional ``f(rows done, rows)``, called after each chunk.

    Returns
    -------
    ``(Xg, lib, nbr)``: the ``genes`` columns of ``rows`` (raw counts, CSR, column order
    within a row as read), the library sizes and the ``(len(rows), n_neighbors)`` neighbour
    positions in ``rows`` (-1 where a batch has fewer cells).
    """
    from concurrent.futures import Future, ThreadPoolExecutor  # noqa: PLC0415

    from ._graph import _knn_indices, fit_embedding, iter_row_chunks  # noqa: PLC0415

    rows = np.asarray(rows, dtype=np.int64)
    batches = np.asarray(batches)
    genes = np.asarray(genes, dtype=np.int64)
    n = rows.size
    k = int(n_neighbors)
    lib = np.empty(n) if library is None else np.asarray(library, dtype=np.float64)
    emb = fit_embedding(X, None if library is None else lib, rows=rows, random_state=random_state)
    Y = np.empty((n, emb.components.shape[0]), dtype=np.float32)
    # batches in the order their last cell is swept: a batch's neighbours are searched in a
    # helper thread as soon as all its cells are projected (with a patient-sorted input the
    # trees of one patient overlap the sweep of the next; no barrier, so no stall under load)
    codes, _ = pd.factorize(batches, use_na_sentinel=False)
    order = np.argsort(codes, kind="stable")
    members = [m for m in np.split(order, np.flatnonzero(np.diff(codes[order])) + 1) if m.size]
    members.sort(key=lambda m: int(m.max()))
    searched: list[tuple[np.ndarray, Future[np.ndarray]]] = []
    store = _RowStore(n)  # the genes columns, copied in row order straight from the sweep

    def sweep(sl: slice, blk: sp.csr_matrix) -> tuple[Any, ...]:
        sums = None if column_sums is None else np.zeros(genes.size)
        got = emb.sweep(blk, None if library is None else lib[sl], genes, sums, copy=False)
        return (sl, blk, *got, sums)

    def finish(res: tuple[Any, ...], Y: np.ndarray = Y) -> None:
        """Store one swept chunk and start the neighbour search of every batch it completes.

        Chunks are stored in row order, so sums are added in a fixed order; a batch is complete
        when the chunk holds its last cell.
        """
        sl, blk, y, sel, lib_c, bad, sums = res
        if bad:  # negative or non-finite counts, counted by the sweep: say which
            _check_counts(blk, block_size)
        Y[sl], lib[sl] = y, lib_c
        store.append(sel)  # sel views the sweeping thread's scratch: copied now
        if sums is not None and column_sums is not None:
            np.add(column_sums, sums, out=column_sums)
        if on_chunk is not None:
            on_chunk(sl, sel, lib_c, duplicates=not blk.has_canonical_format)
        while len(searched) < len(members) and members[len(searched)].max() < sl.stop:
            idx = members[len(searched)]
            searched.append((idx, pool.submit(_knn_indices, Y[idx], k, random_state)))
        if progress is not None:
            progress(sl.stop, n)

    # chunks in pairs: a helper thread sweeps the first while this one sweeps the second
    with ThreadPoolExecutor(1) as pool, ThreadPoolExecutor(1) as helper:
        ahead: Future[tuple[Any, ...]] | None = None
        for sl, blk in iter_row_chunks(X, rows):
            if ahead is None:
                ahead = helper.submit(sweep, sl, blk)
                continue
            mine = sweep(sl, blk)
            finish(ahead.result())
            ahead = None
            finish(mine)
        if ahead is not None:
            finish(ahead.result())
        for idx in members[len(searched) :]:  # rows not covered by any chunk (none expected)
            searched.append((idx, pool.submit(_knn_indices, Y[idx], k, random_state)))
        Xg = store.matrix(genes.size)
        nbr = np.full((n, k), -1, dtype=np.int64)
        for idx, fut in searched:
            nb = fut.result()
            nbr[idx] = np.where(nb >= 0, idx[np.maximum(nb, 0)], -1)
    return Xg, lib, nbr


class _RowStore:
    """CSR rows appended in order into one growing pair of buffers.

    Each part is copied once (no list of parts stacked at the end), and the buffers grow to 1.1x
    the size projected from the rows seen so far, so they are rarely reallocated.
    """

    def __init__(self, n_rows: int) -> None:
        self.indptr = np.zeros(n_rows + 1, dtype=np.int64)
        self.data = np.empty(0, dtype=np.float32)
        self.indices = np.empty(0, dtype=np.int32)
        self.rows = 0

    def append(self, part: sp.csr_matrix) -> None:
        """Copy the rows of ``part`` after the rows held."""
        m, nnz = part.shape[0], int(part.indptr[-1])
        at = int(self.indptr[self.rows])
        if at + nnz > self.data.size:
            left = self.indptr.size - 1 - self.rows - m
            cap = at + nnz + int(1.1 * left * (at + nnz) / max(1, self.rows + m)) + 1
            for name in ("data", "indices"):
                old = getattr(self, name)
                new = np.empty(cap, dtype=old.dtype)
                new[:at] = old[:at]
                setattr(self, name, new)
        self.data[at : at + nnz] = part.data[:nnz]
        self.indices[at : at + nnz] = part.indices[:nnz]
        self.indptr[self.rows + 1 : self.rows + 1 + m] = part.indptr[1:].astype(np.int64) + at
        self.rows += m

    def matrix(self, n_cols: int) -> sp.csr_matrix:
        """Return the rows held, as one CSR matrix (views of the buffers)."""
        nnz = int(self.indptr[self.rows])
        return sp.csr_matrix(
            (self.data[:nnz], self.indices[:nnz], self.indptr[: self.rows + 1]),
            shape=(self.rows, n_cols),
        )
