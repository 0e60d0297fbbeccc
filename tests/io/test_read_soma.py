"""read_soma on a tiny TileDB-SOMA experiment written here (needs tiledbsoma)."""

from __future__ import annotations

import sys
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from antigenscout._errors import InputError
from antigenscout.io import read_soma


def _experiment(tmp_path: Path) -> tuple[str, ad.AnnData]:
    soma_io = pytest.importorskip("tiledbsoma.io")
    rng = np.random.default_rng(4)
    counts = sparse.csr_matrix(rng.poisson(1.0, size=(8, 5)).astype(np.float32))
    obs = pd.DataFrame(
        {
            "tissue_general": ["bone marrow", "blood"] * 4,
            "cell_type": ["HSC", "T cell", "monocyte", "B cell"] * 2,
        },
        index=[f"cell{i}" for i in range(8)],
    )
    var = pd.DataFrame(
        {
            "feature_id": [
                "ENSG00000105383",
                "ENSG00000172322",
                "ENSG00000185291",
                "ENSG00000174059",
                "ENSG00000081237",
            ],
            "feature_name": ["CD33", "CLEC12A", "IL3RA", "CD34", "PTPRC"],
        },
        index=[
            "ENSG00000105383",
            "ENSG00000172322",
            "ENSG00000185291",
            "ENSG00000174059",
            "ENSG00000081237",
        ],
    )
    adata = ad.AnnData(X=counts, obs=obs, var=var)
    uri = str(tmp_path / "soma_exp")
    soma_io.from_anndata(uri, adata, measurement_name="RNA", X_layer_name="raw")
    return uri, adata


def test_read_soma_all_and_filtered(tmp_path: Path) -> None:
    uri, src = _experiment(tmp_path)
    out = read_soma(uri)
    assert isinstance(out.X, sparse.csr_matrix)
    np.testing.assert_array_equal(out.X.toarray(), src.X.toarray())
    assert list(out.var_names) == list(src.var["feature_id"])
    assert list(out.var["gene_symbols"]) == list(src.var["feature_name"])
    assert list(out.obs_names) == list(src.obs_names)
    assert out.uns["antigenscout"]["kind"] == "single_cell"

    sub = read_soma(
        uri,
        obs_value_filter="tissue_general == 'bone marrow'",
        var_value_filter="feature_name in ['CD33', 'CD34']",
    )
    rows = np.flatnonzero(src.obs["tissue_general"] == "bone marrow")
    cols = [0, 3]
    np.testing.assert_array_equal(sub.X.toarray(), src.X.toarray()[np.ix_(rows, cols)])
    assert list(sub.var["gene_symbols"]) == ["CD33", "CD34"]
    assert set(sub.obs["tissue_general"]) == {"bone marrow"}


def test_read_soma_errors(tmp_path: Path) -> None:
    uri, _ = _experiment(tmp_path)
    with pytest.raises(InputError, match="X layer 'counts' is not in measurement 'RNA'"):
        read_soma(uri, layer="counts")
    with pytest.raises(InputError, match="measurement 'ATAC' is not in"):
        read_soma(uri, measurement="ATAC")
    with pytest.raises(InputError, match="check obs_value_filter"):
        read_soma(uri, obs_value_filter="no_such_column == 'x'")
    with pytest.raises(InputError, match="cannot open SOMA experiment"):
        read_soma(str(tmp_path / "nothing_here"))


def test_missing_tiledbsoma_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tiledbsoma", None)
    with pytest.raises(InputError, match=r"pip install 'antigenscout\[soma\]'"):
        read_soma("soma://anything")
