"""Benchmark: ``atlas build`` against a scanpy expert's per-cell-type summary of the same file,
side by side in one run, and the Dask build's CPU time per cell on 1, 2 and 4 workers.

The input is ``--atlas-cells`` healthy marrow cells bootstrapped from the van Galen 2019
donors BM1–BM3 (``benchmarks/bench_positivity_scale.py``'s ``make_healthy``; 939 real cells
resampled, Cell Ontology names). Each command runs in a fresh process, timed from outside
(wall, CPU, peak memory):

* **baseline** — ``scanpy.read_h5ad`` + ``sc.get.aggregate(by='cell_type',
  func='count_nonzero')``, what an expert writes for a per-cell-type summary;
* ``antigenscout atlas build`` in this process, then with ``--dask local:1``, ``local:2`` and
  ``local:4``; from each ``atlas.json`` the tasks' CPU seconds per cell (a starved worker
  shows as wall time, not CPU time).

The tables of every build must be identical; ``--compare DIR`` also states how the fractions
differ from an atlas built before (e.g. by an earlier commit). Run::

    python benchmarks/bench_atlas.py /path/to/vangalen2019_aml [--atlas-cells 200000]
        [--work /tmp/bench_atlas] [--compare DIR] [--workers 1,2,4]
"""  # noqa: D205

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
from _machine import cpu_report
from bench_positivity_scale import make_healthy, timed

BASELINE = """
import sys, warnings
warnings.simplefilter("ignore")
import scanpy as sc
a = sc.read_h5ad(sys.argv[1])
g = sc.get.aggregate(a, by="cell_type", func="count_nonzero")
print(g.shape)
"""


def load_average() -> str:  # noqa: D103
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:  # noqa: D103, PLR0915
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("vangalen_dir", type=Path)
    ap.add_argument("--atlas-cells", type=int, default=200_000)
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_atlas"))
    ap.add_argument("--compare", type=Path, default=None)
    ap.add_argument("--workers", default="1,2,4")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    print(cpu_report())
    healthy = args.work / f"healthy_{args.atlas_cells}.h5ad"
    if not healthy.exists():
        make_healthy(args.vangalen_dir, healthy, args.atlas_cells)
    exe = [sys.executable, "-m", "antigenscout"]
    base = [*exe, "atlas", "build", str(healthy), "--cell-type-key", "cell_type"]
    base += ["--donor-key", "donor_id"]
    runs: dict[str, dict] = {}
    print(f"load before: {load_average()}")
    runs["baseline"] = timed([sys.executable, "-c", BASELINE, str(healthy)])
    labels = ["in-process"] + [f"local:{w}" for w in args.workers.split(",")]
    for label in labels:
        out = args.work / f"atlas_{label.replace(':', '_')}"
        extra = [] if label == "in-process" else ["--dask", label]
        r = timed([*base, *extra, "--out", str(out)])
        meta = json.loads((out / "atlas.json").read_text())
        r["build"] = meta["build"]
        r["n_cells"] = meta["n_cells"]
        r["out"] = str(out)
        runs[label] = r
        time.sleep(1)
    print(f"load after: {load_average()}")
    n = runs["in-process"]["n_cells"]
    b = runs["baseline"]
    print(f"\n{n:,} cells, {healthy.stat().st_size / 1e9:.2f} GB .h5ad")
    print(f"{'run':12s} {'wall s':>8s} {'CPU s':>7s} {'peak GiB':>9s} {'vs baseline':>12s} "
          f"{'task CPU µs/cell':>17s} {'vs in-process':>14s}")  # fmt: skip
    cpu_in = runs["in-process"]["build"]["task_cpu_seconds"] / n
    for label, r in runs.items():
        ratio = r["wall_s"] / b["wall_s"]
        if label == "baseline":
            per, rel = "", ""
        else:
            c = r["build"]["task_cpu_seconds"] / n
            per, rel = f"{c * 1e6:.1f}", f"{c / cpu_in:.2f}x"
        print(f"{label:12s} {r['wall_s']:8.1f} {r['cpu_s']:7.1f} {r['peak_rss_gib']:9.2f} "
              f"{ratio:11.2f}x {per:>17s} {rel:>14s}")  # fmt: skip
    frames = {
        k: pd.read_parquet(Path(r["out"]) / "fraction.parquet")
        for k, r in runs.items()
        if k != "baseline"
    }
    first = frames["in-process"]
    same = all(f.equals(first) for f in frames.values())
    print(f"fraction tables identical across the builds: {same}")
    if args.compare is not None:
        old = pd.read_parquet(args.compare / "fraction.parquet")
        new = first.loc[old.index, old.columns]
        d = (new - old).abs().to_numpy()
        m = (new.to_numpy() > 0.05) | (old.to_numpy() > 0.05)  # noqa: PLR2004
        print(
            f"against {args.compare}: mean |difference| {d.mean():.4f} over all "
            f"{d.size:,} entries, {d[m].mean():.4f} (median {np.median(d[m]):.4f}) over the "
            f"{int(m.sum()):,} above 0.05 in either; mean and detected tables "
            + (
                "identical"
                if all(
                    pd.read_parquet(args.compare / f"{t}.parquet").equals(
                        pd.read_parquet(Path(runs["in-process"]["out"]) / f"{t}.parquet")
                    )
                    for t in ("mean", "detected")
                )
                else "differ"
            )
        )
    (args.work / "bench_atlas.json").write_text(json.dumps(runs, indent=1, default=str))


if __name__ == "__main__":
    main()
