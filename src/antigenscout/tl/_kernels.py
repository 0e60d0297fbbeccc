"""Bit-packed and BLAS kernels for exact logic-gate counting.

Two ways to count co-positive cells are provided.

* **Bitsets.** Each gene's cells are packed once into ``uint64`` words, one row of words per gene
  (:func:`pack_groups`). Cells are laid out group after group (patients, healthy cell types) and
  every group starts on a word boundary, so one popcount over a word range counts one group.
  Padding bits are zero; complements (``NOT``) are masked with :attr:`PackedBits.valid`, so padding
  never counts. :func:`count_ext` evaluates ``base AND g`` / ``base AND NOT g`` / ``base OR g`` for
  many genes ``g`` at once, per group.
* **Gram matrix.** For all pairs at once, ``|A ∧ B|`` per group is an entry of ``Gᵀ G`` where ``G``
  is the group's 0/1 cells × genes matrix. :func:`gram_counts` densifies blocks of cells to
  ``float32`` and calls BLAS ``ssyrk``; each block has fewer than ``2**24`` cells, so every float32
  entry is an exact integer, and blocks are accumulated in ``int64``. The result is deterministic.

The search's default for all pairs is :func:`pair_stats_fused`: one pass over the tumour and every
healthy type with a 4 × 4 register tile of ``<8 x i64>`` AND + popcount (``vpopcntq`` on AVX-512
VPOPCNTDQ), folding each type's counts into the worst-risk maxima at once;
:func:`pair_and_counts_bits` is the plain scalar kernel it replaced, kept as a reference. The
bitset path is used for every formula deeper than a pair. Measured figures: ``docs/benchmarks.md``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numba
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic
from scipy import sparse
from scipy.linalg import blas

from antigenscout._errors import InputError

__all__ = [
    "MODE_AND",
    "MODE_ANDNOT",
    "MODE_OR",
    "PackedBits",
    "child_risk_lower",
    "count_ext",
    "frechet_pair_risk",
    "gram_counts",
    "group_gene_popcount",
    "group_popcount",
    "or_child_bound_max",
    "pack_groups",
    "pair_and_counts_bits",
    "pair_group_counts",
    "pair_layout",
    "pair_stats_fused",
    "pair_values_counted",
    "parent_type_terms",
    "update_pair_risk",
]

MODE_AND = 0
MODE_ANDNOT = 1
MODE_OR = 2

#: Rows per BLAS block; far below 2**24 so float32 counts are exact integers.
_GRAM_BLOCK = 8192


@intrinsic
def _popcount(typingctx, x):  # pragma: no cover - compiled by numba
    """LLVM ``ctpop`` on a uint64 (one ``popcnt`` instruction)."""
    sig = types.uint64(types.uint64)

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return sig, codegen


#: Words per vector (512 bits) in the tile kernel; pair layouts align every segment to it.
VEC_WORDS = 8
#: Genes per side of a register tile (``TILE × TILE`` pair counts held in vector registers).
TILE = 4
#: Most words one call of :func:`_and_popcount_tile` may sweep: a pair's count over them stays
#: below 2^16 (64 × 1016 = 65,024), which its packed horizontal sums rely on.
TILE_MAX_WORDS = 1016


@intrinsic
def _and_popcount_tile(typingctx, words, i0, j0, w0, w1, out, off):  # pragma: no cover - numba  # noqa: PLR0913, PLR0917
    """``out[off + 4 a + b] += Σ_w popcount(words[i0 + a, w] & words[j0 + b, w])``, a, b < 4.

    The word range ``w0:w1`` must be a whole number of :data:`VEC_WORDS`-word vectors, at most
    :data:`TILE_MAX_WORDS` words (so that every count fits in 16 bits). The
    loop is written in LLVM IR on ``<8 x i64>`` vectors with 16 vector accumulators (a 4 × 4
    register tile: 8 loads feed 16 AND + popcount + add), so LLVM emits ``vpopcntq`` on 512-bit
    registers where the CPU has AVX-512 VPOPCNTDQ and legalises the same IR to narrower vectors
    (or scalar ``popcnt``) elsewhere; the result is exact on every target.
    """
    sig = types.void(words, i0, j0, w0, w1, out, off)

    def codegen(context, builder, signature, args):
        wty, ity, jty, w0ty, w1ty, oty, offty = signature.args
        words_v, i0_v, j0_v, w0_v, w1_v, out_v, off_v = args
        i64 = ir.IntType(64)
        vec = ir.VectorType(i64, VEC_WORDS)
        arr = context.make_array(wty)(context, builder, value=words_v)
        oarr = context.make_array(oty)(context, builder, value=out_v)
        base = builder.bitcast(arr.data, ir.IntType(8).as_pointer())
        stride = cgutils.unpack_tuple(builder, arr.strides)[0]

        def row_ptr(first, fty, k):
            r = builder.add(context.cast(builder, first, fty, types.intp), ir.Constant(i64, k))
            return builder.gep(base, [builder.mul(r, stride)])

        rows = [row_ptr(i0_v, ity, a) for a in range(TILE)]
        cols = [row_ptr(j0_v, jty, b) for b in range(TILE)]
        accs = [cgutils.alloca_once_value(builder, ir.Constant(vec, None)) for _ in range(16)]
        ctpop = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(vec, [vec]), "llvm.ctpop.v8i64"
        )
        start = context.cast(builder, w0_v, w0ty, types.intp)
        stop = context.cast(builder, w1_v, w1ty, types.intp)
        with cgutils.for_range_slice(builder, start, stop, ir.Constant(i64, VEC_WORDS)) as (w, _):
            byte_off = builder.mul(w, ir.Constant(i64, 8))

            def load(p):
                q = builder.bitcast(builder.gep(p, [byte_off]), vec.as_pointer())
                return builder.load(q, align=8)

            xs = [load(p) for p in rows]
            ys = [load(p) for p in cols]
            for a in range(TILE):
                for b in range(TILE):
                    acc = accs[a * TILE + b]
                    pc = builder.call(ctpop, [builder.and_(xs[a], ys[b])])
                    builder.store(builder.add(builder.load(acc), pc), acc)
        optr = builder.bitcast(oarr.data, i64.as_pointer())
        o0 = context.cast(builder, off_v, offty, types.intp)
        # Horizontal sums, four accumulators at a time: a lane holds at most 64 × (w1 − w0) / 8
        # < 2^16 (the caller keeps w1 − w0 ≤ _TILE_MAX_WORDS), so four lanes packed into 16-bit
        # fields of one <8 x i64> sum without carries; one reduction then serves four pairs.
        reduce = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(i64, [vec]), "llvm.vector.reduce.add.v8i64"
        )
        mask16 = ir.Constant(i64, 0xFFFF)
        for q in range(4):
            packed = builder.load(accs[4 * q])
            for r in range(1, 4):
                sh = ir.Constant(vec, [ir.Constant(i64, 16 * r)] * VEC_WORDS)
                packed = builder.or_(packed, builder.shl(builder.load(accs[4 * q + r]), sh))
            total = builder.call(reduce, [packed])
            for r in range(4):
                part = builder.and_(builder.lshr(total, ir.Constant(i64, 16 * r)), mask16)
                p = builder.gep(optr, [builder.add(o0, ir.Constant(i64, 4 * q + r))])
                builder.store(builder.add(builder.load(p), part), p)
        return context.get_dummy_value()

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
def _pair_and_bits(words, chunk):  # pragma: no cover - numba
    n_genes, n_words = words.shape
    out = np.zeros((n_genes, n_genes), dtype=np.int64)
    for w0 in range(0, n_words, chunk):
        w1 = min(n_words, w0 + chunk)
        for i in prange(n_genes):
            nq = (n_genes - i) // 4
            # four partners per pass: the words of gene i are loaded once for four popcounts
            for q in range(nq):
                j = i + 4 * q
                a0 = np.uint64(0)
                a1 = np.uint64(0)
                a2 = np.uint64(0)
                a3 = np.uint64(0)
                for w in range(w0, w1):
                    x = words[i, w]
                    a0 += _popcount(x & words[j, w])
                    a1 += _popcount(x & words[j + 1, w])
                    a2 += _popcount(x & words[j + 2, w])
                    a3 += _popcount(x & words[j + 3, w])
                out[i, j] += np.int64(a0)
                out[i, j + 1] += np.int64(a1)
                out[i, j + 2] += np.int64(a2)
                out[i, j + 3] += np.int64(a3)
            for jt in range(i + 4 * nq, n_genes):
                a0 = np.uint64(0)
                for w in range(w0, w1):
                    a0 += _popcount(words[i, w] & words[jt, w])
                out[i, jt] += np.int64(a0)
    for r in range(n_genes):
        for q in range(r + 1, n_genes):
            out[q, r] = out[r, q]
    return out


def pair_and_counts_bits(
    packed: PackedBits, group: int | None = None, *, chunk: int = 256
) -> np.ndarray:
    """All-pairs ``|A ∧ B|`` (genes × genes, int64) by popcount, word-chunked for cache reuse.

    Parameters
    ----------
    packed
        Packed cells.
    group
        Count only this group (its position in ``packed.groups``); ``None`` counts all cells.
    chunk
        Words per cache block.
    """
    words = packed.words
    if group is not None:
        w0, w1 = int(packed.word_ptr[group]), int(packed.word_ptr[group + 1])
        words = np.ascontiguousarray(words[:, w0:w1])
    return _pair_and_bits(words, chunk)


def pair_layout(segments: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Copy word segments (each ``(n_genes, n_words_k)``) side by side for the tile kernel.

    Every segment starts on a :data:`VEC_WORDS` boundary and is zero-padded to a whole number of
    vectors; rows are zero-padded to a multiple of :data:`TILE`. Zero padding never counts in an
    AND.

    Returns
    -------
    words
        ``(ceil(n_genes / 4) * 4, total)`` uint64, C-contiguous.
    seg_ptr
        ``(n_segments + 1,)`` int64; segment ``k`` owns words ``seg_ptr[k]:seg_ptr[k + 1]``.
    """
    g = segments[0].shape[0]
    lens = [-(-s.shape[1] // VEC_WORDS) * VEC_WORDS for s in segments]
    seg_ptr = np.zeros(len(segments) + 1, dtype=np.int64)
    np.cumsum(lens, out=seg_ptr[1:])
    rows = -(-g // TILE) * TILE
    out = np.zeros((rows, int(seg_ptr[-1])), dtype=np.uint64)
    for k, seg in enumerate(segments):
        out[:g, seg_ptr[k] : seg_ptr[k] + seg.shape[1]] = seg
    return out, seg_ptr


@numba.njit(cache=True)
def _block_pair(bp, nb):  # pragma: no cover - numba
    # bp-th (ib, jb) with jb >= ib, row by row
    bp = np.int64(bp)
    ib = np.int64(0)
    while bp >= nb - ib:
        bp -= nb - ib
        ib += 1
    return ib, ib + bp


@numba.njit(cache=True)
def _count_segment(words, lo, hi, i0, j0, nti, ntj, diag, chunk, cnt, todo):  # pragma: no cover  # noqa: PLR0913, PLR0917
    # cnt[(ti * ntj + tj) * 16 + 4a + b] += |row i0+4ti+a ∧ row j0+4tj+b| over words lo:hi
    step = min(chunk, TILE_MAX_WORDS)  # the tile's packed sums need < 2^16 per call
    for c0 in range(lo, hi, step):
        c1 = min(hi, c0 + step)
        for ti in range(nti):
            for tj in range(ti if diag else 0, ntj):
                t = ti * ntj + tj
                if todo[t]:
                    _and_popcount_tile(words, i0 + 4 * ti, j0 + 4 * tj, c0, c1, cnt, t * 16)


@numba.njit(cache=True)
def _pair_block_task(  # noqa: PLR0912, PLR0913, PLR0915, PLR0917
    words, seg_ptr, g, h_single, h_scale, P, r_and, r_or, r_an, block, chunk, ib, jb, s_rows,
    cut, kinds,
):  # fmt: skip  # pragma: no cover - numba
    # one (ib, jb) block pair of pair_stats_fused: every segment, then its fold
    i0 = ib * block
    j0 = jb * block
    ni = min(g, i0 + block) - i0
    nj = min(g, j0 + block) - j0
    nti = (ni + 3) // 4
    ntj = (nj + 3) // 4
    diag = ib == jb
    cnt = np.zeros(nti * ntj * 16, dtype=np.int64)
    todo = np.ones(nti * ntj, dtype=np.bool_)
    if cut > 0.0:
        # rows are sorted by decreasing tumour count: a tile's first row and column bound the
        # coverage of every pair gate in it (AND ≤ min, OR ≤ sum, AND NOT ≤ max)
        n_todo = 0
        for ti in range(nti):
            for tj in range(ti if diag else 0, ntj):
                si = s_rows[i0 + 4 * ti]
                sj = s_rows[j0 + 4 * tj]
                ub = 0
                if kinds & 1:
                    ub = max(ub, min(si, sj))
                if kinds & 2:
                    ub = max(ub, si + sj)
                if kinds & 4:
                    ub = max(ub, max(si, sj))  # noqa: PLW3301
                todo[ti * ntj + tj] = ub >= cut
                n_todo += ub >= cut
        if n_todo == 0:
            return
    for k in range(seg_ptr.shape[0] - 1):
        cnt[:] = 0
        _count_segment(words, seg_ptr[k], seg_ptr[k + 1], i0, j0, nti, ntj, diag, chunk, cnt, todo)
        scale = h_scale[k - 1] if k > 0 else 0.0
        for ti in range(nti):
            for tj in range(ti if diag else 0, ntj):
                if not todo[ti * ntj + tj]:
                    continue
                t = (ti * ntj + tj) * 16
                for a in range(4):
                    i = i0 + 4 * ti + a
                    if i >= g:
                        break
                    for b in range(4):
                        j = j0 + 4 * tj + b
                        if j >= g:
                            break
                        if diag and j < i:
                            continue
                        c = cnt[t + 4 * a + b]
                        if k == 0:
                            P[i, j] = c
                            P[j, i] = c
                            continue
                        si = h_single[k - 1, i]
                        sj = h_single[k - 1, j]
                        v = scale * c
                        if v > r_and[i, j]:
                            r_and[i, j] = v
                            r_and[j, i] = v
                        v = scale * (si + sj - c)
                        if v > r_or[i, j]:
                            r_or[i, j] = v
                            r_or[j, i] = v
                        v = scale * (si - c)
                        r_an[i, j] = max(r_an[i, j], v)
                        v = scale * (sj - c)
                        r_an[j, i] = max(r_an[j, i], v)


@numba.njit(parallel=True, cache=True)
def pair_stats_fused(  # noqa: PLR0913, PLR0917
    words, seg_ptr, g, h_single, h_scale, P, r_and, r_or, r_an, block, chunk, s_rows=None,
    cut=0.0, kinds=7,
):  # fmt: skip  # pragma: no cover - numba
    """Exact pair counts of segment 0 and worst pair risks over segments 1.. in one pass.

    ``words``/``seg_ptr`` come from :func:`pair_layout`: segment 0 holds the tumour cells (its
    counts go to ``P[i, j] = |i ∧ j|``, diagonal included), segment ``k ≥ 1`` the healthy cells of
    type ``k - 1``, whose counts ``c`` are folded at once into the running maxima as in
    :func:`update_pair_risk` (``h_single[k - 1]`` single-gene counts, ``h_scale[k - 1]`` =
    weight / cells): ``r_and = max(r_and, scale × c)``, ``r_or`` with ``s_i + s_j − c`` and the
    ordered ``r_an[i, j]`` with ``s_i − c``. No per-type genes × genes matrix is formed.

    Work is split into blocks of ``block`` genes (a multiple of 4); each pair of blocks is one
    parallel task that sweeps every segment in ``chunk``-word slices (a multiple of 8, so the
    slices stay in cache) with the 4 × 4 register tile :func:`_and_popcount_tile`.

    With ``cut > 0`` (a count) and rows sorted by decreasing tumour count ``s_rows`` (padded to
    the row count), a 4 × 4 tile is skipped when no pair gate in it can reach ``cut`` tumour
    cells (``kinds``: bit 0 AND ≤ ``min(s_i, s_j)``, bit 1 OR ≤ ``s_i + s_j``, bit 2 AND NOT
    ≤ ``max(s_i, s_j)``); its entries are left as they were (the caller fills ``P`` with −1).
    """
    nb = (g + block - 1) // block
    if s_rows is None:
        s_rows = np.zeros(0, dtype=np.int64)
        cut = 0.0
    n_bp = nb * (nb + 1) // 2
    # numba splits a prange into contiguous chunks per thread; with rows sorted by count (and
    # tiles skipped) the work sits in the first block rows, so each parallel task takes every
    # n_task-th block pair instead: the threads get equal shares of every part of the triangle
    n_task = min(n_bp, 256)
    for q in prange(n_task):
        for bp in range(q, n_bp, n_task):
            ib, jb = _block_pair(bp, nb)
            _pair_block_task(
                words, seg_ptr, g, h_single, h_scale, P, r_and, r_or, r_an, block, chunk, ib,
                jb, s_rows, cut, kinds,
            )  # fmt: skip


@numba.njit(cache=True)
def _pair_values_pass(P, s, risk, kind, n, lim, score, vals, ii, jj, emit):  # pragma: no cover  # noqa: PLR0913, PLR0917
    # count (emit=False) or write the finite objectives: the float operations of
    # _gates._bounds._objective (coverage = count / n, times 1 − risk for score; cap as risk <= lim)
    g = P.shape[0]
    m = 0
    for i in range(g):
        j0 = 0 if kind == 1 else i + 1
        for j in range(j0, g):
            p = P[i, j]
            if p < 0 or j == i:
                continue
            r = risk[i, j]
            if not r <= lim:
                continue
            if kind == 0:
                cov = p
            elif kind == 2:  # noqa: PLR2004
                cov = s[i] + s[j] - p
            else:
                cov = s[i] - p
            if emit:
                v = np.float64(cov) / n
                if score:
                    v = v * (1.0 - r)
                vals[m] = v
                ii[m] = i
                jj[m] = j
            m += 1
    return m


@numba.njit(cache=True)
def pair_values_counted(P, s, risk, kind, n, lim, score):  # pragma: no cover - numba  # noqa: PLR0913, PLR0917
    """Objectives of the feasible, counted pair gates of one kind, compactly.

    ``P`` is a pair-count matrix in which uncounted pairs hold −1, ``s`` the single counts of
    its rows, ``risk`` the kind's worst-risk matrix; ``kind`` 0 = ``i ∧ j`` (i < j), 2 = ``i ∨ j``
    (i < j), 1 = ``i ∧ ¬j`` (i ≠ j); ``lim`` = cap + tolerance. Returns ``(values, i, j)`` of
    every such pair within the cap (coverage, or coverage × (1 − risk) with ``score``).
    """
    e_f = np.empty(0)
    e_i = np.empty(0, dtype=np.int64)
    m = _pair_values_pass(P, s, risk, kind, n, lim, score, e_f, e_i, e_i, False)
    vals = np.empty(m)
    ii = np.empty(m, dtype=np.int64)
    jj = np.empty(m, dtype=np.int64)
    _pair_values_pass(P, s, risk, kind, n, lim, score, vals, ii, jj, True)
    return vals, ii, jj


@numba.njit(parallel=True, cache=True)
def update_pair_risk(r_and, r_or, r_andnot, counts, single, n_cells, weight):  # pragma: no cover  # noqa: PLR0913, PLR0917
    """Fold one healthy cell type's exact pair counts into running worst-risk matrices.

    ``r_and[i, j] = max(r_and[i, j], weight * |i ∧ j| / n)``; likewise ``r_or`` with
    ``|i ∨ j| = |i| + |j| - |i ∧ j|`` and the ordered ``r_andnot[i, j]`` with
    ``|i ∧ ¬j| = |i| - |i ∧ j|``.
    """
    g = counts.shape[0]
    scale = weight / n_cells
    for i in prange(g):
        for j in range(g):
            c = counts[i, j]
            v = scale * c
            r_and[i, j] = max(r_and[i, j], v)
            v = scale * (single[i] + single[j] - c)
            r_or[i, j] = max(r_or[i, j], v)
            v = scale * (single[i] - c)
            r_andnot[i, j] = max(r_andnot[i, j], v)


@numba.njit(parallel=True, cache=True)
def frechet_pair_risk(frac, shown, weights, r_and, r_or, r_andnot):  # pragma: no cover  # noqa: PLR0913, PLR0917
    """Fold worst weighted Fréchet upper bounds for every pair into running maxima.

    ``frac`` is ``(n_types, n_genes)``, ``shown`` (same shape, ``<= frac``) the part shown by
    measurement; for type ``c`` with fractions ``a, b`` and ``b`` shown ``v``:
    ``U(a ∧ b) = min(a, b)``, ``U(a ∨ b) = min(1, a + b)``, ``U(a ∧ ¬b) = min(a, 1 - v)``.
    Like :func:`update_pair_risk`, ``r_and[i, j] = max(r_and[i, j], max_c w_c U_c(i ∧ j))`` (and
    so on): start from zeros for pseudobulk alone, or fold both kernels into the same matrices for
    a mixed single-cell + pseudobulk input (the max of the two parts), in either order. The inner
    loop runs over ``j`` along a row of ``frac`` (contiguous, vectorised); a maximum does not
    depend on the order in which it is taken, so the result is the same bit for bit.
    """
    n_types, g = frac.shape
    for i in prange(g):
        m_and = r_and[i].copy()
        m_or = r_or[i].copy()
        m_an = r_andnot[i].copy()
        for c in range(n_types):
            a = frac[c, i]
            w = weights[c]
            row = frac[c]
            vrow = shown[c]
            for j in range(g):
                b = row[j]
                m_and[j] = max(m_and[j], w * min(a, b))
                m_or[j] = max(m_or[j], w * min(1.0, a + b))
                m_an[j] = max(m_an[j], w * min(a, 1.0 - vrow[j]))
        r_and[i] = m_and
        r_or[i] = m_or
        r_andnot[i] = m_an


def gram_counts(
    x: sparse.csc_array | sparse.csr_array,
    rows: np.ndarray | None = None,
    *,
    block: int = _GRAM_BLOCK,
) -> np.ndarray:
    """Exact co-positivity counts ``Gᵀ G`` (genes × genes, int64) over the selected cells.

    Parameters
    ----------
    x
        Cells × genes bool/0-1 sparse matrix (CSR preferred for row slicing).
    rows
        Cell indices to include (default all).
    block
        Cells per BLAS call (< 2**24 keeps float32 sums exact).

    Returns
    -------
    numpy.ndarray
        Symmetric int64 matrix; the diagonal holds single-gene counts.
    """
    if block >= 2**24:
        msg = f"block must be < 2**24 for exact float32 counts; got {block}."
        raise InputError(msg)
    xr = sparse.csr_array(x)
    if rows is not None:
        xr = xr[np.asarray(rows)]
    n, g = xr.shape
    indptr = xr.indptr.astype(np.int64)
    indices = xr.indices.astype(np.int64)
    acc = np.zeros((g, g), dtype=np.int64)
    buf = np.zeros((g, block), dtype=np.float32, order="F")  # genes × cells; a cell is a column
    for r0 in range(0, n, block):
        r1 = min(n, r0 + block)
        _fill_block(buf, indptr, indices, r0, r1)
        # C = A Aᵀ with A = buf (genes × cells): the genes × genes co-positivity counts
        c = blas.ssyrk(1.0, buf[:, : r1 - r0], trans=0, lower=0)
        _accumulate_upper(acc, c)
    for i in range(g):
        acc[i + 1 :, i] = acc[i, i + 1 :]
    return acc


@numba.njit(cache=True)
def _fill_block(buf, indptr, indices, r0, r1):  # pragma: no cover - numba
    g = buf.shape[0]
    # serial on purpose: idle OpenMP workers would spin against the BLAS threads
    for r in range(r0, r1):
        for k in range(g):
            buf[k, r - r0] = 0.0
        for p in range(indptr[r], indptr[r + 1]):
            buf[indices[p], r - r0] = 1.0


@numba.njit(cache=True)
def _accumulate_upper(acc, c):  # pragma: no cover - numba
    g = acc.shape[0]
    for i in range(g):
        for j in range(i, g):
            acc[i, j] += np.int64(c[i, j] + 0.5)


@numba.njit(cache=True)
def _lit_pair(pxc, sx, sc, n, pos_x, pos_c):  # pragma: no cover - numba  # noqa: PLR0913, PLR0917
    # |x^± ∧ c^±| from |x ∧ c|, |x|, |c| and n
    if pos_x and pos_c:
        return pxc
    if pos_x:
        return sx - pxc
    if pos_c:
        return sc - pxc
    return n - sx - sc + pxc


@numba.njit(cache=True)
def _ext_bounds(kind, a, b, covp, riskp, c, mode, P, s, n, r_single, r_and, r_or, r_an):  # noqa: PLR0913, PLR0917
    """Upper bound on the tumour count and lower bound on the worst risk of one extension.

    ``kind``: 0 = a ∧ b, 1 = a ∧ ¬b, 2 = a ∨ b; ``mode``: 0 = ∧ c, 1 = ∧ ¬c, 2 = ∨ c.
    The bounds are proved in docs/gates.md (section "Triple bounds").
    """  # pragma: no cover - numba
    sa = float(s[a])
    sb = float(s[b])
    sc = float(s[c])
    pac = float(P[a, c])
    pbc = float(P[b, c])
    pos_b = kind != 1
    if mode <= 1:
        pos_c = mode == 0
        cnt_c = sc if pos_c else n - sc
        if kind == 2:  # noqa: PLR2004
            ub = min(
                covp,
                cnt_c,
                _lit_pair(pac, sa, sc, n, True, pos_c) + _lit_pair(pbc, sb, sc, n, True, pos_c),
            )
            rlb = max(r_and[a, c], r_and[b, c]) if pos_c else max(r_an[a, c], r_an[b, c])
        else:
            ub = min(
                covp,
                _lit_pair(pac, sa, sc, n, True, pos_c),
                _lit_pair(pbc, sb, sc, n, pos_b, pos_c),
            )
            rlb = 0.0
    else:
        if kind == 2:  # noqa: PLR2004
            lb3 = max(pac, pbc)
            rlb = max(riskp, r_single[c], r_or[a, c], r_or[b, c])
        else:
            nb = sb if pos_b else n - sb
            x = _lit_pair(pac, sa, sc, n, True, True)
            y = _lit_pair(pbc, sb, sc, n, pos_b, True)
            lb3 = max(0.0, x + y - sc, covp + x - sa, covp + y - nb)
            rlb = max(riskp, r_single[c])
        ub = covp + sc - lb3
    return ub, rlb


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


@numba.njit(parallel=True, cache=True)
def parent_type_terms(kind, pa, pb, par_cnt, sizes, w_cells, frac_t, w_bulk, order):  # noqa: PLR0913, PLR0917
    """Per-parent healthy-type terms of pair parents ``a kind b`` for :func:`child_risk_lower`.

    ``par_u[p, b]`` is the Fréchet upper fraction of the parent in pseudobulk type ``b``
    (``min(f_a, f_b)``, ``min(f_a, 1 − f_b)``, ``min(1, f_a + f_b)`` for kinds 0, 1, 2;
    ``frac_t`` is ``(n_genes, n_bulk)``); the parent's weighted terms are
    ``par_cnt / n_t × w_t`` (single-cell types first) then ``w_b × par_u``. With ``order`` the
    types are sorted by decreasing term (stable, as ``np.argsort(-terms, kind="stable")``);
    without, ``t_order`` has no columns. Returns ``(t_order, t_wpar, par_u)``.
    """  # pragma: no cover - numba
    n_par = kind.shape[0]
    n_ct = sizes.shape[0]
    n_b = w_bulk.shape[0]
    n_t = n_ct + n_b
    par_u = np.empty((n_par, n_b))
    n_cols = n_t if order else 0
    t_order = np.empty((n_par, n_cols), dtype=np.int64)
    t_wpar = np.empty((n_par, n_cols))
    for p in prange(n_par):
        a = pa[p]
        b = pb[p]
        k = kind[p]
        for j in range(n_b):
            fa = frac_t[a, j]
            fb = frac_t[b, j]
            if k == 0:
                par_u[p, j] = min(fa, fb)
            elif k == 1:
                par_u[p, j] = min(fa, 1.0 - fb)
            else:
                par_u[p, j] = min(1.0, fa + fb)
        if order:
            terms = np.empty(n_t)
            for t in range(n_ct):
                terms[t] = np.float64(par_cnt[p, t]) / np.float64(sizes[t]) * w_cells[t]
            for j in range(n_b):
                terms[n_ct + j] = w_bulk[j] * par_u[p, j]
            o = np.argsort(-terms, kind="mergesort")
            for t in range(n_t):
                t_order[p, t] = o[t]
                t_wpar[p, t] = terms[o[t]]
    return t_order, t_wpar, par_u


@numba.njit(cache=True)
def child_risk_lower(  # noqa: PLR0913, PLR0917
    p,
    c,
    mode,
    rl,
    cap,
    t_order,
    t_wpar,
    par_cnt,
    h_counts,
    cell_sizes,
    w_cells,
    par_u,
    frac,
    w_bulk,
):  # pragma: no cover - numba
    """Raise ``rl``, a lower bound on the reported worst risk of ``P ∧ c`` / ``P ∧ ¬c``.

    Per healthy type ``t`` of the parent ``P`` (row ``p`` of the per-parent arrays):

    * single-cell type (``t < n_ct``, exact counts, ``n_t`` cells): ``|P ∧ ¬c|_t ≥ |P|_t − |c|_t``
      and ``|P ∧ c|_t ≥ |P|_t + |c|_t − n_t``; the bound is ``w_t × max(0, that) / n_t``;
    * pseudobulk type (``t ≥ n_ct``): the reported (upper Fréchet) fraction of the child is
      exactly ``min(U_t(P), 1 − f_t(c))`` (``min(U_t(P), f_t(c))`` for ``∧ c``).

    ``t_order[p]`` lists the types by decreasing ``t_wpar[p]`` (``w_t`` × the parent's reported
    fraction), which bounds every child term from above; the loop stops once no remaining type can
    raise ``rl`` or ``rl`` exceeds ``cap + 1e-12`` (pass ``cap = inf`` for the full maximum).
    ``mode``: 0 = ``∧ c``, 1 = ``∧ ¬c``. Proof in docs/gates.md ("Triple bounds", case 5).
    """
    n_ct = par_cnt.shape[1]
    for j in range(t_order.shape[1]):
        if t_wpar[p, j] <= rl or rl > cap + 1e-12:
            break
        t = t_order[p, j]
        v = 0.0
        if t < n_ct:
            if mode == 0:
                k = par_cnt[p, t] + h_counts[t, c] - cell_sizes[t]
            else:
                k = par_cnt[p, t] - h_counts[t, c]
            if k > 0:
                # same float operations as the exact risk (count / n × w): monotone in the count
                v = np.float64(k) / np.float64(cell_sizes[t]) * w_cells[t]
        else:
            b = t - n_ct
            f = frac[b, c]
            v = w_bulk[b] * min(par_u[p, b], 1.0 - f if mode == 1 else f)
        rl = max(rl, v)
    return rl


@numba.njit(cache=True)
def _candidate_obj(  # noqa: PLR0913, PLR0917
    p,
    c,
    m,
    kind,
    pa,
    pb,
    covp,
    riskp,
    P,
    s,
    n,
    r_single,
    r_and,
    r_or,
    r_an,
    cap,
    tau,
    score,
    t_order,
    t_wpar,
    par_cnt,
    h_counts,
    cell_sizes,
    w_cells,
    par_u,
    frac,
    w_bulk,
):  # pragma: no cover - numba
    # objective upper bound of parent p op c, or -1.0 when the child is pruned
    # cheap necessary conditions first: an AND-child never exceeds its parent's
    # coverage; a feasible OR-child needs a feasible parent and a feasible gene
    if m <= 1 and covp[p] / n <= tau:
        return -1.0
    if m == 2 and (riskp[p] > cap + 1e-12 or r_single[c] > cap + 1e-12):  # noqa: PLR2004
        return -1.0
    ub, rlb = _ext_bounds(
        kind[p], pa[p], pb[p], covp[p], riskp[p], c, m, P, s, n, r_single, r_and, r_or, r_an
    )
    cov_ub = min(ub / n, 1.0)
    obj = cov_ub
    if score:
        obj *= 1.0 - rlb
    if obj <= tau or rlb > cap + 1e-12:
        return -1.0
    if m <= 1 and t_order.shape[1] > 0:
        rlb = child_risk_lower(
            p,
            c,
            m,
            rlb,
            cap,
            t_order,
            t_wpar,
            par_cnt,
            h_counts,
            cell_sizes,
            w_cells,
            par_u,
            frac,
            w_bulk,
        )
        if rlb > cap + 1e-12:
            return -1.0
        if score:
            obj = cov_ub * (1.0 - rlb)
            if obj <= tau:
                return -1.0
    return obj


@numba.njit(cache=True)
def _kmax(n_t, w, lim):  # pragma: no cover - numba
    # largest k >= 0 with float(k) / n_t × w <= lim (the float operations of child_risk_lower)
    if w <= 0.0:
        return np.int64(n_t)
    k = np.int64(max(0.0, min(float(n_t), lim * n_t / w)))
    while k < n_t and np.float64(k + 1) / np.float64(n_t) * w <= lim:
        k += 1
    while k > 0 and np.float64(k) / np.float64(n_t) * w > lim:
        k -= 1
    return k


@numba.njit(cache=True)
def _child_ranges(  # noqa: PLR0912, PLR0913, PLR0915, PLR0917
    p, cap, t_order, t_wpar, par_cnt, cell_sizes, par_u, w_bulk, val_c, val_b, kmax, chk, rng
):  # pragma: no cover - numba
    """Where the children ``P ∧ c`` (mode 0) and ``P ∧ ¬c`` (mode 1) that can pass the cap lie.

    For each healthy type ``t`` in which the parent ``P`` itself breaks the cap (the prefix of
    ``t_order[p]`` with ``t_wpar > cap``), the per-type bound of :func:`child_risk_lower` keeps a
    child only if ``c``'s count (fraction) in ``t`` is high enough (``∧ ¬c`` must remove cells of
    ``t``) or low enough (``∧ c``): a suffix or prefix of the candidates sorted by their value in
    ``t`` (``val_c``: counts per single-cell type, ``val_b``: fractions per pseudobulk type, rows
    sorted ascending). For mode ``m`` this writes ``rng[m] = (source, t, lo, hi)``, the shortest
    such range (``source`` 0 = single-cell type, 1 = pseudobulk type, -1 = no type constrains
    the children), and ``chk[m, :n]`` = every constraining type as ``(column, threshold)`` with
    the enumerated one first (columns index ``[single-cell types, pseudobulk types]``; a child
    needs a value ≥ threshold for ``∧ ¬c``, ≤ threshold for ``∧ c``); returns ``n``. Every child
    outside the range, or failing a row, is pruned by :func:`child_risk_lower`, so checking
    these first gives the same candidates (docs/gates.md, "Triple bounds", case 5).
    """
    lim = cap + 1e-12
    n_ct = val_c.shape[0]
    n_cand = val_c.shape[1] if n_ct > 0 else val_b.shape[1]
    for m in range(2):
        rng[m, 0] = -1
        rng[m, 1] = 0
        rng[m, 2] = 0
        rng[m, 3] = n_cand
    best = np.zeros(2, dtype=np.int64)
    n_chk = 0
    for j in range(t_order.shape[1]):
        if t_wpar[p, j] <= lim:
            break  # sorted: no later type breaks the cap, and a child term is ≤ the parent's
        t = t_order[p, j]
        for m in range(2):
            if t < n_ct:
                n_t = cell_sizes[t]
                pc = par_cnt[p, t]
                km = kmax[t]
                if m == 1:  # k = |P|_t − |c|_t ≤ km
                    thr = np.float64(pc - km)
                    lo = np.searchsorted(val_c[t], pc - km, side="left")
                    hi = n_cand
                else:  # k = |P|_t + |c|_t − n_t ≤ km
                    thr = np.float64(km - pc + n_t)
                    lo = 0
                    hi = np.searchsorted(val_c[t], km - pc + n_t, side="right")
                src, row = 0, t
            else:
                b = t - n_ct
                w = w_bulk[b]
                if m == 1:  # w (1 − f) ≤ lim; the 1e-9 slack keeps a superset
                    thr = 1.0 - lim / w - 1e-9
                    lo = np.searchsorted(val_b[b], thr, side="left")
                    hi = n_cand
                else:  # w f ≤ lim
                    thr = lim / w + 1e-9
                    lo = 0
                    hi = np.searchsorted(val_b[b], thr, side="right")
                src, row = 1, b
            chk[m, n_chk, 0] = t
            chk[m, n_chk, 1] = thr
            if rng[m, 0] < 0 or hi - lo < rng[m, 3] - rng[m, 2]:
                rng[m, 0] = src
                rng[m, 1] = row
                rng[m, 2] = lo
                rng[m, 3] = hi
                best[m] = n_chk
        n_chk += 1
    for m in range(2):  # the enumerated type goes first: it holds by construction
        q = best[m]
        if q > 0:
            for x in range(2):
                tmp = chk[m, 0, x]
                chk[m, 0, x] = chk[m, q, x]
                chk[m, q, x] = tmp
    return n_chk


@numba.njit(cache=True)
def _passes_checks(c, m, chk, r0, n_chk, type_val):  # pragma: no cover - numba  # noqa: PLR0913, PLR0917
    # rows r0:n_chk of chk (see _child_range); type_val[c] = [count in each single-cell type,
    # fraction in each pseudobulk type]
    row = type_val[c]
    for r in range(r0, n_chk):
        v = row[np.int64(chk[r, 0])]
        if m == 1:
            if v < chk[r, 1]:
                return False
        elif v > chk[r, 1]:
            return False
    return True


@numba.njit(cache=True)
def _parent_children(  # noqa: PLR0912, PLR0913, PLR0917
    p, emit, o_gene, o_mode, o_ub, k0, kind, pa, pb, covp, riskp, cand, modes, P, s, n,
    r_single, r_and, r_or, r_an, cap, tau, score, t_order, t_wpar, par_cnt, h_counts,
    cell_sizes, w_cells, par_u, frac, w_bulk, ord_c, val_c, ord_b, val_b, ord_s, n_cov,
    type_val, kmax,
):  # fmt: skip  # pragma: no cover - numba
    # count (emit=False) or write (emit=True, from k0) the surviving children of parent p
    k = k0
    use_range = t_order.shape[1] > 0
    chk = np.empty((2, t_order.shape[1], 2), dtype=np.float64)
    rng = np.empty((2, 4), dtype=np.int64)
    n_chk = 0
    if use_range:
        n_chk = _child_ranges(
            p, cap, t_order, t_wpar, par_cnt, cell_sizes, par_u, w_bulk, val_c, val_b, kmax,
            chk, rng,
        )  # fmt: skip
    for m in modes:
        src, t, lo, hi = -1, 0, 0, cand.shape[0]
        if m <= 1 and n_chk > 0:
            src, t, lo, hi = rng[m, 0], rng[m, 1], rng[m, 2], rng[m, 3]
        if m == 0 and n_cov < hi - lo:
            # an AND child has coverage ≤ |c| / N: only the n_cov most frequent genes can pass
            src, lo, hi = 2, 0, n_cov
        for pos in range(lo, hi):
            if src < 0:
                c = cand[pos]
            elif src == 0:
                c = ord_c[t, pos]
            elif src == 1:
                c = ord_b[t, pos]
            else:
                c = ord_s[pos]
            if c == pa[p] or c == pb[p]:
                continue
            # row 0 is the type whose range is enumerated (src 0 / 1): it holds already
            r0 = 1 if src == 0 or src == 1 else 0  # noqa: PLR1714
            if m <= 1 and n_chk > r0 and not _passes_checks(c, m, chk[m], r0, n_chk, type_val):
                continue
            obj = _candidate_obj(
                p, c, m, kind, pa, pb, covp, riskp, P, s, n, r_single, r_and, r_or, r_an,
                cap, tau, score, t_order, t_wpar, par_cnt, h_counts, cell_sizes, w_cells,
                par_u, frac, w_bulk,
            )  # fmt: skip
            if obj >= 0.0:
                if emit:
                    o_gene[k] = c
                    o_mode[k] = m
                    o_ub[k] = obj
                k += 1
    return k - k0


@numba.njit(parallel=True, cache=True)
def or_child_bound_max(  # noqa: PLR0913, PLR0917
    kind, pa, pb, covp, riskp, cand, P, s, n, r_single, r_and, r_or, r_an, cap, score
):  # pragma: no cover - numba
    """Per parent, the largest objective bound of its OR children ``parent ∨ c`` over the
    candidates (the bound :func:`triple_candidates` prunes with, docs/gates.md "Triple bounds"
    cases 3–4); ``-1`` when no child can pass the cap. Nothing is counted: this states what a
    beam that did not expand these children could have missed. Parents run in parallel.
    """  # noqa: D205
    n_par = kind.shape[0]
    out = np.full(n_par, -1.0)
    e_i = np.zeros((n_par, 0), dtype=np.int64)
    e_f = np.zeros((n_par, 0))
    e_c = np.zeros((0, 0), dtype=np.int64)
    e_n = np.zeros(0, dtype=np.int64)
    e_1 = np.zeros(0)
    for p in prange(n_par):
        best = -1.0
        for q in range(cand.shape[0]):
            c = cand[q]
            if c == pa[p] or c == pb[p]:
                continue
            obj = _candidate_obj(
                p, c, 2, kind, pa, pb, covp, riskp, P, s, n, r_single, r_and, r_or, r_an,
                cap, -np.inf, score, e_i, e_f, e_c, e_c, e_n, e_1, e_f, e_f, e_1,
            )  # fmt: skip
            best = max(best, obj)
        out[p] = best
    return out


@numba.njit(parallel=True, cache=True)
def triple_candidates(  # noqa: PLR0913, PLR0917
    kind, pa, pb, covp, riskp, cand, modes, P, s, n, r_single, r_and, r_or, r_an, cap, tau,
    score, t_order, t_wpar, par_cnt, h_counts, cell_sizes, w_cells, par_u, frac, w_bulk,
    ord_c, val_c, ord_b, val_b, ord_s, type_val,
):  # fmt: skip  # pragma: no cover - numba
    """Extensions ``parent op c`` whose bounds can still beat ``tau`` under the risk cap.

    The per-parent type arrays (``t_order`` … ``w_bulk``) feed :func:`child_risk_lower`, the
    per-type risk lower bound of AND / AND NOT children; pass ``t_order`` with zero columns to
    skip it. ``ord_c``/``val_c`` (``ord_b``/``val_b``) hold, per single-cell (pseudobulk) type,
    the candidate genes sorted by their count (fraction) in that type and those values: AND /
    AND NOT children are enumerated only over the range :func:`_child_range` returns, which
    holds every child that can pass the cap, so a parent that breaks the cap in some type costs
    a few binary searches instead of a pass over all candidates. ``ord_s`` lists the candidates
    by decreasing tumour count ``s``; an AND child (coverage ≤ ``s_c / N``) is looked for only
    among those with ``s_c / N > tau``. ``type_val`` is ``(n_genes, n_types)``: each gene's count
    per single-cell type then fraction per pseudobulk type (see :func:`_passes_checks`). Parents
    run in parallel.
    Returns ``(parent index, gene, mode, objective upper bound)`` arrays, by parent, then mode,
    then the enumeration order. Two passes (count, then fill) keep the output exact-sized and
    deterministic.
    """
    n_par = kind.shape[0]
    n_cov = 0
    while n_cov < ord_s.shape[0] and s[ord_s[n_cov]] / n > tau:
        n_cov += 1
    kmax = np.empty(cell_sizes.shape[0], dtype=np.int64)
    for t in range(cell_sizes.shape[0]):
        kmax[t] = _kmax(cell_sizes[t], w_cells[t], cap + 1e-12)
    counts = np.zeros(n_par, dtype=np.int64)
    dummy_i = np.zeros(0, dtype=np.int64)
    dummy_f = np.zeros(0, dtype=np.float64)
    for p in prange(n_par):
        counts[p] = _parent_children(
            p, False, dummy_i, dummy_i, dummy_f, 0, kind, pa, pb, covp, riskp, cand, modes, P,
            s, n, r_single, r_and, r_or, r_an, cap, tau, score, t_order, t_wpar, par_cnt,
            h_counts, cell_sizes, w_cells, par_u, frac, w_bulk, ord_c, val_c, ord_b, val_b,
            ord_s, n_cov, type_val, kmax,
        )  # fmt: skip
    start = np.zeros(n_par + 1, dtype=np.int64)
    for p in range(n_par):
        start[p + 1] = start[p] + counts[p]
    tot = start[n_par]
    o_par = np.empty(tot, dtype=np.int64)
    o_gene = np.empty(tot, dtype=np.int64)
    o_mode = np.empty(tot, dtype=np.int64)
    o_ub = np.empty(tot, dtype=np.float64)
    for p in prange(n_par):
        if counts[p] == 0:
            continue  # most parents have no surviving child: do not enumerate them twice
        o_par[start[p] : start[p + 1]] = p
        _parent_children(
            p, True, o_gene, o_mode, o_ub, start[p], kind, pa, pb, covp, riskp, cand, modes, P,
            s, n, r_single, r_and, r_or, r_an, cap, tau, score, t_order, t_wpar, par_cnt,
            h_counts, cell_sizes, w_cells, par_u, frac, w_bulk, ord_c, val_c, ord_b, val_b,
            ord_s, n_cov, type_val, kmax,
        )  # fmt: skip
    return o_par, o_gene, o_mode, o_ub
