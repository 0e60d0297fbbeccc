"""Build the packaged demo: a real, small subset of van Galen et al. 2019 (GEO GSE116256).

Usage::

    python scripts/build_demo.py [--shared ../shared/data] [--out src/antigenscout/datasets/data]

Composition: three AML patients whose malignant cells include many stem/progenitor-like
cells (AML707B: GMP-/Prog-/HSC-like; AML916: HSC-/Prog-like; AML328: Prog-/HSC-like) and the
healthy marrow donor BM3. Each AML patient is subsampled to about ``MAX_CELLS_PER_PATIENT``
cells, stratified by (``malignant``, ``cell_type``) so that every stratum keeps its share and
at least ``MIN_PER_STRATUM`` cells (all when smaller); BM3 keeps all cells. Genes without any
count in the subset are dropped. The random generator is seeded, so reruns give the same
cells; the file is written with gzip (and byte-shuffle on X/indices) to stay under 4 MB.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from antigenscout.datasets import vangalen2019  # noqa: E402
from antigenscout.datasets._datasets import DEMO_FILE  # noqa: E402

PATIENTS = ("AML707B", "AML916", "AML328", "BM3")
MAX_CELLS_PER_PATIENT = 450
MIN_PER_STRATUM = 5
SEED = 20190221  # van Galen et al., Cell 176(6), published 2019-02-21
MAX_BYTES = 4_000_000


def stratified_sample(obs: pd.DataFrame, n_max: int, rng: np.random.Generator) -> np.ndarray:
    """Positions (into ``obs``) of a stratified subsample of at most ~``n_max`` cells."""
    n = len(obs)
    if n <= n_max:
        return np.arange(n)
    strata = obs.groupby(["malignant", "cell_type"], observed=True).indices
    keep: list[np.ndarray] = []
    for key in sorted(strata, key=str):
        idx = np.sort(strata[key])
        k = max(min(len(idx), MIN_PER_STRATUM), round(len(idx) * n_max / n))
        keep.append(np.sort(rng.choice(idx, size=k, replace=False)))
    return np.sort(np.concatenate(keep))


def repack(src: Path, dst: Path) -> None:
    """Copy ``src`` to ``dst`` writing the sparse X arrays with gzip-9 (+ shuffle for indices).

    HDF5 filters are applied on read by h5py, so anndata reads the file unchanged.
    """
    with h5py.File(src, "r") as fin, h5py.File(dst, "w") as fout:
        for k, v in fin.attrs.items():
            fout.attrs[k] = v
        for key in fin:
            if key != "X":
                fin.copy(fin[key], fout, name=key)
        gx = fout.create_group("X")
        for k, v in fin["X"].attrs.items():
            gx.attrs[k] = v
        for name, ds in fin["X"].items():
            arr = ds[:]
            gx.create_dataset(
                name,
                data=arr,
                compression="gzip",
                compression_opts=9,
                shuffle=name == "indices",
                chunks=(max(1, min(len(arr), 1 << 18)),),
            )
            for k, v in ds.attrs.items():
                gx[name].attrs[k] = v


def main(argv: list[str] | None = None) -> int:  # noqa: D103
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    ap.add_argument("--out", type=Path, default=REPO / "src/antigenscout/datasets/data")
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    full = vangalen2019(args.shared / "singlecell" / "vangalen2019_aml", patients=PATIENTS)
    rng = np.random.default_rng(SEED)
    pos: list[np.ndarray] = []
    for patient in PATIENTS:
        rows = np.flatnonzero(full.obs["patient"].to_numpy() == patient)
        cap = len(rows) if patient.startswith("BM") else MAX_CELLS_PER_PATIENT
        pos.append(rows[stratified_sample(full.obs.iloc[rows], cap, rng)])
    cells = np.sort(np.concatenate(pos))
    adata = full[cells].copy()
    expressed = np.asarray((adata.X > 0).sum(axis=0)).ravel() > 0
    adata = adata[:, expressed].copy()
    # var['gene_id_input'] equals var_names here; demo() restores it (saves ~0.5 MB of strings)
    del adata.var["gene_id_input"]
    for c in adata.obs.columns:
        if isinstance(adata.obs[c].dtype, pd.CategoricalDtype):
            adata.obs[c] = adata.obs[c].cat.remove_unused_categories()
    adata.uns["antigenscout"].update(
        {
            "dataset": "vangalen2019_demo",
            "subset": {
                "patients": list(PATIENTS),
                "max_cells_per_aml_patient": MAX_CELLS_PER_PATIENT,
                "stratified_by": ["malignant", "cell_type"],
                "seed": SEED,
                "genes": "genes with at least one count in the subset",
                "script": "scripts/build_demo.py",
            },
        }
    )
    out = args.out / DEMO_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    plain = out.with_suffix(".plain.h5ad.tmp")
    tmp = out.with_suffix(".h5ad.tmp")
    adata.write_h5ad(plain, compression="gzip", compression_opts=9)
    repack(plain, tmp)
    plain.unlink()
    tmp.replace(out)
    size = out.stat().st_size
    table = pd.crosstab(adata.obs["patient"], adata.obs["malignant"], margins=True)
    print(f"wrote {out} ({size / 1e6:.2f} MB) in {time.perf_counter() - t0:.1f} s")
    print(f"{adata.n_obs} cells × {adata.n_vars} genes, {adata.X.nnz} non-zeros")
    print(table.to_string())
    stem = adata.obs["cell_type"].isin(["HSC-like", "Prog-like"])
    print("HSC-/Prog-like malignant cells per patient:")
    print(adata.obs.loc[stem, "patient"].value_counts().to_string())
    if size > MAX_BYTES:
        print(f"error: {out} exceeds 4 MB; lower MAX_CELLS_PER_PATIENT", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
