"""Bad input of every kind ends in InputError: degenerate headers, hostile sizes, bad dtypes,
truncated or corrupt files, all-zero and normalised matrices."""

from __future__ import annotations

import contextlib
import gzip
import subprocess
import sys
import warnings
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

import antigenscout.io._guard as guard
from antigenscout._errors import AntigenscoutWarning, InputError
from antigenscout.io import read, read_10x_h5, read_10x_mtx, read_h5ad, read_table
from antigenscout.io._mtx import parse_header

GENES = ["CD33", "CLEC12A", "IL3RA", "CD34", "PTPRC", "MPO", "FLT3", "KIT"]
BANNER = "%%MatrixMarket matrix coordinate integer general\n"


def _mtx_dir(root: Path, body: str, n_feat: int = 3, n_bc: int = 2) -> Path:
    d = root / "mtx"
    d.mkdir()
    (d / "matrix.mtx").write_text(body)
    (d / "features.tsv").write_text(
        "".join(f"G{i}\tG{i}\tGene Expression\n" for i in range(n_feat))
    )
    (d / "barcodes.tsv").write_text("".join(f"bc{i}\n" for i in range(n_bc)))
    return d


# ----------------------------------------------------------------------------- MatrixMarket


@pytest.mark.parametrize(
    ("body", "pattern"),
    [
        (BANNER + "0 0\n", r"size line .* is '0 0'; a coordinate .* needs 3 non-negative"),
        (BANNER + "0 0 0\n", r"declares a 0 × 0 matrix but there are 3 features and 2 barcodes"),
        (BANNER + "-3 2 1\n1 1 1\n", r"size line .* is '-3 2 1'"),
        (BANNER + "3 2 1e3\n", r"size line .* is '3 2 1e3'"),
        (BANNER + "3 2 99999999999999999999\n", r"size line"),
        (BANNER + "3 2 7\n", r"declares 7 entries in a 3 × 2 matrix, more than it has cells"),
        (BANNER + "3 2 5\n1 1 1\n2 2 4\n", r"declares 5 entries but holds 2; .*truncated"),
        (BANNER + "3 2 1\n4 1 1\n", r"row index 4 outside 1..3"),
        (BANNER + "3 2 1\n1 1 x\n", r"not 3 numbers per line"),
        (BANNER + "3 2 1\n1 1\n", r"have 2 columns, not 3"),
        (BANNER, r"ends inside its MatrixMarket header; the file is truncated"),
        ("", r"ends inside its MatrixMarket header"),
        ("hello\n3 2 1\n", r"does not start with a '%%MatrixMarket' banner"),
        ("%%MatrixMarket matrix coordinate complex general\n3 2 1\n1 1 1 0\n", r"complex"),
        ("%%MatrixMarket matrix coordinate integer symmetric\n3 2 1\n", r"'symmetric' matrix"),
        ("%%MatrixMarket matrix array integer general\n3 2\n" + "0\n" * 6, r"no counts in"),
    ],
    ids=[
        "size-0-0",
        "size-0-0-0",
        "negative",
        "float-size",
        "overflow",
        "nnz-over-cells",
        "truncated-body",
        "index-out-of-range",
        "text-value",
        "missing-column",
        "no-size-line",
        "empty-file",
        "no-banner",
        "complex",
        "symmetric",
        "all-zero-array",
    ],
)
def test_mtx_degenerate_headers(tmp_path: Path, body: str, pattern: str) -> None:
    # each of these runs in this process: a SIGFPE in a native parser would kill pytest
    with pytest.raises(InputError, match=pattern):
        read_10x_mtx(_mtx_dir(tmp_path, body))


def test_mtx_header_parsed_like_scipy(tmp_path: Path) -> None:
    import scipy.io

    m = sparse.random(7, 5, density=0.4, format="coo", random_state=1)
    m.data = np.ceil(m.data * 9)
    path = tmp_path / "m.mtx"
    scipy.io.mmwrite(path, m.astype(np.int64))
    rows, cols, nnz, fmt, field, symmetry = scipy.io.mminfo(path)
    with path.open("rb") as fh:
        head = parse_header(fh, "'m.mtx'")
    assert (head.rows, head.cols, head.nnz, head.format, head.field) == (
        rows,
        cols,
        nnz,
        fmt,
        field,
    )
    assert symmetry == "general"


def test_mtx_array_and_real_fields_match_dense(tmp_path: Path) -> None:
    dense = np.array([[1, 0], [0, 4], [2, 3]])
    body = "%%MatrixMarket matrix array real general\n% c\n3 2\n" + "".join(
        f"{v}.0\n" for v in dense.ravel(order="F")
    )
    out = read_10x_mtx(_mtx_dir(tmp_path, body))
    np.testing.assert_array_equal(out.X.toarray(), dense.T)


def test_mtx_declared_size_beyond_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guard, "memory_budget", lambda: 100)
    d = _mtx_dir(tmp_path, BANNER + "3 2 6\n" + "1 1 1\n" * 6)
    with pytest.raises(InputError, match=r"declares 6 entries in a 3 × 2 matrix, which needs"):
        read_10x_mtx(d)


def test_mtx_truncated_gzip(tmp_path: Path) -> None:
    d = tmp_path / "gz"
    d.mkdir()
    body = BANNER + "3 2 6\n" + "".join(f"{i} {j} {i * j}\n" for i in (1, 2, 3) for j in (1, 2))
    blob = gzip.compress(body.encode() * 200)
    (d / "matrix.mtx.gz").write_bytes(blob[: len(blob) // 2])
    (d / "features.tsv").write_text("".join(f"G{i}\tG{i}\n" for i in range(3)))
    (d / "barcodes.tsv").write_text("a\nb\n")
    with pytest.raises(InputError, match=r"truncated or corrupt"):
        read_10x_mtx(d)


# ----------------------------------------------------------------------------- 10x HDF5


def _h5(path: Path, **over: object) -> Path:
    """A 3-feature × 2-cell CellRanger file; ``over`` replaces datasets of /matrix."""
    m = sparse.csc_matrix(np.array([[1, 0], [0, 2], [3, 4]]))
    arrays: dict[str, object] = {
        "data": m.data,
        "indices": m.indices,
        "indptr": m.indptr,
        "shape": np.array([3, 2]),
        "barcodes": np.array([b"a", b"b"]),
    }
    arrays.update(over)
    with h5py.File(path, "w") as f:
        g = f.create_group("matrix")
        for k, v in arrays.items():
            if v is not None:
                g[k] = v
        ft = g.create_group("features")
        ft["id"] = np.array([b"G0", b"G1", b"G2"])
        ft["name"] = np.array([b"G0", b"G1", b"G2"])
    return path


@pytest.mark.parametrize(
    ("over", "pattern"),
    [
        ({"indptr": None}, r"lacks the dataset /matrix/indptr"),
        ({"data": np.ones((2, 2))}, r"/matrix/data .* is 2-D"),
        ({"indptr": np.array([0, 2, 1])}, r"indptr.*do not run from 0 up to 4"),
        ({"indptr": np.array([0, 4])}, r"4 values, 4 indices and 2 column pointers"),
        ({"indices": np.array([0, 1, 2, 7])}, r"feature indices outside 0..2"),
        ({"data": np.array([1, 2, 3, 4]) * (1 + 1j)}, r"complex numbers \(dtype complex128\)"),
        ({"data": np.array([b"1", b"2", b"3", b"4"])}, r"holds text \(dtype \|S1\)"),
        ({"shape": np.array([3, 2, 1])}, r"/matrix/shape .* not two non-negative"),
        ({"shape": np.array([3_000_000_000, 2])}, r"declares a 3,000,000,000 × 2 matrix"),
        ({"data": np.zeros(4, dtype=np.int32)}, r"no counts in"),
    ],
    ids=[
        "no-indptr",
        "2d-data",
        "indptr-decreasing",
        "indptr-length",
        "index-range",
        "complex",
        "string",
        "shape-3",
        "shape-huge",
        "all-zero",
    ],
)
def test_10x_h5_structure_checked(tmp_path: Path, over: dict, pattern: str) -> None:
    with pytest.raises(InputError, match=pattern):
        read_10x_h5(_h5(tmp_path / "m.h5", **over))


def test_10x_h5_small_file_claiming_a_huge_matrix(tmp_path: Path) -> None:
    """7 KB on disk, a declared 10^9-cell, 10^9-value matrix: refused before allocating."""
    path = tmp_path / "huge.h5"
    n = 10**9
    with h5py.File(path, "w") as f:
        g = f.create_group("matrix")
        for k, dt in (("data", "i4"), ("indices", "i8"), ("indptr", "i8")):
            g.create_dataset(k, shape=(n + (k == "indptr"),), dtype=dt, chunks=(4096,))
        g["shape"] = np.array([3, n])
        g.create_dataset("barcodes", shape=(n,), dtype="S18", chunks=(4096,))
        ft = g.create_group("features")
        ft["id"] = np.array([b"G0", b"G1", b"G2"])
        ft["name"] = np.array([b"G0", b"G1", b"G2"])
    assert path.stat().st_size < 64_000
    with pytest.raises(InputError, match=r"declares 1,000,000,000 entries in /matrix/barcodes"):
        read_10x_h5(path)


# ----------------------------------------------------------------------------- HDF5 probe


def _crash_if_probed(monkeypatch: pytest.MonkeyPatch, sig: str) -> None:
    """Make the probe child die by ``sig`` the way libhdf5 does on a damaged file."""
    real = subprocess.run

    def fake(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
        code = f"import os, signal; os.kill(os.getpid(), signal.{sig})"
        return real([sys.executable, "-c", code], **kw)  # type: ignore[call-overload]

    monkeypatch.setattr(guard.subprocess, "run", fake)


@pytest.mark.parametrize("reader", [read_h5ad, read_10x_h5], ids=["h5ad", "10x_h5"])
def test_probe_turns_a_crash_into_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, reader: object
) -> None:
    path = tmp_path / "x.h5ad"
    ad.AnnData(X=np.ones((2, 2))).write_h5ad(path)
    _crash_if_probed(monkeypatch, "SIGSEGV")
    with pytest.raises(
        InputError, match=r"is corrupt: reading its HDF5 structure crashed \(SIGSEGV\)"
    ):
        reader(path)  # type: ignore[operator]


def test_probe_reports_declared_sizes(tmp_path: Path) -> None:
    path = tmp_path / "x.h5"
    with h5py.File(path, "w") as f:
        f["a"] = np.arange(10, dtype=np.int64)
        f.create_dataset("g/b", shape=(10**6, 10**3), dtype="f4", chunks=(64, 64))
    info = guard.probe_hdf5(path, source="'x.h5'", what="HDF5")
    assert info["datasets"]["a"] == [[10], "<i8", 80]
    assert info["datasets"]["g/b"][2] == 4 * 10**9
    assert info["nbytes"] == 80 + 4 * 10**9


def test_h5ad_declaring_more_than_memory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "x.h5ad"
    ad.AnnData(X=np.ones((20, 20))).write_h5ad(path)
    monkeypatch.setattr(guard, "memory_budget", lambda: 1000)
    with pytest.raises(InputError, match=r"declares .* datasets of .* bytes in all, which needs"):
        read_h5ad(path)


def test_h5ad_flipped_bytes_never_crash(tmp_path: Path) -> None:
    """Overwrite the superblock and object headers: InputError, whatever the damage."""
    path = tmp_path / "x.h5ad"
    ad.AnnData(X=np.ones((5, 3))).write_h5ad(path)
    blob = bytearray(path.read_bytes())
    for start in range(0, min(len(blob), 4096), 512):
        bad = bytearray(blob)
        bad[start : start + 8] = b"\xff" * 8
        path.write_bytes(bytes(bad))
        with contextlib.suppress(InputError):
            read_h5ad(path)


# ----------------------------------------------------------------------------- tables


def _frame(seed: int = 2) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    values = rng.gamma(1.0, 300.0, size=(len(GENES), 3)).round(3)
    return pd.DataFrame(values, index=GENES, columns=["S1", "S2", "S3"])


def test_truncated_and_corrupt_gzip_table(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv.gz"
    _frame().to_csv(path, sep="\t")
    blob = path.read_bytes()
    (tmp_path / "cut.tsv.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(InputError, match=r"EOFError: Compressed file ended.*truncated or corrupt"):
        read_table(tmp_path / "cut.tsv.gz")
    bad = bytearray(blob)
    bad[12:40] = b"\x00" * 28
    (tmp_path / "zlib.tsv.gz").write_bytes(bytes(bad))
    with pytest.raises(InputError, match=r"truncated or corrupt"):
        read_table(tmp_path / "zlib.tsv.gz")
    (tmp_path / "utf.tsv").write_bytes(b"gene\tS1\n\xff\xfe\t1\n")
    with pytest.raises(InputError, match=r"UnicodeDecodeError"):
        read_table(tmp_path / "utf.tsv")


def test_all_zero_table(tmp_path: Path) -> None:
    (_frame() * 0).to_csv(tmp_path / "z.tsv", sep="\t")
    with pytest.raises(InputError, match=r"no counts in .*every value of its 3 × 8 matrix is 0"):
        read_table(tmp_path / "z.tsv")


def test_log_scale_bulk_warns(tmp_path: Path) -> None:
    tpm = _frame()
    np.log2(tpm + 1).to_csv(tmp_path / "log.tsv", sep="\t")
    with pytest.warns(AntigenscoutWarning, match=r"look log-scale.*pass linear values"):
        out = read_table(tmp_path / "log.tsv")
    np.testing.assert_allclose(out.X, np.log2(tpm + 1).T.to_numpy(), rtol=1e-6)
    tpm.to_csv(tmp_path / "lin.tsv", sep="\t")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_table(tmp_path / "lin.tsv")  # linear TPM: no warning


# ----------------------------------------------------------------------------- h5ad values


def _write(path: Path, X: object) -> Path:
    ad.AnnData(X=X).write_h5ad(path)
    return path


def test_h5ad_dtype_zero_and_normalisation_messages(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    counts = rng.poisson(3.0, size=(40, 30)).astype(np.float64)
    lib = counts.sum(1, keepdims=True)
    cases = [
        (counts * (1 + 1j), r"\.X in .* holds complex numbers \(dtype complex128\)"),
        (np.zeros((4, 3)), r"no counts in .*every value of its 4 × 3 matrix is 0"),
        (np.log1p(counts / lib * 1e4), r"looks log1p-normalised \(non-integer values, maximum"),
        (counts / lib * 1e4, r"looks CP10k/CPM-normalised \(every cell sums to about 10000\)"),
    ]
    for i, (X, pattern) in enumerate(cases):
        with pytest.raises(InputError, match=pattern):
            read_h5ad(_write(tmp_path / f"{i}.h5ad", X))
    with pytest.raises(InputError, match=r"holds text or mixed objects \(dtype object\)"):
        read(_write(tmp_path / "s.h5ad", np.array([["a", "b"], ["c", "d"]])))
