"""Positivity and atlas builds at scale, on cells bootstrapped from real van Galen 2019 data.

Two measurements, each command in a fresh process (wall time, CPU time and peak RSS from
``os.wait4``), with the machine's load average before and after:

1. ``rank`` over ``--cells`` malignant AML cells (bootstrapped with replacement from the real
   malignant cells of van Galen 2019, ``--patients`` pseudo-patients, each drawn from one real
   patient), read backed from an ``.h5ad``: the library-size rule (``--positivity cp10k``) and
   the default (``knn``) in the same run.
2. ``atlas build`` over ``--atlas-cells`` healthy marrow cells (bootstrapped from donors
   BM1-BM3 with Cell Ontology names, 3 donors): in-process, ``--dask local:1`` and
   ``--dask local:2``; cells/s per worker.

Usage::

    python benchmarks/bench_positivity_scale.py ../shared/data/singlecell/vangalen2019_aml \\
        --cells 1000000 --patients 20 --atlas-cells 60000 --work /tmp/bench_scale \\
        --json benchmarks/results/positivity_scale.json
"""  # noqa: D301

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse


def _write_h5ad(path: Path, pieces: Any, obs: pd.DataFrame, var: pd.DataFrame) -> None:
    """Write a CSR ``.h5ad`` whose rows arrive piece by piece (never all in memory)."""
    import anndata as ad  # noqa: PLC0415
    import h5py  # noqa: PLC0415
    from anndata.io import write_elem  # noqa: PLC0415

    tmp = path.with_suffix(".tmp.h5ad")
    ad.AnnData(obs=obs, var=var).write_h5ad(tmp)
    with h5py.File(tmp, "a") as f:
        if "X" in f:
            del f["X"]
        g = f.create_group("X")
        g.attrs.update({"encoding-type": "csr_matrix", "encoding-version": "0.1.0"})
        g.attrs["shape"] = (len(obs), len(var))
        data = g.create_dataset("data", (0,), maxshape=(None,), dtype="f4", chunks=(1 << 20,))
        idx = g.create_dataset("indices", (0,), maxshape=(None,), dtype="i4", chunks=(1 << 20,))
        indptr = [np.zeros(1, dtype=np.int64)]
        nnz = 0
        for m in pieces:
            m = sparse.csr_matrix(m, dtype=np.float32)  # noqa: PLW2901
            n0 = nnz
            nnz += m.nnz
            data.resize((nnz,))
            idx.resize((nnz,))
            data[n0:nnz] = m.data
            idx[n0:nnz] = m.indices
            indptr.append(m.indptr[1:].astype(np.int64) + n0)
        write_elem(g, "indptr", np.concatenate(indptr))
    tmp.replace(path)


def make_tumour(vg: Path, out: Path, cells: int, patients: int, seed: int = 0) -> dict[str, Any]:
    """Bootstrap ``cells`` malignant cells into ``patients`` pseudo-patients; write ``out``."""
    from antigenscout.datasets import vangalen2019  # noqa: PLC0415

    a = vangalen2019(vg)
    a = a[(a.obs["malignant"].astype(str) == "malignant").to_numpy()]
    X = sparse.csr_matrix(a.X, dtype=np.float32)
    real = a.obs["patient"].astype(str).to_numpy()
    names = sorted(set(real))
    rng = np.random.default_rng(seed)
    sizes = np.full(patients, cells // patients)
    sizes[: cells - sizes.sum()] += 1
    draws = [
        rng.choice(np.flatnonzero(real == names[p % len(names)]), size=int(sizes[p]))
        for p in range(patients)
    ]
    obs = pd.DataFrame(
        {
            "patient": pd.Categorical(np.repeat([f"P{p:02d}" for p in range(patients)], sizes)),
            "malignant": pd.Categorical(["malignant"] * cells),
            "source_patient": pd.Categorical(np.concatenate([real[d] for d in draws])),
        },
        index=pd.Index([f"c{i}" for i in range(cells)]),
    )
    var = pd.DataFrame(index=pd.Index(a.var_names.astype(str)))

    def pieces() -> Any:
        for d in draws:
            for s in range(0, d.size, 20_000):
                yield X[d[s : s + 20_000]]

    _write_h5ad(out, pieces(), obs, var)
    return {
        "real_patients": names,
        "real_malignant_cells": int(X.shape[0]),
        "nnz_per_cell": round(X.nnz / X.shape[0], 1),
    }


def make_healthy(vg: Path, out: Path, cells: int, seed: int = 0) -> dict[str, Any]:
    """Bootstrap ``cells`` healthy marrow cells (BM1-BM3, Cell Ontology names); write ``out``."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
    from vangalen_healthy_atlas import VANGALEN_TO_CL  # noqa: PLC0415

    from antigenscout.datasets import vangalen2019  # noqa: PLC0415

    a = vangalen2019(vg, patients=["BM1", "BM2", "BM3"])
    a = a[(a.obs["malignant"].astype(str) == "normal").to_numpy()]
    X = sparse.csr_matrix(a.X, dtype=np.float32)
    donor = a.obs["patient"].astype(str).to_numpy()
    rng = np.random.default_rng(seed)
    order = []
    for d in sorted(set(donor)):
        rows = np.flatnonzero(donor == d)
        order.append(rng.choice(rows, size=cells // 3))
    idx = np.concatenate(order)
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(
                a.obs["cell_type"].astype(str).map(VANGALEN_TO_CL).to_numpy()[idx]
            ),
            "donor_id": pd.Categorical(donor[idx]),
        },
        index=pd.Index([f"h{i}" for i in range(idx.size)]),
    )
    var = pd.DataFrame(index=pd.Index(a.var_names.astype(str)))
    _write_h5ad(out, (X[idx[s : s + 20_000]] for s in range(0, idx.size, 20_000)), obs, var)
    return {"real_healthy_cells": int(X.shape[0]), "cells": int(idx.size)}


def timed(cmd: list[str]) -> dict[str, Any]:
    """Run ``cmd`` in a fresh process: wall s, CPU s (user + sys) and peak RSS (GiB)."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _, status, ru = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    err = proc.stderr.read() if proc.stderr else ""
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0:
        msg = f"{' '.join(cmd)} failed ({rc}):\n{err[-3000:]}"
        raise SystemExit(msg)
    return {
        "command": " ".join(cmd),
        "wall_s": round(wall, 1),
        "cpu_s": round(ru.ru_utime + ru.ru_stime, 1),
        "peak_rss_gib": round(ru.ru_maxrss / 2**20, 2),
        "stderr_tail": err.strip().splitlines()[-3:],
    }


def main() -> None:  # noqa: PLR0915
    """Generate the inputs (untimed), then time the commands; print and save a JSON."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("vangalen_dir", type=Path)
    ap.add_argument("--cells", type=int, default=1_000_000)
    ap.add_argument("--patients", type=int, default=20)
    ap.add_argument("--atlas-cells", type=int, default=60_000)
    ap.add_argument("--work", type=Path, default=Path("/tmp/bench_scale"))
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--skip-rank", action="store_true")
    ap.add_argument("--skip-atlas", action="store_true")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    exe = [sys.executable, "-m", "antigenscout"]
    res: dict[str, Any] = {"load_before": os.getloadavg(), "cpus": os.cpu_count()}
    if not args.skip_rank:
        tumour = args.work / f"aml_{args.cells}.h5ad"
        if not tumour.exists():
            t0 = time.perf_counter()
            res["tumour_input"] = make_tumour(args.vangalen_dir, tumour, args.cells, args.patients)
            res["tumour_input"]["write_s"] = round(time.perf_counter() - t0, 1)
        res["tumour_file_gib"] = round(tumour.stat().st_size / 2**30, 2)
        base = [*exe, "rank", str(tumour), "--malignant-key", "malignant=malignant"]
        base += ["--patient-key", "patient", "--backed"]
        for pos in ("cp10k", "knn"):
            out = args.work / f"rank_{pos}"
            res[f"rank_{pos}"] = timed([*base, "--positivity", pos, "--out", str(out)])
            print(pos, res[f"rank_{pos}"], flush=True)
        res["knn_over_cp10k_wall"] = round(
            res["rank_knn"]["wall_s"] / res["rank_cp10k"]["wall_s"], 2
        )
        res["knn_over_cp10k_cpu"] = round(res["rank_knn"]["cpu_s"] / res["rank_cp10k"]["cpu_s"], 2)
        a = pd.read_csv(args.work / "rank_cp10k" / "targets.tsv", sep="\t", index_col=0)
        b = pd.read_csv(args.work / "rank_knn" / "targets.tsv", sep="\t", index_col=0)
        res["top10_cp10k"] = a.index[:10].tolist()
        res["top10_knn"] = b.index[:10].tolist()
    if not args.skip_atlas:
        healthy = args.work / f"healthy_{args.atlas_cells}.h5ad"
        if not healthy.exists():
            res["healthy_input"] = make_healthy(args.vangalen_dir, healthy, args.atlas_cells)
        base = [*exe, "atlas", "build", str(healthy), "--cell-type-key", "cell_type"]
        base += ["--donor-key", "donor_id"]
        for label, extra, workers in (
            ("in_process", [], 1),
            ("local_1", ["--dask", "local:1"], 1),
            ("local_2", ["--dask", "local:2"], 2),
        ):
            r = timed([*base, *extra, "--out", str(args.work / f"atlas_{label}")])
            n = json.loads((args.work / f"atlas_{label}" / "atlas.json").read_text())["n_cells"]
            r["cells_per_s"] = round(n / r["wall_s"], 1)
            r["cells_per_s_per_worker"] = round(n / r["wall_s"] / workers, 1)
            res[f"atlas_{label}"] = r
            print(label, r, flush=True)
        frames = [
            pd.read_parquet(args.work / f"atlas_{lb}" / "fraction.parquet")
            for lb in ("in_process", "local_1", "local_2")
        ]
        res["atlas_tables_identical"] = all(f.equals(frames[0]) for f in frames[1:])
    res["load_after"] = os.getloadavg()
    text = json.dumps(res, indent=1, default=str)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
