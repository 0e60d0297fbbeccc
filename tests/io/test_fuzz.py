"""Property-based fuzzing of the readers: a damaged file gives a valid AnnData or InputError.

Each test starts from a small valid file of one format, applies random byte flips,
truncations or (for MatrixMarket) header rewrites, and calls the reader. Any exception
other than :class:`InputError` fails the test; a native crash would kill the run; the
process's peak resident memory may not grow by more than :data:`MAX_RSS_GROWTH`.
Runs are derandomised and use no example database, so CI sees the same examples.
"""

from __future__ import annotations

import gzip
import resource
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import scipy.io
from anndata import AnnData
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import sparse

from antigenscout._errors import AntigenscoutWarning, InputError
from antigenscout.io import join_obs, read_10x_h5, read_10x_mtx, read_h5ad, read_loom, read_table
from antigenscout.io._validate import check_counts
from antigenscout.tl._gates import parse_gate

pytestmark = pytest.mark.slow  # fuzzing: run in CI, not in the README's quick command

GENES = ["CD33", "CLEC12A", "IL3RA", "CD34", "PTPRC", "MPO", "FLT3", "KIT"]
#: Largest growth of the peak resident memory (ru_maxrss) one fuzz test may cause.
MAX_RSS_GROWTH = 512 << 20

FAST = settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,  # rss_bound spans all examples on purpose
    ],
)
#: HDF5 readers start a probe child per call (~0.15 s), so they get fewer examples.
HDF5 = settings(FAST, max_examples=60)


def _counts() -> np.ndarray:
    return np.random.default_rng(7).poisson(2.0, size=(12, len(GENES))).astype(np.int64)


def _seed_table() -> bytes:
    df = pd.DataFrame(_counts().T * 37.5, index=GENES, columns=[f"S{i}" for i in range(12)])
    return gzip.compress(df.to_csv(sep="\t").encode(), mtime=0)


def _seed_mtx() -> bytes:
    with tempfile.TemporaryDirectory() as d:
        scipy.io.mmwrite(Path(d) / "m.mtx", sparse.coo_matrix(_counts().T))
        return (Path(d) / "m.mtx").read_bytes()


def _seed_h5() -> bytes:
    csc = sparse.csc_matrix(_counts().T)
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.h5"
        with h5py.File(path, "w") as f:
            g = f.create_group("matrix")
            g["data"], g["indices"], g["indptr"] = csc.data, csc.indices, csc.indptr
            g["shape"] = np.array(csc.shape)
            g["barcodes"] = np.array([f"AAACCTG-{i}" for i in range(12)], dtype="S")
            g["features/id"] = np.array(GENES, dtype="S")
            g["features/name"] = np.array(GENES, dtype="S")
            g["features/feature_type"] = np.array(["Gene Expression"] * len(GENES), dtype="S")
        return path.read_bytes()


def _seed_h5ad() -> bytes:
    counts = _counts()
    obs = pd.DataFrame({"cell_type": pd.Categorical(["a", "b"] * 6)})
    obs.index = [f"c{i}" for i in range(12)]
    a = AnnData(X=sparse.csr_matrix(counts), obs=obs, var=pd.DataFrame(index=GENES))
    a.layers["counts"] = counts
    a.obsp["connectivities"] = sparse.identity(12, format="csr")
    with tempfile.TemporaryDirectory() as d:
        a.write_h5ad(Path(d) / "a.h5ad")
        return (Path(d) / "a.h5ad").read_bytes()


def _seed_loom() -> bytes:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "m.loom"
        with h5py.File(path, "w") as f:
            f.create_dataset("matrix", data=_counts().T, chunks=(2, 12), compression="gzip")
            f["row_attrs/Gene"] = np.array(GENES, dtype="S")
            f["col_attrs/CellID"] = np.array([f"c{i}" for i in range(12)], dtype="S")
        return path.read_bytes()


def _mutations(size: int, *, head: int = 4096) -> st.SearchStrategy[list[tuple]]:
    """Lists of byte flips (biased to the first ``head`` bytes, where headers live),
    overwritten runs and one optional truncation."""
    pos = st.one_of(st.integers(0, min(size, head) - 1), st.integers(0, size - 1))
    flip = st.tuples(st.just("flip"), pos, st.integers(0, 255))
    run = st.tuples(st.just("run"), pos, st.binary(min_size=1, max_size=16))
    cut = st.tuples(st.just("cut"), st.integers(0, size - 1), st.just(0))
    return st.lists(st.one_of(flip, flip, run, cut), min_size=1, max_size=6)


def _apply(blob: bytes, ops: list[tuple]) -> bytes:
    out = bytearray(blob)
    for op, at, value in ops:
        if at >= len(out):
            continue
        if op == "flip":
            out[at] = value
        elif op == "run":
            out[at : at + len(value)] = value
        else:
            del out[at:]
    return bytes(out)


def _check(read: Callable[[], AnnData]) -> None:
    """The reader returns a valid AnnData or raises InputError; nothing else."""
    try:
        with warnings.catch_warnings():
            # a damaged table may look log-scale: that warning is a valid outcome
            warnings.simplefilter("ignore", AntigenscoutWarning)
            out = read()
    except InputError as e:
        message = str(e)
    else:
        message = ""
    if message:
        assert "\n" not in message
        return
    assert isinstance(out, AnnData)
    X = out.X
    data = X.data if sparse.issparse(X) else np.asarray(X)
    assert X.shape == (out.n_obs, out.n_vars)
    assert np.isfinite(data).all()
    assert (data >= 0).all()
    assert data.any()
    assert out.var_names.is_unique


@pytest.fixture
def rss_bound() -> object:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    yield
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert after - before < MAX_RSS_GROWTH, f"peak memory grew by {after - before:,} bytes"


TABLE, MTX, H5, H5AD = _seed_table(), _seed_mtx(), _seed_h5(), _seed_h5ad()
LOOM = _seed_loom()


def test_seeds_are_valid() -> None:
    """The unmutated seeds read back to the same counts (so mutations start from valid)."""
    with tempfile.TemporaryDirectory() as d:
        root = Path(d)
        (root / "t.tsv.gz").write_bytes(TABLE)
        tab = read_table(root / "t.tsv.gz", orientation="genes_by_samples")
        np.testing.assert_allclose(tab.X, _counts() * 37.5)
        _mtx_folder(root / "m", MTX)
        np.testing.assert_array_equal(read_10x_mtx(root / "m").X.toarray(), _counts())
        (root / "m.h5").write_bytes(H5)
        np.testing.assert_array_equal(read_10x_h5(root / "m.h5").X.toarray(), _counts())
        (root / "a.h5ad").write_bytes(H5AD)
        np.testing.assert_array_equal(read_h5ad(root / "a.h5ad").X.toarray(), _counts())
        backed = read_h5ad(root / "a.h5ad", backed=True)
        np.testing.assert_array_equal(backed.X[:].toarray(), _counts())
        (root / "m.loom").write_bytes(LOOM)
        np.testing.assert_array_equal(read_loom(root / "m.loom").X.toarray(), _counts())
    assert len(H5AD) < 64_000


def _mtx_folder(d: Path, blob: bytes) -> Path:
    d.mkdir()
    (d / "matrix.mtx").write_bytes(blob)
    (d / "features.tsv").write_text("".join(f"{g}\t{g}\tGene Expression\n" for g in GENES))
    (d / "barcodes.tsv").write_text("".join(f"bc{i}\n" for i in range(12)))
    return d


@FAST
@given(ops=_mutations(len(TABLE), head=64))
def test_fuzz_table(rss_bound: object, ops: list[tuple]) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "t.tsv.gz"
        path.write_bytes(_apply(TABLE, ops))
        _check(lambda: read_table(path))


_INTS = st.one_of(
    st.integers(0, 20), st.sampled_from([2**31, 2**32 + 1, 2**63 - 1, 10**19]), st.integers()
)
_SIZE_LINE = st.one_of(
    st.lists(_INTS, min_size=0, max_size=4).map(lambda xs: " ".join(map(str, xs))),
    st.text(alphabet="0123456789 -e.x%\t", max_size=20),
)
_BANNER = st.sampled_from(
    [
        "%%MatrixMarket matrix coordinate integer general",
        "%%MatrixMarket matrix coordinate real general",
        "%%MatrixMarket matrix coordinate pattern general",
        "%%MatrixMarket matrix coordinate complex general",
        "%%MatrixMarket matrix array integer general",
        "%%MatrixMarket matrix coordinate integer symmetric",
        "%%MatrixMarket vector coordinate integer general",
        "%%matrixmarket",
        "",
    ]
)


@FAST
@given(banner=_BANNER, size=_SIZE_LINE, ops=_mutations(len(MTX), head=128))
def test_fuzz_mtx(rss_bound: object, banner: str, size: str, ops: list[tuple]) -> None:
    lines = MTX.decode().splitlines(keepends=True)
    body = [x for x in lines[1:] if not x.startswith("%")]
    mutated = f"{banner}\n%\n{size}\n".encode() + "".join(body[1:]).encode()
    with tempfile.TemporaryDirectory() as d:
        folder = _mtx_folder(Path(d) / "m", _apply(mutated, ops[:2]))
        _check(lambda: read_10x_mtx(folder))


def _fuzz_file(seed: bytes, ops: list[tuple], name: str, read: Callable[[Path], AnnData]) -> None:
    """Write ``seed`` mutated by ``ops`` to a file named ``name`` and check what reads it."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / name
        path.write_bytes(_apply(seed, ops))
        _check(lambda: read(path))


@HDF5
@given(ops=_mutations(len(H5)))
def test_fuzz_10x_h5(rss_bound: object, ops: list[tuple]) -> None:
    _fuzz_file(H5, ops, "m.h5", read_10x_h5)


@HDF5
@given(ops=_mutations(len(H5AD)))
def test_fuzz_h5ad(rss_bound: object, ops: list[tuple]) -> None:
    _fuzz_file(H5AD, ops, "a.h5ad", read_h5ad)


def _read_backed(path: Path) -> AnnData:
    out = read_h5ad(path, backed=True)
    mem = out.to_memory()
    out.file.close()
    return mem


@HDF5
@given(ops=_mutations(len(H5AD)))
def test_fuzz_h5ad_backed(rss_bound: object, ops: list[tuple]) -> None:
    """Backed reading checks the on-disk matrix in chunks: a damaged file is refused there or
    reads to valid values (it used to crash on an index out of range)."""
    _fuzz_file(H5AD, ops, "a.h5ad", _read_backed)


@HDF5
@given(ops=_mutations(len(LOOM)))
def test_fuzz_loom(rss_bound: object, ops: list[tuple]) -> None:
    _fuzz_file(LOOM, ops, "m.loom", read_loom)


_N_ROWS, _N_COLS = 5, 4


def _refused(call: Callable[[], object]) -> bool:
    """Run ``call``: True when it raised InputError with a one-line message (anything else
    propagates and fails the test)."""
    try:
        call()
    except InputError as e:
        message = str(e)
    else:
        return False
    assert "\n" not in message
    return True


@FAST
@given(
    indptr=st.lists(st.integers(-3, 12), min_size=0, max_size=8),
    indices=st.lists(st.integers(-2, 2**31 - 1) | st.integers(-1, 6), max_size=10),
    data=st.lists(st.integers(0, 50), max_size=10),
)
def test_fuzz_sparse_structure_in_memory(indptr: list, indices: list, data: list) -> None:
    """What the API is handed in memory: any CSR arrays are checked before compiled code reads
    them (one index out of range used to crash the process); what passes is a valid matrix."""
    X = sparse.csr_matrix((_N_ROWS, _N_COLS), dtype=np.float32)
    X.indptr = np.asarray(indptr, dtype=np.int64)
    X.indices = np.asarray(indices, dtype=np.int64)
    X.data = np.asarray(data, dtype=np.float32)
    if _refused(lambda: check_counts(X, "'x'", "single_cell")):
        return
    X.check_format(full_check=True)  # what passed is a well-formed matrix
    assert X.toarray().shape == (_N_ROWS, _N_COLS)


_GATE_TOKENS = st.sampled_from(["CD33", "CD34", "IL3RA", "AND", "OR", "NOT", "(", ")", "XYZ", ""])


@FAST
@given(tokens=st.lists(_GATE_TOKENS, max_size=40), depth=st.integers(0, 400))
def test_fuzz_gate_formulas(tokens: list[str], depth: int) -> None:
    """A formula of any shape, nested to any depth, parses or is refused with InputError
    (it used to raise RecursionError past a few hundred levels)."""
    text = "(" * depth + " ".join(tokens) + ")" * depth
    parsed: list = []
    if _refused(lambda: parsed.append(parse_gate(text, ["CD33", "CD34", "IL3RA"]))):
        return
    assert 1 <= parsed[0].n_genes <= 3


@FAST
@given(
    names=st.lists(st.text(max_size=8), max_size=8),
    labels=st.lists(st.text(max_size=6), max_size=8),
    header=st.text(max_size=12),
)
def test_fuzz_obs_table(names: list[str], labels: list[str], header: str) -> None:
    """A cell-metadata table of any content joins onto the cells or is refused."""
    cells = [f"c{i}" for i in range(12)]
    adata = AnnData(X=sparse.csr_matrix(_counts()), obs=pd.DataFrame(index=cells))
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "obs.tsv"
        rows = [f"{n}\t{lab}" for n, lab in zip(names, labels, strict=False)]
        path.write_text("\n".join([f"barcode\t{header}", *rows]) + "\n", encoding="utf-8")
        joined: list = []
        if _refused(lambda: joined.append(join_obs(adata, path))):
            return
    assert list(joined[0].obs_names) == cells
