"""Rank targets on all van Galen 2019 AML patients and write docs/aml_ranking.md.

Malignant cells (``PredictionRefined == malignant``) of every AML sample are the tumour;
compartments are the annotated malignant cell types (HSC-like, Prog-like, GMP-like, …), as
``antigenscout rank … --compartment-key cell_type`` does. Four modalities are ranked (CAR-T,
ADC, TCR-T, any protein); each gets its top 30 and, for its top 10, the reasons the engine
gives (coverage, stem/progenitor coverage, the healthy contexts it binds most, its worst
vital-weighted context, reach and flags). The published AML targets are placed in the
CAR-T ranking. Run::

    python scripts/aml_ranking.py [--shared ../shared/data] [--out-dir runs/aml]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd

import antigenscout as asc
from antigenscout.io import prepare_out_dir, write_json, write_table

REPO = Path(__file__).resolve().parents[1]
MODALITIES = ("car-t", "adc", "tcr-t", "any")
#: Antigens of AML CAR-T, antibody or ADC programmes (clinical or IND-stage), named before
#: the ranking was run; they score the ranking, they do not feed it.
PUBLISHED = (
    "CD33",
    "IL3RA",
    "CLEC12A",
    "FLT3",
    "CD70",
    "LILRB4",
    "ADGRE2",
    "CD38",
    "KIT",
    "IL1RAP",
    "CD7",
)
STEM = ("HSC-like", "Prog-like")
#: Contexts outside blood and marrow engaged from which a row is called broad.
BROAD = 10
#: Systems of blood, marrow and immune cells: a haematological target's expected toxicity.
BLOOD_SYSTEMS = ("immune (lymphoid)", "immune (myeloid)", "haematopoietic")


def _stem_coverage(t: pd.DataFrame) -> pd.Series:
    """Coverage of the HSC-like and Prog-like malignant cells together."""
    num = sum(t[f"coverage__{c}"] * t[f"n_cells__{c}"] for c in STEM if f"coverage__{c}" in t)
    den = sum(t[f"n_cells__{c}"] for c in STEM if f"n_cells__{c}" in t)
    return num / den


def _table(df: pd.DataFrame) -> str:
    head = "| " + " | ".join(map(str, df.columns)) + " |\n|" + "---|" * len(df.columns) + "\n"
    return head + "\n".join("| " + " | ".join(map(str, r)) + " |" for r in df.to_numpy())


def _top(t: pd.DataFrame, n: int) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "rank": t["rank"],
            "target": t.index,
            "coverage": t["tumor_coverage"].map("{:.2f}".format),
            "HSC/Prog-like": _stem_coverage(t).map("{:.2f}".format),
            "patients ≥ 0.8": t["patients_covered_fraction"].map("{:.2f}".format),
            "worst healthy context": [
                f"{c} {f:.2f}"
                for c, f in zip(
                    t["worst_healthy_cell_type"], t["worst_healthy_fraction"], strict=True
                )
            ],
            "vital risk": t["vital_risk"].map("{:.2f}".format),
            "contexts engaged": t["n_contexts_engaged"],
            "modality factor": t["modality_factor"].map("{:.2f}".format),
            "flags": t["targetability_flags"].str.replace(";", ", "),
        }
    )
    return out.head(n)


def _reasons(t: pd.DataFrame, n: int) -> str:
    stem = _stem_coverage(t)
    lines = []
    for g, r in t.head(n).iterrows():
        reach = (
            f"reach {r['reach']:.2f} ({r['ectodomain_class']}, {r['residency']})"
            if pd.notna(r.get("reach"))
            else "no surface filter"
        )
        lines.append(
            f"{int(r['rank'])}. **{g}**: on {r['tumor_coverage']:.0%} of malignant cells "
            f"({stem[g]:.0%} of HSC-/Prog-like; {r['patients_covered_fraction']:.0%} of "
            f"patients at ≥ 0.8); healthy cells it binds most: {r['binds_most']}; worst "
            f"vital-weighted context {r['worst_healthy_cell_type']} "
            f"(engaged {r['worst_healthy_fraction']:.2f}); vital risk {r['vital_risk']:.2f} "
            f"({int(r['n_contexts_engaged'])} contexts in {int(r['n_systems_engaged'])} organ "
            f"systems engaged); {reach}; modality factor "
            f"{r['modality_factor']:.2f} ({r['targetability_flags']})."
        )
    return "\n".join(lines)


def main() -> None:  # noqa: D103
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    p.add_argument("--out-dir", type=Path, default=REPO / "runs" / "aml")
    p.add_argument("--doc", type=Path, default=REPO / "docs" / "aml_ranking.md")
    a = p.parse_args()

    t0 = time.perf_counter()
    adata = asc.datasets.vangalen2019(a.shared / "singlecell" / "vangalen2019_aml")
    asc.pp.harmonise_genes(adata)
    t_load = time.perf_counter() - t0
    ranked: dict[str, pd.DataFrame] = {}
    seconds: dict[str, float] = {}
    res = {}
    for mod in MODALITIES:
        t1 = time.perf_counter()
        asc.tl.score_targets(
            adata,
            malignant_key="malignant=malignant",
            patient_key="patient",
            compartment_key="cell_type",
            modality=mod,
        )
        seconds[mod] = time.perf_counter() - t1
        res[mod] = adata.uns["antigenscout_targets"]
        ranked[mod] = res[mod]["targets"]
        if mod == "car-t":
            out = prepare_out_dir(a.out_dir)
            targets = asc.get.targets_df(adata)
            write_table(targets, out / "targets.tsv")
            write_table(asc.get.risk_df(adata, n_top=100, include=PUBLISHED[:4]), out / "risk.tsv")
            write_table(res[mod]["ambient"], out / "ambient.tsv")
            write_json(
                out / "run.json",
                {
                    "command": "scripts/aml_ranking.py",
                    "params": res[mod]["params"],
                    "denominators": res[mod]["denominators"],
                    "reference": asc.reference.load_reference().metadata,
                    "seconds": round(seconds[mod], 1),
                },
            )
    cart = ranked["car-t"]
    n = len(cart)
    pub = [g for g in PUBLISHED if g in cart.index]
    missing = [g for g in PUBLISHED if g not in cart.index]
    placed = pd.DataFrame(
        {
            "target": pub,
            "CAR-T rank": [int(cart.loc[g, "rank"]) for g in pub],
            "top %": [f"{cart.loc[g, 'rank'] / n:.1%}" for g in pub],
            "coverage": [f"{cart.loc[g, 'tumor_coverage']:.2f}" for g in pub],
            "HSC/Prog-like": [f"{_stem_coverage(cart)[g]:.2f}" for g in pub],
            "worst healthy context": [
                f"{cart.loc[g, 'worst_healthy_cell_type']} "
                f"{cart.loc[g, 'worst_healthy_fraction']:.2f}"
                for g in pub
            ],
            "vital risk": [f"{cart.loc[g, 'vital_risk']:.2f}" for g in pub],
        }
    ).sort_values("CAR-T rank")
    in5 = int((placed["CAR-T rank"] <= 0.05 * n).sum())
    den = res["car-t"]["denominators"]
    sections = []
    ref = asc.reference.load_reference()
    outside = ~ref.contexts["system"].isin(BLOOD_SYSTEMS).to_numpy()
    for mod in MODALITIES:
        t = ranked[mod]
        top = t.head(30)
        # engagement of the top rows at the ranking's own thresholds, outside blood and marrow
        hr = asc.tl.healthy_risk(
            ref,
            threshold_cp10k=res[mod]["params"]["positivity"]["threshold_cp10k"],
            modality=mod,
            gene_threshold_cp10k=top["engagement_threshold_cp10k"],
        )
        frac = hr.fraction.reindex(top.index).to_numpy()[:, outside]
        n_out = (frac >= 0.5).sum(axis=1)  # noqa: PLR2004
        broad = [f"{g} ({k})" for g, k in zip(top.index, n_out, strict=True) if k >= BROAD]
        filled = top.index[top.get("rna_missing_contexts", 0) > 0].tolist()
        weighs = (
            "its vital risk adds the harms of every organ system, a living drug's"
            if hr.over_organs
            else "its vital risk is the worst context's, a dosed agent's"
        )
        strike = (
            f"Engaged (≥ 0.5 of the cells) in at least {BROAD} of the {int(outside.sum())} "
            f"contexts outside blood, marrow and immune cells — on tissues a haematologist "
            f"cannot spare, the rows to strike first ({weighs}): {', '.join(broad) or 'none'}. "
            f"Healthy RNA filled in for: {', '.join(filled) or 'none'}."
        )
        sections.append(
            f"## {mod}: top 30 of {len(t):,} candidates "
            f"(score `{res[mod]['params']['score']}`; ranked in {seconds[mod]:.0f} s)\n\n"
            f"{_table(_top(t, 30))}\n\n{strike}\n\n**Why the top 10 rank where they do** "
            f"(the engine's own numbers):\n\n{_reasons(t, 10)}\n"
        )
    amb = res["car-t"]["ambient"]
    own = ~amb["source"].str.startswith(("borrowed", "not"))
    text = f"""# Targets on all van Galen 2019 AML patients

Command: `python scripts/aml_ranking.py` (loading {t_load:.0f} s on 2 shared cores). Tumour:
the {den["n_tumor_cells"]:,} malignant cells of {den["n_patients"]} patients (4 of the 15
diagnosis samples have no cell labelled malignant); compartments: the annotated malignant
cell types (`--compartment-key cell_type`); "HSC/Prog-like" is the coverage of the HSC-like
and Prog-like malignant cells together. Positivity: the default `knn` with neighbours pooled
within patient × cell type and each patient's ambient RNA discounted (contamination estimated
for {int(own.sum())} of {len(amb)} samples, the others borrow the run's median; docs/positivity.md).
Healthy risk: the embedded reference, judged at each modality's kill threshold
(docs/engagement.md); candidates: docs/modalities.md. Columns: `contexts engaged` counts the
reference contexts engaged at ≥ 0.5 — the breadth a haematologist reads first. Vital risk:
for CAR-T, TCR-T and vaccines (living drugs that persist) the probability that at least one
organ system is harmed, for the dosed agents the worst context's (docs/engagement.md,
"Severity over organ systems").

## The published AML targets in the CAR-T ranking

{in5} of {len(pub)} published targets rank in the top 5% of {n:,} CAR-T candidates\
{" (" + ", ".join(missing) + " not candidates)" if missing else ""}.

{_table(placed)}

{chr(10).join(sections)}"""
    a.doc.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
