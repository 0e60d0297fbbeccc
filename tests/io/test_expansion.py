"""Compressed inputs that expand past any expression matrix are refused before they are
read (a 1.7 MB .tsv.gz reached 6.7 GB, a 17 KB .h5ad declared 6 GB)."""

from __future__ import annotations

import gzip
from pathlib import Path

import anndata as ad
import h5py
import numpy as np
import pytest

from antigenscout._errors import InputError
from antigenscout.io import _guard, read


@pytest.fixture
def small_floor(monkeypatch):
    monkeypatch.setattr(_guard, "EXPANSION_FLOOR", 1 << 20)  # 1 MB instead of 1 GB
    import antigenscout.io._table as table

    monkeypatch.setattr(table, "EXPANSION_FLOOR", 1 << 20)


def test_a_gzip_table_that_expands_too_far_is_refused(tmp_path: Path, small_floor) -> None:
    path = tmp_path / "bomb.tsv.gz"
    with gzip.open(path, "wb", compresslevel=9) as f:
        f.write(b"gene\t" + "\t".join(f"c{i}" for i in range(1000)).encode() + b"\n")
        row = ("0\t" * 999 + "0\n").encode()
        for i in range(3000):  # ~6 MB of text from a few KB
            f.write(f"G{i}\t".encode() + row)
    assert path.stat().st_size * 200 < 6e6
    with pytest.raises(InputError, match="expands to at least"):
        read(path)


def test_an_ordinary_gzip_table_reads(tmp_path: Path, small_floor) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "ok.tsv.gz"
    with gzip.open(path, "wt") as f:
        f.write("gene\t" + "\t".join(f"patient_{i}" for i in range(6)) + "\n")
        for g in ("CD33", "CD19", "FLT3", "KIT"):
            f.write(g + "\t" + "\t".join(str(v) for v in rng.poisson(50, 6)) + "\n")
    assert read(path).n_obs == 6


def test_an_h5ad_declaring_far_more_than_it_holds_is_refused(tmp_path: Path, small_floor) -> None:
    path = tmp_path / "bomb.h5ad"
    ad.AnnData(X=np.zeros((10, 10), dtype=np.float32)).write_h5ad(path)
    with h5py.File(path, "r+") as f:
        del f["X"]
        f.create_dataset("X", shape=(4000, 4000), dtype="f4", compression="gzip", chunks=(500, 500))
    with pytest.raises(InputError, match="expands to at least"):
        read(path)
