"""All-pairs kernels: exact co-positive counts and worst pair risks for two-gene gates.

Two ways to count ``|A ∧ B|`` for every pair of genes are provided.

* **Gram matrix.** For all pairs at once, ``|A ∧ B|`` per group is an entry of ``Gᵀ G`` where ``G``
  is the group's 0/1 cells × genes matrix. :func:`gram_counts` densifies blocks of cells to
  ``float32`` and calls BLAS ``ssyrk``; each block has fewer than ``2**24`` cells, so every float32
  entry is an exact integer, and blocks are accumulated in ``int64``. The result is deterministic.
* **Bitsets** (packed by ``_kernels.pack_groups``). The search's default for all pairs is
  :func:`pair_stats_fused`: one pass over the tumour and every healthy type with a 4 × 4
  register tile of ``<8 x i64>`` AND + popcount (``vpopcntq`` on AVX-512 VPOPCNTDQ), folding
  each type's counts into the worst-risk maxima at once; :func:`pair_and_counts_bits` is the
  plain scalar kernel it replaced, kept as a reference.

:func:`update_pair_risk` and :func:`frechet_pair_risk` fold single-cell counts and pseudobulk
Fréchet bounds into the worst-risk matrices; :func:`pair_values_counted` lists the feasible
pair gates' objectives. Measured figures: ``docs/benchmarks.md``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numba
import numpy as np
from llvmlite import ir
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic
from scipy import sparse
from scipy.linalg import blas

from antigenscout._errors import InputError

from ._kernels import _popcount

if TYPE_CHECKING:
    from ._kernels import PackedBits

__all__ = [
    "frechet_pair_risk",
    "gram_counts",
    "pair_and_counts_bits",
    "pair_layout",
    "pair_stats_fused",
    "pair_values_counted",
    "update_pair_risk",
]

#: Rows per BLAS block; far below 2**24 so float32 counts are exact integers.
_GRAM_BLOCK = 8192


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
