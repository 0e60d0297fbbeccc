"""Benchmark the exhaustive pair-gate search against an expert BLAS baseline and the machine's
measured popcount limit, all in one process.

Run: ``python benchmarks/bench_gates.py [--genes 3000] [--tumour 100000] [--healthy 100000]
[--types 10] [--repeat 3] [--triples]``

Printed, from one run:

* the machine: CPU model and AVX-512 flags, cores, numba threads, BLAS library and threads
  (threadpoolctl), load average before and after;
* **limit** (a microbenchmark of the hardware, not an implementation): vector popcount
  throughput per core, i.e. ``vpopcntq`` + add on an L1-resident buffer with 8 independent
  512-bit accumulators, in 64-bit words per second; the same with an AND of two buffers (the
  pair kernel's instruction mix); single-thread read bandwidth from memory;
* **kernel**: the one-pass pair kernel (``pair_stats_fused``: tumour pair counts and the fold of
  every healthy type) in words AND-popcounted per second per core, and its ratio to the limit:
  on one thread by CPU time (the probes are timed by CPU time too, so the ratio holds on a
  shared machine), and by wall clock on 1 and all threads;
* **pair search**: ``search_gate_matrix(max_genes=2)``, all four pair gates (AND, OR, A AND NOT B,
  B AND NOT A) of every pair, exact worst risk over the healthy types, top 50;
* **baseline**: what an expert writes with BLAS: each cell group (the tumour, each healthy
  type) as a dense float32 0/1 matrix, one ``ssyrk`` Gram call per group (``Xᵀ X`` = pair
  counts, exact below 2^24 cells), timed alone (densifying not counted); then the same worst
  risks and top 50 in numpy from those counts, checked to give the same gates and values;
* with ``--triples``: triples (AND/OR/NOT on 1,000 genes under the default OR work budget,
  with the beam's stated bound; exact AND/NOT on all genes).

Times are the best of ``--repeat`` runs; the machine is shared, so the load average is printed.
"""  # noqa: D205

from __future__ import annotations

import argparse
import os
import resource
import time

import numba
import numpy as np
from _machine import cpu_report
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic
from scipy import sparse
from scipy.linalg import blas
from threadpoolctl import threadpool_info

from antigenscout.tl._gates import HealthyCells, search_gate_matrix
from antigenscout.tl._gates._problem import _Problem
from antigenscout.tl._pair_kernels import pair_layout, pair_stats_fused


def blas_report() -> str:
    """BLAS libraries and their thread counts as threadpoolctl sees them."""
    parts = [
        f"{d.get('internal_api')} {d.get('version')} threads={d.get('num_threads')}"
        for d in threadpool_info()
    ]
    return "threadpools: " + ("; ".join(parts) or "none")


def synthetic(n_cells: int, n_genes: int, rng: np.random.Generator) -> sparse.csr_array:
    """Sparse positivity with lognormal per-gene positive fractions (median 5%)."""
    p = np.clip(np.exp(rng.normal(np.log(0.05), 1.2, n_genes)), 0.001, 0.95)
    k = rng.binomial(n_cells, p)
    rows = np.concatenate([rng.choice(n_cells, int(x), replace=False) for x in k])
    cols = np.repeat(np.arange(n_genes), k)
    m = sparse.csr_array((np.ones(rows.size, bool), (rows, cols)), shape=(n_cells, n_genes))
    m.sort_indices()
    return m


# ---- limit probes: LLVM IR on <8 x i64>, so vpopcntq on zmm where the CPU has VPOPCNTDQ ----
def _make_probe(use_and: bool) -> object:
    """An intrinsic summing popcount(a[w]) (or popcount(a[w] & b[w])) over ``a``, ``reps`` times,
    with 8 independent 512-bit accumulators (``a.size`` a multiple of 64).
    """  # noqa: D205, D401

    @intrinsic
    def probe(typingctx, a, b, reps):  # pragma: no cover - numba
        sig = types.int64(a, b, reps)

        def codegen(context, builder, signature, args):
            aty, bty, rty = signature.args
            a_v, b_v, reps_v = args
            i64 = ir.IntType(64)
            vec = ir.VectorType(i64, 8)
            arr_a = context.make_array(aty)(context, builder, value=a_v)
            pa = arr_a.data
            pb = context.make_array(bty)(context, builder, value=b_v).data
            n = cgutils.unpack_tuple(builder, arr_a.shape)[0]
            accs = [cgutils.alloca_once_value(builder, ir.Constant(vec, None)) for _ in range(8)]
            ctpop = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(vec, [vec]), "llvm.ctpop.v8i64"
            )
            reps_i = context.cast(builder, reps_v, rty, types.intp)
            zero = ir.Constant(i64, 0)

            def load(p, off):
                return builder.load(
                    builder.bitcast(builder.gep(p, [off]), vec.as_pointer()), align=8
                )

            with (
                cgutils.for_range(builder, reps_i),
                cgutils.for_range_slice(builder, zero, n, ir.Constant(i64, 64)) as (w, _),
            ):
                for k in range(8):
                    off = builder.add(w, ir.Constant(i64, 8 * k))
                    x = load(pa, off)
                    if use_and:
                        x = builder.and_(x, load(pb, off))
                    acc = accs[k]
                    builder.store(builder.add(builder.load(acc), builder.call(ctpop, [x])), acc)
            total = ir.Constant(i64, 0)
            for k in range(8):
                v = builder.load(accs[k])
                for e in range(8):
                    total = builder.add(
                        total, builder.extract_element(v, ir.Constant(ir.IntType(32), e))
                    )
            return total

        return sig, codegen

    return probe


_pop = _make_probe(False)
_pop_and = _make_probe(True)


@numba.njit
def _probe_pop(a, b, reps):  # pragma: no cover - numba
    return _pop(a, b, reps)


@numba.njit
def _probe_and(a, b, reps):  # pragma: no cover - numba
    return _pop_and(a, b, reps)


@numba.njit
def _read_bw(x):  # pragma: no cover - numba
    acc = np.uint64(0)
    for i in range(x.shape[0]):
        acc += x[i]
    return acc


def best_of(fn, repeat: int, clock=time.perf_counter) -> float:
    """Shortest of ``repeat`` runs of ``fn`` on ``clock`` (wall by default)."""
    best = np.inf
    for _ in range(repeat):
        t0 = clock()
        fn()
        best = min(best, clock() - t0)
    return best


def limits(repeat: int) -> dict[str, float]:
    """Words per second per core: popcount, AND + popcount (L1-resident), read bandwidth."""
    rng = np.random.default_rng(0)
    a = rng.integers(0, 2**63, 512, dtype=np.int64).view(np.uint64)  # 4 KiB: L1
    b = rng.integers(0, 2**63, 512, dtype=np.int64).view(np.uint64)
    reps = 100_000
    assert _probe_pop(a, b, 1) == int(np.bitwise_count(a).sum())
    assert _probe_and(a, b, 1) == int(np.bitwise_count(a & b).sum())
    # CPU time of this (single-threaded) process: the time it actually held a core, so the
    # figure is per core even when other processes share the machine
    cpu = time.process_time
    t_pop = best_of(lambda: _probe_pop(a, b, reps), repeat, cpu)
    t_and = best_of(lambda: _probe_and(a, b, reps), repeat, cpu)
    big = np.ones(2**26, dtype=np.uint64)  # 512 MiB
    _read_bw(big[:1024])
    t_bw = best_of(lambda: _read_bw(big), repeat, cpu)
    return {
        "popcount": a.size * reps / t_pop,
        "and_popcount": a.size * reps / t_and,
        "read_bw_words": big.size / t_bw,
    }


def baseline_pairs(
    Td: np.ndarray, Hd: list[np.ndarray], w: np.ndarray, top_k: int, cap: float
) -> tuple[float, float, list[tuple[float, str, int, int]]]:
    """Expert BLAS baseline: one ssyrk per cell group, then worst risks and top-k in numpy."""
    t0, c0 = time.perf_counter(), time.process_time()
    grams = [blas.ssyrk(1.0, Td, trans=1, lower=0)]
    grams += [blas.ssyrk(1.0, h, trans=1, lower=0) for h in Hd]
    t_gram = time.perf_counter() - t0
    baseline_pairs.cpu = time.process_time() - c0  # type: ignore[attr-defined]
    g = Td.shape[1]
    iu = np.triu_indices(g, 1)
    P = np.rint(grams[0]).astype(np.int64)
    s = np.diag(P).copy()
    n = Td.shape[0]
    r_and = np.zeros((g, g))
    r_or = np.zeros((g, g))
    r_an = np.zeros((g, g))
    for k, G in enumerate(grams[1:]):
        c = np.rint(G).astype(np.int64)
        c = np.triu(c) + np.triu(c, 1).T
        si = np.diag(c).copy()
        scale = w[k] / Hd[k].shape[0]
        np.maximum(r_and, scale * c, out=r_and)
        np.maximum(r_or, scale * (si[:, None] + si[None, :] - c), out=r_or)
        np.maximum(r_an, scale * (si[:, None] - c), out=r_an)
    P = np.triu(P) + np.triu(P, 1).T
    cands: list[tuple[float, str, int, int]] = []
    off = ~np.eye(g, dtype=bool)
    for kind, cov, risk, mask in (
        ("and", P, r_and, None),
        ("or", s[:, None] + s[None, :] - P, r_or, None),
        ("andnot", s[:, None] - P, r_an, off),
    ):
        val = np.where(risk <= cap + 1e-12, cov / n, -np.inf)
        if mask is None:
            v = val[iu]
            ii, jj = iu
        else:
            ii, jj = np.nonzero(mask)
            v = val[ii, jj]
        top = np.argpartition(-v, top_k)[: top_k + 1]
        cands += [(float(v[t]), kind, int(ii[t]), int(jj[t])) for t in top]
    cands.sort(key=lambda x: -x[0])
    return t_gram, time.perf_counter() - t0, cands[:top_k]


def main() -> None:  # noqa: D103, PLR0915
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--genes", type=int, default=3000)
    ap.add_argument("--tumour", type=int, default=100_000)
    ap.add_argument("--healthy", type=int, default=100_000)
    ap.add_argument("--types", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--triples", action="store_true")
    a = ap.parse_args()
    g, n_t, n_h, n_types = a.genes, a.tumour, a.healthy, a.types
    print(cpu_report())
    print(f"numba threads: {numba.get_num_threads()}; {blas_report()}")
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rng = np.random.default_rng(0)
    T = synthetic(n_t, g, rng)
    H = synthetic(n_h, g, rng)
    patients = rng.integers(0, 20, n_t)
    ct = rng.integers(0, n_types, n_h)
    w = rng.uniform(0.1, 1.0, n_types)
    genes = [f"G{i}" for i in range(g)]
    healthy = HealthyCells(H, ct, w)
    print(
        f"data: {g} genes x {n_t:,} tumour cells (20 patients) x {n_h:,} healthy cells "
        f"({n_types} types); density tumour {T.nnz / (n_t * g):.4f}, "
        f"healthy {H.nnz / (n_h * g):.4f}"
    )
    kw = {"genes": genes, "max_genes": 2, "min_genes": 2, "top_k": 50, "max_vital_risk": 0.05}
    # warm-up: numba's on-disk cache, thread pool
    search_gate_matrix(T[:500], patients[:500], HealthyCells(H[:500], ct[:500], w), **kw)

    # ---- kernel (one pass over tumour + every healthy type) and limit, interleaved ----
    prob = _Problem(T, patients, healthy, genes, None)
    wp = prob.healthy.word_ptr
    segs = [prob.tumour.words] + [prob.healthy.words[:, wp[k] : wp[k + 1]] for k in range(n_types)]
    words, seg_ptr = pair_layout(segs)
    h_scale = prob.w_cells / prob.cell_sizes
    n_words = int(seg_ptr[-1])
    useful = g * (g + 1) // 2 * n_words  # word AND-popcounts of every pair i <= j, all groups

    def kernel() -> None:
        P = np.empty((g, g), dtype=np.int64)
        r = [np.zeros((g, g)) for _ in range(3)]
        pair_stats_fused(words, seg_ptr, g, prob.h_counts, h_scale, P, *r, 64, 512)

    threads = numba.get_num_threads()
    res = {1: np.inf, threads: np.inf}
    res_cpu = np.inf  # CPU seconds of the 1-thread kernel (per-core throughput on a shared box)
    lim = {"popcount": 0.0, "and_popcount": 0.0, "read_bw_words": 0.0}
    # limit, kernel on 1 thread, kernel on all threads, in turn: each sees the same load
    for _ in range(a.repeat):
        for key, val in limits(1).items():
            lim[key] = max(lim[key], val)  # the highest limit seen: the ratio is not flattered
        for nt in (1, threads):
            numba.set_num_threads(nt)
            w0, c0 = time.perf_counter(), time.process_time()
            kernel()
            res[nt] = min(res[nt], time.perf_counter() - w0)
            if nt == 1:
                res_cpu = min(res_cpu, time.process_time() - c0)
        numba.set_num_threads(threads)
    print(
        f"LIMIT (1 core, CPU time, L1-resident, 8 x 512-bit accumulators): popcount "
        f"{lim['popcount'] / 1e9:.1f} G words/s; AND+popcount {lim['and_popcount'] / 1e9:.1f}"
        f" G words/s; memory read {lim['read_bw_words'] * 8 / 1e9:.1f} GB/s"
    )
    per_core_cpu = useful / res_cpu
    print(
        f"KERNEL pair_stats_fused (1 thread, CPU time): {res_cpu:.2f} s = "
        f"{per_core_cpu / 1e9:.1f} G words/s per core = "
        f"{per_core_cpu / lim['popcount']:.0%} of the popcount limit"
        f" ({per_core_cpu / lim['and_popcount']:.0%} of the AND+popcount limit)"
    )
    for nt, t in res.items():
        per_core = useful / t / nt
        print(
            f"KERNEL pair_stats_fused ({nt} thread{'s' * (nt > 1)}): {t:.2f} s for "
            f"{useful / 1e9:.2f} G word AND-popcounts = {per_core / 1e9:.1f} G words/s per core"
            f" = {per_core / lim['popcount']:.0%} of the popcount limit"
            f" ({per_core / lim['and_popcount']:.0%} of the AND+popcount limit)"
        )

    # ---- whole pair search ----
    out = {}

    def ours() -> None:
        out["df"] = search_gate_matrix(T, patients, healthy, **kw)

    t_ours = best_of(ours, a.repeat)
    c_ours = best_of(ours, 1, time.process_time)  # CPU seconds, all threads
    df = out["df"]
    print(
        f"PAIR SEARCH search_gate_matrix(max_genes=2): {t_ours:.2f} s for {4 * g * (g - 1) // 2:,} "
        f"pair gates; best {df['gate'].iloc[0]} coverage {df['tumor_coverage'].iloc[0]:.4f}"
    )

    # ---- baseline: one BLAS Gram call per cell group ----
    t0 = time.perf_counter()
    Td = np.asfortranarray(T.toarray().astype(np.float32))
    Hr = sparse.csr_array(H)
    codes = np.searchsorted(prob.htypes, ct)
    Hd = [
        np.asfortranarray(Hr[np.flatnonzero(codes == k)].toarray().astype(np.float32))
        for k in range(n_types)
    ]
    t_dense = time.perf_counter() - t0
    gram_times, full_times, gram_cpu = [], [], []
    for _ in range(a.repeat):
        t_gram, t_full, base = baseline_pairs(Td, Hd, prob.w_cells, 50, 0.05)
        gram_times.append(t_gram)
        full_times.append(t_full)
        gram_cpu.append(baseline_pairs.cpu)  # type: ignore[attr-defined]
    t_gram, t_full, c_gram = min(gram_times), min(full_times), min(gram_cpu)
    print(
        f"BASELINE {1 + n_types} ssyrk Gram calls (one per cell group, float32 0/1, exact): "
        f"{t_gram:.2f} s; with numpy worst risks + top 50: {t_full:.2f} s "
        f"(densifying, not counted: {t_dense:.2f} s)"
    )
    ours_vals = df["objective"].to_numpy()
    base_vals = np.array([v for v, *_ in base])
    same = np.array_equal(ours_vals, base_vals)
    name = {"and": "{} AND {}", "or": "{} OR {}", "andnot": "{} AND NOT {}"}
    base_gates = {name[k].format(genes[i], genes[j]) for v, k, i, j in base if v > base_vals[-1]}
    same_gates = base_gates <= set(df["gate"])
    print(f"same top-50 values: {same}; same gates above the 50th value: {same_gates}")
    print(
        f"CPU seconds (all threads): pair search {c_ours:.2f} s, Gram calls {c_gram:.2f} s: "
        f"{c_gram / c_ours:.1f}x less CPU time"
    )
    print(
        f"RATIO pair search vs Gram calls alone: {t_gram / t_ours:.1f}x faster "
        f"(vs full baseline {t_full / t_ours:.1f}x); kernel vs popcount limit: "
        f"{per_core_cpu / lim['popcount']:.0%} per core (CPU time, 1 thread); wall clock "
        f"{useful / res[1] / lim['popcount']:.0%} (1 thread), "
        f"{useful / res[threads] / threads / lim['popcount']:.0%} per core ({threads} threads)"
    )
    del Td, Hd

    if a.triples:
        gt = min(g, 1000)
        t0 = time.perf_counter()
        df3 = search_gate_matrix(
            T[:, :gt],
            patients,
            HealthyCells(H[:, :gt], ct, w),
            genes=genes[:gt],
            max_genes=3,
            top_k=20,
            max_vital_risk=0.05,
            min_genes=3,
        )
        at = df3.attrs
        print(
            f"TRIPLES AND/OR/NOT, {gt} genes, triple_budget {at['params']['triple_budget']:,}: "
            f"{time.perf_counter() - t0:.1f} s; OR work estimate {at['triple_or_work']:,} "
            f"({'beam' if at['triple_beam'] else 'exact'}); bound on unexamined triples "
            f"{at['skipped_upper_bound']:.4f}; rows proven optimal {int(df3['optimal'].sum())}"
            f"/{len(df3)}; evaluated {at['n_evaluated']:,}; best {df3['gate'].iloc[0]} "
            f"coverage {df3['tumor_coverage'].iloc[0]:.4f}, 20th {df3['objective'].iloc[-1]:.4f}"
        )
        t0 = time.perf_counter()
        df4 = search_gate_matrix(
            T,
            patients,
            healthy,
            genes=genes,
            max_genes=3,
            ops=("and", "not"),
            top_k=20,
            max_vital_risk=0.05,
            min_genes=3,
        )
        print(
            f"TRIPLES exact AND/NOT, {g} genes: {time.perf_counter() - t0:.1f} s; evaluated "
            f"{df4.attrs['n_evaluated']:,}; best {df4['gate'].iloc[0]} "
            f"coverage {df4['tumor_coverage'].iloc[0]:.4f}"
        )
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
