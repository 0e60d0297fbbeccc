"""Check binder reachability on the shipped reference: named proteins and ADC top 15s.

Regenerates the part of ``docs/modalities.md`` between ``<!-- reach-check -->`` and
``<!-- /reach-check -->``: where the reference puts proteins whose topology or residence
the reachability rules were written for (CD3E, LILRB4, STEAP1, LAMP1, TFRC, ...), counts of
topology sources, ectodomain classes and residency over protein-coding genes, and the ADC
top 15 of eleven TCGA cancers in bulk mode (the cohort's TCGA median with ``cancer=`` its HPA
cancer type), each row with the location evidence an oncologist would check. Run::

    python scripts/reach_check.py [--print]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

import antigenscout as asc
from antigenscout.datasets._datasets import TCGA_HPA_CANCER
from antigenscout.reference import load_reference
from antigenscout.tl._targetability import reachability

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "modalities.md"
START, END = "<!-- reach-check -->", "<!-- /reach-check -->"
#: Eleven TCGA cohorts with a same-disease HPA cancer type (tumour IHC for ``cancer=``).
COHORTS = ("BRCA", "LUAD", "LUSC", "COAD", "PRAD", "OV", "PAAD", "STAD", "BLCA", "HNSC", "KIRC")
N_TOP = 15
#: Proteins the rules were written for (issue #20): topology now measured, organelle
#: residents that used to head ADC lists, and surface proteins that traffic through endosomes.
NAMED = {
    "measured topology": ("CD3E", "CD81", "LILRB4", "CD99", "STEAP1", "TYROBP"),
    "organelle residents": (
        "STT3B",
        "TGOLN2",
        "TM9SF2",
        "LAMP1",
        "LAMP2",
        "M6PR",
        "RPN1",
        "PIGT",
        "SCARB2",
        "TMEM9",
    ),
    "surface, endocytic": ("TFRC", "CD63", "FLT3", "EGFR", "FOLR1", "CXCR4", "HLA-DRA"),
}


def adc_top(code: str) -> pd.DataFrame:
    """ADC ranking of one TCGA cohort's median in bulk mode with its HPA cancer type."""
    tcga = asc.datasets.tcga_medians()
    a = tcga[[code]].copy()
    a.X = np.nan_to_num(np.asarray(a.X, dtype=np.float32))
    a.uns["antigenscout"] = {"kind": "bulk"}
    asc.pp.harmonise_genes(a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        asc.tl.score_targets(
            a, modality="adc", malignant_key=None, kind="bulk", cancer=TCGA_HPA_CANCER[code]
        )
    return asc.get.targets_df(a).set_index("target")


def _loc(surface: pd.DataFrame, g: str) -> tuple[str, str]:
    row = surface.loc[g]
    hpa = "—"
    if pd.notna(row.get("hpa_reliability")):
        parts = ["plasma-membrane"] if bool(row["hpa_plasma_membrane"]) else []
        if pd.notna(row["hpa_compartments"]):
            parts.append(str(row["hpa_compartments"]))
        hpa = f"{';'.join(parts) or 'other'} ({str(row['hpa_reliability'])[:3].lower()}.)"
    up = str(row["uniprot_compartments"]) if pd.notna(row["uniprot_compartments"]) else "—"
    if bool(row["uniprot"]) and "plasma-membrane" not in up:
        up = "flag" if up == "—" else f"flag; {up}"
    return hpa, up


def named_table(surface: pd.DataFrame) -> list[str]:  # noqa: D103
    genes = [g for group in NAMED.values() for g in group]
    r = reachability(surface.loc[genes])
    lines = [
        "| group | gene | ectodomain (aa) | class | topology | residency | surface prob. "
        "| reach | HPA location | UniProt location |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for group, members in NAMED.items():
        for g in members:
            x = r.loc[g]
            hpa, up = _loc(surface, g)
            ecto = "" if pd.isna(x["ectodomain_aa"]) else f"{int(x['ectodomain_aa'])}"
            src = "" if pd.isna(x["topology_source"]) else str(x["topology_source"])
            lines.append(
                f"| {group} | {g} | {ecto} | {x['ectodomain_class']} | {src} | "
                f"{x['residency']} | {x['surface_probability']:.2f} | {x['reach']:.3f} | "
                f"{hpa} | {up} |"
            )
    return lines


def counts_table(surface: pd.DataFrame) -> list[str]:  # noqa: D103
    pc = surface[surface["protein_coding"].astype(bool)]
    r = reachability(pc)
    anchored = r["membrane_anchor"].to_numpy(dtype=bool)
    src = r["topology_source"].fillna("none").astype(str)
    lines = [
        f"Protein-coding genes: {len(pc):,}; with a Swiss-Prot entry in SURFY's master table "
        f"(a measured topology, or none because the entry has no helix and no signal "
        f"peptide): {int(pc['n_tm'].notna().sum()):,}; membrane-anchored: "
        f"{int(anchored.sum()):,}.",
        "",
        "| anchored genes by | value | genes |",
        "|---|---|---|",
    ]
    for name, series in (
        ("topology source", src[anchored]),
        ("ectodomain class", r.loc[anchored, "ectodomain_class"]),
        ("residency", r.loc[anchored, "residency"]),
    ):
        for value, n in series.value_counts().items():
            lines.append(f"| {name} | {value} | {n:,} |")
    cspa = pc["cspa_category"].eq(1).fillna(False).to_numpy(dtype=bool)
    org = r["residency"].eq("organelle").to_numpy()
    lines += [
        "",
        f"CSPA high-confidence proteins (captured on intact cells) that the rule calls "
        f"organelle residents: {int((cspa & org).sum()):,} of {int(cspa.sum()):,}.",
    ]
    return lines


def top_tables(surface: pd.DataFrame) -> tuple[list[str], int, int]:  # noqa: D103
    lines: list[str] = []
    n_org = n_rows = 0
    for code in COHORTS:
        t = adc_top(code).head(N_TOP)
        lines += [
            f"**{code}** ({TCGA_HPA_CANCER[code]})",
            "",
            "| # | gene | score | residency | HPA location | UniProt location | flags |",
            "|---|---|---|---|---|---|---|",
        ]
        for i, (g, row) in enumerate(t.iterrows(), start=1):
            hpa, up = _loc(surface, g)
            n_rows += 1
            n_org += row["residency"] == "organelle"
            flags = str(row["targetability_flags"])
            lines.append(
                f"| {i} | {g} | {row['score']:.3f} | {row['residency']} | {hpa} | {up} | {flags} |"
            )
        lines.append("")
    return lines, n_org, n_rows


def main() -> None:  # noqa: D103
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--print", action="store_true", help="print instead of editing the doc")
    a = p.parse_args()
    t0 = time.perf_counter()
    surface = load_reference().surface
    tops, n_org, n_rows = top_tables(surface)
    body = [
        START,
        "",
        f"Made by `python scripts/reach_check.py` in {time.perf_counter() - t0:.0f} s "
        f"(antigenscout {asc.__version__}).",
        "",
        *named_table(surface),
        "",
        *counts_table(surface),
        "",
        f"#### ADC top {N_TOP} of eleven TCGA cancers",
        "",
        "Bulk mode: the cohort's TCGA median, `cancer=` its HPA cancer type (coverage from "
        "tumour IHC where HPA stained the protein). HPA location: compartments of the main "
        "and additional locations with the reliability (enh., sup., app., unc.); UniProt "
        "location: compartments of SURFY's UniProt text, `flag` = UniProt's cell-membrane "
        f"flag without a text. Organelle residents among the {n_rows} rows: **{n_org}**.",
        "",
        *tops,
        END,
    ]
    text = "\n".join(body)
    if a.print:
        print(text)
        return
    doc = DOC.read_text()
    if START in doc and END in doc:
        head, rest = doc.split(START, 1)
        tail = rest.split(END, 1)[1]
        DOC.write_text(head + text + tail)
    else:
        msg = f"{DOC} has no {START} ... {END} block"
        raise SystemExit(msg)
    print(f"wrote {DOC}: {n_org} organelle residents in {n_rows} rows")


if __name__ == "__main__":
    main()
