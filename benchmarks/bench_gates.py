"""Benchmark the exhaustive pair search and a pruned triple search.

Run: ``python benchmarks/bench_gates.py [n_genes] [n_tumour] [n_healthy]``
(default 3000 100000 100000). Prints times, ratios against a naive numpy baseline and a
same-shaped float32 BLAS product (the machine's roofline), and peak memory.
"""

from __future__ import annotations

import os
import resource
import sys
import time

import numpy as np
from scipy import sparse
from scipy.linalg import blas

from antigenscout.tl._gates import HealthyCells, search_gates
from antigenscout.tl._kernels import pack_groups, pair_and_counts_bits


def synthetic(n_cells: int, n_genes: int, rng: np.random.Generator) -> sparse.csr_array:
    """Sparse positivity with lognormal per-gene positive fractions (median 5%)."""
    p = np.clip(np.exp(rng.normal(np.log(0.05), 1.2, n_genes)), 0.001, 0.95)
    k = rng.binomial(n_cells, p)
    rows = np.concatenate([rng.choice(n_cells, int(x), replace=False) for x in k])
    cols = np.repeat(np.arange(n_genes), k)
    m = sparse.csr_array((np.ones(rows.size, bool), (rows, cols)), shape=(n_cells, n_genes))
    m.sort_indices()
    return m


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main() -> None:
    g = int(sys.argv[1]) if len(sys.argv) > 1 else 3000
    n_t = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    n_h = int(sys.argv[3]) if len(sys.argv) > 3 else 100_000
    rng = np.random.default_rng(0)
    T = synthetic(n_t, g, rng)
    H = synthetic(n_h, g, rng)
    patients = rng.integers(0, 20, n_t)
    ct = rng.integers(0, 30, n_h)
    w = rng.uniform(0.1, 1.0, 30)
    genes = [f"G{i}" for i in range(g)]
    healthy = HealthyCells(H, ct, w)
    print(f"cores={os.cpu_count()} genes={g} tumour={n_t} healthy={n_h}")
    print(f"density tumour={T.nnz / (n_t * g):.4f} healthy={H.nnz / (n_h * g):.4f}")

    # warm up the numba kernels (compiled once, cached on disk)
    small = 500
    search_gates(
        T[:small],
        patients[:small],
        HealthyCells(H[:small], ct[:small], w),
        genes=genes,
        max_genes=3,
        top_k=5,
    )

    # 1. the full exhaustive pair search: AND, OR, A AND NOT B, B AND NOT A for every pair
    t0 = time.perf_counter()
    df = search_gates(
        T, patients, healthy, genes=genes, max_genes=2, top_k=50, max_vital_risk=0.05, min_genes=2
    )
    t_pairs = time.perf_counter() - t0
    n_pairs = g * (g - 1) // 2
    print(
        f"pair search (all {4 * n_pairs:,} pair gates, exact): {t_pairs:.2f} s; "
        f"best {df['gate'].iloc[0]} coverage={df['tumor_coverage'].iloc[0]:.3f}"
    )

    # 2. the co-positivity kernel alone over the tumour cells
    packed = pack_groups(T)
    t0 = time.perf_counter()
    pair_and_counts_bits(packed)
    t_bits = time.perf_counter() - t0

    # 3. naive numpy baseline: pairwise boolean AND + sum, on 100 genes, scaled up
    Td = T[:, :100].toarray()
    t0 = time.perf_counter()
    for i in range(100):
        for j in range(i + 1, 100):
            np.count_nonzero(Td[:, i] & Td[:, j])
    t_naive = (time.perf_counter() - t0) / (100 * 99 / 2) * n_pairs

    # 4. roofline: float32 sgemm of the same shape (genes × cells) · (cells × genes), timed on
    #    a block of cells and scaled to all cells
    blk = 8192
    a = np.asfortranarray(rng.random((blk, g), dtype=np.float32))
    blas.sgemm(1.0, a, a, trans_a=1)
    t0 = time.perf_counter()
    blas.sgemm(1.0, a, a, trans_a=1)
    t_gemm = (time.perf_counter() - t0) * n_t / blk

    print(
        f"all-pairs |A∧B| over {n_t:,} tumour cells: popcount {t_bits:.2f} s | "
        f"naive numpy (scaled) {t_naive:.1f} s | sgemm roofline (scaled) {t_gemm:.2f} s"
    )
    print(
        f"speed-up vs naive: {t_naive / t_bits:.1f}x; throughput vs roofline: "
        f"{t_gemm / t_bits:.2f}x of sgemm"
    )

    # 5. exact triple search (branch and bound) on a realistic size
    gt = min(g, 1000)
    t0 = time.perf_counter()
    df3 = search_gates(
        T[:, :gt],
        patients,
        HealthyCells(H[:, :gt], ct, w),
        genes=genes[:gt],
        max_genes=3,
        top_k=20,
        max_vital_risk=0.05,
        min_genes=3,
    )
    t_tri = time.perf_counter() - t0
    print(
        f"exact triple search, {gt} genes × {n_t:,} tumour × {n_h:,} healthy cells: "
        f"{t_tri:.1f} s; evaluated {df3.attrs['n_evaluated']:,} triples exactly; best "
        f"{df3['gate'].iloc[0]} coverage={df3['tumor_coverage'].iloc[0]:.3f}"
    )
    # 6. exact AND / AND NOT triples over all genes
    t0 = time.perf_counter()
    df4 = search_gates(
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
        f"exact AND/NOT triple search, {g} genes × {n_t:,} tumour × {n_h:,} healthy cells: "
        f"{time.perf_counter() - t0:.1f} s; evaluated {df4.attrs['n_evaluated']:,} triples "
        f"exactly; best {df4['gate'].iloc[0]} coverage={df4['tumor_coverage'].iloc[0]:.3f}"
    )
    print(f"peak RSS: {peak_gib():.2f} GiB")


if __name__ == "__main__":
    main()
