"""Benchmark: rank every gene over a million-cell sparse matrix.

The matrix is a bootstrap of the real van Galen 2019 AML cells (rows drawn with
replacement from all 18 samples, so per-gene detection rates, count distributions,
library sizes and co-expression are those of the real data), spread over 20 synthetic
patients and written once to an on-disk ``.h5ad`` (CSR). Each measured run happens in
a fresh subprocess, so its peak resident memory is its own:

* ``antigenscout``: ``score_targets`` on the file opened in backed mode (streamed in
  row chunks, never densified), all genes as candidates, ``cp10k`` positivity (the
  library-size rule: positive when count / library × 10⁴ ≥ 0.5);
* ``baseline``: the same scores the way an expert writes them with scanpy, sparse
  throughout: ``sc.pp.normalize_total`` → threshold the CSR values in place (still
  sparse) → ``sc.get.aggregate(by="patient", func="mean")``, on the first
  ``--baseline-cells`` cells in memory (reading them is not timed), scaled up linearly;
* ``default positivity``: ``score_targets`` with the positivity a user gets by default
  (``knn``: a within-patient neighbour graph, then dropout-aware calls), on the first
  ``--default-cells`` cells in memory, side by side with ``cp10k`` on the same cells. The
  default over a million backed cells, beside the library-size rule in the same run, is
  ``benchmarks/bench_positivity_scale.py`` (figures in ``docs/atlas.md``).

The ``cp10k`` coverages of antigenscout and the baseline are compared on the baseline's
cells (they must agree exactly) before the ratio is printed.

Usage::

    python benchmarks/bench_rank.py --cells 1000000 --baseline-cells 200000 \
        --default-cells 10000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
from _machine import cpu_report
from scipy import sparse

N_PATIENTS = 20
THRESHOLD = 0.5  # CP10k, the default positivity threshold


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(shared: Path, out: Path, n_cells: int, seed: int = 0) -> None:
    """Write the bootstrap matrix to ``out`` chunk by chunk (not timed)."""
    from anndata.io import write_elem  # noqa: PLC0415

    import antigenscout as asc  # noqa: PLC0415

    real = asc.datasets.vangalen2019(shared / "singlecell" / "vangalen2019_aml")
    X = sparse.csr_matrix(real.X, dtype=np.float32)
    malignant = (real.obs["malignant"].astype(str) == "malignant").to_numpy()
    rng = np.random.default_rng(seed)
    src = rng.integers(0, real.n_obs, n_cells)
    obs = pd.DataFrame(
        {
            "malignant": np.where(malignant[src], "malignant", "other"),
            "patient": pd.Categorical([f"P{i:02d}" for i in rng.integers(0, N_PATIENTS, n_cells)]),
            "source_cell": real.obs_names.to_numpy()[src],
        },
        index=[f"cell{i}" for i in range(n_cells)],
    )
    obs["malignant"] = obs["malignant"].astype("category")
    with h5py.File(out, "w") as f:
        write_elem(f, "obs", obs)
        write_elem(f, "var", pd.DataFrame(index=real.var_names))
        for key in ("obsm", "varm", "obsp", "varp", "layers", "uns"):
            write_elem(f, key, {})
        g = f.create_group("X")
        g.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0"})
        g.attrs["shape"] = (n_cells, real.n_vars)
        chunk = 50_000
        nnz = np.diff(X.indptr)[src].astype(np.int64)
        indptr = np.concatenate([[0], np.cumsum(nnz)])
        g.create_dataset("indptr", data=indptr)
        data = g.create_dataset("data", shape=(indptr[-1],), dtype=np.float32)
        idx = g.create_dataset("indices", shape=(indptr[-1],), dtype=np.int32)
        for start in range(0, n_cells, chunk):
            sub = X[src[start : start + chunk]]
            lo, hi = indptr[start], indptr[min(start + chunk, n_cells)]
            data[lo:hi] = sub.data
            idx[lo:hi] = sub.indices
        f.attrs.update({"encoding-type": "anndata", "encoding-version": "0.1.0"})


def run_antigenscout(path: Path) -> dict:  # noqa: D103
    import anndata as ad  # noqa: PLC0415

    import antigenscout as asc  # noqa: PLC0415

    t0 = time.perf_counter()
    adata = ad.read_h5ad(path, backed="r")
    t_open = time.perf_counter() - t0
    asc.reference.load_reference()
    t1 = time.perf_counter()
    asc.tl.score_targets(
        adata,
        malignant_key="malignant=malignant",
        patient_key="patient",
        modality=None,
        positivity="cp10k",
        threshold=THRESHOLD,
    )
    elapsed = time.perf_counter() - t1
    res = adata.uns["antigenscout_targets"]
    return {
        "seconds": elapsed + t_open,
        "peak_mb": _peak_mb(),
        "n_cells": adata.n_obs,
        "n_tumor_cells": res["denominators"]["n_tumor_cells"],
        "n_genes": res["denominators"]["n_candidates"],
    }


def run_baseline(path: Path, n_cells: int) -> dict:
    """Expert scanpy: normalise, threshold the sparse values, ``sc.get.aggregate`` per patient."""
    import anndata as ad  # noqa: PLC0415
    import scanpy as sc  # noqa: PLC0415

    backed = ad.read_h5ad(path, backed="r")
    sub = backed[:n_cells].to_memory()
    t0 = time.perf_counter()
    mal = sub[(sub.obs["malignant"] == "malignant").to_numpy()].copy()
    sc.pp.normalize_total(mal, target_sum=1e4)
    X = mal.X  # CSR; thresholding keeps it sparse (zeros stay negative)
    X.data = (X.data >= THRESHOLD).astype(np.float64)  # float64: exact fractions in the means
    X.eliminate_zeros()
    agg = sc.get.aggregate(mal, by="patient", func="mean")
    per_patient = np.asarray(agg.layers["mean"])
    coverage = np.asarray(X.mean(axis=0)).ravel()
    table = pd.DataFrame(
        {
            "tumor_coverage": coverage,
            "patient_coverage_median": np.median(per_patient, axis=0),
            "patients_covered_fraction": (per_patient >= 0.8).mean(axis=0),  # noqa: PLR2004
        },
        index=mal.var_names,
    ).sort_values("tumor_coverage", ascending=False)
    elapsed = time.perf_counter() - t0
    table.to_parquet(path.with_suffix(".baseline.parquet"))
    return {"seconds": elapsed, "peak_mb": _peak_mb(), "n_cells": n_cells}


def run_subset(path: Path, n_cells: int, positivity: str | None) -> dict:
    """``score_targets`` on the first ``n_cells`` cells in memory, default or cp10k positivity."""
    import anndata as ad  # noqa: PLC0415

    import antigenscout as asc  # noqa: PLC0415

    sub = ad.read_h5ad(path, backed="r")[:n_cells].to_memory()
    asc.reference.load_reference()
    kw = {} if positivity is None else {"positivity": positivity, "threshold": THRESHOLD}
    t0 = time.perf_counter()
    asc.tl.score_targets(
        sub, malignant_key="malignant=malignant", patient_key="patient", modality=None, **kw
    )
    elapsed = time.perf_counter() - t0
    res = sub.uns["antigenscout_targets"]
    return {
        "seconds": elapsed,
        "peak_mb": _peak_mb(),
        "n_tumor_cells": res["denominators"]["n_tumor_cells"],
        "positivity": str(res["params"].get("positivity", {}).get("model", positivity)),
    }


def check_subset(path: Path, n_cells: int) -> float:
    """Max |difference| in per-patient coverage between antigenscout and the baseline."""
    import anndata as ad  # noqa: PLC0415

    import antigenscout as asc  # noqa: PLC0415

    sub = ad.read_h5ad(path, backed="r")[:n_cells].to_memory()
    asc.tl.score_targets(
        sub,
        malignant_key="malignant=malignant",
        patient_key="patient",
        modality=None,
        positivity="cp10k",
        threshold=THRESHOLD,
    )
    ours = sub.uns["antigenscout_targets"]["targets"]
    base = pd.read_parquet(path.with_suffix(".baseline.parquet"))
    cols = ["tumor_coverage", "patient_coverage_median", "patients_covered_fraction"]
    diff = (ours[cols] - base.loc[ours.index, cols]).abs().to_numpy().max()
    return float(diff)


def _subprocess(args: list[str]) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:  # noqa: D103
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cells", type=int, default=1_000_000)
    p.add_argument("--baseline-cells", type=int, default=200_000)
    p.add_argument("--default-cells", type=int, default=10_000)
    p.add_argument("--shared", type=Path, default=Path(__file__).parents[2] / "shared" / "data")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/antigenscout-bench"))
    p.add_argument(
        "--phase", choices=["antigenscout", "baseline", "default", "cp10k-subset"], default=None
    )
    p.add_argument("--file", type=Path, default=None)
    a = p.parse_args()

    if a.phase == "antigenscout":
        print(json.dumps(run_antigenscout(a.file)))
        return
    if a.phase == "baseline":
        print(json.dumps(run_baseline(a.file, a.baseline_cells)))
        return
    if a.phase in ("default", "cp10k-subset"):
        pos = None if a.phase == "default" else "cp10k"
        print(json.dumps(run_subset(a.file, a.default_cells, pos)))
        return

    a.workdir.mkdir(parents=True, exist_ok=True)
    path = a.workdir / f"bootstrap_{a.cells}.h5ad"
    if not path.exists():
        t0 = time.perf_counter()
        build(a.shared, path, a.cells)
        print(
            f"built {path} ({path.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - t0:.0f} s"
        )
    with h5py.File(path) as f:
        nnz = f["X/data"].shape[0]
    print(cpu_report())
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    ours = _subprocess(["--phase", "antigenscout", "--file", str(path)])
    base = _subprocess(
        ["--phase", "baseline", "--file", str(path), "--baseline-cells", str(a.baseline_cells)]
    )
    dflt = _subprocess(
        ["--phase", "default", "--file", str(path), "--default-cells", str(a.default_cells)]
    )
    cp_sub = _subprocess(
        ["--phase", "cp10k-subset", "--file", str(path), "--default-cells", str(a.default_cells)]
    )
    diff = check_subset(path, a.baseline_cells)
    scale = a.cells / a.baseline_cells
    base_full = base["seconds"] * scale
    print(f"matrix: {a.cells:,} cells x {ours['n_genes']:,} genes, {nnz:,} non-zeros")
    print(f"tumour cells scored: {ours['n_tumor_cells']:,}")
    print(
        f"antigenscout cp10k  : {ours['seconds']:8.1f} s   peak {ours['peak_mb'] / 1024:5.2f} GB"
        f"   ({a.cells:,} cells, backed file, streamed)"
    )
    print(
        f"expert scanpy cp10k : {base['seconds']:8.1f} s   peak {base['peak_mb'] / 1024:5.2f} GB"
        f"   on {a.baseline_cells:,} cells in memory -> {base_full:,.0f} s scaled to {a.cells:,}"
    )
    print(f"speed ratio (expert scaled / antigenscout): {base_full / ours['seconds']:.2f}x")
    print(f"max |coverage difference| on the baseline's cells: {diff:.2e}")
    print(
        f"same {a.default_cells:,} cells in memory ({cp_sub['n_tumor_cells']:,} tumour cells): "
        f"cp10k {cp_sub['seconds']:.1f} s; default positivity ({dflt['positivity']}) "
        f"{dflt['seconds']:.1f} s, peak {dflt['peak_mb'] / 1024:.2f} GB "
        f"({dflt['seconds'] / cp_sub['seconds']:.0f}x the cp10k time)"
    )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
