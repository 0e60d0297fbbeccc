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

import numpy as np
import pandas as pd

import antigenscout as asc

REPO = Path(__file__).resolve().parents[1]
COLS = [
    "rank",
    "gate",
    "n_genes",
    "tumor_coverage",
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
    p.add_argument("--max-genes", type=int, default=3)
    p.add_argument("--ops", default="and,not")
    p.add_argument("--cap", type=float, default=0.5)
    p.add_argument("--doc", type=Path, default=REPO / "docs" / "aml_gates.md")
    a = p.parse_args()

    adata = asc.datasets.vangalen2019(a.shared / "singlecell" / "vangalen2019_aml")
    asc.pp.harmonise_genes(adata)
    stem = adata.obs["cell_type"].astype(str).isin(("HSC-like", "Prog-like"))
    adata.obs["compartment"] = np.where(stem, "stem_progenitor", "other")
    healthy = adata[adata.obs["malignant"].astype(str) == "normal"].copy()
    ops = tuple(o for o in a.ops.split(",") if o)
    runs = {}
    for label, max_genes in (
        ("single antigens", 1),
        (f"gates of up to {a.max_genes}", a.max_genes),
    ):
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
            )
        runs[label] = (
            asc.get.gates_df(adata).copy(),
            time.perf_counter() - t0,
            adata.uns["antigenscout_gates"]["params"],
            [str(w.message) for w in caught],
        )
    den = adata.uns["antigenscout_gates"]["denominators"]
    single, t_single, _, notes = runs["single antigens"]
    gates, t_gates, params, _ = runs[f"gates of up to {a.max_genes}"]
    best_single = single.iloc[0] if len(single) else None
    best_gate = gates.iloc[0] if len(gates) else None
    gain = (
        f"{best_gate['tumor_coverage'] - best_single['tumor_coverage']:+.2f}"
        if best_single is not None and best_gate is not None
        else "n/a"
    )
    limiting = gates["worst_healthy_cell_type"].value_counts().head(6)

    def describe(row: pd.Series | None) -> str:
        if row is None:
            return "none"
        return (
            f"**{row['gate']}** covering {row['tumor_coverage']:.0%} of malignant cells "
            f"(worst healthy: {row['worst_healthy_cell_type']}, "
            f"risk {row['worst_healthy_risk']:.2f})"
        )

    summary = "\n".join(
        [
            f"- Best single antigen under the cap: {describe(best_single)}.",
            f"- Best gate under the cap: {describe(best_gate)}; coverage gain: {gain}.",
            "- Healthy cell types that limit the top 25 gates (their worst context): "
            + ", ".join(f"{k} ({v})" for k, v in limiting.items())
            + ".",
        ]
    )
    text = f"""# Logic gates on all van Galen 2019 AML patients

Command: `python scripts/aml_gates.py --max-genes {a.max_genes} --ops {a.ops} --cap {a.cap}`
(single antigens {t_single:.0f} s, gates {t_gates:.0f} s on 2 cores).

Tumour: {den["n_tumor_cells"]:,} malignant cells of {den["n_patients"]} patients;
candidates: {den["n_candidates"]:,} surface genes (CAR-T). Healthy risk: the dataset's own
{healthy.n_obs:,} normal cells, grouped by cell type (exact co-positivity; weights from the
reference by name, e.g. HSC → marrow:HSC), plus the embedded reference's contexts for the
rest of the body (Fréchet upper bound: `risk_is_bound = True` when the worst context is one of
those). Objective: maximise tumour coverage subject to worst vital-weighted healthy risk
≤ {a.cap}. Pairs are exhaustive and triples exact by branch and bound (`optimal = True`).
Search statistics: {params.get("search", {})}.
{("Notes: " + "; ".join(sorted(set(notes)))) if notes else ""}

## Summary

{summary}

## Top single antigens (risk ≤ {a.cap})

{_md(single)}

## Top gates (risk ≤ {a.cap})

{_md(gates)}
"""
    a.doc.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
