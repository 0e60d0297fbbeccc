"""Print the bulk-evidence tables of docs/engagement.md.

1. Which cancers have which evidence: for each of HPA's 20 cancer types, how many genes have
   tumour IHC from a reliable antibody (Enhanced or Supported) and the median number of
   patients per gene; the CPTAC cohorts and their patients; and, among the reference's
   surface genes (``is_surface``), how many have both kinds of evidence and how many of
   those the conflict rule of :func:`antigenscout.tl.protein_evidence_conflict` flags.
2. The fitted evidence model (reliabilities of each source; ``EVIDENCE_MODEL``).
3. How the fused coverage changed the coverage of surface genes in each cancer, with the
   packaged TCGA medians as the bulk input (the mean of the cancer's cohorts, one reading):
   before = the previous rule (IHC High/Medium fraction where an Enhanced or Supported
   antibody stained, else the RNA model of the bulk level), after = the fused posterior mean.

The numbers come from the same functions ``score_targets`` uses. Run::

    python scripts/bulk_evidence_doc.py          # the tables
    python scripts/bulk_evidence_doc.py --fit    # refit the evidence model (~2 min) and print it
"""

from __future__ import annotations

import argparse
import json
import warnings

import numpy as np
import pandas as pd

from antigenscout.datasets import TCGA_HPA_CANCER, tcga_medians
from antigenscout.pp import harmonise_genes
from antigenscout.pp._positivity import DEFAULT_THRESHOLD
from antigenscout.reference import Reference, load_reference
from antigenscout.tl._evidence import (
    CONFLICT_HIGH,
    CONFLICT_LOW,
    CPTAC_EDGES,
    EVIDENCE_MODEL,
    IHC_CLASSES,
    RNA_EDGES,
    _cptac_evidence,
    _ihc_coverage_genes,
    evidence_pairs,
    fit_evidence_model,
    fused_coverage,
    pathology_coverage,
)
from antigenscout.tl._risk import CP10K_TO_NTPM, positive_fraction_from_mean


def evidence_table(reference: Reference) -> pd.DataFrame:
    """One row per HPA cancer type: IHC and CPTAC evidence and IHC-CPTAC conflicts.

    Parameters
    ----------
    reference
        A reference with ``pathology`` and ``cptac`` tables.

    Returns
    -------
    DataFrame indexed by cancer with ``ihc_genes``, ``ihc_median_patients``,
    ``cptac_cohorts``, ``cptac_genes``, ``surface_both``, ``conflict_ihc_low`` (IHC High/Medium
    in at most 10% of patients, CPTAC detects in at least 90%), ``conflict_ihc_low_any`` (those
    of them whose IHC stains at any level, Low included, in at most 10% of patients; a
    description, not part of the rule) and ``conflict_ihc_high`` (the reverse direction).
    """
    path, cptac = reference.pathology, reference.cptac
    if path is None or cptac is None:
        msg = "the reference needs both the pathology and the CPTAC tables"
        raise SystemExit(msg)
    genes = pd.Index(sorted(set(path["symbol"].astype(str)) | set(cptac["symbol"].astype(str))))
    surface = reference.surface["is_surface"].reindex(genes).eq(True).to_numpy(dtype=bool)
    rows = {}
    for cancer in sorted(map(str, path["cancer"].cat.categories)):
        cov = pathology_coverage(reference, cancer, genes)
        used = _ihc_coverage_genes(cov)
        ev = _cptac_evidence(reference, cancer, genes, cov, used)
        sub = cptac[cptac["cancer"].astype(str) == cancer]
        cohorts = sub.groupby("cohort", observed=True)["n_patients"].max()
        ihc = cov["stained_fraction"].where(cov.index.isin(used)).to_numpy()
        cp = ev["cptac_detected_fraction"].to_numpy()
        any_stain = cov["any_stain_fraction"].where(cov.index.isin(used)).to_numpy()
        both = surface & np.isfinite(ihc) & np.isfinite(cp)
        flagged = ev["protein_evidence_conflict"].to_numpy(dtype=bool) & surface
        rows[cancer] = {
            "ihc_genes": len(used),
            "ihc_median_patients": float(cov.loc[used, "n_patients_stained"].median())
            if len(used)
            else np.nan,
            "cptac_cohorts": " + ".join(f"{c} ({n})" for c, n in cohorts.items()),
            "cptac_genes": int(sub["symbol"].nunique()),
            "surface_both": int(both.sum()),
            "conflict_ihc_low": int((flagged & (ihc <= CONFLICT_LOW)).sum()),
            "conflict_ihc_low_any": int((flagged & (any_stain <= CONFLICT_LOW)).sum()),
            "conflict_ihc_high": int((flagged & (ihc >= CONFLICT_HIGH)).sum()),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def markdown(table: pd.DataFrame, n_surface: int) -> str:
    """The table as markdown, with its totals."""  # noqa: D401
    lo, hi = f"{CONFLICT_LOW:.0%}", f"{CONFLICT_HIGH:.0%}"
    lines = [
        "| HPA cancer | IHC: genes (reliable antibody) | IHC: median patients per gene "
        "| CPTAC cohort (patients) | CPTAC: genes | surface genes with both "
        f"| conflicts: IHC High/Medium ≤ {lo}, CPTAC ≥ {hi} "
        f"| … of which IHC any level ≤ {lo} | conflicts: IHC ≥ {hi}, CPTAC ≤ {lo} |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    counts = ["conflict_ihc_low", "conflict_ihc_low_any", "conflict_ihc_high"]
    for cancer, r in table.iterrows():
        med = r["ihc_median_patients"]
        cells = [f"{r[c]:,}" for c in counts] if r["cptac_cohorts"] else ["—"] * 3
        lines.append(
            f"| {cancer} | {r['ihc_genes']:,} | {'—' if np.isnan(med) else f'{med:g}'} "
            f"| {r['cptac_cohorts'] or 'none'} | {r['cptac_genes']:,} "
            f"| {r['surface_both']:,} | " + " | ".join(cells) + " |"
        )
    total = table[["surface_both", *counts]].sum()
    lines.append(
        f"| **all** | | | | | {total['surface_both']:,} | "
        + " | ".join(f"{total[c]:,}" for c in counts)
        + " |"
    )
    lines.append("")
    lines.append(f"Surface genes: `is_surface` in the reference ({n_surface:,} genes).")
    return "\n".join(lines)


def tcga_by_cancer(reference: Reference) -> dict[str, pd.DataFrame]:
    """``{HPA cancer: genes × TCGA cohorts}`` of the packaged TCGA medians."""
    tcga = tcga_medians()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # unmapped genes are expected
        harmonise_genes(tcga, reference)
    table = tcga.to_df().T
    table = table.loc[~table.index.duplicated()]
    cohorts: dict[str, list[str]] = {}
    for code, cancer in TCGA_HPA_CANCER.items():
        if code in table.columns:
            cohorts.setdefault(cancer, []).append(code)
    return {cancer: table[codes] for cancer, codes in cohorts.items()}


def model_markdown(model: dict) -> str:
    """The fitted reliabilities as three small markdown tables."""  # noqa: D401
    lines = ["| antibody class | P(reads the antigen) |", "|---|---|"]
    lines += [f"| {c} | {v:.2f} |" for c, v in zip(IHC_CLASSES, model["ihc_validity"], strict=True)]
    for name, edges, unit in (
        ("cptac", CPTAC_EDGES, "CPTAC detected fraction"),
        ("rna", RNA_EDGES, "RNA level (TPM/FPKM-like)"),
    ):
        lo = (0.0, *edges)
        bins = [f"{a:g}–{b:g}" for a, b in zip(lo, edges, strict=False)] + [f"≥ {edges[-1]:g}"]
        car, non = model[f"{name}_carrier"], model[f"{name}_non_carrier"]
        lines += ["", f"| {unit} | " + " | ".join(bins) + " |", "|---" * (len(bins) + 1) + "|"]
        lines.append(
            "| P(bin given tumours carry it) | " + " | ".join(f"{v:.3f}" for v in car) + " |"
        )
        lines.append("| P(bin given they do not) | " + " | ".join(f"{v:.3f}" for v in non) + " |")
        lines.append(
            "| likelihood ratio | "
            + " | ".join(_ratio(a / b) for a, b in zip(car, non, strict=True))
            + " |"
        )
    prior = model["presence_prior"]
    lines += [
        "",
        "Population prior of x (tenths of patients 0–0.1 … 0.9–1): "
        + ", ".join(f"{v:.3f}" for v in prior)
        + f". Fit: {model['fit']['pairs']:,} pairs, {model['fit']['iterations']} EM steps, "
        f"log-likelihood {model['fit']['log_likelihood']:,.1f}.",
    ]
    return "\n".join(lines)


def _ratio(v: float) -> str:
    return f"{v:.2g}" if v < 0.1 else f"{v:.2f}" if v < 10 else f"{v:,.0f}"  # noqa: PLR2004


def previous_coverage(
    reference: Reference, cancer: str, genes: pd.Index, level: np.ndarray
) -> np.ndarray:
    """The rule before the fusion: IHC High/Medium fraction where an Enhanced or Supported
    antibody stained, else the RNA model of the bulk level at the default threshold.
    """  # noqa: D205, D401
    cov = pathology_coverage(reference, cancer, genes)
    rna = positive_fraction_from_mean(np.nan_to_num(level), DEFAULT_THRESHOLD * CP10K_TO_NTPM)
    ihc = genes.isin(_ihc_coverage_genes(cov))
    return np.where(ihc, cov["stained_fraction"].to_numpy(), rna)


def change_table(reference: Reference, rna: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per HPA cancer, how the coverage of surface genes moved from the previous rule."""
    surface = reference.surface.index[reference.surface["is_surface"].eq(True).to_numpy()]
    genes = pd.Index(sorted(map(str, surface)))
    rows = {}
    for cancer in sorted(map(str, reference.pathology["cancer"].cat.categories)):
        if cancer not in rna:
            rows[cancer] = {"cohorts": "none"}
            continue
        level = rna[cancer].reindex(genes).mean(axis=1)
        keep = genes[level.notna().to_numpy()]
        lv = level.reindex(keep).to_numpy()
        before = previous_coverage(reference, cancer, keep, lv)
        fused = fused_coverage(reference, cancer, keep, lv)
        after = fused["coverage"].to_numpy()
        delta = after - before
        width = (fused["coverage_high"] - fused["coverage_low"]).to_numpy()
        # antibodies of a class trusted a priori (validity >= 0.5) that the other sources
        # make unlikely to read the antigen (posterior < 0.5)
        prior = fused["ihc_validity_prior"].to_numpy()
        post = fused["ihc_validity_posterior"].to_numpy()
        doubted = (prior >= 0.5) & (post < 0.5)  # noqa: PLR2004
        order = np.argsort(delta)
        example = [f"{keep[i]} {before[i]:.2f}→{after[i]:.2f}" for i in range(len(keep))]
        rows[cancer] = {
            "cohorts": "+".join(rna[cancer].columns),
            "genes": len(keep),
            "up": int((delta > 0.1).sum()),  # noqa: PLR2004
            "down": int((delta < -0.1).sum()),  # noqa: PLR2004
            "median_abs": float(np.median(np.abs(delta))),
            "median_width": float(np.median(width)),
            "doubted": int(doubted.sum()),
            "example_up": ", ".join(example[i] for i in order[::-1][:2]),
            "example_down": ", ".join(example[i] for i in order[:2]),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def change_markdown(table: pd.DataFrame) -> str:  # noqa: D103
    lines = [
        "| HPA cancer | TCGA cohorts | surface genes | up > 0.1 | down > 0.1 "
        "| median \\|Δ\\| | median interval width | antibody doubted "
        "| largest rises | largest falls |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for cancer, r in table.iterrows():
        if r["cohorts"] == "none":
            lines.append(f"| {cancer} | none | — | — | — | — | — | — | — | — |")
            continue
        lines.append(
            f"| {cancer} | {r['cohorts']} | {int(r['genes']):,} | {int(r['up']):,} "
            f"| {int(r['down']):,} | {r['median_abs']:.3f} | {r['median_width']:.2f} "
            f"| {int(r['doubted']):,} "
            f"| {r['example_up']} | {r['example_down']} |"
        )
    done = table[table["cohorts"] != "none"]
    lines.append(
        f"| **all** | | {int(done['genes'].sum()):,} | {int(done['up'].sum()):,} "
        f"| {int(done['down'].sum()):,} | | | {int(done['doubted'].sum()):,} | | |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:  # noqa: D103
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--fit", action="store_true", help="refit the evidence model and print it")
    a = p.parse_args(argv)
    reference = load_reference()
    rna = tcga_by_cancer(reference)
    if a.fit:
        model = fit_evidence_model(evidence_pairs(reference, rna))
        print(json.dumps(model, indent=1))
        stored = {k: v for k, v in EVIDENCE_MODEL.items() if k != "fit"}
        worst = max(
            float(np.max(np.abs(np.asarray(model[k]) - np.asarray(v)))) for k, v in stored.items()
        )
        print(f"largest difference from the stored EVIDENCE_MODEL: {worst:.2g}")
        return 0
    table = evidence_table(reference)
    print(markdown(table, int(reference.surface["is_surface"].sum())))
    print()
    print(model_markdown(EVIDENCE_MODEL))
    print()
    print(change_markdown(change_table(reference, rna)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
