"""read_table: TSV/CSV, gzip, both orientations, kind rule and bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from antigenscout._errors import InputError
from antigenscout.io import read_table
from antigenscout.io._table import gene_like_fraction

GENES = ["CD33", "CLEC12A", "IL3RA", "CD34", "ENSG00000010610.10", "HLA-DRA", "MT-CO1", "FLT3"]
SAMPLES = ["TCGA-AB-2803-03", "TCGA-AB-2804-03", "TCGA-AB-2805-03"]


def _frame(seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    values = rng.gamma(1.0, 30.0, size=(len(GENES), len(SAMPLES))).round(3)
    return pd.DataFrame(values, index=pd.Index(GENES, name="gene"), columns=SAMPLES)


@pytest.mark.parametrize(
    ("name", "transpose", "orientation"),
    [
        ("genes_rows.tsv", False, "auto"),
        ("genes_rows.tsv.gz", False, "auto"),
        ("genes_cols.csv", True, "auto"),
        ("genes_cols.csv.gz", True, "auto"),
        ("explicit.txt", True, "samples_by_genes"),
        ("explicit_rows.tsv", False, "genes_by_samples"),
    ],
)
def test_orientations_and_gzip(tmp_path: Path, name: str, transpose: bool, orientation) -> None:
    df = _frame()
    path = tmp_path / name
    (df.T if transpose else df).to_csv(path, sep="," if ".csv" in name else "\t")
    out = read_table(path, orientation=orientation)
    assert list(out.var_names) == GENES
    assert list(out.obs_names) == SAMPLES
    assert list(out.var["gene_id_input"]) == GENES
    assert isinstance(out.X, np.ndarray)
    np.testing.assert_array_equal(out.X, df.T.to_numpy().astype(np.float32))
    assert out.uns["antigenscout"]["kind"] == "bulk"


def test_many_integer_cells_are_single_cell(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    counts = rng.poisson(0.5, size=(len(GENES), 1001))
    df = pd.DataFrame(counts, index=GENES, columns=[f"cell{i}" for i in range(1001)])
    path = tmp_path / "sc.tsv.gz"
    df.to_csv(path, sep="\t")
    out = read_table(path)
    assert out.uns["antigenscout"]["kind"] == "single_cell"
    assert isinstance(out.X, sparse.csr_matrix)
    np.testing.assert_array_equal(out.X.toarray(), counts.T)
    # the same matrix with only 1000 cells stays bulk
    df.iloc[:, :1000].to_csv(tmp_path / "bulk.tsv", sep="\t")
    assert read_table(tmp_path / "bulk.tsv").uns["antigenscout"]["kind"] == "bulk"


def test_gene_like_fraction() -> None:
    assert gene_like_fraction(GENES) == 1.0
    assert gene_like_fraction(SAMPLES) == 0.0
    assert gene_like_fraction(["AML1012-D0_AAAAAGTTACGT", "AAACCTGAGAAACCAT-1", "123"]) == 0.0


def test_ambiguous_orientation(tmp_path: Path) -> None:
    df = pd.DataFrame(np.ones((3, 3)), index=["A1", "B2", "C3"], columns=["D1", "E2", "F3"])
    df.to_csv(tmp_path / "amb.tsv", sep="\t")
    with pytest.raises(InputError, match=r"cannot tell which axis.*orientation='genes_by_samples'"):
        read_table(tmp_path / "amb.tsv")


@pytest.mark.parametrize(
    ("value", "pattern"),
    [(-1.0, "1 negative values"), (np.nan, "1 NaN or infinite"), ("high", "not numeric")],
    ids=["negative", "nan", "text"],
)
def test_bad_values(tmp_path: Path, value: object, pattern: str) -> None:
    df = _frame().astype(object)
    df.iloc[2, 1] = value
    df.to_csv(tmp_path / "bad.tsv", sep="\t")
    with pytest.raises(InputError, match=pattern):
        read_table(tmp_path / "bad.tsv")


def test_duplicates_empty_missing(tmp_path: Path) -> None:
    df = _frame()
    df.index = ["CD33", "CD33", *GENES[2:]]
    df.to_csv(tmp_path / "dup.tsv", sep="\t")
    with pytest.raises(InputError, match=r"occur more than once.*'CD33'.*sum or drop"):
        read_table(tmp_path / "dup.tsv")
    (tmp_path / "empty.tsv").write_text("")
    with pytest.raises(InputError, match="is empty"):
        read_table(tmp_path / "empty.tsv")
    (tmp_path / "header.tsv").write_text("gene\tS1\tS2\n")
    with pytest.raises(InputError, match="empty"):
        read_table(tmp_path / "header.tsv", orientation="genes_by_samples")
    with pytest.raises(InputError, match="does not exist"):
        read_table(tmp_path / "none.tsv")
    with pytest.raises(InputError, match="orientation must be one of"):
        read_table(tmp_path / "dup.tsv", orientation="rows")  # type: ignore[arg-type]
