"""zarr and loom readers, backed h5ad, obsp kept, and read() with one keyword set."""

from __future__ import annotations

import warnings
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from antigenscout._errors import InputError
from antigenscout.io import read, read_h5ad, read_loom, read_zarr

GENES = ["CD33", "CLEC12A", "IL3RA", "CD34", "PTPRC", "MPO"]


def _write_zarr(a: ad.AnnData, path: Path) -> None:
    """Write a zarr v2 store; anndata's notice that v3 will become the default is noise here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Writing zarr v2", category=UserWarning)
        a.write_zarr(path)


def _counts(n: int = 30, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).poisson(1.5, size=(n, len(GENES))).astype(np.int64)


def _lognorm(counts: np.ndarray) -> np.ndarray:
    return np.log1p(counts / np.maximum(counts.sum(1, keepdims=True), 1) * 1e4)


def _adata(counts: np.ndarray, *, counts_in_layer: bool = False) -> ad.AnnData:
    n = counts.shape[0]
    obs = pd.DataFrame({"cell_type": ["a", "b"] * (n // 2)}, index=[f"c{i}" for i in range(n)])
    X = _lognorm(counts) if counts_in_layer else sparse.csr_matrix(counts)
    a = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=GENES))
    if counts_in_layer:
        a.layers["counts"] = sparse.csr_matrix(counts)
    rng = np.random.default_rng(1)
    graph = sparse.random(n, n, density=0.1, format="csr", random_state=2)
    a.obsp["connectivities"] = graph
    a.obsp["distances"] = graph * 3.0
    a.obsm["X_umap"] = rng.normal(size=(n, 2))
    return a


# ----------------------------------------------------------------------------- obsp kept


def test_h5ad_keeps_obsp_and_obsm(tmp_path: Path) -> None:
    src = _adata(_counts())
    src.write_h5ad(tmp_path / "a.h5ad")
    out = read_h5ad(tmp_path / "a.h5ad")
    assert set(out.obsp.keys()) == {"connectivities", "distances"}
    np.testing.assert_array_equal(
        out.obsp["connectivities"].toarray(), src.obsp["connectivities"].toarray()
    )
    np.testing.assert_array_equal(out.obsp["distances"].toarray(), src.obsp["distances"].toarray())
    np.testing.assert_array_equal(out.obsm["X_umap"], src.obsm["X_umap"])
    # aligned: subsetting cells subsets the graph the same way
    sub = out[out.obs["cell_type"] == "a"]
    rows = np.flatnonzero(src.obs["cell_type"] == "a")
    np.testing.assert_array_equal(
        sub.obsp["connectivities"].toarray(),
        src.obsp["connectivities"].toarray()[np.ix_(rows, rows)],
    )


# ----------------------------------------------------------------------------- zarr


@pytest.mark.parametrize("counts_in_layer", [False, True], ids=["X", "layer"])
def test_read_zarr(tmp_path: Path, counts_in_layer: bool) -> None:
    counts = _counts()
    _write_zarr(_adata(counts, counts_in_layer=counts_in_layer), tmp_path / "a.zarr")
    out = read_zarr(tmp_path / "a.zarr")
    assert isinstance(out.X, sparse.csr_matrix)
    np.testing.assert_array_equal(out.X.toarray(), counts)
    assert list(out.var_names) == GENES
    assert out.uns["antigenscout"]["counts_from"] == (
        "layers['counts']" if counts_in_layer else "X"
    )
    assert set(out.obsp.keys()) == {"connectivities", "distances"}
    same = read(tmp_path / "a.zarr", layer="counts" if counts_in_layer else "X")
    np.testing.assert_array_equal(same.X.toarray(), counts)


def test_read_zarr_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        read_zarr(tmp_path / "none.zarr")
    (tmp_path / "empty.zarr").mkdir()
    with pytest.raises(InputError, match=r"not a readable zarr store|not an AnnData one"):
        read_zarr(tmp_path / "empty.zarr")
    _write_zarr(_adata(_counts(), counts_in_layer=True), tmp_path / "a.zarr")
    with pytest.raises(InputError, match=r"layer 'spliced' is not in .*\['counts'\]"):
        read(tmp_path / "a.zarr", layer="spliced")


# ----------------------------------------------------------------------------- loom


def _write_loom(path: Path, counts: np.ndarray, *, main: np.ndarray | None = None) -> None:
    """A loom file as loompy writes it: genes × cells ``/matrix``, attrs, layers."""
    n = counts.shape[0]
    with h5py.File(path, "w") as f:
        f.attrs["LOOM_SPEC_VERSION"] = "3.0.0"
        f.create_dataset("matrix", data=(counts if main is None else main).T, chunks=(2, 8))
        f.create_group("layers")
        f["layers/spliced"] = counts.T
        f["row_attrs/Gene"] = np.array(GENES, dtype="S")
        f["row_attrs/chrom"] = np.array(["chr19"] * len(GENES), dtype="S")
        f["col_attrs/CellID"] = np.array([f"c{i}" for i in range(n)], dtype="S")
        f["col_attrs/n_umi"] = counts.sum(1)
        f["col_attrs/X_pca"] = np.zeros((n, 2))
        f.create_group("row_graphs")
        f.create_group("col_graphs")


def test_read_loom(tmp_path: Path) -> None:
    counts = _counts(21)
    _write_loom(tmp_path / "a.loom", counts)
    out = read_loom(tmp_path / "a.loom")
    assert isinstance(out.X, sparse.csr_matrix)
    np.testing.assert_array_equal(out.X.toarray(), counts)
    assert list(out.var_names) == GENES
    assert list(out.var["chrom"]) == ["chr19"] * len(GENES)
    assert list(out.obs_names) == [f"c{i}" for i in range(21)]
    np.testing.assert_array_equal(out.obs["n_umi"], counts.sum(1))
    assert out.uns["antigenscout"]["counts_from"] == "X"


def test_read_loom_layer(tmp_path: Path) -> None:
    counts = _counts(21)
    _write_loom(tmp_path / "a.loom", counts, main=_lognorm(counts))
    with pytest.raises(InputError, match=r"looks log1p-normalised"):
        read(tmp_path / "a.loom")
    out = read(tmp_path / "a.loom", layer="spliced")
    np.testing.assert_array_equal(out.X.toarray(), counts)
    assert out.uns["antigenscout"]["counts_from"] == "layers['spliced']"
    with pytest.raises(InputError, match=r"layer 'unspliced' is not in .*\['spliced'\]"):
        read(tmp_path / "a.loom", layer="unspliced")
    with h5py.File(tmp_path / "bad.loom", "w") as f:
        f["matrix"] = np.ones((3, 4))
        f["row_attrs/Gene"] = np.array([b"A", b"B"])
    with pytest.raises(InputError, match=r"/row_attrs/Gene of .* has 2 entries but .* 3 genes"):
        read_loom(tmp_path / "bad.loom")


# ----------------------------------------------------------------------------- backed


def test_backed_h5ad_streams_like_in_memory(tmp_path: Path) -> None:
    counts = _counts(40)
    src = _adata(counts)
    src.write_h5ad(tmp_path / "a.h5ad")
    mem = read_h5ad(tmp_path / "a.h5ad")
    out = read(tmp_path / "a.h5ad", backed=True)
    try:
        assert out.isbacked
        assert out.uns["antigenscout"]["backed"] is True
        assert out.uns["antigenscout"]["kind"] == "single_cell"
        assert list(out.var["gene_id_input"]) == GENES
        assert set(out.obsp.keys()) == {"connectivities", "distances"}
        # rows read in chunks from disk, as score_targets does, equal the in-memory counts
        parts = [sparse.csr_matrix(out.X[i : i + 7]) for i in range(0, out.n_obs, 7)]
        np.testing.assert_array_equal(sparse.vstack(parts).toarray(), mem.X.toarray())
    finally:
        out.file.close()


def test_backed_score_targets_matches_in_memory(tmp_path: Path) -> None:
    from antigenscout.tl._groups import counts_matrix
    from antigenscout.tl._tumor import _chunks

    counts = _counts(40)
    _adata(counts).write_h5ad(tmp_path / "a.h5ad")
    out = read_h5ad(tmp_path / "a.h5ad", backed=True)
    try:
        X, lib = counts_matrix(out, None)
        assert lib is None
        rows = np.arange(out.n_obs)
        got = sparse.vstack([b for _, b in _chunks(X, rows, chunk=9)]).toarray()
        np.testing.assert_array_equal(got, counts)
    finally:
        out.file.close()


def test_backed_refusals(tmp_path: Path) -> None:
    counts = _counts()
    _adata(counts, counts_in_layer=True).write_h5ad(tmp_path / "layer.h5ad")
    with pytest.raises(InputError, match=r"backed reading streams \.X only.*layer='counts'"):
        read_h5ad(tmp_path / "layer.h5ad", layer="counts", backed=True)
    with pytest.raises(InputError, match=r"looks log1p-normalised.*backed reading streams"):
        read_h5ad(tmp_path / "layer.h5ad", backed=True)
    a = _adata(counts)
    a.X = sparse.csc_matrix(a.X)
    a.write_h5ad(tmp_path / "csc.h5ad")
    with pytest.raises(InputError, match=r"stored CSC .* re-save it as CSR"):
        read_h5ad(tmp_path / "csc.h5ad", backed=True)


# ----------------------------------------------------------------------------- read()


def _write_all(root: Path, counts: np.ndarray) -> dict[str, Path]:
    """The same cells × genes counts in every format read() dispatches."""
    import scipy.io

    paths: dict[str, Path] = {}
    a = ad.AnnData(X=counts, var=pd.DataFrame(index=GENES))
    a.layers["counts"] = counts
    paths["h5ad"] = root / "a.h5ad"
    a.write_h5ad(paths["h5ad"])
    paths["zarr"] = root / "a.zarr"
    _write_zarr(a, paths["zarr"])
    paths["loom"] = root / "a.loom"
    _write_loom(paths["loom"], counts)
    csc = sparse.csc_matrix(counts.T)
    paths["10x_h5"] = root / "a.h5"
    with h5py.File(paths["10x_h5"], "w") as f:
        g = f.create_group("matrix")
        g["data"], g["indices"], g["indptr"] = csc.data, csc.indices, csc.indptr
        g["shape"] = np.array(csc.shape)
        g["barcodes"] = np.array([f"c{i}" for i in range(counts.shape[0])], dtype="S")
        g["features/id"] = np.array(GENES, dtype="S")
        g["features/name"] = np.array(GENES, dtype="S")
    d = root / "mtx"
    d.mkdir()
    scipy.io.mmwrite(d / "matrix.mtx", csc.tocoo())
    (d / "features.tsv").write_text("".join(f"{g}\t{g}\n" for g in GENES))
    (d / "barcodes.tsv").write_text("".join(f"c{i}\n" for i in range(counts.shape[0])))
    paths["10x_mtx"] = d
    paths["table"] = root / "a.tsv"
    pd.DataFrame(counts.T, index=GENES).to_csv(paths["table"], sep="\t")
    return paths


LAYERED = {"h5ad": "counts", "zarr": "counts", "loom": "spliced"}


@pytest.mark.parametrize("fmt", ["h5ad", "zarr", "loom", "10x_h5", "10x_mtx", "table"])
def test_read_every_format_with_and_without_layer(tmp_path: Path, fmt: str) -> None:
    counts = _counts(30)
    path = _write_all(tmp_path, counts)[fmt]
    kw = {"orientation": "genes_by_samples", "kind": "single_cell"} if fmt == "table" else {}
    np.testing.assert_array_equal(read(path, layer=None, **kw).X.toarray(), counts)
    if fmt in LAYERED:
        out = read(path, layer=LAYERED[fmt])
        np.testing.assert_array_equal(out.X.toarray(), counts)
        assert out.uns["antigenscout"]["counts_from"] == f"layers[{LAYERED[fmt]!r}]"
    else:
        with pytest.raises(InputError, match=r"layer='counts' was given but .* have no layers"):
            read(path, layer="counts", **kw)
        with pytest.raises(InputError, match=r"backed reading is only available for \.h5ad"):
            read(path, backed=True, **kw)


def test_read_rejects_options_of_other_formats(tmp_path: Path) -> None:
    path = _write_all(tmp_path, _counts())["h5ad"]
    with pytest.raises(InputError, match=r"option 'orientation' does not apply to AnnData \.h5ad"):
        read(path, orientation="genes_by_samples")


def test_a_zarr_store_missing_chunks_of_its_counts_is_refused(tmp_path: Path) -> None:
    """zarr reads a missing chunk as its fill value: an interrupted copy would turn counts
    into zeros. A sparse X missing chunks of data or indices is refused; the intact store
    reads."""
    rng = np.random.default_rng(0)
    X = sparse.csr_matrix(rng.poisson(2.0, (3000, 40)).astype(np.float32))
    a = ad.AnnData(X=X, var=pd.DataFrame(index=[f"G{i}" for i in range(40)]))
    path = tmp_path / "s.zarr"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a.write_zarr(path, chunks=(500,))
    assert read_zarr(path).n_obs == 3000
    chunks = sorted(p for p in (path / "X" / "data").rglob("*") if p.is_file() and p.name[0] != ".")
    chunks = [p for p in chunks if not p.name.endswith(".json")]
    assert len(chunks) > 1
    chunks[len(chunks) // 2].unlink()
    with pytest.raises(InputError, match="misses 1 of its"):
        read_zarr(path)
