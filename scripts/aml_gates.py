"""Best logic gates vs best single antigens, and published designs, on all van Galen 2019 AML
patients.

Tumour: malignant cells of the 11 patients with malignant calls. Healthy risk: the healthy
donors' marrow cells (``--healthy donors``, the default; or the patients' non-malignant cells,
or both), grouped by cell type (exact co-positivity), combined with the embedded reference for
the rest of the body (Fréchet upper bounds), vital-weighted. Published AND/OR/NOT designs are
scored with the same columns (``DESIGNS``). Writes docs/aml_gates.md. Run::

    python scripts/aml_gates.py [--max-genes 3] [--ops and,not] [--cap 0.5] [--healthy donors]
"""  # noqa: D205

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
    "arm_gains",
]


#: Published or proposed AML logic, with where it comes from. Each is scored as written; an
#: IF-better gate (a CAR plus a costimulatory receptor) is scored as its AND.
DESIGNS: tuple[tuple[str, str], ...] = (
    (
        "ADGRE2 AND CLEC12A",
        "ADCLEC.syn1: ADGRE2 CAR with a CLEC12A chimeric costimulatory receptor, an IF-better "
        "gate (Haubner et al. 2023 Cancer Cell); scored as its AND",
    ),
    ("CLEC12A OR CD33", "CLL1-CD33 compound CAR (Liu et al. 2021 J Hematol Oncol)"),
    (
        "CD93 AND NOT EMCN",
        "NOT-gated CD93 CAR against endothelium (Richards et al. 2021 Blood Cancer Discov "
        "2:648); the endothelial veto here is ours (EMCN)",
    ),
    ("CD93 AND NOT CDH5", "as above, with VE-cadherin (CDH5) as the veto"),
    ("CLEC12A AND FLT3", "named in issue #22 as logic the field tests (source not checked here)"),
    (
        "(CD33 OR FLT3) AND NOT EMCN",
        "named in issue #22 as logic the field tests (source not checked here)",
    ),
)
#: The designs' parts, scored alone so each arm's effect can be read.
PARTS = ("ADGRE2", "CLEC12A", "CD33", "FLT3", "CD93", "CD33 OR FLT3")
HEALTHY = {
    "donors": "the healthy donors' marrow cells (condition = healthy)",
    "patients-normal": "the patients' non-malignant cells (condition = AML, malignant = normal)",
    "all-normal": "every non-malignant cell, donors' and patients'",
}


_WHOSE = {"donors": "donors", "patients-normal": "patients' non-malignant cells"}


def _healthy_cells(adata: object, which: str) -> object:
    cond = adata.obs["condition"].astype(str)
    normal = adata.obs["malignant"].astype(str) == "normal"
    sel = {
        "donors": cond == "healthy",
        "patients-normal": (cond == "AML") & normal,
        "all-normal": normal,
    }[which]
    return adata[sel.to_numpy()].copy()


def _search(  # noqa: PLR0913
    adata: object,
    healthy: object,
    *,
    max_genes: int,
    ops: tuple[str, ...],
    cap: float,
    top_k: int,
    n_candidates: int | None = None,
    designs: list[str] | tuple[str, ...] = (),
    require_arms: bool = True,
) -> None:
    """The search every table here (and benchmarks/bench_aml_gates.py) comes from: all
    patients, compartments, ``healthy``.
    """  # noqa: D205, D401
    asc.tl.search_gates(
        adata,
        malignant_key="malignant=malignant",
        patient_key="patient",
        compartment_key="compartment",
        healthy=healthy,
        healthy_key="cell_type",
        max_genes=max_genes,
        ops=ops,
        max_vital_risk=cap,
        top_k=top_k,
        n_candidates=n_candidates,
        designs=designs,
        require_arms=require_arms,
    )


def load(shared: Path) -> object:
    """All van Galen 2019 cells, genes harmonised, compartments added."""
    adata = asc.datasets.vangalen2019(shared / "singlecell" / "vangalen2019_aml")
    asc.pp.harmonise_genes(adata)
    asc.datasets.add_vangalen_compartment(adata)
    return adata


def _md(df: pd.DataFrame) -> str:
    cols = [c for c in COLS if c in df.columns]
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in df[cols].itertuples(index=False):
        out.append(
            "| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in r) + " |"
        )
    return "\n".join(out)


def main() -> None:  # noqa: D103, PLR0915
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
    p.add_argument("--healthy", choices=list(HEALTHY), default="donors")
    p.add_argument("--doc", type=Path, default=REPO / "docs" / "aml_gates.md")
    a = p.parse_args()

    adata = load(a.shared)
    healthy = _healthy_cells(adata, a.healthy)
    designs = [d for d, _ in DESIGNS] + list(PARTS)
    ops = tuple(o for o in a.ops.split(",") if o)
    runs = {}
    plan = [("single antigens", 1, None), ("gates of up to 2 genes", 2, None)]
    if a.max_genes >= 3:  # noqa: PLR2004
        plan.append(("gates of up to 3 genes", 3, a.triple_candidates))
    for label, max_genes, n_cand in plan:
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            _search(
                adata,
                healthy,
                max_genes=max_genes,
                ops=ops if max_genes > 1 else ("and",),
                cap=a.cap,
                top_k=25,
                n_candidates=n_cand,
                designs=designs if max_genes == 2 else (),  # noqa: PLR2004
            )
        if max_genes == 2:  # noqa: PLR2004
            scored = adata.uns["antigenscout_gates"]["designs"].copy()
        runs[label] = (
            asc.get.gates_df(adata).copy(),
            time.perf_counter() - t0,
            adata.uns["antigenscout_gates"]["params"],
            [str(w.message) for w in caught],
        )
    den = adata.uns["antigenscout_gates"]["denominators"]
    # the same designs judged by the other healthy cells, to show what the choice does
    other = "patients-normal" if a.healthy != "patients-normal" else "donors"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _search(
            adata,
            _healthy_cells(adata, other),
            max_genes=1,
            ops=("and",),
            cap=a.cap,
            top_k=1,
            n_candidates=None,
            designs=designs,
        )
    alt = adata.uns["antigenscout_gates"]["designs"].set_index("design")
    design_table = _designs_md(scored, alt, runs["gates of up to 2 genes"][0], a.cap, other)
    hsc_lines = _hsc_lines(adata)
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
        arms = params.get("arms") or {}
        aside = (
            f" {arms['set_aside']} of the {arms['examined']} best gates examined were set aside, "
            "an arm not shown to beat noise (`set_aside`)."
            if arms.get("set_aside")
            else ""
        )
        lines.append(
            f"- Best {label} ({scope}, {secs:.0f} s): {describe(df)}{gain}. "
            f"Limiting healthy contexts of the top {len(df)}: {lim}.{aside}"
        )
        sections.append(f"## Top {label} (risk ≤ {a.cap}; {scope})\n\n{_md(df)}\n")
    text = f"""# Logic gates on all van Galen 2019 AML patients

Command: `python scripts/aml_gates.py --max-genes {a.max_genes} --ops {a.ops} --cap {a.cap}`
(2 cores; times include tumour positivity).

Tumour: {den["n_tumor_cells"]:,} malignant cells of {den["n_patients"]} patients (CAR-T surface
candidates). Healthy risk: {HEALTHY[a.healthy]}, {healthy.n_obs:,} cells grouped by cell
type (exact co-positivity; vital weights from the reference by name, e.g. HSC → marrow:HSC)
plus the embedded reference's contexts for the rest of the body (Fréchet upper bound:
`risk_is_bound = True` when the worst context is one of those). Objective: maximise tumour
coverage subject to worst vital-weighted healthy risk ≤ {a.cap}; operators {a.ops}. Pairs are
exhaustive; triples exact by branch and bound (`optimal`), using per-type risk lower bounds
for NOT extensions (docs/gates.md).

Every arm of a gate must earn its place (docs/gates.md, "Arms that beat noise"): an AND or
NOT arm must lower the healthy risk, an OR arm add coverage, beyond resampling noise (95%
one-sided, cells resampled within each healthy type and each patient); a veto must be shown
on at least 5% of the cells it protects (Wilson lower bound); and an AND arm may not claim to
protect more cells than the positivity model expects to lack it; a cell type of fewer than 50
cells (20 donor HSC) must stay under the cap at the upper end of its Wilson interval.
`arm_gains` gives each arm's gain and the lower end of its interval; gates that fail are set
aside, and the tables
below hold only gates whose every arm is shown (so fewer than 25 rows where the search's
examined gates ran out).

NOT arms count on evidence only (docs/gates.md, "NOT arms on evidence"): a veto lowers the
risk of a reference context only where measured cells or HPA immunohistochemistry show its
antigen there (an RNA-modelled fraction vetoes nothing), and in the tumour only where each
patient's called-negative cells show the antigen absent (their pooled level bounds what may
hide among them): `tumor_coverage` takes off the cells that may carry it undetected,
`tumor_coverage_cells` is the plain per-cell count. The single-risk cap
is a hard line, so a row can be a near-cap antigen whose NOT arm trims a measured cell
type's risk just under it: read such a row as "the antigen, nearly feasible alone", not as a
designed gate. (The pairs that used to lead this table were of that kind, on HLA-H, a
pseudogene that is no longer a candidate: docs/modalities.md, "Loci".)
{("Notes: " + "; ".join(notes)) if notes else ""}

**Whose cells are protected** (issue #22, item 2). The dataset labels healthy donors' marrow
(`condition = healthy`) apart from the non-malignant cells of the AML patients' marrow; the
default here protects the donors' cell types. The patients' "normal" cells are not a healthy
marrow: {hsc_lines} A context of fewer than 50 donor cells carries its
interval into the judgement: a gate must stay under the cap at the upper end of its Wilson
interval there (`small_context_risk`; the reported `worst_healthy_risk` stays the point
estimate).

## Summary

{chr(10).join(lines)}

## Published designs, scored as found gates are

Each design is evaluated on the same tumour calls and healthy contexts as the search (`gates
--design`), beside its arms alone; `risk with {other}` is the worst risk when {HEALTHY[other]}
replace the protected cells. Why each differs from the engine's best gates is said in the
last column.

{design_table}

{chr(10).join(sections)}
"""
    a.doc.write_text(text)
    print(text)


def _designs_md(
    scored: pd.DataFrame, alt: pd.DataFrame, best: pd.DataFrame, cap: float, other: str
) -> str:
    """The designs table: their columns, the other healthy set's risk, and why they differ."""  # noqa: D401
    source = dict(DESIGNS)
    by = scored.set_index("design")
    top = best.iloc[0] if len(best) else None
    rows = []
    for d, row in by.iterrows():
        why = []
        if row["worst_healthy_risk"] > cap:
            why.append(
                f"above the cap in {row['worst_healthy_cell_type']} "
                f"({row['worst_healthy_risk']:.2f} > {cap})"
            )
        if " AND NOT " in str(d):
            arm = str(d).split(" AND NOT ")[0].strip().removeprefix("(").removesuffix(")")
            if (
                arm in by.index
                and abs(by.loc[arm, "worst_healthy_risk"] - row["worst_healthy_risk"]) < 1e-9  # noqa: PLR2004
            ):
                why.append(
                    f"the veto lowers nothing in {row['worst_healthy_cell_type']} (its antigen is "
                    "not shown there by measured cells or IHC: NOT arms count on evidence)"
                )
        if row["design_note"] != "none":
            why.append(row["design_note"])
        if not why and top is not None:
            why.append(
                f"feasible; covers {row['tumor_coverage']:.0%} against the best found gate's "
                f"{top['tumor_coverage']:.0%} ({top['gate']})"
            )
        rows.append(
            {
                "design": d,
                "source": source.get(d, "an arm of the designs above"),
                "tumor_coverage": row["tumor_coverage"],
                "patients_covered_fraction": row["patients_covered_fraction"],
                "coverage_stem_progenitor": row.get("coverage_stem_progenitor", float("nan")),
                "worst_healthy_cell_type": row["worst_healthy_cell_type"],
                "worst_healthy_risk": row["worst_healthy_risk"],
                f"risk with {other}": alt.loc[d, "worst_healthy_risk"],
                "arms": "shown" if row["arms_shown"] else row["set_aside"],
                "why it differs": "; ".join(why),
            }
        )
    df = pd.DataFrame(rows)
    out = ["| " + " | ".join(df.columns) + " |", "|" + "---|" * len(df.columns)]
    for r in df.itertuples(index=False):
        out.append(
            "| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in r) + " |"
        )
    return "\n".join(out)


def _hsc_lines(adata: object) -> str:
    """HSC genes and myeloid transcripts in the HSC-labelled cells of each healthy set."""
    parts = []
    for which in ("donors", "patients-normal"):
        cells = _healthy_cells(adata, which)
        hsc = cells[cells.obs["cell_type"].astype(str) == "HSC"]
        frac = {
            g: float((hsc[:, g].X > 0).mean()) if g in hsc.var_names else float("nan")
            for g in ("CRHBP", "MPO")
        }
        parts.append(
            f"{hsc.n_obs} HSC-labelled cells of the {_WHOSE[which]} carry CRHBP in "
            f"{frac['CRHBP']:.0%} and MPO in {frac['MPO']:.0%}"
        )
    return "; ".join(parts) + "."


if __name__ == "__main__":
    main()
