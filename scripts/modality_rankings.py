"""Rank every modality on all van Galen 2019 AML patients and on TCGA prostate cancer.

Regenerates the part of ``docs/modalities.md`` below the line ``<!-- generated -->``: for
each modality the top 20 of the AML ranking (single cells, all 11 patients) next to the top
20 of a solid tumour (TCGA PRAD median, bulk), plus the checks the modality pages promise
(CD5/CD7 fratricide flags, where the signalling adaptors rank). Run::

    python scripts/modality_rankings.py [--shared ../shared/data]
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData

import antigenscout as asc
from antigenscout._types import MODALITIES

REPO = Path(__file__).resolve().parents[1]
DOC = REPO / "docs" / "modalities.md"
MARK = "<!-- generated -->"
SOLID = "PRAD"
ADAPTORS = ("TYROBP", "HCST", "FCER1G", "CD247", "CYBA")
FRATRICIDE = ("CD5", "CD7")
N_TOP = 20


def _rank(adata: AnnData, modality: str, **kw: object) -> pd.DataFrame:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        asc.tl.score_targets(adata, modality=modality, **kw)
    t = asc.get.targets_df(adata)
    del adata.uns["antigenscout_targets"]
    return t.set_index("target")


def _cell(t: pd.DataFrame, i: int) -> str:
    if i >= len(t):
        return ""
    row = t.iloc[i]
    flags = str(row.get("targetability_flags", "none"))
    flags = "" if flags in ("none", "nan") else f" <sub>{flags}</sub>"
    return f"{t.index[i]} ({row['score']:.3f}){flags}"


def main() -> None:  # noqa: D103
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    a = p.parse_args()

    t0 = time.perf_counter()
    aml = asc.datasets.vangalen2019(a.shared / "singlecell" / "vangalen2019_aml")
    asc.pp.harmonise_genes(aml)
    asc.datasets.add_vangalen_compartment(aml)
    tcga = asc.datasets.tcga_medians()
    solid = tcga[[SOLID]].copy()
    solid.X = np.nan_to_num(np.asarray(solid.X, dtype=np.float32))
    solid.uns["antigenscout"] = {"kind": "bulk"}
    asc.pp.harmonise_genes(solid)

    sections = []
    checks = []
    saturation = []
    for m in MODALITIES:
        ta = _rank(
            aml,
            m,
            malignant_key="malignant=malignant",
            patient_key="patient",
            compartment_key="compartment",
        )
        ts = _rank(solid, m, malignant_key=None, kind="bulk")
        print(f"{m}: AML {len(ta)} candidates, {SOLID} {len(ts)}", flush=True)
        for name, t in (("AML", ta), (SOLID, ts)):
            v = t["vital_risk"].to_numpy(dtype=float)
            saturation.append(
                {"modality": m, "tumour": name, "candidates": len(t),
                 ">= 0.5": (v >= 0.5).mean(), ">= 0.8": (v >= 0.8).mean(),  # noqa: PLR2004
                 "median": float(np.median(v))}
            )  # fmt: skip
        lines = [
            f"### `--modality {m}`",
            "",
            f"{len(ta):,} AML candidates, {len(ts):,} {SOLID} candidates; score in brackets, "
            "flags below the name.",
            "",
            f"| # | AML (van Galen 2019, 11 patients) | {SOLID} (TCGA median) |",
            "|---|---|---|",
        ]
        lines += [f"| {i + 1} | {_cell(ta, i)} | {_cell(ts, i)} |" for i in range(N_TOP)]
        sections.append("\n".join(lines))
        for g in (*FRATRICIDE, *ADAPTORS):
            if g in ta.index:
                checks.append(
                    {
                        "modality": m,
                        "gene": g,
                        "AML rank": int(ta.loc[g, "rank"]),
                        "of": len(ta),
                        "flags": ta.loc[g, "targetability_flags"],
                    }
                )
    chk = pd.DataFrame(checks)
    table = chk.pivot_table(index="gene", columns="modality", values="AML rank", aggfunc="first")
    table = table.reindex(columns=[m for m in MODALITIES if m in table.columns])
    frat = chk[chk["gene"].isin(FRATRICIDE)]
    frat_lines = [
        f"| {r.gene} | {r.modality} | {r.flags} |"
        for r in frat.itertuples()
        if r.modality in ("car-t", "car-nk", "adc", "bispecific")
    ]
    seconds = time.perf_counter() - t0
    body = [
        MARK,
        "",
        "## Rankings by modality (generated)",
        "",
        f"Made by `python scripts/modality_rankings.py` in {seconds:.0f} s "
        f"(antigenscout {asc.__version__}). AML: malignant cells of all van Galen 2019 "
        f"patients, default positivity; {SOLID}: the TCGA median, bulk mode.",
        "",
        "### Checks",
        "",
        "Rank of the signalling adaptors and of the T-cell antigens CD5 and CD7 in the AML "
        "ranking of each modality (blank: not a candidate):",
        "",
        "| gene | " + " | ".join(table.columns) + " |",
        "|---|" + "---|" * len(table.columns),
    ]
    for g, row in table.iterrows():
        cells = ["" if pd.isna(v) else f"{int(v):,}" for v in row]
        body.append(f"| {g} | " + " | ".join(cells) + " |")
    body += ["", "| gene | modality | flags |", "|---|---|---|", *frat_lines, ""]
    sat = pd.DataFrame(saturation)
    body += [
        "### Does vital risk saturate?",
        "",
        "Share of each modality's candidates whose vital risk (at the gene's engagement "
        "threshold: the largest engagement × vital weight over the 165 contexts; for CAR-T, "
        "TCR-T and vaccines the probability that at least one organ system is harmed) reaches "
        "0.5 and 0.8:",
        "",
        "| modality | tumour | candidates | vital risk ≥ 0.5 | ≥ 0.8 | median |",
        "|---|---|---|---|---|---|",
        *[
            f"| {r.modality} | {r.tumour} | {r.candidates:,} | {r._4:.2f} | {r._5:.2f} | "
            f"{r.median:.2f} |"
            for r in sat.itertuples()
        ],
        "",
    ]
    text = DOC.read_text() if DOC.exists() else ""
    head = text.split(MARK)[0].rstrip() + "\n\n" if MARK in text else text.rstrip() + "\n\n"
    DOC.write_text(head + "\n".join(body) + "\n" + "\n\n".join(sections) + "\n")
    print(f"wrote {DOC} in {seconds:.0f} s")


if __name__ == "__main__":
    main()
