"""Best logic gates vs best single antigens on all van Galen 2019 AML patients.

Tumour: malignant cells of the 11 patients with malignant calls. Healthy risk: the normal
cells of the same dataset (all samples, grouped by cell type: exact co-positivity) combined
with the embedded reference for the rest of the body (Fréchet upper bounds), vital-weighted.
Writes docs/aml_gates.md. Run::

    python scripts/aml_gates.py [--max-genes 3] [--ops and,not] [--cap 0.5]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import pandas as pd

import antigenscout as asc

REPO = Path(__file__).resolve().parents[1]
COLS = [
    "rank",
    "gate",
    "n_genes",
    "tumor_coverage",
    "tumor_coverage_cells",
    "patients_covered_fraction",
    "patient_coverage_median",
    "coverage_stem_progenitor",
    "worst_healthy_cell_type",
    "worst_healthy_risk",
    "risk_is_bound",
    "optimal",
]


def _md(df: pd.DataFrame) -> str:
    cols = [c for c in COLS if c in df.columns]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in df[cols].itertuples(index=False):
        out.append(
            "| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in r) + " |"
        )
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--max-genes", type=int, default=3, help="2 or 3")
    p.add_argument("--ops", default="and,not")
    p.add_argument("--cap", type=float, default=0.5)
    p.add_argument(
        "--triple-candidates",
        type=int,
        default=None,
        help="restrict triples to this many top-coverage candidates (default: all, exact)",
    )
    p.add_argument("--doc", type=Path, default=REPO / "docs" / "aml_gates.md")
    a = p.parse_args()

    adata = asc.datasets.vangalen2019(a.shared / "singlecell" / "vangalen2019_aml")
    asc.pp.harmonise_genes(adata)
    asc.datasets.add_vangalen_compartment(adata)
    healthy = adata[adata.obs["malignant"].astype(str) == "normal"].copy()
    ops = tuple(o for o in a.ops.split(",") if o)
    runs = {}
    plan = [("single antigens", 1, None), ("gates of up to 2 genes", 2, None)]
    if a.max_genes >= 3:
        plan.append(("gates of up to 3 genes", 3, a.triple_candidates))
    for label, max_genes, n_cand in plan:
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            asc.tl.search_gates(
                adata,
                malignant_key="malignant=malignant",
                patient_key="patient",
                compartment_key="compartment",
                healthy=healthy,
                healthy_key="cell_type",
                max_genes=max_genes,
                ops=ops if max_genes > 1 else ("and",),
                max_vital_risk=a.cap,
                top_k=25,
                n_candidates=n_cand,
            )
        runs[label] = (
            asc.get.gates_df(adata).copy(),
            time.perf_counter() - t0,
            adata.uns["antigenscout_gates"]["params"],
            [str(w.message) for w in caught],
        )
    den = adata.uns["antigenscout_gates"]["denominators"]
    single = runs["single antigens"][0]
    notes = sorted({n for r in runs.values() for n in r[3]})

    def describe(df: pd.DataFrame) -> str:
        if df.empty:
            return "none under the cap"
        row = df.iloc[0]
        return (
            f"**{row['gate']}** covering {row['tumor_coverage']:.0%} of malignant cells "
            f"(worst healthy: {row['worst_healthy_cell_type']}, "
            f"risk {row['worst_healthy_risk']:.2f})"
        )

    lines, sections = [], []
    for label, (df, secs, params, _) in runs.items():
        gain = ""
        if label != "single antigens" and len(df) and len(single):
            delta = df.iloc[0]["tumor_coverage"] - single.iloc[0]["tumor_coverage"]
            gain = f"; coverage gain over the best single antigen {delta:+.2f}"
        lim = ", ".join(
            f"{k} ({v})" for k, v in df["worst_healthy_cell_type"].value_counts().head(5).items()
        )
        scope = (
            f"within the top {params['n_candidates']} candidates by coverage"
            if params["n_candidates"] < runs["single antigens"][2]["n_candidates"]
            else f"over all {params['n_candidates']:,} candidates"
        )
        lines.append(
            f"- Best {label} ({scope}, {secs:.0f} s): {describe(df)}{gain}. "
            f"Limiting healthy contexts of the top 25: {lim}."
        )
        sections.append(f"## Top {label} (risk ≤ {a.cap}; {scope})\n\n{_md(df)}\n")
    text = f"""# Logic gates on all van Galen 2019 AML patients

Command: `python scripts/aml_gates.py --max-genes {a.max_genes} --ops {a.ops} --cap {a.cap}`
(2 cores; times include tumour positivity).

Tumour: {den["n_tumor_cells"]:,} malignant cells of {den["n_patients"]} patients (CAR-T surface
candidates). Healthy risk: the dataset's own {healthy.n_obs:,} normal cells grouped by cell
type (exact co-positivity; vital weights from the reference by name, e.g. HSC → marrow:HSC)
plus the embedded reference's contexts for the rest of the body (Fréchet upper bound:
`risk_is_bound = True` when the worst context is one of those). Objective: maximise tumour
coverage subject to worst vital-weighted healthy risk ≤ {a.cap}; operators {a.ops}. Pairs are
exhaustive; triples exact by branch and bound (`optimal`), using per-type risk lower bounds
for NOT extensions (docs/gates.md).

NOT arms count on evidence only (docs/gates.md, "NOT arms on evidence"): a veto lowers the
risk of a reference context only where measured cells or HPA immunohistochemistry show its
antigen there (an RNA-modelled fraction vetoes nothing), and in the tumour only where each
patient's pseudobulk shows the antigen absent: `tumor_coverage` takes off the cells that may
carry it undetected, `tumor_coverage_cells` is the plain per-cell count. The single-risk cap
is a hard line, so a row can be a near-cap antigen whose NOT arm trims a measured cell
type's risk just under it: read such a row as "the antigen, nearly feasible alone", not as a
designed gate. (The pairs that used to lead this table were of that kind, on HLA-H, a
pseudogene that is no longer a candidate: docs/modalities.md, "Loci".)
{("Notes: " + "; ".join(notes)) if notes else ""}

## Summary

{chr(10).join(lines)}

{chr(10).join(sections)}
"""
    a.doc.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
