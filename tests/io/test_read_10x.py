"""read_10x_h5 / read_10x_mtx on tiny CellRanger-format files written here."""

from __future__ import annotations

import gzip
from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io
from scipy import sparse

from antigenscout._errors import InputError
from antigenscout.io import read_10x_h5, read_10x_mtx

IDS = ["ENSG00000105383", "ENSG00000172322", "ENSG00000185291", "ENSG00000174059", "TotalSeqB_CD33"]
NAMES = ["CD33", "CLEC12A", "IL3RA", "CD34", "CD33_ab"]
TYPES = ["Gene Expression"] * 4 + ["Antibody Capture"]
BARCODES = [f"AAACCTGAGAAACC{i:02d}-1" for i in range(12)]


def _matrix(seed: int = 1) -> np.ndarray:
    """Features × cells, as CellRanger stores it."""
    rng = np.random.default_rng(seed)
    return rng.poisson(2.0, size=(len(IDS), len(BARCODES))).astype(np.int32)


def _write_h5(path: Path, m: np.ndarray, ids: list[str] = IDS) -> None:
    csc = sparse.csc_matrix(m)
    with h5py.File(path, "w") as f:
        g = f.create_group("matrix")
        g["data"] = csc.data
        g["indices"] = csc.indices.astype(np.int64)
        g["indptr"] = csc.indptr.astype(np.int64)
        g["shape"] = np.array(m.shape, dtype=np.int32)
        g["barcodes"] = np.array(BARCODES, dtype="S")
        ft = g.create_group("features")
        ft["id"] = np.array(ids, dtype="S")
        ft["name"] = np.array(NAMES, dtype="S")
        ft["feature_type"] = np.array(TYPES, dtype="S")
        ft["genome"] = np.array(["GRCh38"] * len(ids), dtype="S")


def _write_mtx(d: Path, m: np.ndarray, *, gz: bool, v2: bool = False) -> None:
    d.mkdir()

    def _open(name: str):
        return gzip.open(d / f"{name}.gz", "wb") if gz else (d / name).open("wb")

    with _open("matrix.mtx") as fh:
        scipy.io.mmwrite(fh, sparse.coo_matrix(m))
    rows = zip(IDS, NAMES, TYPES, strict=True)
    feat = "".join(f"{i}\t{n}\n" if v2 else f"{i}\t{n}\t{t}\n" for i, n, t in rows)
    with _open("genes.tsv" if v2 else "features.tsv") as fh:
        fh.write(feat.encode())
    with _open("barcodes.tsv") as fh:
        fh.write("".join(b + "\n" for b in BARCODES).encode())


def _check(out, m: np.ndarray, *, protein: bool = True) -> None:
    assert isinstance(out.X, sparse.csr_matrix)
    assert out.X.dtype == np.float32
    np.testing.assert_array_equal(out.X.toarray(), m[:4].T)
    assert list(out.var_names) == IDS[:4]
    assert list(out.var["gene_id_input"]) == IDS[:4]
    assert list(out.var["gene_symbols"]) == NAMES[:4]
    assert list(out.obs_names) == BARCODES
    assert out.uns["antigenscout"]["kind"] == "single_cell"
    if protein:
        np.testing.assert_array_equal(out.obsm["protein"]["CD33_ab"].to_numpy(), m[4])


def test_read_10x_h5(tmp_path: Path) -> None:
    m = _matrix()
    _write_h5(tmp_path / "f.h5", m)
    _check(read_10x_h5(tmp_path / "f.h5"), m)


def test_read_10x_h5_v2_layout(tmp_path: Path) -> None:
    m = _matrix()[:4]
    csc = sparse.csc_matrix(m)
    with h5py.File(tmp_path / "v2.h5", "w") as f:
        g = f.create_group("GRCh38")
        for k, v in {"data": csc.data, "indices": csc.indices, "indptr": csc.indptr}.items():
            g[k] = v
        g["shape"] = np.array(m.shape)
        g["barcodes"] = np.array(BARCODES, dtype="S")
        g["genes"] = np.array(IDS[:4], dtype="S")
        g["gene_names"] = np.array(NAMES[:4], dtype="S")
    _check(read_10x_h5(tmp_path / "v2.h5"), m, protein=False)


@pytest.mark.parametrize("gz", [True, False], ids=["gz", "plain"])
def test_read_10x_mtx(tmp_path: Path, gz: bool) -> None:
    m = _matrix()
    _write_mtx(tmp_path / "mtx", m, gz=gz)
    _check(read_10x_mtx(tmp_path / "mtx"), m)


def test_read_10x_mtx_v2_genes_tsv(tmp_path: Path) -> None:
    m = _matrix()[:4]
    d = tmp_path / "v2"
    d.mkdir()
    scipy.io.mmwrite(d / "matrix.mtx", sparse.coo_matrix(m))
    (d / "genes.tsv").write_text(
        "".join(f"{i}\t{n}\n" for i, n in zip(IDS[:4], NAMES, strict=False))
    )
    (d / "barcodes.tsv").write_text("".join(b + "\n" for b in BARCODES))
    _check(read_10x_mtx(d), m, protein=False)


def test_10x_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist; check the path"):
        read_10x_h5(tmp_path / "missing.h5")
    (tmp_path / "bad.h5").write_bytes(b"\x89HDF garbage")
    with pytest.raises(InputError, match=r"cannot read .* as a 10x HDF5 matrix"):
        read_10x_h5(tmp_path / "bad.h5")
    with pytest.raises(InputError, match="does not exist"):
        read_10x_mtx(tmp_path / "nodir")
    (tmp_path / "incomplete").mkdir()
    scipy.io.mmwrite(tmp_path / "incomplete" / "matrix.mtx", sparse.coo_matrix(_matrix()))
    with pytest.raises(InputError, match=r"features.tsv\(.gz\) or genes.tsv\(.gz\) is missing"):
        read_10x_mtx(tmp_path / "incomplete")


def test_10x_duplicate_ids_and_negative(tmp_path: Path) -> None:
    ids = [IDS[0], IDS[0], *IDS[2:]]
    _write_h5(tmp_path / "dup.h5", _matrix(), ids=ids)
    with pytest.raises(InputError, match=r"1 gene ids occur more than once.*ENSG00000105383"):
        read_10x_h5(tmp_path / "dup.h5")
    m = _matrix()
    m[1, 3] = -2
    _write_h5(tmp_path / "neg.h5", m)
    with pytest.raises(InputError, match="1 negative values"):
        read_10x_h5(tmp_path / "neg.h5")


def test_10x_empty(tmp_path: Path) -> None:
    m = np.zeros((len(IDS), 0), dtype=np.int32)
    d = tmp_path / "empty"
    d.mkdir()
    scipy.io.mmwrite(d / "matrix.mtx", sparse.coo_matrix(m))
    (d / "features.tsv").write_text(
        "".join(f"{i}\t{n}\t{t}\n" for i, n, t in zip(IDS, NAMES, TYPES, strict=True))
    )
    (d / "barcodes.tsv").write_text("")
    with pytest.raises(InputError, match=r"empty|cannot read"):
        read_10x_mtx(d)
