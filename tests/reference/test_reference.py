"""Tests of the embedded healthy reference against independent reads of the raw files."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from antigenscout._errors import InputError, ReferenceLookupError
from antigenscout.reference import REFERENCE_FILES, Reference, load_reference

PKG = Path(__file__).resolve().parents[2] / "src" / "antigenscout"
ANNOTATIONS = PKG / "reference" / "annotations" / "contexts.tsv"
DATASETS = PKG / "datasets" / "data"


@pytest.fixture(scope="module")
def ref() -> Reference:
    return load_reference()


# --------------------------------------------------------------------------- loading


def test_load_is_cached(ref: Reference) -> None:
    assert load_reference() is ref
    assert list(ref.expression.columns) == list(ref.contexts.index)
    assert (ref.expression.dtypes == np.float32).all()
    assert ref.genes.index.is_unique
    assert ref.expression.index.isin(ref.genes.index).all()


def test_from_dir_missing_files(tmp_path: Path) -> None:
    with pytest.raises(ReferenceLookupError, match="does not exist"):
        Reference.from_dir(tmp_path / "nope")
    src = PKG / "reference" / "data"
    for f in REFERENCE_FILES[:-1]:
        shutil.copy(src / f, tmp_path / f)
    with pytest.raises(ReferenceLookupError, match=r"metadata\.json"):
        Reference.from_dir(tmp_path)
    shutil.copy(src / "metadata.json", tmp_path / "metadata.json")
    other = load_reference(tmp_path)
    assert other is not load_reference()
    pd.testing.assert_frame_equal(other.expression, load_reference().expression)


# --------------------------------------------------------------------------- genes


def test_map_genes(ref: Reference) -> None:
    queries = [
        "CD19",  # symbol
        "cd33",  # case-insensitive
        "ENSG00000105383.14",  # Ensembl with version -> CD33
        "ENSG00000141736",  # Ensembl without version -> ERBB2
        "HER2",  # synonym
        "BCMA",  # synonym
        "MLL",  # previous symbol
        "not_a_gene_xyz",
    ]
    mapped, unmapped = ref.map_genes(queries)
    assert mapped.tolist()[:-1] == ["CD19", "CD33", "CD33", "ERBB2", "ERBB2", "TNFRSF17", "KMT2A"]
    assert pd.isna(mapped.iloc[-1])
    assert unmapped == ["not_a_gene_xyz"]
    assert list(mapped.index) == queries
    with pytest.raises(InputError, match="sequence"):
        ref.map_genes("CD19")


def test_map_genes_bulk_roundtrip(ref: Reference) -> None:
    """Every symbol, and every Ensembl id of every symbol (a gene with ids of several
    Ensembl releases lists them all), with a version suffix, maps back."""
    genes = ref.genes
    sym = genes.index[:20000].tolist()
    ens = genes["ensembl_id"].dropna().str.split("|").explode()
    mapped, unmapped = ref.map_genes(sym + [f"{e}.7" for e in ens.iloc[:20000]])
    assert not unmapped
    assert mapped.tolist() == sym + ens.index[:20000].tolist()


def test_a_gene_under_two_ensembl_releases_keeps_its_hpa_data(ref: Reference) -> None:
    """SOD2 is ENSG00000291237 in HGNC 2026 and ENSG00000112096 in the HPA tables: both ids
    map to SOD2 and its tissue RNA is kept (it was filed under the bare HPA id)."""
    assert ref.genes.loc["SOD2", "ensembl_id"].split("|") == ["ENSG00000291237", "ENSG00000112096"]
    mapped, _ = ref.map_genes(["ENSG00000112096.5", "ENSG00000291237"])
    assert mapped.tolist() == ["SOD2", "SOD2"]
    assert "ENSG00000112096" not in ref.genes.index
    assert ref.expression.loc["SOD2", "tissue:liver"] > 100  # HPA 21.1: liver 500+ nTPM


def test_synonyms_never_shadow_canonical_symbols(ref: Reference) -> None:
    syn = ref.genes["synonyms"].fillna("")
    aliases = syn[syn != ""].str.split("|").explode()
    assert not aliases.isin(ref.genes.index).any()
    assert aliases.is_unique  # each alias maps to one gene only


def test_genes_from_hgnc_table(ref: Reference, shared_data: Path) -> None:
    ev = pd.read_csv(shared_data / "surfaceome/surface_evidence_by_source.tsv", sep="\t")
    ev = ev.dropna(subset=["ensembl_gene"]).set_index("hgnc_symbol")
    for sym in ["CD19", "CD33", "TP53", "MSLN", "CLEC12A"]:
        assert ref.genes.loc[sym, "ensembl_id"] == ev.loc[sym, "ensembl_gene"]


# --------------------------------------------------------------------------- expression


def test_expression_single_cell_matches_raw(ref: Reference, shared_data: Path) -> None:
    raw = pd.read_csv(shared_data / "hpa/hpa_single_cell_type_ntpm.csv").set_index("Symbol")
    assert ref.contexts.index.str.startswith("sc:").sum() == raw.shape[1] - 1 == 81
    for gene, cell in [("CD19", "B-cells"), ("ALB", "Hepatocytes"), ("CD33", "monocytes")]:
        assert ref.expression.loc[gene, f"sc:{cell}"] == pytest.approx(raw.loc[gene, cell])


def test_expression_tissue_and_blood_match_raw(ref: Reference, shared_data: Path) -> None:
    t = pd.read_csv(shared_data / "hpa/rna_tissue_consensus_v21.1.tsv.gz", sep="\t")
    t = t[t["Gene.name"].isin(["ALB", "MYH7", "CD19"])]
    for _, row in t.iterrows():
        got = ref.expression.loc[row["Gene.name"], f"tissue:{row['Tissue']}"]
        assert got == pytest.approx(row["nTPM"], rel=1e-6)
    assert ref.contexts.index.str.startswith("tissue:").sum() == t["Tissue"].nunique() == 54
    b = pd.read_csv(shared_data / "hpa/rna_blood_cell_types_v20.tsv.gz", sep="\t", index_col=0)
    blood = [c for c in ref.contexts.index if c.startswith("blood:")]
    assert sorted(c.removeprefix("blood:") for c in blood) == sorted(b.columns.drop("total_PBMC"))
    cd19 = ref.genes.loc["CD19", "ensembl_id"]
    for c in ["naive_B_cell", "neutrophil", "memory_CD8_T_cell"]:
        assert ref.expression.loc["CD19", f"blood:{c}"] == pytest.approx(b.loc[cd19, c])


def test_marrow_pseudobulk_by_hand(ref: Reference, shared_data: Path) -> None:
    folder = shared_data / "singlecell/vangalen2019_aml"
    counts, libs, n = {"CD34": 0.0, "MPO": 0.0}, 0.0, 0
    for bm in ["BM1", "BM2", "BM3"]:
        dem = pd.read_csv(next(folder.glob(f"*_{bm}.dem.txt.gz")), sep="\t", index_col=0)
        anno = pd.read_csv(next(folder.glob(f"*_{bm}.anno.txt.gz")), sep="\t", index_col=0)
        cells = anno.index[anno["CellType"] == "HSC"]
        for g in counts:
            counts[g] += dem.loc[g, cells].sum()
        libs += dem[cells].to_numpy().sum()
        n += len(cells)
    assert ref.contexts.loc["marrow:HSC", "n_cells"] == n >= 20
    # UMIs per cell, for how many reads a level can show (docs/engagement.md)
    assert ref.contexts.loc["marrow:HSC", "mean_library"] == pytest.approx(libs / n, abs=0.5)
    assert (
        ref.contexts.loc[~ref.contexts.index.str.startswith("marrow:"), "mean_library"].isna().all()
    )
    for g, c in counts.items():
        assert ref.expression.loc[g, "marrow:HSC"] == pytest.approx(c / libs * 1e6, rel=5e-3)
    marrow = ref.contexts[ref.contexts.index.str.startswith("marrow:")]
    assert (marrow["n_cells"] >= 20).all()
    assert {"marrow:HSC", "marrow:Prog", "marrow:GMP"} <= set(marrow.index)


# --------------------------------------------------------------------------- contexts


def test_every_context_annotated(ref: Reference) -> None:
    ann = pd.read_csv(ANNOTATIONS, sep="\t", keep_default_na=False)
    assert sorted(ann["context"]) == sorted(ref.contexts.index)
    ctx = ref.contexts
    assert ctx["vital_weight"].between(0, 1).all()
    text = ["name", "kind", "source", "tissue", "system", "rationale"]
    assert (ctx[text].apply(lambda c: c.str.len()) > 0).all().all()
    assert set(ctx["kind"]) == {"cell_type", "tissue"}
    assert ctx["immune_privileged"].dtype == bool
    critical = [
        "sc:Cardiomyocytes",
        "tissue:heart muscle",
        "marrow:HSC",
        "marrow:Prog",
        "sc:Hepatocytes",
        "sc:Endothelial cells",
        "sc:Alveolar cells type 2",
        "sc:Proximal tubular cells",
        "sc:Excitatory neurons",
    ]
    assert (ctx.loc[critical, "vital_weight"] == 1.0).all()
    assert (ctx.loc[["sc:B-cells", "sc:Plasma cells"], "vital_weight"] <= 0.3).all()
    assert ctx.loc[["sc:Spermatocytes", "tissue:placenta"], "immune_privileged"].all()


def test_systems_is_max_over_members(ref: Reference) -> None:
    sys = ref.systems()
    expect = ref.contexts.groupby("system")["vital_weight"].agg(["max", "size"])
    for name, row in expect.iterrows():
        assert sys.loc[name, "vital_weight"] == pytest.approx(row["max"])
        assert sys.loc[name, "n_contexts"] == row["size"]


# --------------------------------------------------------------------------- IHC / surface


def test_ihc_matches_raw(ref: Reference, shared_data: Path) -> None:
    raw = pd.read_csv(
        shared_data / "hpa/normal_tissue_v21.1.tsv.gz", sep="\t", keep_default_na=False
    )
    raw = raw[raw["Gene.name"].isin(["CD19", "ALB", "MSLN"])]
    raw = raw[raw["Level"].isin(["Not detected", "Low", "Medium", "High"])]
    levels = {"Not detected": 0, "Low": 1, "Medium": 2, "High": 3}
    ihc = ref.ihc[ref.ihc["symbol"].isin(["CD19", "ALB", "MSLN"])]
    assert len(ihc) == len(raw)
    merged = ihc.astype(str).merge(
        raw.astype(str),
        left_on=["symbol", "tissue", "cell_type"],
        right_on=["Gene.name", "Tissue", "Cell.type"],
    )
    assert len(merged) == len(raw)
    assert (merged["level"].astype(int) == merged["Level"].map(levels)).all()
    heart = ref.ihc[ref.ihc["tissue"] == "heart muscle"]["context"].unique()
    assert list(heart) == ["tissue:heart muscle"]
    assert set(ref.ihc["level"].unique()) == {0, 1, 2, 3}
    mapped = ref.ihc["context"].dropna().unique()
    assert pd.Index(mapped).isin(ref.contexts.index).all()


def test_surface_sanity(ref: Reference) -> None:
    s = ref.surface
    pos = [
        "CD19",
        "CD33",
        "IL3RA",
        "CLEC12A",
        "IL1RAP",
        "MS4A1",
        "TNFRSF17",
        "ERBB2",
        "EGFR",
        "MSLN",
        "CD22",
        "CD38",
    ]
    assert s.loc[pos, "is_surface"].all()
    assert not s.loc[["ALB", "ACTB", "GAPDH", "MAGEA4"], "is_surface"].any()
    assert s["surface_evidence"].between(0, 1).all()
    flags = ["uniprot", "go", "hpa", "surfy", "cspa"]
    assert (s[flags].sum(axis=1) == s["n_sources"]).all()
    assert s.loc["MS4A1", "cd"] == "CD20"


def test_surface_flags_from_raw(ref: Reference, shared_data: Path) -> None:
    cspa = pd.read_csv(shared_data / "surfaceome/cspa_human_tableA.tsv", sep="\t")
    high = cspa.loc[cspa["CSPA category"] == "1 - high confidence", "ENTREZ gene symbol"]
    mapped, _ = ref.map_genes(high.dropna().tolist())
    assert ref.surface.loc[mapped.dropna().unique(), "cspa"].all()


def test_cptac_matches_raw(ref: Reference, shared_data: Path) -> None:
    """cptac.parquet: the raw CPTAC rows of a few genes, cohorts renamed to HPA cancers."""
    raw = pd.read_csv(shared_data / "protein_calibration/rna-protein-calibrations.csv.gz")
    cancers = {
        "BRCA": "breast cancer",
        "CCRCC": "renal cancer",
        "COAD": "colorectal cancer",
        "GBM": "glioma",
        "HNSCC": "head and neck cancer",
        "LSCC": "lung cancer",
        "LUAD": "lung cancer",
        "OV": "ovarian cancer",
        "PDAC": "pancreatic cancer",
        "UCEC": "endometrial cancer",
    }
    t = ref.cptac
    assert t is not None
    assert (t[["n_patients", "n_detected"]].dtypes == np.int32).all()
    assert (t["n_detected"] <= t["n_patients"]).all()
    assert not t.duplicated(["symbol", "cohort"]).any()
    for gene in ["TACSTD2", "ERBB2", "MSLN", "CD19"]:
        ens = ref.genes.loc[gene, "ensembl_id"]
        want = raw[raw["canonical_gene_id"] == ens].sort_values("cptac_cohort")
        got = t[t["symbol"] == gene].sort_values("cohort")
        assert len(got) == len(want)
        assert got["cohort"].astype(str).tolist() == want["cptac_cohort"].tolist()
        assert got["cancer"].astype(str).tolist() == want["cptac_cohort"].map(cancers).tolist()
        assert got["n_patients"].tolist() == want["n_matched_samples"].tolist()
        assert got["n_detected"].tolist() == want["n_protein_observed"].tolist()
    brca = t[(t["symbol"] == "TACSTD2") & (t["cohort"] == "BRCA")].iloc[0]
    assert (brca["n_detected"], brca["n_patients"], brca["cancer"]) == (121, 121, "breast cancer")


# --------------------------------------------------------------------------- metadata


def test_metadata_licences_and_hashes(ref: Reference, shared_data: Path) -> None:
    src = ref.metadata["sources"]
    assert len(src) >= 12
    for info in src.values():
        assert info["licence"]
        assert info["version"]
        assert len(info["sha256"]) == 64
    assert "CC BY-SA 4.0" in src["hpa_tissue_consensus"]["licence"]
    f = shared_data / src["hpa_single_cell_type"]["path"]
    assert hashlib.sha256(f.read_bytes()).hexdigest() == src["hpa_single_cell_type"]["sha256"]
    assert ref.metadata["build_command"].startswith("python scripts/build_reference.py")
    meta = json.loads((PKG / "reference" / "data" / "metadata.json").read_text())
    assert meta == ref.metadata


# --------------------------------------------------------------------------- bulk tables


def test_tcga_medians_match_raw(shared_data: Path) -> None:
    got = pd.read_parquet(DATASETS / "tcga_medians.parquet")
    raw = pd.read_csv(shared_data / "hpa/pan_cancer_hpa_tissue_ntpm_tcga_median.csv")
    raw = raw.set_index("Symbol")
    assert got.shape[1] == 33
    assert (got.dtypes == np.float32).all()
    for gene in ["CD33", "ERBB2", "MSLN"]:
        expect = raw.loc[gene, [f"FPKM_{c}" for c in got.columns]].to_numpy(float)
        np.testing.assert_allclose(got.loc[gene].to_numpy(float), expect, rtol=5e-3)


def test_cell_lines_match_raw(shared_data: Path) -> None:
    got = pd.read_parquet(DATASETS / "hpa_cell_lines.parquet")
    raw = pd.read_csv(
        shared_data / "hpa/rna_celline_v19.3.tsv.gz",
        sep="\t",
        usecols=["Gene.name", "Cell.line", "TPM"],
    )
    raw = raw[raw["Gene.name"].isin(["CD33", "CD19"])]
    assert got.shape[1] == 64
    for _, row in raw.iterrows():
        assert got.loc[row["Gene.name"], row["Cell.line"]] == pytest.approx(row["TPM"], rel=5e-3)
