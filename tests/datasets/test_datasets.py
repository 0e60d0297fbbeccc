"""Dataset loaders: van Galen 2019, the packaged demo, TCGA/HPA tables, Triana CITE-seq."""

from __future__ import annotations

import gzip
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from antigenscout import datasets
from antigenscout._errors import InputError

VG = "singlecell/vangalen2019_aml"
OBS_FIRST = ["patient", "sample", "condition", "malignant", "cell_type", "n_counts"]


def _plain(folder: Path, pattern: str) -> pd.DataFrame:
    return pd.read_csv(next(folder.glob(pattern)), sep="\t", index_col=0)


@pytest.mark.slow
@pytest.mark.parametrize("sample", ["BM1", "AML722B-D0"])
def test_vangalen_matches_plain_pandas(shared_data: Path, sample: str) -> None:
    folder = shared_data / VG
    dem = _plain(folder, f"GSM*_{sample}.dem.txt.gz")
    anno = _plain(folder, f"GSM*_{sample}.anno.txt.gz").loc[dem.columns]
    adata = datasets.vangalen2019(folder, patients=[sample.split("-", maxsplit=1)[0]])
    assert list(adata.obs.columns[:6]) == OBS_FIRST
    assert list(adata.obs_names) == list(dem.columns)
    assert list(adata.var_names) == list(dem.index)
    assert isinstance(adata.X, sparse.csr_matrix)
    np.testing.assert_array_equal(adata.X.toarray(), dem.to_numpy().T)
    np.testing.assert_array_equal(adata.obs["n_counts"], dem.to_numpy().sum(axis=0))
    assert list(adata.obs["malignant"]) == list(anno["PredictionRefined"])
    assert list(adata.obs["cell_type"]) == list(anno["CellType"])
    np.testing.assert_array_equal(adata.obs["Score_HSC"], anno["Score_HSC"])
    assert set(adata.obs["sample"]) == {sample}
    assert set(adata.obs["patient"]) == {sample.split("-", maxsplit=1)[0]}
    assert adata.uns["antigenscout"]["kind"] == "single_cell"


def _write_vg(folder: Path, gsm: str, sample: str, genes: list[str], counts: np.ndarray) -> None:
    cells = [f"{sample}_{c}" for c in ("AAAC", "CCCG", "GGGT")[: counts.shape[1]]]
    dem = pd.DataFrame(counts, index=pd.Index(genes, name="Gene"), columns=cells)
    with gzip.open(folder / f"{gsm}_{sample}.dem.txt.gz", "wt") as fh:
        dem.to_csv(fh, sep="\t")
    anno = pd.DataFrame(
        {
            "PredictionRefined": ["malignant", "normal", "unclear"][: len(cells)],
            "CellType": ["HSC-like", "T", "Prog"][: len(cells)],
            "Score_HSC": 0.5,
        },
        index=pd.Index(cells, name="Cell"),
    )
    with gzip.open(folder / f"{gsm}_{sample}.anno.txt.gz", "wt") as fh:
        anno.to_csv(fh, sep="\t")


def test_vangalen_union_of_genes_and_errors(tmp_path: Path) -> None:
    _write_vg(tmp_path, "GSM1", "AML1-D0", ["CD33", "CD34", "FLT3"], np.array([[1, 0, 2]] * 3))
    _write_vg(tmp_path, "GSM2", "BM9", ["CD34", "CD33"], np.array([[5, 6], [7, 8]]))
    adata = datasets.vangalen2019(tmp_path)
    assert list(adata.var_names) == ["CD33", "CD34", "FLT3"]
    expected = np.array([[1, 1, 1], [0, 0, 0], [2, 2, 2], [7, 5, 0], [8, 6, 0]])
    np.testing.assert_array_equal(adata.X.toarray(), expected)
    assert list(adata.obs["patient"]) == ["AML1"] * 3 + ["BM9"] * 2
    assert list(adata.obs["condition"]) == ["AML"] * 3 + ["healthy"] * 2
    only = datasets.vangalen2019(tmp_path, patients=["BM9"])
    assert only.n_obs == 2

    with pytest.raises(InputError, match=r"unknown van Galen patients \['AML9'\]; choose from"):
        datasets.vangalen2019(tmp_path, patients=["AML9"])
    (tmp_path / "GSM2_BM9.anno.txt.gz").unlink()
    with pytest.raises(InputError, match=r"annotation files .* missing for \['BM9'\]"):
        datasets.vangalen2019(tmp_path)
    with pytest.raises(InputError, match="does not exist or is not a folder"):
        datasets.vangalen2019(tmp_path / "nothing")


def test_demo() -> None:
    adata = datasets.demo()
    assert list(adata.obs.columns[:6]) == OBS_FIRST
    assert isinstance(adata.X, sparse.csr_matrix)
    assert adata.X.dtype == np.float32
    assert adata.X.nnz > 1_000_000
    x = adata.X.data
    assert np.all(x > 0)
    assert np.all(x == np.round(x))
    np.testing.assert_array_equal(np.asarray(adata.X.sum(axis=1)).ravel(), adata.obs["n_counts"])
    counts = adata.obs.groupby("patient", observed=True)["malignant"].value_counts().unstack()
    assert set(counts.index) == {"AML328", "AML707B", "AML916", "BM3"}
    assert counts.loc["BM3", "malignant"] == 0
    assert (counts.drop("BM3")["malignant"] > 250).all()
    stem = adata.obs["cell_type"].isin(["HSC-like", "Prog-like"]) & (
        adata.obs["malignant"] == "malignant"
    )
    assert stem.sum() > 500
    assert adata.uns["antigenscout"]["kind"] == "single_cell"
    assert list(adata.var["gene_id_input"]) == list(adata.var_names)


@pytest.mark.slow
def test_demo_cells_are_real(shared_data: Path) -> None:
    adata = datasets.demo()
    bm3 = adata[adata.obs["sample"] == "BM3"]
    dem = _plain(shared_data / VG, "GSM*_BM3.dem.txt.gz")
    src = dem.loc[bm3.var_names, bm3.obs_names].to_numpy().T
    np.testing.assert_array_equal(bm3.X.toarray(), src)
    assert (dem.loc[~dem.index.isin(adata.var_names)].sum(axis=1) == 0).all()


@pytest.mark.parametrize(
    ("loader", "file", "unit"),
    [
        ("tcga_medians", "tcga_medians.parquet", "FPKM"),
        ("hpa_cell_lines", "hpa_cell_lines.parquet", "TPM"),
    ],
)
def test_bulk_tables(loader: str, file: str, unit: str) -> None:
    path = Path(datasets.__file__).parent / "data" / file
    if not path.is_file():
        pytest.skip(f"{file} not built yet")
    adata = getattr(datasets, loader)()
    df = pd.read_parquet(path)
    df = df.loc[df.notna().any(axis=1)]
    assert list(adata.obs_names) == list(df.columns)
    assert list(adata.var_names) == list(df.index)
    np.testing.assert_array_equal(adata.X, df.to_numpy(dtype=np.float32).T)
    assert adata.uns["antigenscout"]["kind"] == "bulk"
    assert unit in adata.uns["antigenscout"]["unit"]


def test_tcga_laml_against_source(shared_data: Path) -> None:
    path = Path(datasets.__file__).parent / "data" / "tcga_medians.parquet"
    if not path.is_file():
        pytest.skip("tcga_medians.parquet not built yet")
    src = pd.read_csv(shared_data / "hpa/pan_cancer_hpa_tissue_ntpm_tcga_median.csv")
    src = src.set_index("Symbol")
    adata = datasets.tcga_medians()
    for gene in ("CD33", "CLEC12A", "MPO"):
        np.testing.assert_allclose(
            adata["LAML", gene].X.item(), src.loc[gene, "FPKM_LAML"], rtol=5e-3
        )


def test_citeseq_triana2021(shared_data: Path) -> None:
    path = (
        shared_data / "singlecell/triana2021_healthy_citeseq/healthy_bm_blood_citeseq_250cells.h5ad"
    )
    adata = datasets.citeseq_triana2021(path)
    src = ad.read_h5ad(path)
    assert adata.shape == (250, 462)
    np.testing.assert_array_equal(adata.X.toarray(), src.layers["counts"].toarray())
    assert adata.obsm["protein"].shape == (250, 197)
    assert list(adata.obs["cell_type"]) == list(src.obs["condensed_cell_type"])
    assert datasets.citeseq_triana2021(path.parent).shape == (250, 462)
