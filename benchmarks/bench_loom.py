"""Benchmark: reading a row-chunked ``.loom`` (one gzip chunk per gene over every cell, as
some exporters write it) with :func:`antigenscout.io.read_loom`, against the baseline an
expert writes with h5py: one read of the whole matrix, then ``csr_matrix(dense.T)``.

Each compressed chunk is decompressed once by both; the baseline holds the whole dense
matrix in memory, the reader at most ``SLAB_BYTES`` of it. Peak memory is each run's own
process maximum resident size.

Run::

    python benchmarks/bench_loom.py [--genes 5000] [--cells 100000] [--density 0.002]
"""  # noqa: D205

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np
from _machine import cpu_report

RUN = """
import json, resource, sys, time, warnings
warnings.simplefilter("ignore")
path, how = sys.argv[1], sys.argv[2]
t = time.perf_counter()
if how == "reader":
    from antigenscout.io import read_loom
    x = read_loom(path).X
else:
    import h5py
    from scipy import sparse
    with h5py.File(path, "r") as f:
        x = sparse.csr_matrix(f["matrix"][()].T)
sec = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": sec, "peak_mb": peak, "nnz": int(x.nnz), "sum": float(x.sum())}))
"""


def write_loom(path: Path, genes: int, cells: int, density: float) -> None:  # noqa: D103
    rng = np.random.default_rng(0)
    with h5py.File(path, "w") as f:
        ds = f.create_dataset(
            "matrix",
            shape=(genes, cells),
            dtype=np.float32,
            chunks=(1, cells),
            compression="gzip",
            compression_opts=2,
        )
        for g0 in range(0, genes, 500):
            blk = np.zeros((min(500, genes - g0), cells), np.float32)
            nz = rng.random(blk.shape) < density
            blk[nz] = rng.poisson(2, int(nz.sum())) + 1
            ds[g0 : g0 + blk.shape[0]] = blk
        f.create_dataset("row_attrs/Gene", data=np.array([f"G{i}" for i in range(genes)], "S"))
        f.create_dataset("col_attrs/CellID", data=np.array([f"C{i}" for i in range(cells)], "S"))


def run(path: Path, how: str) -> dict:  # noqa: D103
    out = subprocess.run(
        [sys.executable, "-c", RUN, str(path), how], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:  # noqa: D103
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--genes", type=int, default=5000)
    ap.add_argument("--cells", type=int, default=100_000)
    ap.add_argument("--density", type=float, default=0.002)
    args = ap.parse_args()
    print(cpu_report())
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rows.loom"
        write_loom(path, args.genes, args.cells, args.density)
        size = path.stat().st_size / 1e6
        dense = args.genes * args.cells * 4 / 1e9
        print(
            f"loom: {args.genes:,} genes x {args.cells:,} cells, chunks (1, {args.cells:,}), "
            f"gzip, {size:.1f} MB on disk, {dense:.1f} GB dense"
        )
        base, ours = run(path, "baseline"), run(path, "reader")
    if (ours["nnz"], ours["sum"]) != (base["nnz"], base["sum"]):
        msg = f"the results differ: {ours} against {base}"
        raise SystemExit(msg)
    for name, r in (("baseline h5py read + csr", base), ("antigenscout read_loom", ours)):
        print(f"{name:28s} {r['seconds']:7.2f} s  peak {r['peak_mb']:7.0f} MB")
    print(
        f"ratio reader/baseline: time {ours['seconds'] / base['seconds']:.2f}x, "
        f"peak memory {ours['peak_mb'] / base['peak_mb']:.2f}x (same nnz and sum)"
    )


if __name__ == "__main__":
    main()
