"""Build the embedded healthy reference of antigenscout from the raw public tables.

Reads the read-only data folder (``../shared/data`` beside the repository by default) and
writes compact Parquet files (zstd, float32) plus ``metadata.json`` into
``src/antigenscout/reference/data``; the bulk tumour tables go to
``src/antigenscout/datasets/data``. The output is deterministic: the same inputs and library
versions give byte-identical Parquet files (``metadata.json`` also records the build date,
taken from ``SOURCE_DATE_EPOCH`` when that is set).

Usage::

    python scripts/build_reference.py [--shared ../shared/data]
        [--out src/antigenscout/reference/data] [--datasets-out src/antigenscout/datasets/data]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from blood_protein import DATASET as PROTEIN_DATASET  # noqa: E402
from blood_protein import FILE as PROTEIN_FILE  # noqa: E402
from blood_protein import blood_protein_table  # noqa: E402

from antigenscout.reference._location import (  # noqa: E402
    HPA_ENDOCYTIC,
    epithelial_side,
    hpa_compartments,
    hpa_locations,
    join_compartments,
    uniprot_compartments,
    uniprot_locations,
)
from antigenscout.reference._topology import ectodomain  # noqa: E402

ANNOTATIONS = REPO / "src" / "antigenscout" / "reference" / "annotations" / "contexts.tsv"

HPA_LICENCE = "CC BY-SA 4.0 (Human Protein Atlas, proteinatlas.org)"

#: Source files: path relative to the shared data folder, version and licence (PROVENANCE.md).
SOURCES: dict[str, dict[str, str]] = {
    "hpa_single_cell_type": {
        "path": "hpa/hpa_single_cell_type_ntpm.csv",
        "version": "HPA single-cell type consensus (version not stated; via pirlygenes 4.50.15)",
        "licence": f"{HPA_LICENCE}; redistributed by pirlygenes under Apache-2.0",
    },
    "hpa_tissue_consensus": {
        "path": "hpa/rna_tissue_consensus_v21.1.tsv.gz",
        "version": "HPA 21.1 (2022-05-31), Ensembl 103 (via Bioconductor hpar)",
        "licence": HPA_LICENCE,
    },
    "hpa_blood_cell_types": {
        "path": "hpa/rna_blood_cell_types_v20.tsv.gz",
        "version": "HPA ~20 (via github kircherlab/cfDNA @8891e408)",
        "licence": f"{HPA_LICENCE}; repository MIT",
    },
    "hpa_normal_tissue_ihc": {
        "path": "hpa/normal_tissue_v21.1.tsv.gz",
        "version": "HPA 21.1 (2022-05-31), Ensembl 103 (via Bioconductor hpar)",
        "licence": f"{HPA_LICENCE}; hpar Artistic-2.0",
    },
    "hpa_pathology": {
        "path": "hpa/pathology_v21.1.tsv.gz",
        "version": "HPA 21.1 (2022-05-31), tumour IHC (via Bioconductor hpar)",
        "licence": HPA_LICENCE,
    },
    "hpa_subcellular_location": {
        "path": "hpa/subcellular_location_v21.1.tsv.gz",
        "version": "HPA 21.1 (via Bioconductor hpar)",
        "licence": HPA_LICENCE,
    },
    "hpa_proteinatlas_v18": {
        "path": "hpa/proteinatlas_v18.tsv.zip",
        "version": "HPA ~18 (2018-10)",
        "licence": HPA_LICENCE,
    },
    "hpa_cell_lines": {
        "path": "hpa/rna_celline_v19.3.tsv.gz",
        "version": "HPA 19.3 (2020-03-06) (via Bioconductor hpar)",
        "licence": HPA_LICENCE,
    },
    "tcga_medians": {
        "path": "hpa/pan_cancer_hpa_tissue_ntpm_tcga_median.csv",
        "version": "HPA v23 tissues; TCGA (GDC) medians (via pirlygenes 4.50.15)",
        "licence": "TCGA open access; HPA CC BY-SA 4.0; pirlygenes Apache-2.0",
    },
    "surface_evidence": {
        "path": "surfaceome/surface_evidence_by_source.tsv",
        "version": "Deliverome accessible-surfaceome whole_proteome_catalog @d71e3cde (2026-05)",
        "licence": "repository MIT (upstream UniProt CC BY 4.0, GO CC BY 4.0, HPA CC BY-SA 4.0)",
    },
    "surfy": {
        "path": "surfaceome/surfy_in_silico_surfaceome.tsv",
        "version": "SURFY in silico surfaceome, Bausch-Fluck et al. 2018 PNAS 115:E10988",
        "licence": "repository MIT (github steveneschrich/surfaceome)",
    },
    "surfy_master": {
        "path": "surfaceome/surfy_master_all_swissprot.tsv.gz",
        "version": (
            "SURFY master table, all 20,193 human Swiss-Prot entries (UniProt 2017), "
            "Bausch-Fluck et al. 2018 PNAS 115:E10988, sheet 11.3_SURFYscores_all "
            "(github Bribak/SURFY2 @4217b62b)"
        ),
        "licence": "PNAS open-access SI; topology from UniProtKB (CC BY 4.0)",
    },
    "cspa": {
        "path": "surfaceome/cspa_human_tableA.tsv",
        "version": "Cell Surface Protein Atlas, Bausch-Fluck et al. 2015 PLoS One, Table A",
        "licence": "repository MIT (github steveneschrich/surfaceome)",
    },
    "cptac_protein_detection": {
        "path": "protein_calibration/rna-protein-calibrations.csv.gz",
        "version": (
            "oncoref 1.19.2 (PyPI wheel), cptac-bcm-cohort-v1: CPTAC BCM harmonised tumour "
            "proteomes, Zenodo 10.5281/zenodo.8394329"
        ),
        "licence": "oncoref Apache-2.0; CPTAC CC BY 4.0",
    },
}
MARROW_SAMPLES = ("BM1", "BM2", "BM3")
MARROW_DIR = "singlecell/vangalen2019_aml"
MARROW_VERSION = "van Galen et al. 2019 Cell, GEO GSE116256 (healthy donors BM1-BM3)"
MARROW_LICENCE = "GEO public data"
MIN_MARROW_CELLS = 20

PARQUET_KW = {"compression": "zstd", "compression_level": 19, "use_dictionary": True}
ANNOTATION_COLUMNS = [
    "context",
    "name",
    "kind",
    "source",
    "tissue",
    "system",
    "vital_weight",
    "immune_privileged",
    "barrier",
    "pregnancy",
    "polarised",
    "rationale",
]
#: Barriers a context lies behind (docs/engagement.md, "Exposure").
BARRIERS = ("none", "blood-brain", "blood-retina", "blood-testis")

IHC_LEVELS = {"Not detected": 0, "Low": 1, "Medium": 2, "High": 3}
#: IHC tissue names whose reference context is not simply ``tissue:<same name>``.
IHC_TISSUE_ALIASES = {
    "hippocampus": "hippocampal formation",
    "caudate": "basal ganglia",
    "substantia nigra": "midbrain",
    "dorsal raphe": "midbrain",
}

#: Weights of the surface evidence score (sum to 1).
SURFACE_WEIGHTS = {"cspa": 0.30, "uniprot": 0.25, "go": 0.15, "hpa": 0.15, "surfy": 0.15}
SURFACE_THRESHOLD = 0.40

#: CPTAC cohort -> HPA pathology cancer type (the two lung cohorts stay separate rows).
CPTAC_COHORTS = {
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


# ----------------------------------------------------------------------------- utilities


def sha256(path: Path) -> str:  # noqa: D103
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def round_sig(x: np.ndarray, digits: int = 3) -> np.ndarray:
    """Round to ``digits`` significant digits (NaN and 0 are kept)."""
    x = np.asarray(x, dtype=np.float64)
    out = x.copy()
    ok = np.isfinite(x) & (x != 0)
    mag = np.floor(np.log10(np.abs(x[ok])))
    scale = 10.0 ** (digits - 1 - mag)
    out[ok] = np.round(x[ok] * scale) / scale
    return out


def write_parquet(df: pd.DataFrame, path: Path) -> None:
    """Write ``df`` (index kept) deterministically with zstd compression."""
    keep_index = None if isinstance(df.index, pd.RangeIndex) else True
    table = pa.Table.from_pandas(df, preserve_index=keep_index)
    pq.write_table(table, path, **PARQUET_KW)


def strip_version(ids: pd.Series) -> pd.Series:  # noqa: D103
    return ids.astype("string").str.replace(r"\.\d+$", "", regex=True)


# ----------------------------------------------------------------------------- readers


def read_sources(shared: Path) -> dict[str, pd.DataFrame]:  # noqa: D103
    def p(key: str) -> Path:
        return shared / SOURCES[key]["path"]

    raw: dict[str, pd.DataFrame] = {}
    raw["sc"] = pd.read_csv(p("hpa_single_cell_type"))
    raw["tissue"] = pd.read_csv(p("hpa_tissue_consensus"), sep="\t")
    raw["blood"] = pd.read_csv(p("hpa_blood_cell_types"), sep="\t")
    raw["ihc"] = pd.read_csv(p("hpa_normal_tissue_ihc"), sep="\t", keep_default_na=False)
    raw["subcell"] = pd.read_csv(p("hpa_subcellular_location"), sep="\t")
    raw["pathology"] = pd.read_csv(p("hpa_pathology"), sep="\t")
    raw["v18"] = pd.read_csv(p("hpa_proteinatlas_v18"), sep="\t")
    raw["celline"] = pd.read_csv(p("hpa_cell_lines"), sep="\t")
    raw["pancancer"] = pd.read_csv(p("tcga_medians"))
    raw["evidence"] = pd.read_csv(p("surface_evidence"), sep="\t")
    raw["surfy"] = pd.read_csv(p("surfy"), sep="\t")
    raw["surfy_master"] = pd.read_csv(p("surfy_master"), sep="\t")
    raw["cspa"] = pd.read_csv(p("cspa"), sep="\t")
    raw["cptac"] = pd.read_csv(
        p("cptac_protein_detection"),
        usecols=[
            "cptac_cohort",
            "canonical_gene_id",
            "source_gene_id",
            "n_matched_samples",
            "n_protein_observed",
        ],
    )
    return raw


def marrow_files(shared: Path) -> list[tuple[str, Path, Path]]:  # noqa: D103
    folder = shared / MARROW_DIR
    out = []
    for sample in MARROW_SAMPLES:
        dem = sorted(folder.glob(f"GSM*_{sample}.dem.txt.gz"))
        anno = sorted(folder.glob(f"GSM*_{sample}.anno.txt.gz"))
        if len(dem) != 1 or len(anno) != 1:
            msg = (
                f"Expected one dem and one anno file for {sample} in {folder}; found {dem} {anno}."
            )
            raise SystemExit(msg)
        out.append((sample, dem[0], anno[0]))
    return out


# ----------------------------------------------------------------------------- genes


def ensembl_symbol_pairs(raw: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """(ensembl, symbol, rank) from every Ensembl-keyed source; lower rank = more authoritative."""
    ev = raw["evidence"]
    parts = [
        (ev["ensembl_gene"], ev["hgnc_symbol"]),  # HGNC (2026), authoritative
        (raw["pancancer"]["Ensembl_Gene_ID"], raw["pancancer"]["Symbol"]),  # HPA v23
        (raw["sc"]["Ensembl_Gene_ID"], raw["sc"]["Symbol"]),  # HPA single cell
        (raw["tissue"]["Gene"], raw["tissue"]["Gene.name"]),  # HPA 21.1
        (raw["ihc"]["Gene"], raw["ihc"]["Gene.name"]),
        (raw["subcell"]["Gene"], raw["subcell"]["Gene.name"]),
        (raw["celline"]["Gene"], raw["celline"]["Gene.name"]),  # HPA 19.3
        (raw["v18"]["Ensembl"], raw["v18"]["Gene"]),  # HPA 18
    ]
    frames = []
    for rank, (ens, sym) in enumerate(parts):
        df = pd.DataFrame({"ensembl": strip_version(ens), "symbol": sym.astype("string")})
        df = df.dropna().drop_duplicates()
        df = df[(df["symbol"].str.strip() != "") & df["ensembl"].str.startswith("ENSG")]
        df["rank"] = rank
        frames.append(df)
    # Ensembl ids seen only in the blood table carry no symbol: they get their id as symbol.
    blood = strip_version(raw["blood"]["GeneID"]).drop_duplicates()
    frames.append(pd.DataFrame({"ensembl": blood, "symbol": blood, "rank": len(parts)}))
    pairs = pd.concat(frames, ignore_index=True)
    pairs["symbol"] = pairs["symbol"].str.strip()
    return pairs.sort_values(["ensembl", "rank", "symbol"], kind="stable").reset_index(drop=True)


def resolve_canonical(pairs: pd.DataFrame) -> pd.Series:
    """One unique canonical symbol per Ensembl id.

    Each id takes its symbol from its most authoritative source. When several ids claim the
    same symbol, the claim from the better-ranked source wins (ties: the id seen in more
    sources, then the smaller id). A loser that no source lists beside the ids already
    holding the symbol is the same gene under an id of another Ensembl release (SOD2 is
    ENSG00000291237 in HGNC 2026 and ENSG00000112096 in every HPA table): it keeps the
    symbol, so its data are not lost under a bare Ensembl id. Any other loser falls back to
    its next symbol that is still free, else to its Ensembl id.
    """
    best = pairs.groupby("ensembl", sort=True).first()  # lowest rank (pairs sorted)
    n_sources = pairs.groupby("ensembl")["rank"].nunique()
    cand = pd.DataFrame(
        {"symbol": best["symbol"], "rank": best["rank"], "n": n_sources.reindex(best.index)}
    )
    cand = cand.reset_index().sort_values(
        ["symbol", "rank", "n", "ensembl"], ascending=[True, True, False, True], kind="stable"
    )
    winners = ~cand.duplicated("symbol", keep="first")
    canon = dict(zip(cand.loc[winners, "ensembl"], cand.loc[winners, "symbol"], strict=True))
    taken = set(canon.values())
    alt = pairs.groupby("ensembl")["symbol"].apply(list)
    sources = pairs.groupby("ensembl")["rank"].apply(frozenset)
    # the sources already holding each symbol; a loser listed in none of them is the same
    # gene under another release's id, a loser sharing a source with them is another gene
    held = {sym: set(sources[e]) for e, sym in canon.items()}
    losers = cand.loc[~winners, ["ensembl", "symbol"]]  # by symbol, best-ranked claim first
    for ens, sym in zip(losers["ensembl"], losers["symbol"], strict=True):
        if not held[sym] & sources[ens]:
            canon[ens] = sym
            held[sym] |= sources[ens]
            continue
        choice = next((s for s in alt[ens] if s not in taken), ens)
        canon[ens] = choice
        taken.add(choice)
    return pd.Series(canon, name="symbol").sort_index()


def build_aliases(pairs: pd.DataFrame, canon: pd.Series, v18: pd.DataFrame) -> dict[str, str]:
    """Alias -> canonical symbol, keeping only unambiguous aliases.

    Kind 0: another symbol the same Ensembl id carries in some source (previous symbol);
    kind 1: an HPA v18 "Gene synonym". An alias equal to a canonical symbol is never used;
    an alias claimed by several genes at its best kind is dropped.
    """
    prev = pairs[["ensembl", "symbol"]].rename(columns={"symbol": "alias"}).copy()
    prev["kind"] = 0
    syn = v18[["Ensembl", "Gene synonym"]].dropna()
    syn = syn.assign(alias=syn["Gene synonym"].str.split(",")).explode("alias")
    syn = pd.DataFrame(
        {"ensembl": strip_version(syn["Ensembl"]), "alias": syn["alias"].str.strip(), "kind": 1}
    )
    al = pd.concat([prev, syn], ignore_index=True).dropna()
    al = al[(al["alias"] != "") & ~al["alias"].str.match(r"ENSG\d+")]
    al["target"] = al["ensembl"].map(canon)
    al = al.dropna(subset=["target"])
    canonical = set(canon.values)
    al = al[~al["alias"].isin(canonical) & (al["alias"] != al["target"])]
    al = al.sort_values(["alias", "kind", "target"]).drop_duplicates(["alias", "target"])
    best_kind = al.groupby("alias")["kind"].transform("min")
    al = al[al["kind"] == best_kind]
    n_targets = al.groupby("alias")["target"].transform("nunique")
    al = al[n_targets == 1]
    return dict(zip(al["alias"], al["target"], strict=True))


def resolve_symbols(
    names: Iterable[str], canonical: set[str], aliases: dict[str, str]
) -> dict[str, str]:
    """Resolve symbol-only rows (e.g. the van Galen matrix) to canonical symbols.

    Exact canonical match first, then an unambiguous alias, then a case-insensitive canonical
    match. A name whose target another row of the same table already claims, or that does not
    resolve at all, becomes a new canonical symbol of its own.
    """
    names = list(names)
    upper: dict[str, str] = {}
    for s in sorted(canonical):
        upper.setdefault(s.upper(), s)
    out: dict[str, str] = {}
    claimed: set[str] = {n for n in names if n in canonical}
    for n in names:
        if n in canonical:
            out[n] = n
    for n in sorted(set(names) - set(out)):
        target = aliases.get(n) or upper.get(n.upper())
        if target is not None and target not in claimed:
            out[n] = target
            claimed.add(target)
        else:
            out[n] = n
    return out


# ----------------------------------------------------------------------------- contexts


def hpa_wide(long: pd.DataFrame, value: str, canon: pd.Series) -> pd.DataFrame:  # noqa: D103
    wide = long.pivot(index="Gene", columns="Tissue", values=value)
    wide.index = wide.index.map(canon)
    return wide


def marrow_pseudobulk(shared: Path) -> tuple[pd.DataFrame, pd.Series, list[str], pd.Series]:
    """CPM pseudobulk (sum of counts / sum of library sizes x 1e6) per healthy marrow cell type.

    Returns the genes x cell-type CPM table (all types), the cell count per type, the raw
    gene names of the count matrices and the mean library size (UMIs per cell) per type.
    """
    sums: pd.DataFrame | None = None
    libs = pd.Series(dtype=np.float64)
    cells = pd.Series(dtype=np.int64)
    genes: list[str] | None = None
    for _sample, dem, anno in marrow_files(shared):
        counts = pd.read_csv(dem, sep="\t", index_col=0)
        ann = pd.read_csv(anno, sep="\t", index_col=0)
        ct = ann["CellType"].reindex(counts.columns)
        if ct.isna().any():
            msg = f"{dem.name}: {int(ct.isna().sum())} cells lack a CellType in {anno.name}."
            raise SystemExit(msg)
        s = counts.T.groupby(ct.to_numpy()).sum().T.astype(np.float64)
        lib = counts.sum(axis=0).groupby(ct.to_numpy()).sum().astype(np.float64)
        n = ct.value_counts()
        sums = s if sums is None else sums.add(s, fill_value=0)
        libs = libs.add(lib, fill_value=0)
        cells = cells.add(n, fill_value=0)
        if genes is None:
            genes = list(counts.index)
        elif list(counts.index) != genes:
            msg = f"{dem.name}: gene rows differ from the other marrow samples."
            raise SystemExit(msg)
    assert sums is not None
    assert genes is not None
    cpm = sums.div(libs.reindex(sums.columns), axis=1) * 1e6
    mean_library = libs.reindex(cells.index) / cells
    return cpm, cells.astype(np.int64), genes, mean_library


def marrow_measured_fraction(
    shared: Path, marrow_map: dict[str, str], keep: Iterable[str]
) -> tuple[pd.DataFrame, dict[str, object]]:
    """Measured positive fraction per gene and healthy marrow cell type.

    The healthy donor cells go through the tumour cells' own positivity rule, by the code
    that measures any healthy atlas (:func:`antigenscout.atlas.build_atlas`): ``knn`` at the
    calibrated threshold, neighbours pooled within each donor *and labelled cell type* (a
    small type no longer inherits its neighbours' genes: the 20 HSCs of one donor read CD33
    in 55% of cells from 0 of 20 raw detections when pooled across types), each donor's
    ambient RNA estimated from its cell types and discounted from every call. The fraction
    is the share of positive cells of the type.
    """
    import anndata as ad  # noqa: PLC0415
    from scipy import sparse  # noqa: PLC0415

    from antigenscout.atlas import build_atlas  # noqa: PLC0415
    from antigenscout.pp import DEFAULT_N_NEIGHBORS, DEFAULT_THRESHOLD  # noqa: PLC0415

    keep = sorted(keep)
    mats, types, donors, genes = [], [], [], None
    for sample, dem, anno in marrow_files(shared):
        counts = pd.read_csv(dem, sep="\t", index_col=0)
        ann = pd.read_csv(anno, sep="\t", index_col=0)
        ct = ann["CellType"].reindex(counts.columns).astype(str)
        genes = list(counts.index)
        mats.append(sparse.csr_matrix(counts.to_numpy(dtype=np.float32).T))
        types.append(ct.to_numpy())
        donors.append(np.repeat(sample, len(ct)))
    assert genes is not None
    adata = ad.AnnData(X=sparse.vstack(mats, format="csr"))
    adata.var_names = pd.Index(genes).astype(str)
    adata.var_names_make_unique()
    adata.obs["cell_type"] = np.concatenate(types)
    adata.obs["donor"] = np.concatenate(donors)
    atlas = build_atlas(adata, cell_type_key="cell_type", donor_key="donor", name="marrow")
    frac = atlas.fraction.reindex(columns=keep).to_numpy(dtype=np.float64)
    out = pd.DataFrame(round_sig(frac), index=[marrow_map[g] for g in genes], columns=keep)
    out = out.add_prefix("marrow:").astype(np.float32)
    out = out[(out > 0).any(axis=1)]
    out.index.name = "symbol"
    params = {
        "method": "knn",
        "threshold_cp10k": DEFAULT_THRESHOLD,
        "n_neighbors": DEFAULT_N_NEIGHBORS,
        "graph": "within each donor and cell type (as tumour cells within each patient and "
        "compartment)",
        "ambient": "each donor's soup (pooled expression) and contamination discounted "
        "(antigenscout.pp._ambient)",
        "ambient_contamination": atlas.metadata.get("build", {}).get("ambient_contamination"),
    }
    return out, params


def load_annotations() -> pd.DataFrame:  # noqa: D103
    ann = pd.read_csv(ANNOTATIONS, sep="\t", dtype=str, keep_default_na=False)
    if list(ann.columns) != ANNOTATION_COLUMNS:
        msg = f"{ANNOTATIONS}: columns must be {ANNOTATION_COLUMNS}, got {list(ann.columns)}."
        raise SystemExit(msg)
    if ann["context"].duplicated().any():
        dup = ann.loc[ann["context"].duplicated(), "context"].tolist()
        msg = f"{ANNOTATIONS}: duplicated contexts {dup}."
        raise SystemExit(msg)
    ann["vital_weight"] = pd.to_numeric(ann["vital_weight"], errors="coerce")
    bad = ann.loc[~ann["vital_weight"].between(0, 1), "context"].tolist()
    bad += ann.loc[~ann["immune_privileged"].isin(["true", "false"]), "context"].tolist()
    bad += ann.loc[~ann["pregnancy"].isin(["true", "false"]), "context"].tolist()
    bad += ann.loc[~ann["polarised"].isin(["true", "false"]), "context"].tolist()
    bad += ann.loc[~ann["barrier"].isin(BARRIERS), "context"].tolist()
    bad += ann.loc[~ann["kind"].isin(["cell_type", "tissue"]), "context"].tolist()
    bad += ann.loc[ann[ANNOTATION_COLUMNS].eq("").any(axis=1), "context"].tolist()
    if bad:
        msg = f"{ANNOTATIONS}: invalid or incomplete annotation rows {sorted(set(bad))}."
        raise SystemExit(msg)
    ann["immune_privileged"] = ann["immune_privileged"].eq("true")
    ann["pregnancy"] = ann["pregnancy"].eq("true")
    ann["polarised"] = ann["polarised"].eq("true")
    return ann.set_index("context")


# ----------------------------------------------------------------------------- tables


def build_ihc(raw: pd.DataFrame, canon: pd.Series, contexts: pd.Index) -> pd.DataFrame:  # noqa: D103
    df = raw[raw["Level"].isin(list(IHC_LEVELS))].copy()
    df = df[df["Tissue"].ne("N/A")]
    tissue_norm = df["Tissue"].str.replace(r"\s+\d+$", "", regex=True)
    tissue_norm = tissue_norm.replace(IHC_TISSUE_ALIASES)
    ctx = "tissue:" + tissue_norm
    ctx = ctx.where(ctx.isin(contexts))
    out = pd.DataFrame(
        {
            "symbol": strip_version(df["Gene"]).map(canon).to_numpy(),
            "tissue": df["Tissue"].to_numpy(),
            "cell_type": df["Cell.type"].to_numpy(),
            "level": df["Level"].map(IHC_LEVELS).astype(np.int8).to_numpy(),
            "reliability": df["Reliability"].to_numpy(),
            "context": ctx.to_numpy(),
        }
    )
    out = out.sort_values(["symbol", "tissue", "cell_type"], kind="stable").reset_index(drop=True)
    for col in ("symbol", "tissue", "cell_type", "reliability", "context"):
        out[col] = out[col].astype("category")
    return out


#: SURFY's "topology source" starts with the source of the string it kept: UniProt's annotated
#: topology, or a Phobius prediction (plain or "constrained" by CSPA peptides) where UniProt
#: had none or SURFY preferred it; "CSPA confirmed" means glycopeptides captured on intact
#: cells (Bausch-Fluck 2015) lie in the string's non-cytoplasmic segments.
TOPOLOGY_SOURCES = ("uniprot", "phobius")


def topology_source(text: pd.Series) -> pd.Series:
    """``uniprot``, ``phobius`` or ``phobius-cspa`` (a Phobius string CSPA confirmed)."""
    text = text.astype("string")
    source = text.str.extract(r"^(?:constrained )?(\w+)")[0]
    bad = sorted(set(source.dropna()) - set(TOPOLOGY_SOURCES))
    if bad:
        msg = f"SURFY: unknown topology sources {bad}."
        raise SystemExit(msg)
    confirmed = text.str.contains("CSPA confirmed", regex=False).fillna(False)
    return source.mask(source.eq("phobius") & confirmed, "phobius-cspa")


def master_topology(
    master: pd.DataFrame, ev_acc: pd.DataFrame, resolve_sym: dict[str, str]
) -> pd.DataFrame:
    """One Swiss-Prot entry per gene symbol from SURFY's master table, with its topology.

    Each entry maps to the symbols HGNC gives its accession (``ev_acc``: ``uniprot_acc``,
    ``symbol``), else to its ``UniProt gene`` name resolved like any symbol. Where several
    entries map to one symbol, the kept one is, in order: the accession HGNC lists for the
    symbol, an entry with a topology string, a UniProt rather than a Phobius topology, the
    longest sequence, the smallest accession.

    Returns
    -------
    DataFrame indexed by symbol: ``accession``, ``topology`` (NA when the entry has neither
    a helix nor a signal peptide), ``topology_source`` (:func:`topology_source`; NA),
    ``n_tm`` (0 when there is no topology string: SURFY analysed the entry and found none),
    ``gpi`` (SURFY's label source ``GPI (UniProt)``), ``training`` (SURFY's curated
    training label, ``surface`` or ``nonsurface``; NA for entries outside its training set)
    and ``n_entries`` (entries that mapped).
    """
    m = master.rename(columns={"UniProt accession": "accession"})
    m = m.assign(
        topology=m["topology"].astype("string").str.strip().replace("", pd.NA),
        source=topology_source(m["topology source"]),
    )
    by_acc = m.merge(ev_acc, left_on="accession", right_on="uniprot_acc", how="inner")
    by_acc["hgnc"] = True
    rest = m[~m["accession"].isin(ev_acc["uniprot_acc"])]
    gene = rest["UniProt gene"].astype("string").str.strip()
    rest = rest.assign(symbol=gene.map(resolve_sym), hgnc=False).dropna(subset=["symbol"])
    rows = pd.concat([by_acc.drop(columns=["uniprot_acc"]), rest], ignore_index=True)
    rows["has_topology"] = rows["topology"].notna()
    rows["uniprot_topology"] = rows["source"].eq("uniprot").fillna(False)
    rows = rows.sort_values(
        ["symbol", "hgnc", "has_topology", "uniprot_topology", "length", "accession"],
        ascending=[True, False, False, False, False, True],
        kind="stable",
    )
    n_entries = rows.groupby("symbol").size()
    best = rows.drop_duplicates("symbol").set_index("symbol")
    tm = pd.to_numeric(best["TM domains"], errors="coerce")
    return pd.DataFrame(
        {
            "accession": best["accession"].astype("string"),
            "topology": best["topology"],
            "topology_source": best["source"].where(best["has_topology"]).astype("string"),
            "n_tm": tm.where(best["has_topology"], 0).astype("Int16"),
            "gpi": best["Surfaceome Label Source"].eq("GPI (UniProt)").to_numpy(),
            "training": best["MachineLearning trainingset"].astype("string").str.strip(),
            "n_entries": n_entries.reindex(best.index).astype(int),
        },
        index=best.index.rename("symbol"),
    )


def build_surface(  # noqa: D103, PLR0915
    raw: dict[str, pd.DataFrame],
    canon: pd.Series,
    resolve_sym: dict[str, str],
) -> pd.DataFrame:
    ev = raw["evidence"].copy()
    ens = strip_version(ev["ensembl_gene"])
    ev["symbol"] = ens.map(canon).fillna(ev["hgnc_symbol"].map(resolve_sym))
    ev_acc = ev[["uniprot_acc", "symbol"]].dropna().drop_duplicates()
    ev = ev.dropna(subset=["symbol"]).drop_duplicates("symbol").set_index("symbol")
    flags = pd.DataFrame(
        {
            "uniprot": ev["uniprot_surface_flag"].eq(1),
            "go": ev["go_surface_flag"].eq(1),
            "hpa": ev["hpa_surface_flag"].eq(1),
            "surfy": ev["surfy_surface_flag"].eq(1),
            "cspa": ev["cspa_surface_flag"].eq(1),
        }
    )

    def to_symbol(ens_col: pd.Series | None, sym_col: pd.Series) -> pd.Series:
        sym = sym_col.astype("string").str.strip().map(resolve_sym)
        if ens_col is not None:
            first = ens_col.astype("string").str.split(";").str[0]
            sym = strip_version(first).map(canon).fillna(sym)
        return sym

    # SURFY in silico surfaceome: every row is labelled 'surface'; keep the best ML score.
    sf = raw["surfy"]
    sf = sf.assign(symbol=to_symbol(sf["Ensembl gene"], sf["UniProt gene"].fillna("")))
    sf = sf[sf["Surfaceome Label"].eq("surface")].dropna(subset=["symbol"])
    sf = sf.sort_values(["symbol", "MachineLearning score"], ascending=[True, False])
    sf = sf.drop_duplicates("symbol").set_index("symbol")
    # CSPA: high-confidence experimental surface detection.
    cs = raw["cspa"]
    cs = cs.assign(symbol=to_symbol(None, cs["ENTREZ gene symbol"].fillna("")))
    cs = cs.dropna(subset=["symbol"])
    cs_high = set(cs.loc[cs["CSPA category"].eq("1 - high confidence"), "symbol"])
    # HPA v18 protein classes.
    v18 = raw["v18"]
    v18 = v18.assign(symbol=to_symbol(v18["Ensembl"], v18["Gene"])).dropna(subset=["symbol"])
    v18 = v18.drop_duplicates("symbol").set_index("symbol")
    pclass = v18["Protein class"].fillna("")

    index = flags.index.union(sf.index).union(pd.Index(sorted(cs_high))).sort_values()
    flags = flags.reindex(index, fill_value=False).astype(bool)
    flags["surfy"] |= index.isin(sf.index)
    flags["cspa"] |= index.isin(list(cs_high))
    cd_marker = pclass.str.contains("CD markers").reindex(index, fill_value=False).astype(bool)
    flags["hpa"] |= cd_marker

    surf = flags.copy()
    surf["n_sources"] = flags.sum(axis=1).astype(np.int8)
    # nuclear protein-coding loci: HGNC's protein-coding genes (the evidence table's
    # universe) and the constant segments of antigen receptors (IGHM, TRGC2: on B and T
    # cells), never mitochondrially encoded genes (inner-membrane proteins; they reach the
    # table through aliases); SURFY adds pseudogenes (HLA-H, OR*P) and unnamed loci
    names = index.to_series().astype(str)
    receptor_segment = names.str.match(
        r"^(IGH(M|D|E|G[1-4]|A[12])|IGKC|IGLC[1-7]|TRAC|TRDC|TR[BG]C[12])$"
    )
    surf["protein_coding"] = (index.isin(ev.index) | receptor_segment.to_numpy()) & ~(
        names.str.startswith("MT-").to_numpy()
    )
    cd_surfy = sf["CD number"].dropna().astype(str).str.strip()
    cd_cspa = cs.loc[~cs["CD"].isin(["no", ""]) & cs["CD"].notna(), ["symbol", "CD"]]
    cd_cspa = cd_cspa.drop_duplicates("symbol").set_index("symbol")["CD"].astype(str)
    cd = cd_surfy.reindex(index).fillna(cd_cspa.reindex(index))
    surf["cd"] = cd.astype("string")
    surf["surfy_ml_score"] = sf["MachineLearning score"].reindex(index).astype(np.float32)
    surf["hpa_predicted_membrane"] = (
        pclass.str.contains("Predicted membrane proteins").reindex(index, fill_value=False)
    ).astype(bool)
    surf["hpa_cd_marker"] = cd_marker
    score = sum(w * flags[k].astype(np.float64) for k, w in SURFACE_WEIGHTS.items())
    surf["surface_evidence"] = np.round(score, 4).astype(np.float32)
    strong = flags["uniprot"] | flags["cspa"] | flags["surfy"]
    has_cd = surf["cd"].notna().to_numpy()
    surf["is_surface"] = strong & ((score >= SURFACE_THRESHOLD) | has_cd)

    # ---- HPA 21.1 subcellular location (immunofluorescence) and UniProt locations
    sub = raw["subcell"]
    sub = sub.assign(symbol=strip_version(sub["Gene"]).map(canon)).dropna(subset=["symbol"])
    sub = sub.drop_duplicates("symbol").set_index("symbol")
    surf["subcellular_main"] = sub["Main.location"].reindex(index).astype("string")
    pairs_loc = zip(sub["Main.location"], sub["Additional.location"], strict=True)
    hpa_locs = pd.Series([hpa_locations(m, a) for m, a in pairs_loc], index=sub.index, dtype=object)
    hpa_comp = hpa_locs.map(hpa_compartments)
    surf["hpa_plasma_membrane"] = (
        hpa_comp.map(lambda c: "plasma-membrane" in c).reindex(index, fill_value=False)
    ).astype(bool)
    surf["hpa_compartments"] = (
        hpa_comp.map(lambda c: join_compartments(c - {"plasma-membrane"}))
        .reindex(index)
        .astype("string")
    )
    surf["hpa_reliability"] = sub["Reliability"].reindex(index).astype("string")
    # ---- reachability: topology, anchors, soluble forms, endocytosis (docs/modalities.md)
    topo = master_topology(raw["surfy_master"], ev_acc, resolve_sym).reindex(index)
    # surfaceome rows whose symbol came from SURFY's Ensembl id and no master entry maps to
    # (unnamed loci, a few pseudogenes): keep SURFY's own topology for them, as before
    sf_only = sf.index[sf["topology"].notna()].intersection(index[topo["accession"].isna()])
    if len(sf_only):
        topo.loc[sf_only, "accession"] = sf.loc[sf_only, "UniProt accession"]
        topo.loc[sf_only, "topology"] = sf.loc[sf_only, "topology"]
        topo.loc[sf_only, "topology_source"] = topology_source(sf.loc[sf_only, "topology source"])
        topo.loc[sf_only, "n_tm"] = sf.loc[sf_only, "TM domains"]
    ecto = topo["topology"].dropna().map(ectodomain)
    surf["ectodomain_aa"] = ecto.map(lambda e: e.largest_aa).reindex(index).astype("Int32")
    surf["ectodomain_total_aa"] = ecto.map(lambda e: e.total_aa).reindex(index).astype("Int32")
    surf["n_tm"] = topo["n_tm"].astype("Int16")
    surf["topology_source"] = topo["topology_source"].astype("string")
    surf["signal_peptide"] = topo["topology"].str.contains("SP:", regex=False).astype("boolean")
    surf["uniprot_accession"] = topo["accession"].astype("string")
    surf["surfy_training"] = topo["training"].astype("string")
    up_loc = sf["UniProt subcellular"].fillna("").reindex(index, fill_value="")
    surf["uniprot_compartments"] = (
        up_loc.map(lambda t: join_compartments(uniprot_compartments(uniprot_locations(t))))
    ).astype("string")
    surf["epithelial_side"] = up_loc.map(lambda t: epithelial_side(uniprot_locations(t))).astype(
        "string"
    )
    gpi_cspa = set(cs.loc[cs["GPI"].eq(1), "symbol"])
    surf["gpi_anchor"] = (
        up_loc.str.contains("GPI-anchor", regex=False)
        | index.isin(list(gpi_cspa))
        | topo["gpi"].fillna(False).astype(bool).to_numpy()
    )
    surf["cspa_category"] = (
        cs.drop_duplicates("symbol")
        .set_index("symbol")["CSPA category"]
        .str.extract(r"^(\d)")[0]
        .reindex(index)
        .astype("Int8")
    )
    surf["secreted_form"] = up_loc.str.contains("Secreted", regex=False) | pclass.str.contains(
        "Predicted secreted proteins"
    ).reindex(index, fill_value=False).astype(bool)
    # internalisation witnessed by UniProt (endosome, lysosome, endocytic vesicles) or by HPA
    # (Endosomes, Lysosomes; not Uncertain); the score credits it only for proteins that are
    # not organelle residents (tl._targetability)
    hpa_endo = hpa_locs.map(lambda locs: bool(HPA_ENDOCYTIC.intersection(locs))) & sub[
        "Reliability"
    ].ne("Uncertain")
    surf["endocytic"] = up_loc.str.contains(
        "Endosome|Lysosome|clathrin-coated|Cytoplasmic vesicle", regex=True
    ) | hpa_endo.reindex(index, fill_value=False).astype(bool)
    surf["hpa_predicted_intracellular"] = (
        pclass.str.contains("Predicted intracellular proteins")
        .reindex(index, fill_value=False)
        .astype(bool)
    )
    surf.index.name = "symbol"
    return surf


def build_pathology(raw: pd.DataFrame, canon: pd.Series) -> pd.DataFrame:
    """HPA tumour IHC: patients per staining level, per gene and cancer (rows with data)."""
    levels = ["High", "Medium", "Low", "Not.detected"]
    df = raw.assign(symbol=strip_version(raw["Gene"]).map(canon)).dropna(subset=["symbol"])
    df = df.dropna(subset=levels, how="all")
    counts = df[levels].fillna(0).astype(np.int16)
    counts.columns = ["high", "medium", "low", "not_detected"]
    out = pd.concat([df[["symbol", "Cancer"]].rename(columns={"Cancer": "cancer"}), counts], axis=1)
    out = out[counts.sum(axis=1) > 0]
    out = out.drop_duplicates(["symbol", "cancer"]).sort_values(["symbol", "cancer"])
    for col in ("symbol", "cancer"):
        out[col] = out[col].astype("category")
    return out.reset_index(drop=True)


def cptac_symbols(raw: pd.DataFrame, canon: pd.Series) -> pd.Series:
    """Canonical symbol of each CPTAC row: of its canonical Ensembl id, else of its source id."""
    symbol = strip_version(raw["canonical_gene_id"]).map(canon)
    return symbol.fillna(strip_version(raw["source_gene_id"]).map(canon))


def build_cptac(raw: pd.DataFrame, canon: pd.Series) -> pd.DataFrame:
    """CPTAC tumour proteomes: patients whose tumour's protein was detected, per gene and cohort.

    One row per canonical symbol x CPTAC cohort with ``cancer`` (the HPA cancer type of the
    cohort, :data:`CPTAC_COHORTS`), ``cohort``, ``n_patients`` (tumours with matched RNA and
    protein) and ``n_detected`` (tumours whose protein was quantified at any level). A gene
    keeps its CPTAC canonical Ensembl id's symbol, else its source id's; genes that map to no
    symbol are dropped. The source lists only proteins detected in at least one tumour, so a
    missing row means "not quantified in that cohort", which the table cannot tell apart from
    "detected in no tumour".
    """
    unknown = sorted(set(raw["cptac_cohort"]) - set(CPTAC_COHORTS))
    if unknown:
        msg = f"CPTAC cohorts without an HPA cancer type: {unknown}; extend CPTAC_COHORTS."
        raise SystemExit(msg)
    symbol = cptac_symbols(raw, canon)
    out = pd.DataFrame(
        {
            "symbol": symbol.to_numpy(),
            "cancer": raw["cptac_cohort"].map(CPTAC_COHORTS).to_numpy(),
            "cohort": raw["cptac_cohort"].to_numpy(),
            "n_patients": raw["n_matched_samples"].to_numpy(),
            "n_detected": raw["n_protein_observed"].to_numpy(),
        }
    ).dropna(subset=["symbol"])
    if out.duplicated(["symbol", "cohort"]).any():
        msg = "CPTAC: two genes of one cohort map to the same symbol."
        raise SystemExit(msg)
    bad = (out["n_detected"] < 0) | (out["n_detected"] > out["n_patients"])
    if bad.any():
        msg = f"CPTAC: {int(bad.sum())} rows detect the protein in more tumours than measured."
        raise SystemExit(msg)
    out = out.sort_values(["symbol", "cohort"]).reset_index(drop=True)
    for col in ("symbol", "cancer", "cohort"):
        out[col] = out[col].astype("category")
    for col in ("n_patients", "n_detected"):
        out[col] = out[col].astype(np.int32)
    return out


def build_tcga(raw: pd.DataFrame, canon: pd.Series) -> pd.DataFrame:  # noqa: D103
    cols = [c for c in raw.columns if c.startswith("FPKM_")]
    df = raw.set_index(strip_version(raw["Ensembl_Gene_ID"]).map(canon))[cols]
    df.columns = [c.removeprefix("FPKM_") for c in cols]
    df = df.sort_index()
    df.index.name = "symbol"
    return pd.DataFrame(
        round_sig(df.to_numpy()).astype(np.float32), index=df.index, columns=df.columns
    )


def build_cell_lines(raw: pd.DataFrame, canon: pd.Series) -> pd.DataFrame:  # noqa: D103
    wide = raw.pivot(index="Gene", columns="Cell.line", values="TPM")
    wide.index = strip_version(wide.index.to_series()).map(canon)
    wide = wide.sort_index().sort_index(axis=1)
    wide.index.name = "symbol"
    wide.columns.name = None
    return pd.DataFrame(
        round_sig(wide.to_numpy()).astype(np.float32), index=wide.index, columns=wide.columns
    )


# ----------------------------------------------------------------------------- main


def build(shared: Path, out: Path, datasets_out: Path, argv: list[str]) -> dict[str, int]:  # noqa: D103, PLR0915
    shared = shared.resolve()
    raw = read_sources(shared)
    pairs = ensembl_symbol_pairs(raw)
    canon = resolve_canonical(pairs)
    pairs_rank = pairs.groupby("ensembl")["rank"].min()
    aliases = build_aliases(pairs, canon, raw["v18"])

    cpm, n_cells, marrow_genes, mean_library = marrow_pseudobulk(shared)
    marrow_map = resolve_symbols(marrow_genes, set(canon.values), aliases)
    new_symbols = sorted(set(marrow_map.values()) - set(canon.values))
    for s in new_symbols:  # a name that became canonical can no longer be an alias
        aliases.pop(s, None)

    # ---- expression (genes x contexts)
    sc = raw["sc"].set_index(strip_version(raw["sc"]["Ensembl_Gene_ID"]).map(canon))
    sc = sc.drop(columns=["Ensembl_Gene_ID", "Symbol"]).add_prefix("sc:")
    tissue = hpa_wide(raw["tissue"], "nTPM", canon).add_prefix("tissue:")
    blood = raw["blood"].set_index(strip_version(raw["blood"]["GeneID"]).map(canon))
    blood = blood.drop(columns=["GeneID", "total_PBMC"]).add_prefix("blood:")
    keep = n_cells[n_cells >= MIN_MARROW_CELLS].index
    marrow = cpm[sorted(keep)].copy()
    marrow.index = marrow.index.map(marrow_map)
    marrow = pd.DataFrame(round_sig(marrow.to_numpy()), index=marrow.index, columns=marrow.columns)
    marrow = marrow.add_prefix("marrow:")
    for name, df in {"sc": sc, "tissue": tissue, "blood": blood, "marrow": marrow}.items():
        if not df.index.is_unique or df.index.isna().any():
            msg = f"{name}: gene index not unique after mapping to canonical symbols."
            raise SystemExit(msg)

    ann = load_annotations()
    data_ctx = [*sc.columns, *tissue.columns, *blood.columns, *marrow.columns]
    missing = sorted(set(data_ctx) - set(ann.index))
    extra = sorted(set(ann.index) - set(data_ctx))
    if missing or extra:
        msg = (
            f"contexts.tsv does not match the data: contexts without annotation {missing}; "
            f"annotations without data {extra}. Edit {ANNOTATIONS}."
        )
        raise SystemExit(msg)
    genes_expr = sorted(set(sc.index) | set(tissue.index) | set(blood.index) | set(marrow.index))
    expr = pd.concat([d.reindex(genes_expr) for d in (sc, tissue, blood, marrow)], axis=1).reindex(
        columns=list(ann.index)
    )
    expr = expr.astype(np.float32)
    expr.index.name = "symbol"
    expr.columns.name = None

    contexts = ann.copy()
    contexts["n_cells"] = pd.array(
        [
            n_cells.get(c.removeprefix("marrow:")) if c.startswith("marrow:") else None
            for c in contexts.index
        ],
        dtype="Int64",
    )
    # UMIs per cell: how many reads a level can show in a measured context (docs/engagement.md)
    contexts["mean_library"] = pd.array(
        [
            round(float(mean_library[c.removeprefix("marrow:")]))
            if c.startswith("marrow:")
            else None
            for c in contexts.index
        ],
        dtype="Float32",
    )
    contexts["vital_weight"] = contexts["vital_weight"].astype(np.float32)
    for col in ("name", "kind", "source", "tissue", "system", "rationale"):
        contexts[col] = contexts[col].astype("string")

    # ---- genes
    # a symbol whose gene has ids of several Ensembl releases lists them all (HGNC's first)
    ens_of = (
        pd.Series(canon.index.to_numpy(), index=canon.to_numpy())
        .groupby(level=0, sort=False)
        .agg(lambda ids: "|".join(sorted(ids, key=lambda e: (pairs_rank[e], e))))
    )
    symbols = sorted(set(canon.values) | set(new_symbols))
    syn_lists: dict[str, list[str]] = {}
    for alias, target in aliases.items():
        syn_lists.setdefault(target, []).append(alias)
    genes = pd.DataFrame(index=pd.Index(symbols, name="symbol"))
    genes["ensembl_id"] = ens_of.reindex(genes.index).astype("string")
    genes["synonyms"] = pd.array(
        ["|".join(sorted(syn_lists.get(s, []))) for s in symbols], dtype="string"
    )

    resolve_sym = dict(aliases)
    resolve_sym.update({s: s for s in symbols})
    ihc = build_ihc(raw["ihc"], canon, contexts.index)
    surface = build_surface(raw, canon, resolve_sym)
    tcga = build_tcga(raw["pancancer"], canon)
    pathology = build_pathology(raw["pathology"], canon)
    cptac = build_cptac(raw["cptac"], canon)
    lines = build_cell_lines(raw["celline"], canon)
    measured, measured_params = marrow_measured_fraction(shared, marrow_map, keep)
    protein, protein_params = blood_protein_table(shared)
    protein = protein[protein["gene"].isin(genes.index) & protein["context"].isin(contexts.index)]

    out.mkdir(parents=True, exist_ok=True)
    datasets_out.mkdir(parents=True, exist_ok=True)
    files = {
        out / "genes.parquet": genes,
        out / "contexts.parquet": contexts,
        out / "expression.parquet": expr,
        out / "ihc.parquet": ihc,
        out / "surface.parquet": surface,
        out / "fraction.parquet": measured,
        out / "pathology.parquet": pathology,
        out / "cptac.parquet": cptac,
        out / "protein.parquet": protein.reset_index(drop=True),
        datasets_out / "tcga_medians.parquet": tcga,
        datasets_out / "hpa_cell_lines.parquet": lines,
    }
    for path, df in files.items():
        write_parquet(df, path)

    # ---- metadata
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    when = dt.datetime.fromtimestamp(int(epoch), dt.UTC) if epoch else dt.datetime.now(dt.UTC)
    sources = {}
    for key, info in SOURCES.items():
        sources[key] = {**info, "sha256": sha256(shared / info["path"])}
    for sample, dem, anno in marrow_files(shared):
        for kind, f in (("counts", dem), ("annotation", anno)):
            sources[f"vangalen2019_{sample}_{kind}"] = {
                "path": str(f.relative_to(shared)),
                "version": MARROW_VERSION,
                "licence": MARROW_LICENCE,
                "sha256": sha256(f),
            }
    sources["kotliarov2020_pbmc_citeseq"] = {
        "path": PROTEIN_FILE,
        "version": f"{PROTEIN_DATASET} (niaid/dsb @aab21279)",
        "licence": "CC0",
        "sha256": sha256(shared / PROTEIN_FILE),
    }
    sources["contexts_annotation"] = {
        "path": str(ANNOTATIONS.relative_to(REPO)),
        "version": "hand-curated (antigenscout)",
        "licence": "BSD-3-Clause (antigenscout)",
        "sha256": sha256(ANNOTATIONS),
    }
    units = {
        "expression": {
            "sc:": "nTPM (HPA single-cell type consensus)",
            "tissue:": "nTPM (HPA consensus tissue)",
            "blood:": "nTPM (HPA blood cell types)",
            "marrow:": "CPM pseudobulk (sum UMI / sum library size x 1e6), 3 significant digits",
        },
        "tcga_medians": "FPKM-like median per TCGA cohort, 3 significant digits",
        "hpa_cell_lines": "TPM (HPA 19.3 cell lines), 3 significant digits",
    }
    meta = {
        "name": "antigenscout healthy reference",
        "build_date": when.date().isoformat(),
        "build_command": " ".join(["python scripts/build_reference.py", *argv]),
        "library_versions": {"pandas": pd.__version__, "pyarrow": pa.__version__},
        "sources": sources,
        "units": units,
        "marrow": {
            "samples": list(MARROW_SAMPLES),
            "min_cells": MIN_MARROW_CELLS,
            "cells_per_type": {k: int(v) for k, v in sorted(n_cells.items())},
            "kept": [str(k) for k in sorted(keep)],
            "genes_new_symbols": len(new_symbols),
        },
        "measured_fraction": {
            **measured_params,
            "contexts": list(measured.columns),
            "genes": len(measured),
        },
        "protein_fraction": {
            **protein_params,
            "measured_at_cp10k": measured_params.get("threshold_cp10k"),
            "genes": int(protein["gene"].nunique()),
            "contexts": sorted(protein["context"].unique().tolist()),
        },
        "surface": {"weights": SURFACE_WEIGHTS, "threshold": SURFACE_THRESHOLD},
        "cptac": {
            "cohorts": CPTAC_COHORTS,
            "patients_per_cohort": {
                str(k): int(v)
                for k, v in cptac.groupby("cohort", observed=True)["n_patients"].max().items()
            },
            "rows": len(cptac),
            "genes": int(cptac["symbol"].nunique()),
            "genes_unmapped": int(
                raw["cptac"]
                .loc[cptac_symbols(raw["cptac"], canon).isna(), "canonical_gene_id"]
                .nunique()
            ),
        },
        "ihc_tissue_aliases": IHC_TISSUE_ALIASES,
        "counts": {
            "genes": len(genes),
            "expression_genes": len(expr),
            "contexts": len(contexts),
            "contexts_by_source": {
                k: int(v) for k, v in contexts.index.str.split(":").str[0].value_counts().items()
            },
            "aliases": len(aliases),
            "ihc_rows": len(ihc),
            "surface_genes": len(surface),
            "is_surface": int(surface["is_surface"].sum()),
        },
        "files": {p.name: {"sha256": sha256(p), "bytes": p.stat().st_size} for p in files},
    }
    (out / "metadata.json").write_text(json.dumps(meta, indent=2, sort_keys=False) + "\n")
    return {
        str(p.relative_to(REPO)) if p.is_relative_to(REPO) else str(p): p.stat().st_size
        for p in [*files, out / "metadata.json"]
    }


def main(argv: list[str] | None = None) -> int:  # noqa: D103
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument(
        "--out", type=Path, default=REPO / "src" / "antigenscout" / "reference" / "data"
    )
    parser.add_argument(
        "--datasets-out", type=Path, default=REPO / "src" / "antigenscout" / "datasets" / "data"
    )
    args = parser.parse_args(argv)
    sizes = build(args.shared, args.out, args.datasets_out, argv)
    for path, size in sizes.items():
        print(f"{size / 1e6:8.3f} MB  {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
