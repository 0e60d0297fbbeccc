"""harmonise_genes against a small fake reference (duck-typed map_genes)."""

from __future__ import annotations

import warnings

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from antigenscout._errors import InputError, UnmappedGenesWarning
from antigenscout.pp._genes import harmonise_genes


class FakeReference:
    """Same interface as antigenscout.reference: ``genes`` and ``map_genes``."""

    def __init__(self) -> None:
        self.genes = pd.DataFrame(
            {
                "ensembl_id": ["ENSG00000105383", "ENSG00000172322", "ENSG00000185291"],
                "synonyms": ["SIGLEC3|p67", "CLL1|DCAL2|CLL-1", "IL3RAY|CD123"],
            },
            index=pd.Index(["CD33", "CLEC12A", "IL3RA"], name="symbol"),
        )

    def map_genes(self, names: list[str]) -> tuple[pd.Series, list[str]]:
        lookup: dict[str, str] = {}
        for sym, row in self.genes.iterrows():
            lookup[str(sym)] = str(sym)
            lookup[row["ensembl_id"]] = str(sym)
            for syn in row["synonyms"].split("|"):
                lookup[syn] = str(sym)
        out = [
            lookup.get(str(n).split(".")[0] if str(n).startswith("ENSG") else str(n)) for n in names
        ]
        series = pd.Series(out, index=list(names), dtype="string")
        return series, [n for n, o in zip(names, out, strict=True) if o is None]


NAMES = ["ENSG00000105383.15", "CLL1", "CLEC12A", "MYSTERY1", "CD123", "p67", "NOVEL2"]
# canonical: CD33 <- {ENSG..., p67}; CLEC12A <- {CLL1, CLEC12A}; IL3RA <- CD123
EXPECTED = ["CD33", "CLEC12A", "MYSTERY1", "IL3RA", "NOVEL2"]
GROUPS = {"CD33": [0, 5], "CLEC12A": [1, 2], "MYSTERY1": [3], "IL3RA": [4], "NOVEL2": [6]}


def _adata(matrix_type: str) -> tuple[ad.AnnData, np.ndarray]:
    rng = np.random.default_rng(5)
    counts = rng.poisson(2.0, size=(10, len(NAMES))).astype(np.float32)
    X = {"dense": counts, "csr": sparse.csr_matrix(counts), "csc": sparse.csc_matrix(counts)}
    a = ad.AnnData(X=X[matrix_type].copy(), var=pd.DataFrame(index=NAMES))
    a.layers["counts"] = X[matrix_type].copy()
    return a, counts


def _expected(counts: np.ndarray) -> np.ndarray:
    return np.column_stack([counts[:, GROUPS[g]].sum(axis=1) for g in EXPECTED])


@pytest.mark.parametrize("matrix_type", ["dense", "csr", "csc"])
def test_merge_sum_and_unmapped(matrix_type: str) -> None:
    a, counts = _adata(matrix_type)
    with pytest.warns(UnmappedGenesWarning, match=r"2 of 7 genes .*MYSTERY1, NOVEL2"):
        out = harmonise_genes(a, FakeReference(), copy=True)
    assert out is not None
    assert list(out.var_names) == EXPECTED
    assert sparse.issparse(out.X) == (matrix_type != "dense")
    dense = out.X.toarray() if sparse.issparse(out.X) else out.X
    np.testing.assert_array_equal(dense, _expected(counts))
    layer = out.layers["counts"]
    np.testing.assert_array_equal(
        layer.toarray() if sparse.issparse(layer) else layer, _expected(counts)
    )
    assert out.var.loc["CD33", "gene_id_input"] == "ENSG00000105383.15|p67"
    assert out.var.loc["IL3RA", "gene_id_input"] == "CD123"
    assert list(out.var["gene_mapped"]) == [True, True, False, True, False]
    info = out.uns["antigenscout"]
    assert info["unmapped_genes"] == ["MYSTERY1", "NOVEL2"]
    assert info["merged_genes"] == {
        "CD33": ["ENSG00000105383.15", "p67"],
        "CLEC12A": ["CLL1", "CLEC12A"],
    }
    assert list(a.var_names) == NAMES  # copy=True leaves the input alone


def test_in_place_without_merges_keeps_matrix() -> None:
    counts = np.arange(6, dtype=np.float32).reshape(2, 3)
    a = ad.AnnData(X=counts.copy(), var=pd.DataFrame(index=["SIGLEC3", "CLEC12A", "CD123"]))
    a.uns["antigenscout"] = {"kind": "bulk"}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert harmonise_genes(a, FakeReference()) is None
    assert list(a.var_names) == ["CD33", "CLEC12A", "IL3RA"]
    assert list(a.var["gene_id_input"]) == ["SIGLEC3", "CLEC12A", "CD123"]
    np.testing.assert_array_equal(a.X, counts)
    assert a.uns["antigenscout"] == {"kind": "bulk", "unmapped_genes": [], "merged_genes": {}}


def test_in_place_with_merges() -> None:
    a, counts = _adata("csr")
    with pytest.warns(UnmappedGenesWarning):
        harmonise_genes(a, FakeReference())
    assert list(a.var_names) == EXPECTED
    np.testing.assert_array_equal(a.X.toarray(), _expected(counts))


def test_gene_symbols_column_is_a_fallback() -> None:
    a = ad.AnnData(
        X=np.ones((2, 2), dtype=np.float32),
        var=pd.DataFrame({"gene_symbols": ["CD33", "IL3RA"]}, index=["ENSG99999999999", "X1"]),
    )
    harmonise_genes(a, FakeReference())
    assert list(a.var_names) == ["CD33", "IL3RA"]


def test_nothing_maps() -> None:
    a = ad.AnnData(X=np.ones((2, 2), dtype=np.float32), var=pd.DataFrame(index=["foo", "bar"]))
    with pytest.raises(InputError, match=r"none of the 2 genes .*foo, bar.* maps to the reference"):
        harmonise_genes(a, FakeReference())
