"""OR triples on synthetic genes: the exact search against the beam under a work budget.

The data are the first ``--genes`` genes of ``bench_gates.py``'s input (100,000 tumour cells of
20 patients, 100,000 healthy cells of 10 types, lognormal per-gene frequencies), searched with
``search_gate_matrix(max_genes=3, min_genes=3, top_k=20, max_vital_risk=0.05)`` and AND / OR / NOT,
once per ``--budgets`` entry (``none`` = exact) in one process, after a warm-up on tiny data.
Each line prints the time, the OR work estimate, whether the beam ran, its stated bound on every
unexamined triple, the best and 20th objective and how many rows are proven optimal.

Run: ``python benchmarks/bench_or_triples.py [--genes 1000] [--budgets 1e8,none]``
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
from _machine import cpu_report
from bench_gates import synthetic

from antigenscout.tl._gates import HealthyCells, search_gate_matrix


def main() -> None:  # noqa: D103
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--genes", type=int, default=1000)
    ap.add_argument("--budgets", default="1e8,none")
    a = ap.parse_args()
    budgets = [None if b == "none" else int(float(b)) for b in a.budgets.split(",")]
    print(cpu_report())
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rng = np.random.default_rng(0)  # the same draws as bench_gates.py
    n = 100_000
    T = synthetic(n, 3000, rng)[:, : a.genes]
    H = synthetic(n, 3000, rng)[:, : a.genes]
    patients = rng.integers(0, 20, n)
    ct = rng.integers(0, 10, n)
    w = rng.uniform(0.1, 1.0, 10)
    genes = [f"G{i}" for i in range(a.genes)]
    small = HealthyCells(H[:500], ct[:500], w)
    search_gate_matrix(T[:500], patients[:500], small, genes=genes, max_genes=3, top_k=5)  # warm-up
    healthy = HealthyCells(H, ct, w)
    for b in budgets:
        t0 = time.perf_counter()
        df = search_gate_matrix(T, patients, healthy, genes=genes, max_genes=3, min_genes=3,
                                top_k=20, max_vital_risk=0.05, triple_budget=b)  # fmt: skip
        at = df.attrs
        print(
            f"OR TRIPLES {a.genes} genes, triple_budget {'none (exact)' if b is None else f'{b:,}'}"
            f": {time.perf_counter() - t0:.1f} s; OR work estimate {at['triple_or_work']:,}; "
            f"beam {at['triple_beam']}; bound on unexamined triples "
            f"{at['skipped_upper_bound']:.4f}; best {df['gate'].iloc[0]} "
            f"{df['objective'].iloc[0]:.4f}; 20th {df['objective'].iloc[-1]:.4f}; rows proven "
            f"optimal {int(df['optimal'].sum())}/{len(df)}; load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
