"""Fit and evaluate the RNA→protein-positivity calibration (``antigenscout.pp._protein``).

Builds ``src/antigenscout/reference/data/protein_calibration.parquet`` and regenerates the block
between ``<!-- BEGIN PROTEIN -->`` and ``<!-- END PROTEIN -->`` in ``docs/positivity.md``::

    PYTHONPATH=src /work/main/.venv/bin/python scripts/calibrate_protein.py

Data (all under ``../shared/data``; see PROVENANCE.md there)
-------------------------------------------------------------
* CITE-seq with RNA next to protein: Triana 2021 (healthy marrow/blood, 462-gene targeted panel,
  10 labelled cell types), 10x MALT lymphoma (1,000 cells, 17 antibodies), Mimitou 2019 CTCL/
  control PBMC (500 cells, 49 antibodies). Kotliarov 2020 has protein only (no RNA) and cannot
  give RNA/protein pairs; it is not used.
* Gene covariates: HPA v23 RNA at 50 % IHC detection (``rna-protein-hpa-priors.csv.gz``) and the
  median over CPTAC cohorts of tumour RNA at 50 % protein detection
  (``rna-protein-calibrations.csv.gz``).

Protein-positivity rule per cell
--------------------------------
MALT and CTCL (raw antibody counts with isotype controls): DSB-like value
``log1p(count) − mean over the isotype controls of log1p(isotype count)`` (the cell's own
background); Triana (values already normalised by the authors, no isotype controls in the file):
the value as given. Then per antibody a 2-component Gaussian mixture (scikit-learn, 5 inits,
seed 0): positive = posterior of the higher-mean component ≥ 0.5. An antibody enters only if the
two components separate (Ashman's D ≥ 2), 10 … n − 10 cells are positive and, for the raw-count
sets, the component means differ by ≥ 2 log1p units (≈ 7.4-fold); otherwise the mixture splits a
single population and the call is meaningless.

Contexts
--------
Triana: ``condensed_cell_type``. MALT and CTCL have no labels: k-means (seed 0, 10 starts) on
30 principal components of log1p(CP10k) RNA of the 2,000 most variable genes, with
k = clip(round(cells / 100), 4, 10), chosen before looking at any protein. Contexts with
fewer than 15 cells are dropped. The context mean RNA is the mean over its cells of
count / library × 1e4 (whole transcriptome). The Triana panel CP10k is converted to the
whole-transcriptome scale with f = median fraction of a cell's UMIs that fall in the 462 panel
genes, measured on van Galen 2019 healthy marrow (BM1–BM3), which has no protein data.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.stats import spearmanr

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "scripts"))

from calibrate_positivity import AB_TO_GENE as TRIANA_AB_TO_GENE  # noqa: E402

from antigenscout.pp._protein import (  # noqa: E402
    fit_calibration,
    protein_positive_fraction,
)

DATA = REPO.parent / "shared" / "data"
SC = DATA / "singlecell"
TRIANA = SC / "triana2021_healthy_citeseq" / "healthy_bm_blood_citeseq_250cells.h5ad"
MALT = SC / "citeseq" / "tenx_malt_lymphoma_citeseq_1000cells.h5ad"
CTCL = SC / "citeseq" / "mimitou2019_ctcl_pbmc_eccite_500cells.h5ad"
VANGALEN = SC / "vangalen2019_aml"
HPA_PRIORS = DATA / "protein_calibration" / "rna-protein-hpa-priors.csv.gz"
CPTAC = DATA / "protein_calibration" / "rna-protein-calibrations.csv.gz"
OUT = REPO / "src" / "antigenscout" / "reference" / "data" / "protein_calibration.parquet"
DOC = REPO / "docs" / "positivity.md"

#: MALT (10x) antibody → gene. Left out: CD15 (a glycan made by FUT4/FUT9, no single gene),
#: CD45RA / CD45RO (PTPRC isoforms; the RNA counts do not tell isoforms apart).
MALT_AB_TO_GENE: dict[str, str] = {
    "CD3": "CD3E",
    "CD4": "CD4",
    "CD8a": "CD8A",
    "CD14": "CD14",
    "CD16": "FCGR3A",
    "CD56": "NCAM1",
    "CD19": "CD19",
    "CD25": "IL2RA",
    "PD-1": "PDCD1",
    "TIGIT": "TIGIT",
    "CD127": "IL7R",
}
MALT_ISOTYPES = ("IgG2a-control", "IgG1-control", "IgG2b-control")

#: Mimitou 2019 ECCITE-seq antibody → gene. Left out: B220 / CD45RA / CD45RO (PTPRC isoforms),
#: CD77 (a glycolipid, Gb3), HLA-A,B,C (three genes), TCRb / TCRg (constant-region genes are
#: several), and the second clone of PD-1 ("PD1 (CD279)") and PD-L1 ("B7-H1 (PD-L1)") so that no
#: gene is counted twice per context (the first-listed clone of each is kept).
CTCL_AB_TO_GENE: dict[str, str] = {
    "C-kit (CD117)": "KIT",
    "CCR7": "CCR7",
    "CD11b": "ITGAM",
    "CD11c": "ITGAX",
    "CD138": "SDC1",
    "CD14": "CD14",
    "CD16": "FCGR3A",
    "CD19": "CD19",
    "CD1a": "CD1A",
    "CD2": "CD2",
    "CD223 (lag3)": "LAG3",
    "CD24": "CD24",
    "CD26 (Adenosine)": "DPP4",
    "CD27": "CD27",
    "CD28": "CD28",
    "CD3": "CD3E",
    "CD34": "CD34",
    "CD366 (tim3)": "HAVCR2",
    "CD4": "CD4",
    "CD44": "CD44",
    "CD45": "PTPRC",
    "CD5": "CD5",
    "CD56": "NCAM1",
    "CD62L": "SELL",
    "CD66b": "CEACAM8",
    "CD69": "CD69",
    "CD7": "CD7",
    "CD8": "CD8A",
    "CTLA4": "CTLA4",
    "EpCAM (CD326)": "EPCAM",
    "IL7Ralpha (CD127)": "IL7R",
    "LAMP1": "LAMP1",
    "MHCII (HLA-DR)": "HLA-DRA",
    "Ox40 (CD134)": "TNFRSF4",
    "PD-1 (CD279)": "PDCD1",
    "PD-L1 (CD274)": "CD274",
    "PECAM (CD31)": "PECAM1",
    "Siglec-8": "SIGLEC8",
}
CTCL_ISOTYPES = ("IgG1", "IgG2a")

DATASETS = ("triana2021", "malt10x", "mimitou2019")
MIN_CELLS = 15
#: Raw-count sets: the two mixture components must differ by ≥ 2 in log1p units (≈ 7.4-fold);
#: set from the protein distributions alone (a low-count antibody such as CTCL CD1a otherwise
#: "separates" 0–1 from 2–4 counts).
MIN_DELTA = 2.0
N_BOOT = 1000


# --------------------------------------------------------------------------- protein calls
def gmm_calls(values: np.ndarray, seed: int = 0) -> tuple[np.ndarray, float, float]:
    """2-component 1-D Gaussian mixture; positive = posterior of the higher-mean component ≥ 0.5.

    Returns the calls, Ashman's D = √2 |μ1 − μ2| / √(σ1² + σ2²) and |μ1 − μ2|.
    """
    from sklearn.mixture import GaussianMixture  # noqa: PLC0415

    gm = GaussianMixture(2, n_init=5, random_state=seed).fit(values[:, None])
    hi = int(np.argmax(gm.means_.ravel()))
    post = gm.predict_proba(values[:, None])[:, hi]
    mu = gm.means_.ravel()
    d = float(np.sqrt(2) * abs(mu[0] - mu[1]) / np.sqrt(gm.covariances_.ravel().sum()))
    return post >= 0.5, d, float(abs(mu[0] - mu[1]))  # noqa: PLR2004


def protein_table(
    prot: pd.DataFrame, ab_to_gene: dict[str, str], isotypes: tuple[str, ...] | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-cell protein calls (cells × genes, evaluable antibodies only) and a QC table."""
    if isotypes:
        bg = np.log1p(prot[list(isotypes)].to_numpy(dtype=np.float64)).mean(axis=1)
    calls, qc = {}, []
    n = len(prot)
    for ab, gene in ab_to_gene.items():
        if ab not in prot.columns:
            continue
        v = prot[ab].to_numpy(dtype=np.float64)
        if isotypes:
            v = np.log1p(v) - bg
        pos, d, delta = gmm_calls(v)
        ok = d >= 2 and 10 <= pos.sum() <= n - 10 and (not isotypes or delta >= MIN_DELTA)  # noqa: PLR2004
        qc.append(
            {
                "antibody": ab,
                "gene": gene,
                "ashman_d": d,
                "delta": delta,
                "n_pos": int(pos.sum()),
                "ok": ok,
            }
        )
        if ok:
            calls[gene] = pos
    return pd.DataFrame(calls, index=prot.index), pd.DataFrame(qc)


# --------------------------------------------------------------------------- data sets
def panel_fraction(panel: pd.Index) -> float:
    """Median fraction of a healthy van Galen marrow cell's UMIs that fall in ``panel``."""
    fr = []
    for path in sorted(VANGALEN.glob("*_BM[123].dem.txt.gz")):
        df = pd.read_csv(path, sep="\t", index_col=0)
        tot = df.sum(axis=0).to_numpy(dtype=np.float64)
        inp = df.loc[df.index.isin(panel)].sum(axis=0).to_numpy(dtype=np.float64)
        fr.append(inp[tot > 0] / tot[tot > 0])
    return float(np.median(np.concatenate(fr)))


def kmeans_contexts(X: sp.csr_matrix, lib: np.ndarray) -> np.ndarray:
    """RNA-only clusters: k-means on 30 PCs of log1p CP10k of the 2,000 most variable genes."""
    import scanpy as sc  # noqa: PLC0415
    from sklearn.cluster import KMeans  # noqa: PLC0415

    a = ad.AnnData(sp.csr_matrix(X, dtype=np.float32))
    a.X = sp.csr_matrix(a.X.multiply(1e4 / lib[:, None]))
    sc.pp.log1p(a)
    sc.pp.highly_variable_genes(a, n_top_genes=2000, subset=True)
    sc.pp.pca(a, n_comps=30, random_state=0)
    k = int(np.clip(round(X.shape[0] / 100), 4, 10))
    return KMeans(k, n_init=10, random_state=0).fit_predict(a.obsm["X_pca"]).astype(str)


def load_dataset(name: str, f_panel: float | None = None) -> dict:
    """Counts, library, contexts and protein calls of one CITE-seq data set."""  # noqa: D401
    if name == "triana2021":
        a = ad.read_h5ad(TRIANA)
        a.var_names = [g.replace("HLA.", "HLA-") for g in a.var_names]
        X = sp.csr_matrix(a.layers["counts"])
        lib = a.obs["nCount_RNA"].to_numpy(dtype=np.float64)
        ctx = a.obs["condensed_cell_type"].astype(str).to_numpy()
        m = {f"{k}-AB": v for k, v in TRIANA_AB_TO_GENE.items()}
        calls, qc = protein_table(a.obsm["protein"], m, None)
        scale = f_panel  # panel CP10k → whole-transcriptome CP10k
    else:
        path, m, iso = (
            (MALT, MALT_AB_TO_GENE, MALT_ISOTYPES)
            if name == "malt10x"
            else (CTCL, CTCL_AB_TO_GENE, CTCL_ISOTYPES)
        )
        a = ad.read_h5ad(path)
        X = sp.csr_matrix(a.X)
        lib = np.asarray(X.sum(axis=1), dtype=np.float64).ravel()
        keep = lib >= 200  # noqa: PLR2004
        a, X, lib = a[keep].copy(), X[keep], lib[keep]
        ctx = kmeans_contexts(X, lib)
        calls, qc = protein_table(a.obsm["protein"], m, iso)
        scale = 1.0
    genes = [g for g in calls.columns if g in a.var_names]
    qc["in_rna"] = qc.gene.isin(a.var_names)
    gi = np.array([a.var_names.get_loc(g) for g in genes], dtype=np.intp)
    return {
        "name": name,
        "X": X[:, gi].toarray().astype(np.float64),
        "X_full": X,
        "var_names": a.var_names,
        "lib": lib,
        "ctx": ctx,
        "genes": genes,
        "protein": calls[genes].to_numpy(),
        "qc": qc,
        "scale": scale,
    }


def context_pairs(d: dict) -> pd.DataFrame:
    """One row per (gene, context): mean CP10k, cells, protein-positive cells, count>0 cells."""
    cp = d["X"] * 1e4 / d["lib"][:, None] * d["scale"]
    rows = []
    for c in np.unique(d["ctx"]):
        m = d["ctx"] == c
        if m.sum() < MIN_CELLS:
            continue
        for j, g in enumerate(d["genes"]):
            rows.append(
                {
                    "dataset": d["name"],
                    "context": str(c),
                    "gene": g,
                    "n_cells": int(m.sum()),
                    "n_pos": int(d["protein"][m, j].sum()),
                    "mean_cp10k": float(cp[m, j].mean()),
                    "frac_detected": float((d["X"][m, j] > 0).mean()),
                }
            )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- covariates
def gene_covariates() -> pd.DataFrame:
    """HPA midpoint (CP10k, log10) and CPTAC midpoint (log2 UQ) per gene symbol."""
    h = pd.read_csv(
        HPA_PRIORS,
        usecols=[
            "canonical_gene_id",
            "gene_symbol",
            "detection_prior_status",
            "detection_logit_slope",
            "rna_at_50pct_ihc_detection",
            "rna_min",
            "rna_max",
        ],
    )
    ok = (
        (h.detection_prior_status == "fit")
        & (h.detection_logit_slope > 0)
        & h.rna_at_50pct_ihc_detection.between(h.rna_min, h.rna_max)
    )
    hf = h[ok].drop_duplicates("gene_symbol")
    # log2(nTPM + 1) → nTPM → CP10k (nTPM / 100)
    hpa_mid = pd.Series(
        (2.0 ** hf.rna_at_50pct_ihc_detection.to_numpy() - 1.0) / 100.0,
        index=hf.gene_symbol.to_numpy(),
    )
    c = pd.read_csv(
        CPTAC,
        usecols=[
            "canonical_gene_id",
            "detection_model_status",
            "detection_logit_slope",
            "rna_at_50pct_detection",
            "rna_min",
            "rna_max",
        ],
    )
    cok = (
        (c.detection_model_status == "fit")
        & (c.detection_logit_slope > 0)
        & c.rna_at_50pct_detection.between(c.rna_min, c.rna_max)
    )
    cm = c[cok].groupby("canonical_gene_id").rna_at_50pct_detection.median()
    sym = h.drop_duplicates("canonical_gene_id").set_index("canonical_gene_id").gene_symbol
    cm.index = sym.reindex(cm.index).to_numpy()
    cm = cm[cm.index.notna()]
    cm = cm[~cm.index.duplicated()]
    out = pd.DataFrame({"hpa_mid_cp10k": hpa_mid})
    out = out.join(pd.Series(cm, name="cptac_mid_log2uq"), how="outer")
    return out


def model_covariates(cov: pd.DataFrame, use: tuple[str, ...]) -> pd.DataFrame | None:
    """Covariates as they enter the fit (HPA on log10 CP10k)."""
    if not use:
        return None
    out = pd.DataFrame(index=cov.index)
    if "hpa" in use:
        out["hpa_log10_mid"] = np.log10(cov["hpa_mid_cp10k"] + 0.01)
    if "cptac" in use:
        out["cptac_mid_log2uq"] = cov["cptac_mid_log2uq"]
    return out


# --------------------------------------------------------------------------- evaluation
def baseline_current(mean_cp10k: np.ndarray, lam0: float = 0.2) -> np.ndarray:
    """The engine's current rule: exp(−λ0/μ) (Gamma shape 1), 0 where μ = 0."""  # noqa: D401
    out = np.zeros_like(mean_cp10k, dtype=np.float64)
    pos = mean_cp10k > 0
    out[pos] = np.exp(-lam0 / mean_cp10k[pos])
    return out


def predict_rows(test: pd.DataFrame, cal: pd.DataFrame) -> pd.DataFrame:  # noqa: D103
    f, lo, hi = protein_positive_fraction(
        test.gene.tolist(), test.mean_cp10k.to_numpy()[:, None], calibration=cal
    )
    return test.assign(model=f[:, 0], lower=lo[:, 0], upper=hi[:, 0])


def metrics(df: pd.DataFrame, rng: np.random.Generator, n_boot: int = N_BOOT) -> pd.DataFrame:
    """MAE and Spearman ρ of each predictor vs the protein fraction; gene-bootstrap 90 % CI."""
    df = df.assign(
        truth=df.n_pos / df.n_cells,
        current=baseline_current(df.mean_cp10k.to_numpy()),
        detected=df.frac_detected,
    )
    preds = ("model", "detected", "current")
    genes = df.gene.unique()
    idx = {g: np.flatnonzero(df.gene.to_numpy() == g) for g in genes}
    t = df.truth.to_numpy()
    P = {p: df[p].to_numpy() for p in preds}

    def stat(rows: np.ndarray) -> dict:
        out = {}
        for p in preds:
            out[f"{p}_mae"] = float(np.abs(P[p][rows] - t[rows]).mean())
            out[f"{p}_rho"] = float(spearmanr(P[p][rows], t[rows]).statistic)
        return out

    allrows = np.arange(len(df))
    point = stat(allrows)
    boots = []
    for _ in range(n_boot):
        pick = rng.choice(genes, size=len(genes), replace=True)
        boots.append(stat(np.concatenate([idx[g] for g in pick])))
    b = pd.DataFrame(boots)
    # paired differences model − baseline (negative MAE difference = model better)
    for base in ("detected", "current"):
        b[f"dmae_{base}"] = b["model_mae"] - b[f"{base}_mae"]
        point[f"dmae_{base}"] = point["model_mae"] - point[f"{base}_mae"]
    lo, hi = b.quantile(0.05), b.quantile(0.95)
    inside = (df.truth >= df.lower) & (df.truth <= df.upper)
    res = {k: f"{v:.3f} [{lo[k]:.3f}, {hi[k]:.3f}]" for k, v in point.items()}
    res["coverage90"] = f"{inside.mean():.2f}"
    res["rows"] = str(len(df))
    res["genes"] = str(len(genes))
    return pd.DataFrame([res])


def leave_dataset_out(pairs: pd.DataFrame, cov: pd.DataFrame, use: tuple[str, ...]) -> dict:  # noqa: D103
    out = {}
    for held in DATASETS:
        train, test = pairs[pairs.dataset != held], pairs[pairs.dataset == held]
        cal = fit_calibration(train, model_covariates(cov, use))
        out[held] = predict_rows(test, cal).assign(own_fit=test.gene.isin(train.gene).to_numpy())
    return out


def leave_gene_out(  # noqa: D103
    pairs: pd.DataFrame, cov: pd.DataFrame, use: tuple[str, ...], n_folds: int = 5
) -> pd.DataFrame:
    genes = np.array(sorted(pairs.gene.unique()))
    fold = np.random.default_rng(1).permutation(len(genes)) % n_folds
    parts = []
    for k in range(n_folds):
        held = set(genes[fold == k])
        train = pairs[~pairs.gene.isin(held)]
        test = pairs[pairs.gene.isin(held)]
        parts.append(predict_rows(test, fit_calibration(train, model_covariates(cov, use))))
    return pd.concat(parts)


def md_table(df: pd.DataFrame) -> str:  # noqa: D103
    cols = list(df.columns)
    out = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for _, row in df.iterrows():
        cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in row]
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> None:  # noqa: D103, PLR0915
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--no-write", action="store_true", help="print only; write no files")
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)

    tri_panel = pd.Index(
        [g.replace("HLA.", "HLA-") for g in ad.read_h5ad(TRIANA, backed="r").var_names]
    )
    f_panel = panel_fraction(tri_panel)
    data = {n: load_dataset(n, f_panel) for n in DATASETS}
    pairs = pd.concat([context_pairs(d) for d in data.values()], ignore_index=True)
    cov = gene_covariates()

    lines = [
        f"Panel fraction f (van Galen BM1–BM3, median over cells) = {f_panel:.4f}.",
        "",
        "| data set | cells | contexts (≥ 15 cells) | antibodies mapped | in RNA and bimodal |"
        " genes |",
        "|---|---|---|---|---|---|",
    ]
    for n, d in data.items():
        qc = d["qc"]
        nctx = pairs[pairs.dataset == n].context.nunique()
        lines.append(
            f"| {n} | {len(d['lib'])} | {nctx} | {len(qc)} | {int((qc.ok & qc.in_rna).sum())} |"
            f" {len(d['genes'])} |"
        )
    lines += [
        "",
        f"Pairs (gene × context): {len(pairs)}; genes: {pairs.gene.nunique()}; genes in ≥ 2 "
        f"data sets: {int((pairs.groupby('gene').dataset.nunique() >= 2).sum())}.",  # noqa: PLR2004
        f"HPA midpoints: {int(cov.hpa_mid_cp10k.notna().sum())} genes; CPTAC midpoints: "
        f"{int(cov.cptac_mid_log2uq.notna().sum())} genes; CITE-seq genes with an HPA midpoint: "
        f"{int(cov.hpa_mid_cp10k.reindex(pairs.gene.unique()).notna().sum())}, with a CPTAC "
        f"midpoint: {int(cov.cptac_mid_log2uq.reindex(pairs.gene.unique()).notna().sum())}.",
        "",
    ]

    variants = {"global": (), "hpa": ("hpa",), "hpa+cptac": ("hpa", "cptac")}
    lines += ["### Leave-data-set-out (fit on the other two CITE-seq sets)", ""]
    lodo_rows = []
    for vname, use in variants.items():
        res = leave_dataset_out(pairs, cov, use)
        for held, df in res.items():
            for subset, sub in (("all genes", df), ("genes seen in training", df[df.own_fit])):
                if sub.gene.nunique() < 3:  # noqa: PLR2004
                    continue
                m = metrics(sub, rng)
                lodo_rows.append(
                    {"prior": vname, "held out": held, "genes used": subset, **m.iloc[0]}
                )
        pooled = pd.concat(res.values())
        m = metrics(pooled, rng)
        lodo_rows.append(
            {"prior": vname, "held out": "all three", "genes used": "all genes", **m.iloc[0]}
        )
    lodo = pd.DataFrame(lodo_rows)
    key = ["prior", "held out", "genes used"]
    cols_a = [*key, "genes", "rows", "model_mae", "detected_mae", "current_mae"]
    cols_b = [*key, "model_rho", "detected_rho", "current_rho"]
    cols_c = [*key, "dmae_detected", "dmae_current", "coverage90"]
    lines += [md_table(lodo[cols_a]), "", md_table(lodo[cols_b]), "", md_table(lodo[cols_c]), ""]

    lines += ["### Leave-gene-out (5 folds of genes, all three data sets)", ""]
    logo_rows = []
    for vname, use in variants.items():
        m = metrics(leave_gene_out(pairs, cov, use), rng)
        logo_rows.append({"prior": vname, **m.iloc[0]})
    logo = pd.DataFrame(logo_rows)
    lines += [
        md_table(logo[["prior", "genes", "rows", "model_mae", "detected_mae", "current_mae"]]),
        "",
        md_table(logo[["prior", "model_rho", "detected_rho", "current_rho"]]),
        "",
        md_table(logo[["prior", "dmae_detected", "dmae_current", "coverage90"]]),
        "",
    ]

    # the shipped table: all three data sets, HPA + CPTAC covariates
    cal = fit_calibration(pairs, model_covariates(cov, ("hpa", "cptac")))
    attrs = dict(cal.attrs)
    cal = cal.drop(columns=["hpa_log10_mid", "cptac_mid_log2uq"]).join(cov, how="left")
    cal.attrs = attrs
    beta = attrs["beta"]
    seen = cal[cal.n_contexts > 0]
    lines += [
        "### Shipped calibration (fitted on all three CITE-seq sets + HPA + CPTAC covariates)",
        "",
        f"Rows: {len(cal)} ({len(seen)} genes with their own CITE-seq fit). Global coefficients: "
        + ", ".join(f"{k} = {v:.3f}" for k, v in beta.items())
        + f"; dispersion φ = {cal.attrs['phi']:.2f}; between-gene covariance T = "
        + f"{np.round(cal.attrs['T'], 3).tolist()}; σ_ctx = {cal.sigma_ctx.iloc[0]:.3f}.",
        "",
        md_table(
            seen.reset_index()[
                ["gene", "a", "b", "prior_a", "n_contexts", "n_datasets", "midpoint_cp10k"]
            ]
            .sort_values("gene")
            .round(3)
        ),
        "",
        f"(script wall time {time.perf_counter() - t0:.0f} s)",
    ]
    block = "\n".join(lines)
    print(block)
    if not args.no_write:
        tab = cal.copy()
        tab.attrs = {}
        tab.to_parquet(OUT, compression="zstd")
        doc = DOC.read_text() if DOC.exists() else ""
        start, end = "<!-- BEGIN PROTEIN -->", "<!-- END PROTEIN -->"
        if start in doc and end in doc:
            head, rest = doc.split(start, 1)
            _, tail = rest.split(end, 1)
            DOC.write_text(f"{head}{start}\n{block}\n{end}{tail}")


if __name__ == "__main__":
    main()
