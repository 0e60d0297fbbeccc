"""read(): picks the reader from the path."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.io
from scipy import sparse

from antigenscout._errors import InputError
from antigenscout.io import read


def test_dispatch(tmp_path: Path) -> None:
    counts = np.arange(12, dtype=np.float32).reshape(4, 3)
    genes = ["CD33", "CD34", "FLT3"]
    ad.AnnData(X=counts, var=pd.DataFrame(index=genes)).write_h5ad(tmp_path / "a.h5ad")
    out = read(tmp_path / "a.h5ad")
    np.testing.assert_array_equal(out.X.toarray(), counts)

    df = pd.DataFrame(counts.T, index=genes, columns=["S1", "S2", "S3", "S4"])
    df.to_csv(tmp_path / "t.csv.gz")
    out = read(tmp_path / "t.csv.gz", orientation="genes_by_samples")
    np.testing.assert_array_equal(out.X, counts)

    d = tmp_path / "mtx"
    d.mkdir()
    scipy.io.mmwrite(d / "matrix.mtx", sparse.coo_matrix(counts.T))
    (d / "features.tsv").write_text("".join(f"{g}\t{g}\tGene Expression\n" for g in genes))
    (d / "barcodes.tsv").write_text("".join(f"bc{i}\n" for i in range(4)))
    for target in (d, d / "matrix.mtx"):
        np.testing.assert_array_equal(read(target).X.toarray(), counts)


def test_dispatch_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist; check the path"):
        read(tmp_path / "x.h5ad")
    (tmp_path / "x.xlsx").write_bytes(b"PK")
    with pytest.raises(InputError, match="cannot tell the format"):
        read(tmp_path / "x.xlsx")
