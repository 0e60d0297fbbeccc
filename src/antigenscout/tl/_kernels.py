"""Bit-packed cells and per-group popcounts for exact logic-gate counting.

Each gene's cells are packed once into ``uint64`` words, one row of words per gene
(:func:`pack_groups`). Cells are laid out group after group (patients, healthy cell types) and
every group starts on a word boundary, so one popcount over a word range counts one group.
Padding bits are zero; complements (``NOT``) are masked with :attr:`PackedBits.valid`, so padding
never counts. :func:`count_ext` evaluates ``base AND g`` / ``base AND NOT g`` / ``base OR g`` for
many genes ``g`` at once, per group, and :func:`pair_group_counts` a list of pair gates. The
bitset path is used for every formula deeper than a pair. The all-pairs kernels are in
``_pair_kernels``, the bounds that extend pairs to triples in ``_triple_kernels``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from numba import prange, types
from numba.extending import intrinsic
from scipy import sparse

from antigenscout._errors import InputError

__all__ = [
    "MODE_AND",
    "MODE_ANDNOT",
    "MODE_OR",
    "PackedBits",
    "count_ext",
    "group_gene_popcount",
    "group_popcount",
    "pack_groups",
    "pair_group_counts",
]

MODE_AND = 0
MODE_ANDNOT = 1
MODE_OR = 2


@intrinsic
def _popcount(typingctx, x):  # pragma: no cover - compiled by numba
    """LLVM ``ctpop`` on a uint64 (one ``popcnt`` instruction)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


@dataclass(frozen=True)
class PackedBits:
    """Cells of one side (tumour or healthy) packed into ``uint64`` words, group by group.

    Attributes
    ----------
    words
        ``(n_genes, n_words)`` uint64; bit ``b`` of word ``w`` is cell slot ``64 * w + b``.
    valid
        ``(n_words,)`` uint64 with a 1 for every slot that holds a real cell (mask for ``NOT``).
    word_ptr
        ``(n_groups + 1,)`` int64; group ``k`` owns words ``word_ptr[k]:word_ptr[k + 1]``.
    group_sizes
        ``(n_groups,)`` int64 number of cells per group.
    groups
        ``(n_groups,)`` the group labels in packing order.
    slot
        ``(n_cells,)`` int64 slot of each input cell (its bit position).
    """

    words: np.ndarray
    valid: np.ndarray
    word_ptr: np.ndarray
    group_sizes: np.ndarray
    groups: np.ndarray
    slot: np.ndarray

    @property
    def n_genes(self) -> int:
        """Number of genes (rows of :attr:`words`)."""
        return int(self.words.shape[0])

    @property
    def n_cells(self) -> int:
        """Number of real cells."""
        return int(self.group_sizes.sum())

    def mask(self, cells: np.ndarray) -> np.ndarray:
        """Pack a boolean cell mask (input order) into words laid out like :attr:`words`."""
        out = np.zeros(self.valid.shape[0], dtype=np.uint64)
        slots = self.slot[np.asarray(cells, dtype=bool)]
        np.bitwise_or.at(
            out, slots >> 6, np.left_shift(np.uint64(1), (slots & 63).astype(np.uint64))
        )
        return out


def as_csc_bool(x: object, name: str) -> sparse.csc_array:
    """Return ``x`` (dense bool or scipy sparse) as a CSC bool array without duplicate entries.

    Raises
    ------
    InputError
        If ``x`` is not 2-D or not boolean / 0-1.
    """
    m = sparse.csc_array(as_bool_sparse(x, name))
    if m.dtype != np.bool_:
        m = m.astype(bool)
    m.sum_duplicates()
    m.eliminate_zeros()
    return m


def as_bool_sparse(x: object, name: str) -> sparse.csr_array | sparse.csc_array:
    """Validate ``x`` (dense bool or scipy sparse, bool or 0/1) without converting its format.

    A CSR or CSC input is returned as it is (no copy, duplicates and explicit zeros allowed:
    the packers treat an entry as positive when it is non-zero and OR duplicates); other sparse
    formats and dense arrays become CSR.

    Raises
    ------
    InputError
        If ``x`` is not 2-D or not boolean / 0-1.
    """
    if sparse.issparse(x):
        m = sparse.csc_array(x) if x.format == "csc" else sparse.csr_array(x)
    else:
        arr = np.asarray(x)
        if arr.ndim != 2:  # noqa: PLR2004
            msg = f"{name} must be a 2-D cells × genes matrix; got shape {arr.shape}."
            raise InputError(msg)
        m = sparse.csr_array(arr)
    if m.dtype != np.bool_:
        data = m.data
        if data.size and not np.all((data == 0) | (data == 1)):
            msg = (
                f"{name} must be boolean positivity (True/False or 0/1); got values other than "
                "0 and 1. Binarise it first (e.g. counts > threshold)."
            )
            raise InputError(msg)
    return m


@numba.njit(parallel=True, cache=True)
def _pack_csc(indptr, indices, keep, slot, n_genes, n_words):  # pragma: no cover - numba  # noqa: PLR0913, PLR0917
    out = np.zeros((n_genes, n_words), dtype=np.uint64)
    for g in prange(n_genes):
        for p in range(indptr[g], indptr[g + 1]):
            if keep[p]:
                s = slot[indices[p]]
                out[g, s >> 6] |= np.uint64(1) << np.uint64(s & 63)
    return out


@numba.njit(parallel=True, cache=True)
def _pack_csr(indptr, indices, keep, cells, cell_ptr, slot, n_genes, n_words):  # pragma: no cover  # noqa: PLR0913, PLR0917
    # one parallel task per word: the (up to 64) cells of word w, listed in cells[cell_ptr[w]:
    # cell_ptr[w + 1]], set their bit in every gene row they are positive in; tasks write
    # disjoint words, and consecutive words share cache lines of the gene rows
    out = np.zeros((n_genes, n_words), dtype=np.uint64)
    for w in prange(n_words):
        for q in range(cell_ptr[w], cell_ptr[w + 1]):
            r = cells[q]
            bit = np.uint64(1) << np.uint64(slot[r] & 63)
            for p in range(indptr[r], indptr[r + 1]):
                if keep[p]:
                    out[indices[p], w] |= bit
    return out


@numba.njit(parallel=True, cache=True)
def group_gene_popcount(words, word_ptr):  # pragma: no cover - numba
    """Positive cells per group and gene: ``out[k, g] = popcount(words[g, word_ptr[k]:…[k+1]])``."""
    n_genes = words.shape[0]
    n_groups = word_ptr.shape[0] - 1
    out = np.zeros((n_groups, n_genes), dtype=np.int64)
    for g in prange(n_genes):
        for k in range(n_groups):
            acc = np.uint64(0)
            for w in range(word_ptr[k], word_ptr[k + 1]):
                acc += _popcount(words[g, w])
            out[k, g] = np.int64(acc)
    return out


def pack_groups(x: object, labels: np.ndarray | None = None, *, name: str = "X") -> PackedBits:
    """Pack a cells × genes positivity matrix into per-gene bitsets, one word range per group.

    Parameters
    ----------
    x
        Dense bool array or scipy sparse matrix (CSR/CSC; bool or 0/1), cells × genes.
    labels
        Integer-like group label per cell (patient, cell type); ``None`` puts all cells in one
        group. Groups are laid out in sorted label order, each padded to whole words.
    name
        Name used in error messages.

    Returns
    -------
    PackedBits
        The packed cells; padding bits are zero.
    """
    m = as_bool_sparse(x, name)
    n_cells, n_genes = m.shape
    if labels is None:
        labels = np.zeros(n_cells, dtype=np.int64)
    labels = np.asarray(labels)
    if labels.shape != (n_cells,):
        msg = f"{name}: expected {n_cells} group labels (one per cell); got shape {labels.shape}."
        raise InputError(msg)
    groups, inv = np.unique(labels, return_inverse=True)
    sizes = np.bincount(inv, minlength=groups.size).astype(np.int64)
    words_per = (sizes + 63) // 64
    word_ptr = np.zeros(groups.size + 1, dtype=np.int64)
    np.cumsum(words_per, out=word_ptr[1:])
    n_words = int(word_ptr[-1])
    order = np.argsort(inv, kind="stable")
    rank = np.empty(n_cells, dtype=np.int64)
    start_cell = np.zeros(groups.size + 1, dtype=np.int64)
    np.cumsum(sizes, out=start_cell[1:])
    rank[order] = np.arange(n_cells, dtype=np.int64) - start_cell[inv[order]]
    slot = word_ptr[inv] * 64 + rank
    keep = m.data if m.dtype == np.bool_ else m.data != 0
    indptr, indices = m.indptr, m.indices  # int32 or int64: numba compiles both
    if m.format == "csc":
        words = _pack_csc(indptr, indices, keep, slot, n_genes, n_words)
    else:
        cells = np.argsort(slot, kind="stable")
        cell_ptr = np.zeros(n_words + 1, dtype=np.int64)
        np.cumsum(np.bincount(slot >> 6, minlength=n_words), out=cell_ptr[1:])
        words = _pack_csr(indptr, indices, keep, cells, cell_ptr, slot, n_genes, n_words)
    valid = np.zeros(n_words, dtype=np.uint64)
    for k in range(groups.size):
        full, rem = divmod(int(sizes[k]), 64)
        w0 = int(word_ptr[k])
        valid[w0 : w0 + full] = np.uint64(0xFFFFFFFFFFFFFFFF)
        if rem:
            valid[w0 + full] = np.uint64((1 << rem) - 1)
    return PackedBits(words, valid, word_ptr, sizes, groups, slot)


@numba.njit(cache=True)
def group_popcount(bits, word_ptr):  # pragma: no cover - numba
    """Popcount of one bitset per group: ``out[k] = popcount(bits[word_ptr[k]:word_ptr[k+1]])``."""
    n_groups = word_ptr.shape[0] - 1
    out = np.zeros(n_groups, dtype=np.int64)
    for k in range(n_groups):
        acc = np.uint64(0)
        for w in range(word_ptr[k], word_ptr[k + 1]):
            acc += _popcount(bits[w])
        out[k] = np.int64(acc)
    return out


@numba.njit(cache=True)
def _count_one(base, words, g, mode, valid, word_ptr, out_row):  # pragma: no cover - numba  # noqa: PLR0913, PLR0917
    for k in range(word_ptr.shape[0] - 1):
        acc = np.uint64(0)
        if mode == 0:
            for w in range(word_ptr[k], word_ptr[k + 1]):
                acc += _popcount(base[w] & words[g, w])
        elif mode == 1:
            for w in range(word_ptr[k], word_ptr[k + 1]):
                acc += _popcount(base[w] & ~words[g, w] & valid[w])
        else:
            for w in range(word_ptr[k], word_ptr[k + 1]):
                acc += _popcount(base[w] | words[g, w])
        out_row[k] = np.int64(acc)


@numba.njit(parallel=True, cache=True)
def _count_ext_par(base, words, genes, mode, valid, word_ptr):  # pragma: no cover - numba  # noqa: PLR0913, PLR0917
    out = np.zeros((genes.shape[0], word_ptr.shape[0] - 1), dtype=np.int64)
    for c in prange(genes.shape[0]):
        _count_one(base, words, genes[c], mode, valid, word_ptr, out[c])
    return out


@numba.njit(cache=True)
def _count_ext_ser(base, words, genes, mode, valid, word_ptr):  # pragma: no cover - numba  # noqa: PLR0913, PLR0917
    out = np.zeros((genes.shape[0], word_ptr.shape[0] - 1), dtype=np.int64)
    for c in range(genes.shape[0]):
        _count_one(base, words, genes[c], mode, valid, word_ptr, out[c])
    return out


def count_ext(  # noqa: PLR0913, PLR0917
    base: np.ndarray,
    words: np.ndarray,
    genes: np.ndarray,
    mode: int,
    valid: np.ndarray,
    word_ptr: np.ndarray,
) -> np.ndarray:
    """Per-group popcounts of ``base op words[g]`` for every gene index in ``genes``.

    Parameters
    ----------
    base
        ``(n_words,)`` uint64 bitset (already zero in padding).
    words
        ``(n_genes, n_words)`` packed genes.
    genes
        ``(n_cand,)`` int64 gene rows to combine with ``base``.
    mode
        :data:`MODE_AND` (``base ∧ g``), :data:`MODE_ANDNOT` (``base ∧ ¬g``) or
        :data:`MODE_OR` (``base ∨ g``).
    valid, word_ptr
        From :class:`PackedBits`.

    Returns
    -------
    numpy.ndarray
        ``(n_cand, n_groups)`` int64 counts.
    """
    genes = np.ascontiguousarray(genes, dtype=np.int64)
    # small batches run serially: waking the thread pool costs more than the work
    if genes.shape[0] * words.shape[1] < 1 << 16:
        return _count_ext_ser(base, words, genes, mode, valid, word_ptr)
    return _count_ext_par(base, words, genes, mode, valid, word_ptr)


@numba.njit(parallel=True, cache=True)
def pair_group_counts(kind, pa, pb, words, valid, word_ptr):  # pragma: no cover - numba  # noqa: PLR0913, PLR0917
    """Per-group popcounts of pair gates: ``out[p, k] = |pa[p] op pb[p]|`` in group ``k``.

    ``kind``: 0 = ``a ∧ b``, 1 = ``a ∧ ¬b``, 2 = ``a ∨ b`` (as in :func:`triple_candidates`).
    Returns ``(n_pairs, n_groups)`` int64.
    """
    n_par = kind.shape[0]
    n_groups = word_ptr.shape[0] - 1
    out = np.zeros((n_par, n_groups), dtype=np.int64)
    for p in prange(n_par):
        a = pa[p]
        b = pb[p]
        m = kind[p]
        for k in range(n_groups):
            acc = np.uint64(0)
            if m == 0:
                for w in range(word_ptr[k], word_ptr[k + 1]):
                    acc += _popcount(words[a, w] & words[b, w])
            elif m == 1:
                for w in range(word_ptr[k], word_ptr[k + 1]):
                    acc += _popcount(words[a, w] & ~words[b, w] & valid[w])
            else:
                for w in range(word_ptr[k], word_ptr[k + 1]):
                    acc += _popcount(words[a, w] | words[b, w])
            out[p, k] = np.int64(acc)
    return out
