"""read_h5ad: counts from X, a layer or .raw; refuses normalised data and bad values."""

from __future__ import annotations

import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from antigenscout._errors import InputError
from antigenscout.io import read_h5ad

GENES = ["CD33", "CLEC12A", "IL3RA", "CD34", "PTPRC", "MPO"]


def _counts(n_obs: int = 30, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.poisson(1.5, size=(n_obs, len(GENES))).astype(np.int64)


def _adata(X: object, **kw: object) -> ad.AnnData:
    n = X.shape[0]  # type: ignore[attr-defined]
    obs = pd.DataFrame({"cell_type": ["a", "b"] * (n // 2)}, index=[f"c{i}" for i in range(n)])
    return ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=GENES[: X.shape[1]]), **kw)


def _lognorm(counts: np.ndarray) -> np.ndarray:
    lib = counts.sum(1, keepdims=True)
    return np.log1p(counts / np.maximum(lib, 1) * 1e4)


@pytest.mark.parametrize("as_sparse", [False, True], ids=["dense", "csr"])
def test_counts_in_x(tmp_path: Path, as_sparse: bool) -> None:
    counts = _counts()
    X = sparse.csr_matrix(counts) if as_sparse else counts
    path = tmp_path / "x.h5ad"
    _adata(X).write_h5ad(path)
    out = read_h5ad(path)
    assert isinstance(out.X, sparse.csr_matrix)
    assert out.X.dtype == np.float32
    np.testing.assert_array_equal(out.X.toarray(), counts)
    assert list(out.var["gene_id_input"]) == GENES
    assert list(out.obs["cell_type"][:2]) == ["a", "b"]
    assert out.uns["antigenscout"]["kind"] == "single_cell"
    assert out.uns["antigenscout"]["counts_from"] == "X"


def test_named_layer_moved_into_x(tmp_path: Path) -> None:
    counts = _counts()
    a = _adata(_lognorm(counts), layers={"umis": counts})
    a.obsm["protein"] = pd.DataFrame({"CD33": np.arange(30.0)}, index=a.obs_names)
    path = tmp_path / "layer.h5ad"
    a.write_h5ad(path)
    out = read_h5ad(path, layer="umis")
    np.testing.assert_array_equal(out.X.toarray(), counts)
    assert "umis" not in out.layers
    np.testing.assert_array_equal(out.obsm["protein"]["CD33"], np.arange(30.0))


def test_counts_layer_found_when_x_is_lognormalised(tmp_path: Path) -> None:
    counts = _counts()
    path = tmp_path / "auto.h5ad"
    _adata(sparse.csr_matrix(_lognorm(counts)), layers={"counts": counts}).write_h5ad(path)
    out = read_h5ad(path)
    np.testing.assert_array_equal(out.X.toarray(), counts)
    assert out.uns["antigenscout"]["counts_from"] == "layers['counts']"


def test_raw_used_when_x_is_lognormalised(tmp_path: Path) -> None:
    counts = _counts()
    a = _adata(counts.astype(np.float32))
    a.raw = a.copy()
    a.X = _lognorm(counts)
    path = tmp_path / "raw.h5ad"
    a.write_h5ad(path)
    out = read_h5ad(path)
    np.testing.assert_array_equal(out.X.toarray(), counts)
    assert out.uns["antigenscout"]["counts_from"] == "raw"


def test_lognormalised_without_counts_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "log.h5ad"
    _adata(_lognorm(_counts())).write_h5ad(path)
    with pytest.raises(InputError, match=r"non-integer.*layers\['counts'\].*--layer counts"):
        read_h5ad(path)


def test_bulk_keeps_non_integer_values(tmp_path: Path) -> None:
    tpm = np.expm1(_lognorm(_counts(4)) * 3.0)  # linear scale, max in the thousands
    a = _adata(tpm)
    a.uns["antigenscout"] = {"kind": "bulk"}
    path = tmp_path / "bulk.h5ad"
    a.write_h5ad(path)
    out = read_h5ad(path)
    assert out.uns["antigenscout"]["kind"] == "bulk"
    assert isinstance(out.X, np.ndarray)
    np.testing.assert_allclose(out.X, tpm.astype(np.float32))


def test_unknown_layer(tmp_path: Path) -> None:
    path = tmp_path / "x.h5ad"
    _adata(_counts(), layers={"counts": _counts()}).write_h5ad(path)
    with pytest.raises(InputError, match=r"layer 'spliced' is not in .*layers: \['counts'\]"):
        read_h5ad(path, layer="spliced")


@pytest.mark.parametrize(
    ("value", "pattern"),
    [(-1.0, "negative values"), (np.nan, "NaN or infinite"), (np.inf, "NaN or infinite")],
    ids=["negative", "nan", "inf"],
)
def test_bad_values(tmp_path: Path, value: float, pattern: str) -> None:
    X = _counts().astype(np.float32)
    X[3, 2] = value
    path = tmp_path / "bad.h5ad"
    _adata(X).write_h5ad(path)
    with pytest.raises(InputError, match=pattern):
        read_h5ad(path)


def test_duplicate_genes(tmp_path: Path) -> None:
    path = tmp_path / "dup.h5ad"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # anndata: "Variable names are not unique"
        a = _adata(_counts())
        a.var_names = ["CD33", "CD33", "IL3RA", "CD34", "CD34", "MPO"]
        a.write_h5ad(path)
    with pytest.raises(InputError, match=r"2 gene ids occur more than once.*'CD33', 'CD34'.*sum"):
        read_h5ad(path)


def test_empty(tmp_path: Path) -> None:
    path = tmp_path / "empty.h5ad"
    _adata(np.zeros((0, 6), dtype=np.float32)).write_h5ad(path)
    with pytest.raises(InputError, match=r"empty \(0 cells/samples × 6 genes\)"):
        read_h5ad(path)


def test_missing_and_corrupt(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist; check the path"):
        read_h5ad(tmp_path / "nope.h5ad")
    bad = tmp_path / "corrupt.h5ad"
    bad.write_bytes(b"this is not hdf5")
    with pytest.raises(InputError, match=r"cannot read .* as an h5ad file"):
        read_h5ad(bad)


def test_backed_reading_checks_every_value_not_only_the_first_rows(tmp_path, monkeypatch) -> None:
    """A non-integer (or negative) value after the sampled first rows is found by the
    chunked pass over the whole backed .X (it was read as counts)."""
    import anndata as ad
    import h5py
    import numpy as np
    import pandas as pd
    import pytest
    from scipy import sparse

    import antigenscout.io._h5ad as h5
    from antigenscout._errors import InputError
    from antigenscout.io import read_h5ad

    monkeypatch.setattr(h5, "BACKED_SAMPLE", 50)  # the sample sees the first ~50 values
    monkeypatch.setattr(h5, "_INDEX_CHUNK", 64)  # and the full pass reads 64 at a time
    rng = np.random.default_rng(0)
    X = sparse.csr_matrix(rng.poisson(3.0, (400, 5)).astype(np.float32))
    a = ad.AnnData(X=X, var=pd.DataFrame(index=[f"G{i}" for i in range(5)]))
    for bad, word in ((2.5, "non-integer"), (-1.0, "negative")):
        path = tmp_path / f"late{bad}.h5ad"
        a.write_h5ad(path)
        with h5py.File(path, "r+") as f:
            d = f["X/data"]
            v = d[:]
            v[-3] = bad
            d[...] = v
        with pytest.raises(InputError, match=word):
            read_h5ad(path, backed=True)
    ok = tmp_path / "ok.h5ad"
    a.write_h5ad(ok)
    read_h5ad(ok, backed=True).file.close()
