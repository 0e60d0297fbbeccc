"""Loaders of real public datasets and of the packaged tumour and cell-line tables.

The datasets: van Galen 2019 AML marrow, Triana 2021 CITE-seq, and the packaged TCGA tumour
medians and HPA cell-line tables.
"""

from __future__ import annotations

import gzip
import os
import re
import warnings
from collections.abc import Iterable
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from .._errors import InputError

__all__ = [
    "DEMO_FILE",
    "TCGA_HPA_CANCER",
    "VANGALEN_STEM_PROGENITOR",
    "add_vangalen_compartment",
    "citeseq_triana2021",
    "demo",
    "hpa_cell_lines",
    "tcga_medians",
    "vangalen2019",
]

#: File name of the packaged van Galen 2019 subset, in ``antigenscout/datasets/data``.
DEMO_FILE = "vangalen2019_demo.h5ad"

#: van Galen 2019 malignant cell types counted as the stem/progenitor compartment.
VANGALEN_STEM_PROGENITOR: tuple[str, ...] = ("HSC-like", "Prog-like")


def add_vangalen_compartment(adata: AnnData, key: str = "compartment") -> None:
    """Set ``obs[key]`` to ``'stem_progenitor'`` for HSC-like and Prog-like cells, else ``'other'``.

    HSC-like and Prog-like are van Galen 2019 ``cell_type`` labels.
    """
    stem = adata.obs["cell_type"].astype(str).isin(VANGALEN_STEM_PROGENITOR)
    adata.obs[key] = np.where(stem, "stem_progenitor", "other")


#: Columns of the van Galen annotation renamed to the package's obs names.
_VG_RENAME = {"PredictionRefined": "malignant", "CellType": "cell_type"}
_VG_CATEGORICAL = ("patient", "sample", "condition", "malignant", "cell_type")
_VG_FILE = re.compile(r"^(?P<gsm>GSM\d+)_(?P<sample>.+)\.(?P<what>dem|anno)\.txt(?:\.gz)?$")


def _data_path(name: str, *, rebuild: str) -> resources.abc.Traversable:
    """Return a packaged data file, or raise an error naming the rebuild script if it is missing."""
    res = resources.files("antigenscout.datasets").joinpath("data", name)
    if not res.is_file():
        msg = (
            f"the packaged file {name} is missing from antigenscout/datasets/data; "
            f"reinstall antigenscout or run {rebuild}"
        )
        raise InputError(msg)
    return res


# --------------------------------------------------------------------------- van Galen 2019


def vangalen2019(
    path: str | os.PathLike[str],
    *,
    patients: Iterable[str] | None = None,
) -> AnnData:
    """Load van Galen et al. 2019 (GEO GSE116256) AML and healthy marrow Seq-Well data.

    Reads every ``GSM*_<sample>.dem.txt.gz`` (UMI counts, genes × cells) in ``path`` with its
    ``GSM*_<sample>.anno.txt.gz`` (per-cell annotation) and stacks them into one AnnData.

    Parameters
    ----------
    path
        Folder with the GEO files (e.g. ``shared/data/singlecell/vangalen2019_aml``).
    patients
        Patients (``'AML1012'``, ``'BM1'``) or samples (``'AML1012-D0'``) to load; all by
        default.

    Returns
    -------
    AnnData, cells × genes, float32 CSR UMI counts, ``var_names`` = gene symbols. ``obs``:
    ``patient`` (``AML1012``, ``BM1``), ``sample`` (``AML1012-D0``), ``condition``
    (``AML``/``healthy``), ``malignant`` (``PredictionRefined``: malignant/normal/unclear),
    ``cell_type`` (``CellType``: HSC-like, Prog-like, …, T, NK, B), ``n_counts`` (UMIs per
    cell in the matrix), then the other annotation columns (``NumberOfReads``,
    ``CyclingScore``, ``PredictionRF2``, ``Score_*``, …).
    ``uns['antigenscout'] = {'kind': 'single_cell', 'dataset': 'vangalen2019', ...}``.

    Examples
    --------
    >>> import antigenscout as asc
    >>> folder = "shared/data/singlecell/vangalen2019_aml"
    >>> adata = asc.datasets.vangalen2019(folder, patients=["AML916", "BM3"])  # doctest: +SKIP
    """
    folder = Path(path)
    if not folder.is_dir():
        msg = (
            f"van Galen folder {str(folder)!r} does not exist or is not a folder; "
            "give the folder holding the GSE116256 *.dem.txt.gz and *.anno.txt.gz files"
        )
        raise InputError(msg)
    files = _vangalen_files(folder)
    if patients is not None:
        wanted = [patients] if isinstance(patients, str) else list(patients)
        known = {s for s in files} | {_patient(s) for s in files}
        unknown = [p for p in wanted if p not in known]
        if unknown:
            msg = (
                f"unknown van Galen patients {unknown}; choose from "
                f"{sorted({_patient(s) for s in files})} (or sample names)"
            )
            raise InputError(msg)
        files = {s: f for s, f in files.items() if s in wanted or _patient(s) in wanted}

    blocks: list[sparse.csr_matrix] = []
    gene_lists: list[pd.Index] = []
    obs_list: list[pd.DataFrame] = []
    for sample, (dem, anno) in files.items():
        genes, cells, counts = _read_dem(dem)
        ann = _read_anno(anno)
        obs = ann.reindex(cells)
        obs.index.name = None
        obs = obs.rename(columns=_VG_RENAME)
        head = pd.DataFrame(
            {
                "patient": _patient(sample),
                "sample": sample,
                "condition": "healthy" if sample.startswith("BM") else "AML",
            },
            index=obs.index,
        )
        obs = pd.concat([head, obs], axis=1)
        blocks.append(sparse.csr_matrix(counts.T))
        gene_lists.append(genes)
        obs_list.append(obs)

    genes = gene_lists[0]
    if any(not g.equals(genes) for g in gene_lists[1:]):
        genes = pd.Index(sorted(set().union(*gene_lists)))
        blocks = [_reindex_columns(b, g, genes) for b, g in zip(blocks, gene_lists, strict=True)]
    X = sparse.vstack(blocks, format="csr").astype(np.float32)
    X.eliminate_zeros()
    obs = pd.concat(obs_list, axis=0)
    obs["n_counts"] = np.asarray(X.sum(axis=1)).ravel().round().astype(np.int64)
    first = ["patient", "sample", "condition", "malignant", "cell_type", "n_counts"]
    obs = _tidy_obs(obs[first + [c for c in obs.columns if c not in first]])
    var = pd.DataFrame({"gene_id_input": genes.to_numpy(dtype=object)}, index=genes.astype(str))
    adata = AnnData(X=X, obs=obs, var=var)
    adata.uns["antigenscout"] = {
        "kind": "single_cell",
        "dataset": "vangalen2019",
        "source": "van Galen et al. 2019 Cell 176:1265, GEO GSE116256",
        "licence": "GEO public data",
    }
    return adata


def _patient(sample: str) -> str:
    return sample.split("-", maxsplit=1)[0]


def _vangalen_files(folder: Path) -> dict[str, tuple[Path, Path]]:
    dem: dict[str, Path] = {}
    anno: dict[str, Path] = {}
    for f in sorted(folder.iterdir()):
        m = _VG_FILE.match(f.name)
        if m:
            (dem if m["what"] == "dem" else anno)[m["sample"]] = f
    if not dem:
        msg = (
            f"no GSM*_<sample>.dem.txt.gz files in {str(folder)!r}; "
            "give the folder with the GSE116256 count tables"
        )
        raise InputError(msg)
    missing = sorted(set(dem) - set(anno))
    if missing:
        msg = (
            f"annotation files (*.anno.txt.gz) are missing for {missing} in {str(folder)!r}; "
            "download them from GEO GSE116256 next to the count tables"
        )
        raise InputError(msg)
    return {s: (dem[s], anno[s]) for s in sorted(dem)}


def _read_dem(path: Path) -> tuple[pd.Index, pd.Index, np.ndarray]:
    """Read a genes × cells integer table; returns (genes, cells, genes × cells int32)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as fh:
            raw = fh.read()
    except OSError as e:
        msg = f"cannot read {str(path)!r} ({e}); the file may be truncated, download it again"
        raise InputError(msg) from e
    nl = raw.index(b"\n")
    header = raw[:nl].decode().rstrip("\r").split("\t")
    body = raw[nl + 1 :].replace(b"\r", b"")
    genes = [g.decode() for g in re.findall(rb"^([^\t\n]*)\t", body, flags=re.MULTILINE)]
    cells = header[1:]
    values = re.sub(rb"^[^\t\n]*\t", b"", body, flags=re.MULTILINE).strip().replace(b"\n", b"\t")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        flat = np.fromstring(values, dtype=np.int32, sep="\t")  # fast path for integer UMIs
    if flat.size == len(genes) * len(cells):
        counts = flat.reshape(len(genes), len(cells))
    else:  # non-integer or irregular content: let pandas parse and complain
        df = pd.read_csv(path, sep="\t", index_col=0)
        genes, cells, counts = list(df.index.astype(str)), list(df.columns), df.to_numpy()
    return pd.Index(genes, dtype=str), pd.Index(cells, dtype=str), counts


def _read_anno(path: Path) -> pd.DataFrame:
    try:
        ann = pd.read_csv(path, sep="\t", index_col=0)
    except Exception as e:
        msg = f"cannot read annotation {str(path)!r} ({type(e).__name__}: {e}); download it again"
        raise InputError(msg) from e
    ann.index = ann.index.astype(str)
    return ann


def _reindex_columns(m: sparse.csr_matrix, have: pd.Index, want: pd.Index) -> sparse.csr_matrix:
    pos = want.get_indexer(have)
    coo = m.tocoo()
    return sparse.csr_matrix((coo.data, (coo.row, pos[coo.col])), shape=(m.shape[0], len(want)))


def _tidy_obs(obs: pd.DataFrame) -> pd.DataFrame:
    """Categorical strings (h5ad-safe), floats for numbers."""
    obs = obs.copy()
    for c in obs.columns:
        col = obs[c]
        if c in _VG_CATEGORICAL or not pd.api.types.is_numeric_dtype(col):
            obs[c] = pd.Categorical(col.astype("string").astype(object).where(col.notna(), None))
    return obs


# --------------------------------------------------------------------------- packaged demo


def demo() -> AnnData:
    """Load the packaged van Galen 2019 subset: AML patients and one healthy marrow donor.

    Real Seq-Well UMI counts (GEO GSE116256) of three AML patients rich in malignant
    stem/progenitor-like cells (AML707B, AML916, AML328; about 450 cells each, stratified by
    ``malignant`` and ``cell_type``) and all 643 cells of healthy marrow donor BM3; 2,036
    cells, 1,051 malignant. Built by ``scripts/build_demo.py``.

    Returns
    -------
    AnnData, cells × genes, float32 CSR counts, ``obs`` as in :func:`vangalen2019`.

    Examples
    --------
    >>> import antigenscout as asc
    >>> adata = asc.datasets.demo()
    >>> sorted(adata.obs["malignant"].cat.categories)
    ['malignant', 'normal']
    """
    import anndata  # noqa: PLC0415

    res = _data_path(DEMO_FILE, rebuild="scripts/build_demo.py")
    with resources.as_file(res) as p:
        adata = anndata.read_h5ad(p)
    if "gene_id_input" not in adata.var.columns:  # dropped from the file to save space
        adata.var.insert(0, "gene_id_input", adata.var_names.to_numpy(dtype=object))
    return adata


# --------------------------------------------------------------------------- bulk tables


#: TCGA cohort -> HPA pathology cancer type, where the two describe the same disease (HPA's
#: tumour IHC covers 20 cancers; cohorts without a same-disease HPA cancer are left out).
TCGA_HPA_CANCER: dict[str, str] = {
    "BLCA": "urothelial cancer",
    "BRCA": "breast cancer",
    "CESC": "cervical cancer",
    "COAD": "colorectal cancer",
    "READ": "colorectal cancer",
    "DLBC": "lymphoma",
    "GBM": "glioma",
    "LGG": "glioma",
    "HNSC": "head and neck cancer",
    "KIRC": "renal cancer",
    "KIRP": "renal cancer",
    "KICH": "renal cancer",
    "LIHC": "liver cancer",
    "LUAD": "lung cancer",
    "LUSC": "lung cancer",
    "OV": "ovarian cancer",
    "PAAD": "pancreatic cancer",
    "PRAD": "prostate cancer",
    "SKCM": "melanoma",
    "STAD": "stomach cancer",
    "TGCT": "testis cancer",
    "THCA": "thyroid cancer",
    "UCEC": "endometrial cancer",
}


def tcga_medians() -> AnnData:
    """Median tumour expression per TCGA cohort (33 cancer types), packaged.

    Returns
    -------
    AnnData, TCGA cohorts (``BLCA``, ``LAML``, …) × gene symbols, dense float32.
    ``uns['antigenscout'] = {'kind': 'bulk', 'unit': 'FPKM-like', ...}``. Values are NaN
    where a gene was not measured in a cohort; genes measured in no cohort are dropped.

    Examples
    --------
    >>> import antigenscout as asc
    >>> asc.datasets.tcga_medians()["LAML", "CD33"].X.item() > 0  # doctest: +SKIP
    True
    """
    return _bulk_table(
        "tcga_medians.parquet",
        unit="FPKM-like median per TCGA cohort (log-scale comparable)",
        source="TCGA (GDC) medians via HPA/pirlygenes 4.50.15",
        licence="TCGA open access; CC BY-SA 4.0 (HPA); Apache-2.0 (pirlygenes)",
    )


def hpa_cell_lines() -> AnnData:
    """HPA 19.3 RNA expression of 64 human cell lines (incl. myeloid and lymphoid lines).

    Returns
    -------
    AnnData, cell lines (``K-562``, ``HL-60``, ``THP-1``, …) × gene symbols, dense float32 TPM.
    ``uns['antigenscout'] = {'kind': 'bulk', 'unit': 'TPM', ...}``.

    Examples
    --------
    >>> import antigenscout as asc
    >>> asc.datasets.hpa_cell_lines().obs_names[:2].tolist()  # doctest: +SKIP
    ['A-431', 'A549']
    """
    return _bulk_table(
        "hpa_cell_lines.parquet",
        unit="TPM",
        source="Human Protein Atlas 19.3 cell-line RNA (rna_celline)",
        licence="CC BY-SA 4.0 (Human Protein Atlas)",
    )


def _bulk_table(name: str, *, unit: str, source: str, licence: str) -> AnnData:
    res = _data_path(name, rebuild="scripts/build_reference.py")
    with resources.as_file(res) as p:
        df = pd.read_parquet(p)
    df = df[df.index.notna()]
    df = df[~df.index.duplicated()]
    df = df.loc[df.notna().any(axis=1)]
    obs = pd.DataFrame(index=pd.Index(df.columns.astype(str)))
    var = pd.DataFrame(
        {"gene_id_input": df.index.astype(str).to_numpy(dtype=object)},
        index=pd.Index(df.index.astype(str)),
    )
    adata = AnnData(X=df.to_numpy(dtype=np.float32).T.copy(), obs=obs, var=var)
    adata.uns["antigenscout"] = {
        "kind": "bulk",
        "unit": unit,
        "dataset": name.removesuffix(".parquet"),
        "source": source,
        "licence": licence,
    }
    return adata


# --------------------------------------------------------------------------- Triana 2021


def citeseq_triana2021(path: str | os.PathLike[str]) -> AnnData:
    """Load the Triana et al. 2021 healthy blood/marrow CITE-seq subset (250 cells).

    Parameters
    ----------
    path
        ``healthy_bm_blood_citeseq_250cells.h5ad`` (from ``shared/data/singlecell/
        triana2021_healthy_citeseq``), or the folder holding it.

    Returns
    -------
    AnnData, 250 cells × 462 genes: RNA counts (the file's ``counts`` layer) in ``.X``,
    surface-protein (antibody-tag) values in ``obsm['protein']`` (cells × 197 DataFrame),
    ``obs['cell_type']`` (= ``condensed_cell_type``) and the file's other labels (``ct``).

    Examples
    --------
    >>> import antigenscout as asc
    >>> path = "healthy_bm_blood_citeseq_250cells.h5ad"
    >>> adata = asc.datasets.citeseq_triana2021(path)  # doctest: +SKIP
    """
    from ..io import read_h5ad  # noqa: PLC0415

    p = Path(path)
    if p.is_dir():
        p = p / "healthy_bm_blood_citeseq_250cells.h5ad"
    adata = read_h5ad(p, layer="counts", kind="single_cell")
    if "protein" not in adata.obsm:
        msg = (
            f"{str(p)!r} has no obsm['protein']; give the Triana 2021 CITE-seq h5ad "
            "(healthy_bm_blood_citeseq_250cells.h5ad)"
        )
        raise InputError(msg)
    if "condensed_cell_type" in adata.obs and "cell_type" not in adata.obs:
        adata.obs.insert(0, "cell_type", adata.obs["condensed_cell_type"].astype("category"))
    adata.uns["antigenscout"].update(
        {
            "dataset": "triana2021",
            "source": "Triana et al. 2021 Nat Immunol 22:1577 (via amc-heme/SCUBA)",
            "licence": "MIT (SCUBA)",
        }
    )
    return adata
