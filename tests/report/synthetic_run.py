"""Write small synthetic run directories with the CLI's output schemas.

Used by ``tests/report`` and ``tests/pl``. The numbers are made up but shaped like an AML
run: myeloid antigens (CD33, CD123) are risky in haematopoietic progenitors, CLEC12A
spares them, a cardiac antigen is vital-risky.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

PATIENTS = [f"P{k:02d}" for k in range(1, 9)]
COMPARTMENTS = ["stem_progenitor", "monocyte_like"]
#: context id, name, kind, tissue, system, vital weight
CONTEXTS = [
    (
        "sc:Myeloid progenitors",
        "Myeloid progenitors",
        "cell_type",
        "bone marrow",
        "haematopoietic",
        1.0,
    ),
    ("sc:HSC", "Haematopoietic stem cells", "cell_type", "bone marrow", "haematopoietic", 1.0),
    ("sc:Monocytes", "Monocytes", "cell_type", "blood", "immune (myeloid)", 0.3),
    ("sc:Neutrophils", "Neutrophils", "cell_type", "blood", "immune (myeloid)", 0.4),
    ("sc:B-cells", "B cells", "cell_type", "blood/lymphoid tissue", "immune (lymphoid)", 0.2),
    ("sc:T-cells", "T cells", "cell_type", "blood/lymphoid tissue", "immune (lymphoid)", 0.6),
    ("sc:Cardiomyocytes", "Cardiomyocytes", "cell_type", "heart muscle", "cardiovascular", 1.0),
    (
        "sc:Endothelial cells",
        "Endothelial cells",
        "cell_type",
        "vasculature",
        "cardiovascular",
        0.9,
    ),
    ("sc:Hepatocytes", "Hepatocytes", "cell_type", "liver", "hepatobiliary", 1.0),
    ("sc:Alveolar cells type 2", "Alveolar type 2 cells", "cell_type", "lung", "respiratory", 1.0),
    ("sc:Astrocytes", "Astrocytes", "cell_type", "brain", "nervous", 1.0),
    ("t:colon", "colon", "tissue", "colon", "gastrointestinal", 0.6),
    ("t:skin", "skin", "tissue", "skin", "skin", 0.5),
]
#: target → {context id: positive fraction}
PROFILES = {
    "CD33": {
        "sc:Myeloid progenitors": 0.85,
        "sc:HSC": 0.25,
        "sc:Monocytes": 0.95,
        "sc:Neutrophils": 0.6,
    },
    "CLEC12A": {"sc:Monocytes": 0.9, "sc:Neutrophils": 0.8, "sc:Myeloid progenitors": 0.05},
    "IL3RA": {"sc:HSC": 0.4, "sc:Endothelial cells": 0.35, "sc:B-cells": 0.1, "sc:Monocytes": 0.3},
    "CD70": {"sc:T-cells": 0.08, "sc:B-cells": 0.15},
    "TNNT2": {"sc:Cardiomyocytes": 0.95},
    "ADGRE2": {"sc:Monocytes": 0.5, "sc:Neutrophils": 0.3},
    "SFTPC": {"sc:Alveolar cells type 2": 0.9},
    "GFAP": {"sc:Astrocytes": 0.8, "t:skin": 0.05},
    "CD34": {"sc:HSC": 0.9, "sc:Myeloid progenitors": 0.7, "sc:Endothelial cells": 0.6},
    "KIT": {"sc:HSC": 0.5, "t:skin": 0.2, "t:colon": 0.1},
    "FLT3": {"sc:HSC": 0.3, "sc:Myeloid progenitors": 0.4},
    "ALB": {"sc:Hepatocytes": 0.99},
}
TUMOUR_COVERAGE = {
    "CD33": 0.93,
    "CLEC12A": 0.81,
    "IL3RA": 0.77,
    "CD70": 0.55,
    "TNNT2": 0.02,
    "ADGRE2": 0.71,
    "SFTPC": 0.01,
    "GFAP": 0.03,
    "CD34": 0.45,
    "KIT": 0.38,
    "FLT3": 0.62,
    "ALB": 0.005,
}


def _pareto(cov: np.ndarray, risk: np.ndarray) -> np.ndarray:
    """Pareto rank 1 for points no other point beats on both axes; 2 otherwise."""
    out = np.full(len(cov), 2)
    for i in range(len(cov)):
        dominated = (
            (cov >= cov[i]) & (risk <= risk[i]) & ((cov > cov[i]) | (risk < risk[i]))
        ).any()
        if not dominated:
            out[i] = 1
    return out


def write_targets_run(  # noqa: PLR0913
    path: Path,
    *,
    n_extra: int = 30,
    with_compartments: bool = True,
    with_run_json: bool = True,
    with_patient_coverage: bool = True,
    with_risk: bool = True,
    seed: int = 0,
) -> Path:
    """``targets.tsv``, ``risk.tsv``, ``patient_coverage.tsv`` and ``run.json`` in ``path``."""
    rng = np.random.default_rng(seed)
    path.mkdir(parents=True, exist_ok=True)
    ctx = pd.DataFrame(
        CONTEXTS, columns=["context", "name", "kind", "tissue", "system", "vital_weight"]
    )
    ctx = ctx.set_index("context")
    profiles = dict(PROFILES)
    coverage = dict(TUMOUR_COVERAGE)
    for k in range(n_extra):
        g = f"GENE{k:03d}"
        picks = rng.choice(ctx.index, size=rng.integers(0, 4), replace=False)
        profiles[g] = {c: float(np.round(rng.uniform(0.01, 0.6), 3)) for c in picks}
        coverage[g] = float(np.round(rng.uniform(0, 0.9), 3))
    n_tumor = 5000
    rows, risk_rows = [], []
    for g, prof in profiles.items():
        risks = {c: f * ctx.loc[c, "vital_weight"] for c, f in prof.items()}
        cell_risks = {c: r for c, r in risks.items() if ctx.loc[c, "kind"] == "cell_type"}
        worst = max(risks, key=risks.get) if risks else None
        worst_ct = max(cell_risks, key=cell_risks.get) if cell_risks else None
        cov = coverage[g]
        pcov = np.clip(cov + rng.normal(0, 0.08, len(PATIENTS)), 0, 1)
        row = {
            "target": g,
            "tumor_coverage": cov,
            "n_tumor_cells": n_tumor,
            "n_positive_cells": round(cov * n_tumor),
            "patient_coverage_median": float(np.median(pcov)),
            "patient_coverage_min": float(pcov.min()),
            "patients_covered_fraction": float((pcov >= 0.5).mean()),
            "n_patients": len(PATIENTS),
        }
        if with_compartments:
            for k, comp in enumerate(COMPARTMENTS):
                row[f"coverage__{comp}"] = float(np.clip(cov - 0.1 * k + rng.normal(0, 0.05), 0, 1))
                row[f"n_cells__{comp}"] = 1200 + 800 * k
        row |= {
            "worst_healthy_cell_type": ctx.loc[worst_ct, "name"] if worst_ct else "Adipocytes",
            "worst_healthy_risk": cell_risks.get(worst_ct, 0.0) if worst_ct else 0.0,
            "worst_healthy_fraction": prof.get(worst_ct, 0.0) if worst_ct else 0.0,
            "vital_risk": risks[worst] if worst else 0.0,
            "worst_context": ctx.loc[worst, "name"] if worst else "Adipocytes",
            "worst_tissue": ctx.loc[worst, "tissue"] if worst else "adipose tissue",
            "worst_system": ctx.loc[worst, "system"] if worst else "adipose/connective",
            "n_contexts_engaged": sum(f >= 0.5 for f in prof.values()),
            "ihc_max_level": ["not detected", "low", "medium", "high"][int(rng.integers(0, 4))],
            "ihc_tissues_detected": int(rng.integers(0, 20)),
            "surface_evidence": "UniProt;SURFY"
            if g in {"CD33", "CLEC12A", "IL3RA", "CD70", "ADGRE2", "CD34", "KIT", "FLT3"}
            else "none",
            "is_surface": g in {"CD33", "CLEC12A", "IL3RA", "CD70", "ADGRE2", "CD34", "KIT", "FLT3"}
            or int(g[-1]) % 2 == 0
            if g.startswith("GENE")
            else g in {"CD33", "CLEC12A", "IL3RA", "CD70", "ADGRE2", "CD34", "KIT", "FLT3"},
        }
        rows.append(row)
        for c, f in prof.items():
            risk_rows.append(
                {
                    "target": g,
                    "context": c,
                    "name": ctx.loc[c, "name"],
                    "kind": ctx.loc[c, "kind"],
                    "tissue": ctx.loc[c, "tissue"],
                    "system": ctx.loc[c, "system"],
                    "positive_fraction": f,
                    "vital_weight": ctx.loc[c, "vital_weight"],
                    "risk": risks[c],
                }
            )
        row["_pcov"] = pcov
    t = pd.DataFrame(rows)
    t["score"] = t["tumor_coverage"] * (1 - t["vital_risk"])
    t["pareto_rank"] = _pareto(t["tumor_coverage"].to_numpy(), t["vital_risk"].to_numpy())
    t = t.sort_values("score", ascending=False).reset_index(drop=True)
    t["rank"] = np.arange(1, len(t) + 1)
    pcov = pd.DataFrame(np.vstack(t.pop("_pcov").to_numpy()), index=t["target"], columns=PATIENTS)
    t.to_csv(path / "targets.tsv", sep="\t", index=False)
    if with_risk:
        risk = pd.DataFrame(risk_rows)
        risk = risk[risk["target"].isin(t["target"].head(100))]
        risk.sort_values(["target", "risk"], ascending=[True, False]).to_csv(
            path / "risk.tsv", sep="\t", index=False
        )
    if with_patient_coverage:
        pcov.index.name = "target"
        pcov.to_csv(path / "patient_coverage.tsv", sep="\t")
    if with_run_json:
        run = {
            "command": "rank",
            "params": {
                "modality": "car-t",
                "groupby": "cell_type",
                "positivity": {"method": "cp10k", "threshold_cp10k": 1.0},
            },
            "denominators": {
                "n_tumor_cells": n_tumor,
                "n_patients": len(PATIENTS),
                "n_candidates": len(t),
                "n_genes_input": 20000,
            },
            "reference": {
                "hpa": {
                    "version": "23.0",
                    "license": "CC BY-SA 4.0",
                    "url": "https://www.proteinatlas.org",
                },
                "surfaceome": {"version": "2018", "license": "CC BY 4.0"},
            },
            "seconds": 12.345,
        }
        (path / "run.json").write_text(json.dumps(run, indent=2))
    return path


def write_gates(path: Path) -> Path:
    """``gates.tsv`` with AND / NOT gates."""
    path.mkdir(parents=True, exist_ok=True)
    g = pd.DataFrame(
        {
            "gate": [
                "CD33 AND NOT CD34",
                "CLEC12A AND IL3RA",
                "CD33 AND CLEC12A",
                "ADGRE2 AND NOT CD34",
                "CD70",
            ],
            "n_genes": [2, 2, 2, 2, 1],
            "genes": ["CD33;CD34", "CLEC12A;IL3RA", "CD33;CLEC12A", "ADGRE2;CD34", "CD70"],
            "ops": ["AND;NOT", "AND", "AND", "AND;NOT", ""],
            "tumor_coverage": [0.71, 0.66, 0.78, 0.52, 0.55],
            "patients_covered_fraction": [0.875, 0.75, 0.875, 0.5, 0.5],
            "patient_coverage_median": [0.7, 0.65, 0.8, 0.5, 0.55],
            "worst_healthy_cell_type": [
                "Monocytes",
                "Monocytes",
                "Monocytes",
                "Neutrophils",
                "B cells",
            ],
            "worst_healthy_risk": [0.28, 0.08, 0.27, 0.12, 0.03],
            "risk_is_bound": [False, True, True, False, False],
            "score": [0.51, 0.6, 0.57, 0.46, 0.53],
            "rank": [4, 1, 2, 5, 3],
            "pareto": [False, True, True, False, True],
        }
    )
    g.to_csv(path / "gates.tsv", sep="\t", index=False)
    return path


def write_simulation(path: Path, *, with_typical: bool = True) -> Path:
    """``cohort.tsv``, ``summary.json`` and ``curves.tsv`` of a virtual-patient cohort."""
    rng = np.random.default_rng(1)
    path.mkdir(parents=True, exist_ok=True)
    n = 200
    cohort = pd.DataFrame(
        {
            "patient": [f"v{k:03d}" for k in range(n)],
            "cmax": rng.lognormal(3, 0.4, n),
            "tmax_days": rng.uniform(5, 14, n),
            "auc_0_28": rng.lognormal(6, 0.3, n),
            "tumour_nadir": rng.lognormal(-6, 1, n),
            "time_to_relapse_days": np.where(
                rng.uniform(size=n) < 0.4, np.nan, rng.uniform(60, 365, n)
            ),
            "healthy_depletion_days": rng.uniform(10, 90, n),
            "remission_1y": rng.uniform(size=n) < 0.4,
        }
    )
    cohort.to_csv(path / "cohort.tsv", sep="\t", index=False)
    summary = {
        c: {
            "median": float(np.nanmedian(cohort[c])),
            "p05": float(np.nanquantile(cohort[c], 0.05)),
            "p95": float(np.nanquantile(cohort[c], 0.95)),
        }
        for c in ["cmax", "auc_0_28", "tumour_nadir"]
    }
    summary["remission_1y"] = float(cohort["remission_1y"].mean())
    (path / "summary.json").write_text(json.dumps(summary))
    t = np.linspace(0, 180, 91)
    frames = []
    cart = 40 * (t / 10) * np.exp(1 - t / 10)
    tumour = 1e11 * np.exp(-t / 8) + 1e5 * np.exp(t / 60)
    for q, med in (
        ("car_t_cells_per_ul", cart + 0.1),
        ("tumour_cells", tumour),
        ("healthy_target_cells", 1e9 * (1 - 0.8 * np.exp(-((t - 20) ** 2) / 300))),
    ):
        df = pd.DataFrame(
            {"time_days": t, "quantity": q, "p05": med * 0.3, "p50": med, "p95": med * 2.5}
        )
        if with_typical:
            df["typical"] = med * 1.1
        frames.append(df)
    pd.concat(frames).to_csv(path / "curves.tsv", sep="\t", index=False)
    return path


def write_full_run(path: Path) -> Path:
    """Every file: targets, risk, patients, run.json, gates and simulation."""
    write_targets_run(path)
    write_gates(path)
    write_simulation(path)
    return path


#: Labels that would run script, inject markup or re-enter the template if a field reached
#: the page unescaped: used for genes, patients, contexts, systems, compartments, gates,
#: kinetics quantities and run metadata by :func:`write_hostile_run`.
HOSTILE = {
    "img": '"><img src=x onerror=alert(6)>',
    "script": "<script>alert(1)</script>",
    "data": "P{{data}}",
    "js": "{{js}}",
    "close": "</script><script>alert(2)</script>",
    "lines": "L\u2028S\u2029P",
    "svg": "<svg onload=alert(3)>",
    "attr": "' onmouseover='alert(4)' x='",
    "url": "javascript:alert(5)",
    "comment": "<!--<script>alert(7)//-->",
}
#: A run-directory name (no ``/``) and a file name with the same intent.
HOSTILE_DIR = '"><img src=x onerror=alert(8)>{{data}}'
HOSTILE_FILE = "<img src=x onerror=alert(9)>.json"


def write_hostile_run(parent: Path) -> Path:  # noqa: PLR0915
    """:func:`write_full_run` with every label the report shows replaced by a hostile one.

    Returns the run directory, ``parent / HOSTILE_DIR``.
    """
    path = write_full_run(parent / HOSTILE_DIR)
    h = list(HOSTILE.values())
    genes = {"CD33": h[0], "CLEC12A": h[1], "IL3RA": h[2], "CD70": h[3], "ADGRE2": h[4]}
    genes |= {"FLT3": h[5], "CD34": h[6], "KIT": h[7], "TNNT2": h[8], "GFAP": h[9]}
    names = {c[1]: h[k % len(h)] + f" ctx{k}" for k, c in enumerate(CONTEXTS)}
    systems = {c[4]: h[(k + 3) % len(h)] for k, c in enumerate(CONTEXTS)}
    tissues = {c[3]: h[(k + 5) % len(h)] for k, c in enumerate(CONTEXTS)}
    comps = {c: h[k] for k, c in enumerate(COMPARTMENTS)}
    patients = {p: h[k % len(h)] + p for k, p in enumerate(PATIENTS)}

    t = pd.read_csv(path / "targets.tsv", sep="\t")
    t["target"] = t["target"].replace(genes)
    for col in ("worst_healthy_cell_type", "worst_context"):
        t[col] = t[col].replace(names)
    t["worst_system"] = t["worst_system"].replace(systems)
    t["worst_tissue"] = t["worst_tissue"].replace(tissues)
    t["ihc_max_level"] = h[1]
    t["surface_evidence"] = h[0]
    t = t.rename(
        columns={
            f"{pre}{c}": f"{pre}{v}"
            for c, v in comps.items()
            for pre in ("coverage__", "n_cells__")
        }
    )
    t.to_csv(path / "targets.tsv", sep="\t", index=False)
    r = pd.read_csv(path / "risk.tsv", sep="\t")
    r["target"] = r["target"].replace(genes)
    r["name"] = r["name"].replace(names)
    r["context"] = "sc:" + r["name"]
    r["system"] = r["system"].replace(systems)
    r["tissue"] = r["tissue"].replace(tissues)
    r.to_csv(path / "risk.tsv", sep="\t", index=False)
    pc = pd.read_csv(path / "patient_coverage.tsv", sep="\t", index_col=0)
    pc.index = pc.index.map(lambda g: genes.get(g, g))
    pc = pc.rename(columns=patients)
    pc.to_csv(path / "patient_coverage.tsv", sep="\t")
    g = pd.read_csv(path / "gates.tsv", sep="\t")
    for old, new in genes.items():
        g["gate"] = g["gate"].str.replace(old, new, regex=False)
    g["worst_healthy_cell_type"] = g["worst_healthy_cell_type"].replace(names)
    g.to_csv(path / "gates.tsv", sep="\t", index=False)
    cv = pd.read_csv(path / "curves.tsv", sep="\t")
    quantities = {q: h[k] for k, q in enumerate(dict.fromkeys(cv["quantity"]))}
    cv["quantity"] = cv["quantity"].replace(quantities)
    cv.to_csv(path / "curves.tsv", sep="\t", index=False)
    co = pd.read_csv(path / "cohort.tsv", sep="\t")
    co = co.rename(columns={"cmax": h[0], "auc_0_28": h[4]})
    co["patient"] = h[1]
    co.to_csv(path / "cohort.tsv", sep="\t", index=False)
    summary = json.loads((path / "summary.json").read_text())
    summary[h[1]] = h[0]
    summary["model"] = h[4]
    summary["scenario"] = {"target": h[0], "healthy_cell_type": h[2]}
    (path / "summary.json").write_text(json.dumps(summary))
    run = json.loads((path / "run.json").read_text())
    run["command"] = h[0] + h[3]
    run["params"] |= {"groupby": h[1], h[2]: h[4], "malignant_key": h[7], "url": h[8]}
    run["denominators"][h[0]] = 3
    run["reference"]["hpa"]["url"] = h[8]
    run["reference"][h[9]] = h[5]
    (path / "run.json").write_text(json.dumps(run))
    (path / HOSTILE_FILE).write_text("{}")
    return path


if __name__ == "__main__":  # pragma: no cover - manual preview
    import sys

    write_full_run(Path(sys.argv[1]))
