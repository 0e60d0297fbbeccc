"""Benchmark: exact AND/NOT gates of up to 2 and up to 3 genes on all van Galen 2019 AML patients.

The input is that of ``scripts/aml_gates.py``: the malignant cells of the 11 patients with
malignant calls, every CAR-T surface candidate (no ``n_candidates`` cut), the healthy donors'
marrow cells grouped by cell type (exact co-positivity) plus the embedded reference's other
contexts (Fréchet bounds), vital-weighted risk ≤ 0.5, ``top_k`` 25. Every search runs in this
one process on the same loaded data, ``max_genes=2`` first, after a warm-up search on tiny
data (numba's compilation or cache load is paid there, not in any timed run); each is the
whole :func:`antigenscout.tl.search_gates` call (tumour positivity, healthy positivity,
reference, search) and, separately, its array search; each ``max_genes`` is run without the
arm judgement (``require_arms=False``, the baseline: the search as it was) and with it.

Run::

    python benchmarks/bench_aml_gates.py [--shared ../shared/data] [--ops and,not]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
from _machine import cpu_report
from scipy import sparse

from antigenscout.tl import _search
from antigenscout.tl._gates import HealthyCells, HealthyMixed, HealthyPseudobulk, search_gate_matrix

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))
import aml_gates  # noqa: E402 - the script's own input and search, so the two cannot drift


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel of a 3-gene mixed-input search on tiny
    random data, so that neither timed run pays for compilation.
    """  # noqa: D205
    rng = np.random.default_rng(0)
    g = 12
    T = sparse.csr_array(rng.random((300, g)) < 0.3)  # noqa: PLR2004
    cells = HealthyCells(sparse.csr_array(rng.random((200, g)) < 0.3), rng.integers(0, 3, 200),  # noqa: PLR2004
                         np.full(3, 0.5))  # fmt: skip
    bulk = HealthyPseudobulk(rng.random((4, g)), np.full(4, 0.5))
    t0 = time.perf_counter()
    for mg in (2, 3):
        search_gate_matrix(T, rng.integers(0, 3, 300), HealthyMixed(cells, bulk),
                     genes=[f"g{i}" for i in range(g)], max_genes=mg, ops=("and", "not"),
                     max_vital_risk=0.5, top_k=5)  # fmt: skip
    print(f"warm-up (numba cache load or compile): {time.perf_counter() - t0:.1f} s")


def main() -> None:  # noqa: D103
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--ops", default="and,not")
    p.add_argument("--cap", type=float, default=0.5)
    p.add_argument("--max-genes", default="2,3", help="comma-separated runs, in order")
    a = p.parse_args()
    print(cpu_report())
    print(f"load average before: {os.getloadavg()[0]:.2f}")

    t0 = time.perf_counter()
    adata = aml_gates.load(a.shared)
    healthy = aml_gates._healthy_cells(adata, "donors")
    t_load = time.perf_counter() - t0
    print(f"loaded {adata.n_obs:,} cells x {adata.n_vars:,} genes in {t_load:.0f} s")

    warm_up()
    inner = _search.search_gate_matrix
    search_s: list[float] = []

    def timed(*args: object, **kwargs: object) -> object:
        t = time.perf_counter()
        out = inner(*args, **kwargs)
        search_s.append(time.perf_counter() - t)
        return out

    _search.search_gate_matrix = timed
    ops = tuple(o for o in a.ops.split(",") if o)
    times: dict[tuple[int, bool], tuple[float, float]] = {}
    try:
        for mg in (int(x) for x in a.max_genes.split(",")):
            for arms in (False, True):
                t0 = time.perf_counter()
                aml_gates._search(
                    adata, healthy, max_genes=mg, ops=ops, cap=a.cap, top_k=25, require_arms=arms
                )
                total = time.perf_counter() - t0
                times[mg, arms] = (total, search_s[-1])
                res = adata.uns["antigenscout_gates"]
                df = res["gates"]
                best = df.iloc[0]
                aside = res["params"]["arms"]
                print(
                    f"max_genes={mg} ops={a.ops} arms judged={arms}: {total:.1f} s whole call, "
                    f"{search_s[-1]:.1f} s array search; {res['denominators']['n_tumor_cells']:,}"
                    f" tumour cells, {res['denominators']['n_candidates']:,} candidates; gates "
                    f"evaluated beyond pairs {res['params']['search'].get('n_evaluated', 0):,}; "
                    f"set aside {aside['set_aside']} of {aside['examined']}; best {best['gate']} "
                    f"coverage={best['tumor_coverage']:.4f} "
                    f"risk={best['worst_healthy_risk']:.4f} optimal={bool(df['optimal'].all())}"
                )
    finally:
        _search.search_gate_matrix = inner
    for mg in (2, 3):
        if (mg, False) in times and (mg, True) in times:
            base, judged = times[mg, False][0], times[mg, True][0]
            print(
                f"max_genes={mg}: arms judged / not, whole call {judged / base:.2f}x (goal: <= 2x)"
            )
    if (2, True) in times and (3, True) in times:
        (t2, s2), (t3, s3) = times[2, True], times[3, True]
        print(
            f"ratio max_genes 3 / 2 (arms judged): whole call {t3 / t2:.2f}x, array search "
            f"{s3 / s2:.2f}x (goal: whole call <= 3x)"
        )
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
