"""The loom reader: every chunk layout gives the matrix written, and each chunk lies in
exactly one slab (decompressed once)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from antigenscout.io import read_loom
from antigenscout.io._loom import BLOCK_CELLS, SLAB_BYTES, slab_plan


@pytest.mark.parametrize(
    "chunks", [None, (64, 64), (1, 700), (300, 1), (7, 700), (300, 700), (5, 33)]
)
def test_every_chunk_layout_reads_the_matrix_written(
    tmp_path: Path, chunks: tuple[int, int] | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    rng = np.random.default_rng(3)
    genes, cells = 300, 700
    m = (rng.random((genes, cells)) < 0.05) * rng.poisson(3, (genes, cells))
    path = tmp_path / "x.loom"
    with h5py.File(path, "w") as f:
        opts = {} if chunks is None else {"chunks": chunks, "compression": "gzip"}
        f.create_dataset("matrix", data=m.astype(np.float32), **opts)
        f.create_dataset("row_attrs/Gene", data=np.array([f"G{i}" for i in range(genes)], "S"))
        f.create_dataset("col_attrs/CellID", data=np.array([f"C{i}" for i in range(cells)], "S"))
    # small slabs, so that the file is read in many of them
    monkeypatch.setattr("antigenscout.io._loom.SLAB_BYTES", 40_000)
    adata = read_loom(path)
    np.testing.assert_array_equal(adata.X.toarray(), m.T)
    assert list(adata.var_names[:2]) == ["G0", "G1"]


@pytest.mark.parametrize(
    ("shape", "chunks"),
    [
        ((20000, 100000), (1, 100000)),
        ((20000, 100000), (64, 64)),
        ((33538, 5000), (64, 64)),
        ((2000, 5000), (2000, 1)),
        ((30, 10**6), (30, 5000)),
        ((50000, 50000), (8, 50000)),
    ],
)
def test_slabs_hold_whole_chunks_within_the_budget(
    shape: tuple[int, int], chunks: tuple[int, int]
) -> None:
    axis, step = slab_plan(shape, chunks, 4)
    assert step % chunks[axis] == 0  # a chunk never straddles two slabs
    other = shape[1 - axis]
    one_chunk = chunks[axis] * other * 4
    assert step * other * 4 <= max(SLAB_BYTES, one_chunk)
    if axis == 1:
        assert step <= max(BLOCK_CELLS, chunks[1])
