"""Measure the ambient-RNA model and write the AMBIENT block of docs/positivity.md.

On all van Galen 2019 samples (15 AML diagnoses and healthy marrows BM1-BM3), states =
the malignant label and the annotated cell type, as ``rank --compartment-key cell_type``
does::

    python scripts/ambient_doc.py [--shared ../shared/data] [--doc docs/positivity.md]

It reports each sample's contamination, the share of malignant cells called positive for
genes of other lineages with the soup counted (``--no-ambient``) and discounted, the same for
the published AML antigens, the healthy marrow fractions of the shipped reference before
(``git show bd610f5``, neighbours across cell types, no soup) and now, and the recovery of a
known contamination on simulated droplets (``tests/soup_sim.py``).
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

import antigenscout as asc
from antigenscout.pp._ambient import estimate_ambient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from soup_sim import simulate_soup  # noqa: E402

#: Genes of other lineages: erythroid, plasma cell, T cell.
LINEAGE = ("HBB", "HBA1", "HBA2", "HBD", "JCHAIN", "CD3D", "CD3E", "CD3G")
#: Antigens of AML therapies in trials, the control that ambient must not erase.
AML = ("CD33", "IL3RA", "CLEC12A", "FLT3", "CD34", "KIT", "CD38", "IL1RAP")
#: Healthy marrow contexts and genes shown before/after.
MARROW = {
    "marrow:HSC": ("CD33", "MPO", "CLEC12A", "HBB", "LYZ", "CD34", "FLT3"),
    "marrow:T": ("MPO", "HBB", "LYZ", "CD3D"),
    "marrow:lateEry": ("MPO", "LYZ", "HBB"),
    "marrow:ProB": ("CD19", "CD79A", "MPO", "HBB"),
}
OLD_COMMIT = "bd610f5"
#: Contamination of the simulated samples.
RHO = (0.01, 0.05, 0.2)


def _fmt(x: float) -> str:
    return "" if not np.isfinite(x) else f"{x:.3f}"


def _table(df: pd.DataFrame) -> str:
    head = "| " + " | ".join(map(str, df.columns)) + " |\n|" + "---|" * len(df.columns) + "\n"
    return head + "\n".join("| " + " | ".join(map(str, r)) + " |" for r in df.to_numpy())


def _rank(adata: object, ambient: bool) -> dict:
    asc.tl.score_targets(
        adata,
        malignant_key="malignant=malignant",
        patient_key="patient",
        compartment_key="cell_type",
        modality="any",
        ambient=ambient,
        key_added="amb",
    )
    return adata.uns.pop("amb")  # type: ignore[attr-defined]


def main() -> None:  # noqa: D103, PLR0915
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--doc", type=Path, default=REPO / "docs" / "positivity.md")
    a = p.parse_args()
    t0 = time.perf_counter()
    adata = asc.datasets.vangalen2019(a.shared / "singlecell" / "vangalen2019_aml")
    asc.pp.harmonise_genes(adata)
    t_load = time.perf_counter() - t0

    t1 = time.perf_counter()
    on = _rank(adata, True)
    t_on = time.perf_counter() - t1
    t2 = time.perf_counter()
    off = _rank(adata, False)
    t_off = time.perf_counter() - t2

    amb = on["ambient"].copy()
    amb["contamination"] = [
        f"{r:.3f} [{lo:.3f}, {hi:.3f}]" if np.isfinite(r) else "—"
        for r, lo, hi in zip(
            amb["contamination"],
            amb["contamination_low"],
            amb["contamination_high"],
            strict=True,
        )
    ]
    amb["top_soup_genes"] = amb["top_soup_genes"].map(
        lambda s: ", ".join(g.split(":")[0] for g in s.split(",")[:6])
    )
    amb = amb[
        [
            "sample",
            "n_cells",
            "median_library",
            "contamination",
            "n_states",
            "n_marker_genes",
            "n_pairs",
            "source",
            "top_soup_genes",
        ]
    ]

    X = adata.X.tocsr()
    lib = np.asarray(X.sum(axis=1)).ravel()
    mal = (adata.obs["malignant"] == "malignant").to_numpy()
    patient = adata.obs["patient"].astype(str).to_numpy()
    soup_rate = on["ambient"].set_index("sample")["contamination"]

    def raw_vs_soup(g: str, who: str) -> str:
        """Per-cell detection (count > 0, no pooling) in a patient's malignant cells, and
        what the soup alone would give: mean of 1 - exp(-ρ a_g L).
        """  # noqa: D205
        m = mal & (patient == who)
        j = adata.var_names.get_loc(g)
        x = np.asarray(X[m][:, j].todense()).ravel()
        allc = patient == who
        a_g = float(np.asarray(X[allc][:, j].sum())) / lib[allc].sum()
        expect = np.mean(1 - np.exp(-float(soup_rate[who]) * a_g * lib[m]))
        return f"{(x > 0).mean():.2f} / {expect:.2f}"

    def coverage_rows(genes: tuple[str, ...], raw: bool) -> pd.DataFrame:
        rows = []
        for g in genes:
            if g not in on["targets"].index:
                continue
            pc_on, pc_off = on["patient_coverage"].loc[g], off["patient_coverage"].loc[g]
            extra = (
                {
                    "that patient: cells with a read / expected from soup": raw_vs_soup(
                        g, str(pc_on.idxmax())
                    )
                }
                if raw
                else {}
            )
            rows.append(
                {
                    "gene": g,
                    "malignant cells, soup counted": _fmt(off["targets"].loc[g, "tumor_coverage"]),
                    "soup discounted": _fmt(on["targets"].loc[g, "tumor_coverage"]),
                    "patients > 10% (counted → discounted)": f"{int((pc_off > 0.1).sum())} → "  # noqa: PLR2004
                    f"{int((pc_on > 0.1).sum())}",  # noqa: PLR2004
                    "highest patient (discounted)": f"{pc_on.idxmax()} {pc_on.max():.2f}",
                    **extra,
                }
            )
        return pd.DataFrame(rows)

    lineage = coverage_rows(LINEAGE, raw=True)
    aml = coverage_rows(AML, raw=False)

    # the marrow reference before (bd610f5) and now
    old_bytes = subprocess.run(
        [
            "git",
            "-C",
            str(REPO),
            "show",
            f"{OLD_COMMIT}:src/antigenscout/reference/data/fraction.parquet",
        ],
        capture_output=True,
        check=True,
    ).stdout
    old = pd.read_parquet(io.BytesIO(old_bytes))
    new = asc.reference.load_reference().measured_fraction
    ctx = asc.reference.load_reference().contexts
    mrows = []
    for c, genes in MARROW.items():
        for g in genes:
            mrows.append(
                {
                    "context": f"{ctx.loc[c, 'name']} ({int(ctx.loc[c, 'n_cells'])} cells)",
                    "gene": g,
                    "before: across types, soup counted": _fmt(float(old[c].get(g, 0.0))),
                    "now: within type, soup discounted": _fmt(float(new[c].get(g, 0.0))),
                }
            )
    marrow = pd.DataFrame(mrows)

    sims = []
    for seed in range(3):
        sim = simulate_soup(rho=(0.01, 0.05, 0.2), seed=seed)
        for states, label in (
            (sim.obs["cell_type"].to_numpy(), "labelled states"),
            (None, "clusters"),
        ):
            m, _ = estimate_ambient(sim.X, sim.obs["patient"].to_numpy(), states)
            est = m.table["contamination"].to_numpy()
            sims.append(
                {
                    "seed": seed,
                    "states": label,
                    **{f"ρ={r}": f"{e:.4f}" for r, e in zip((0.01, 0.05, 0.2), est, strict=True)},
                }
            )
    sim_table = pd.DataFrame(sims)

    rho = on["ambient"]["contamination"]
    own = ~on["ambient"]["source"].str.startswith(("borrowed", "not"))
    block = f"""Made by `python scripts/ambient_doc.py` (loading {t_load:.0f} s; `rank`-equivalent
runs on all {on["denominators"]["n_tumor_cells"]:,} malignant cells, `--modality any`: {t_on:.0f} s
with the ambient model, {t_off:.0f} s without, on 2 shared cores).

**Contamination of each sample** (states: malignant label × annotated cell type). Estimated
for {int(own.sum())} of {len(rho)} samples (range {rho[own].min():.3f}–{rho[own].max():.3f});
the others borrow the median of those ({np.median(rho[own]):.3f}):

{_table(amb)}

**Genes of other lineages on malignant cells** (share of the malignant cells called
positive; patients with more than 10%; in the patient with the most, the share of its
malignant cells with at least one read of the gene, unpooled, against the share the soup
alone would give, `mean(1 − exp(−ρ a_g L))`: far above it, the reads are the cells' own):

{_table(lineage)}

**Published AML antigens** (the soup must not erase real antigen):

{_table(aml)}

**Healthy marrow in the shipped reference** (`reference/data/fraction.parquet`, before:
commit {OLD_COMMIT}):

{_table(marrow)}

**Known contamination recovered** (simulated droplets, `tests/soup_sim.py`: 600 cells per
sample, five cell types, 1,500 housekeeping and 150 type-specific genes):

{_table(sim_table)}
"""
    doc = a.doc.read_text()
    start, end = "<!-- BEGIN AMBIENT -->", "<!-- END AMBIENT -->"
    if start not in doc:
        msg = f"{a.doc} has no {start} … {end} block"
        raise SystemExit(msg)
    head, rest = doc.split(start, 1)
    _, tail = rest.split(end, 1)
    a.doc.write_text(head + start + "\n" + block + end + tail)
    print(block)


if __name__ == "__main__":
    main()
