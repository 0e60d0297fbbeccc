"""Bad inputs the CLI must survive: each ends in one ``error:`` line and exit code 2.

Shared by ``tests/test_bad_input.py`` (which asserts every property) and
``scripts/bad_input_doc.py`` (which writes the table in ``docs/bad_input.md``). Each case
runs ``python -m antigenscout`` in a child process, so a native crash (a signal) or a
memory blow-up is seen as such, with a previous run of the same command in ``--out``
whose files must be byte-identical afterwards.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

GENES = ["CD33", "IL3RA", "CLEC12A", "CD34", "B2M", "PTPRC", "CD19", "MS4A1"]
#: Address-space cap of each child: a case that tries to allocate more fails fast instead of
#: taking the machine down; a case must also stay under ``MAX_RSS_MB`` of resident memory.
ADDRESS_SPACE_CAP = 8 << 30
MAX_RSS_MB = 1500

#: Runs one command under the address-space and file-size caps and writes its exit code and
#: peak resident memory (``os.wait4``) to a JSON file: ``argv_json cap fsize report``.
_LAUNCHER = """
import json, os, resource, subprocess, sys
argv, cap, fsize, report = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def limits():
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    if fsize:
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
proc = subprocess.Popen(argv, preexec_fn=limits)
_, status, usage = os.wait4(proc.pid, 0)
with open(report, "w") as f:
    json.dump({"returncode": os.waitstatus_to_exitcode(status), "maxrss_kb": usage.ru_maxrss}, f)
"""
MAX_SECONDS = 60

Setup = Callable[[Path, Path], list[str]]


@dataclass
class Case:
    """One bad input: how to make it, and a phrase its message must contain."""

    id: str
    what: str
    setup: Setup  #: (work dir, --out) -> argv after ``antigenscout``
    expect: str
    family: str = "rank"  #: the command family of the previous run left in --out
    fsize: int | None = None  #: RLIMIT_FSIZE for the child (simulates a full disk)


@dataclass
class Result:
    case: Case
    argv: list[str]
    code: int
    stderr: str
    seconds: float
    max_rss_mb: float
    out_unchanged: bool
    lines: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- files


def counts(n_cells: int = 60, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).poisson(1.5, (n_cells, len(GENES))).astype(np.float32)


def _bad_index_h5ad(path: Path) -> Path:
    """A valid .h5ad whose sparse .X then gets one column index far out of range (it
    crashed the process with SIGSEGV before the index check)."""
    import h5py

    write_h5ad(path)
    with h5py.File(path, "r+") as f:
        idx = f["X/indices"]
        v = idx[:]
        v[len(v) // 2] = 10**6
        idx[...] = v
    return path


def write_h5ad(path: Path, X: np.ndarray | None = None, **obs_cols: object) -> Path:
    import anndata as ad
    import pandas as pd
    from scipy import sparse

    X = counts() if X is None else X
    n = X.shape[0]
    rng = np.random.default_rng(1)
    obs = pd.DataFrame(
        {"status": rng.choice(["malignant", "normal"], n), "patient": rng.choice(["P1", "P2"], n)},
        index=[f"c{i}" for i in range(n)],
    )
    for k, v in obs_cols.items():
        obs[k] = v
    Xs = X if X.dtype.kind == "c" else sparse.csr_matrix(X)
    ad.AnnData(X=Xs, obs=obs, var=pd.DataFrame(index=GENES[: X.shape[1]])).write_h5ad(path)
    return path


def write_10x_h5(path: Path, *, shape: tuple[int, int] | None = None, data=None) -> Path:
    import h5py
    from scipy import sparse

    m = sparse.csc_matrix(counts().T)
    with h5py.File(path, "w") as f:
        g = f.create_group("matrix")
        g["data"] = m.data if data is None else data
        g["indices"], g["indptr"] = m.indices, m.indptr
        g["shape"] = np.array(shape if shape is not None else m.shape, dtype=np.int64)
        g["barcodes"] = np.array([f"c{i}" for i in range(m.shape[1])], dtype="S")
        feat = g.create_group("features")
        feat["id"] = np.array(GENES, dtype="S")
        feat["name"] = np.array(GENES, dtype="S")
        feat["feature_type"] = np.array(["Gene Expression"] * len(GENES), dtype="S")
    return path


def write_mtx_dir(d: Path, matrix_text: str) -> Path:
    d.mkdir()
    (d / "matrix.mtx").write_text(matrix_text)
    (d / "features.tsv").write_text("".join(f"{g}\t{g}\tGene Expression\n" for g in GENES))
    (d / "barcodes.tsv").write_text("".join(f"c{i}\n" for i in range(5)))
    return d


def write_tsv(path: Path, X: np.ndarray | None = None) -> Path:
    import pandas as pd

    X = counts() if X is None else X
    df = pd.DataFrame(X.T, index=GENES, columns=[f"c{i}" for i in range(X.shape[0])])
    df.to_csv(path, sep="\t")
    return path


#: Real damaged files (31 KB h5ad with 2-4 bytes changed) found by changing random bytes
#: of a small AnnData file and keeping those on which a plain ``anndata.read_h5ad`` in a
#: child process was killed by SIGSEGV, or ran for over 20 s (a damaged string heap).
DATA = Path(__file__).parent / "data"
SEGFAULT_H5AD = DATA / "corrupt_segfault.h5ad"
HANG_H5AD = DATA / "corrupt_hang.h5ad"


def _rank(path: Path, out: Path, *extra: str) -> list[str]:
    return ["rank", str(path), "--positivity", "cp10k", "--out", str(out), *extra]


def _gates(path: Path, out: Path, *extra: str) -> list[str]:
    return ["gates", str(path), "--positivity", "cp10k", "--out", str(out), *extra]


# ----------------------------------------------------------------------------- cases


def _cases() -> list[Case]:  # noqa: PLR0915
    c: list[Case] = []

    def add(id_: str, what: str, expect: str, **kw: object) -> Callable[[Setup], Setup]:
        def deco(fn: Setup) -> Setup:
            c.append(Case(id_, what, fn, expect, **kw))  # type: ignore[arg-type]
            return fn

        return deco

    # --- files that cannot be read
    @add("missing-file", "input path does not exist", "does not exist")
    def _(w: Path, o: Path) -> list[str]:
        return _rank(w / "absent.h5ad", o)

    @add("unknown-format", "input with an unknown extension", "cannot tell the format")
    def _(w: Path, o: Path) -> list[str]:
        (w / "data.xlsx").write_bytes(b"PK\x03\x04")
        return _rank(w / "data.xlsx", o)

    @add("empty-h5ad", "an .h5ad file of 0 bytes", "h5ad")
    def _(w: Path, o: Path) -> list[str]:
        (w / "e.h5ad").write_bytes(b"")
        return _rank(w / "e.h5ad", o)

    @add("truncated-h5ad", "an .h5ad cut in half", "h5ad")
    def _(w: Path, o: Path) -> list[str]:
        p = write_h5ad(w / "t.h5ad")
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])
        return _rank(p, o)

    @add("fifo-input", "a named pipe given as the input (it hung)", "not a regular file")
    def _(w: Path, o: Path) -> list[str]:
        os.mkfifo(w / "pipe.tsv")
        return _rank(w / "pipe.tsv", o)

    @add("h5ad-index-out-of-range", "a sparse .X with one column index out of range", "outside")
    def _(w: Path, o: Path) -> list[str]:
        return _rank(_bad_index_h5ad(w / "i.h5ad"), o)

    @add(
        "h5ad-index-out-of-range-backed",
        "the same, streamed (--backed)",
        "outside",
    )
    def _(w: Path, o: Path) -> list[str]:
        return [*_rank(_bad_index_h5ad(w / "i.h5ad"), o), "--backed"]

    @add("corrupt-h5ad", "a 31 KB .h5ad with 3 bytes changed (libhdf5 segfaults)", "corrupt")
    def _(w: Path, o: Path) -> list[str]:
        return _rank(shutil.copy(SEGFAULT_H5AD, w / "corrupt.h5ad"), o)

    @add("hanging-h5ad", "a 31 KB .h5ad on which libhdf5 loops forever", "corrupt")
    def _(w: Path, o: Path) -> list[str]:
        return _rank(shutil.copy(HANG_H5AD, w / "hang.h5ad"), o)

    @add("h5-huge-shape", "a 10x .h5 of a few KB declaring 10^12 × 10^12", "shape")
    def _(w: Path, o: Path) -> list[str]:
        return _rank(write_10x_h5(w / "huge.h5", shape=(10**12, 10**12)), o)

    @add("h5-string-counts", "a 10x .h5 whose counts are strings", "dtype")
    def _(w: Path, o: Path) -> list[str]:
        n = len(counts().nonzero()[0])
        return _rank(write_10x_h5(w / "s.h5", data=np.array(["1"] * n, dtype="S")), o)

    @add("mtx-zero-header", "matrix.mtx whose size line is '0 0' (SIGFPE)", "matrix.mtx")
    def _(w: Path, o: Path) -> list[str]:
        d = write_mtx_dir(w / "m", "%%MatrixMarket matrix coordinate integer general\n0 0\n")
        return _rank(d, o)

    @add("mtx-zero-size", "matrix.mtx declaring 0 × 0 with 0 entries", "matrix.mtx")
    def _(w: Path, o: Path) -> list[str]:
        d = write_mtx_dir(w / "m", "%%MatrixMarket matrix coordinate integer general\n0 0 0\n")
        return _rank(d, o)

    @add("mtx-huge-size", "matrix.mtx declaring 10^12 entries", "matrix.mtx")
    def _(w: Path, o: Path) -> list[str]:
        text = "%%MatrixMarket matrix coordinate integer general\n8 5 1000000000000\n1 1 1\n"
        return _rank(write_mtx_dir(w / "m", text), o)

    @add("mtx-garbage", "matrix.mtx that is not MatrixMarket", "matrix.mtx")
    def _(w: Path, o: Path) -> list[str]:
        return _rank(write_mtx_dir(w / "m", "hello world\n1 2 3\n"), o)

    @add("mtx-shape-mismatch", "matrix.mtx rows ≠ features.tsv lines", "features")
    def _(w: Path, o: Path) -> list[str]:
        text = "%%MatrixMarket matrix coordinate integer general\n3 5 1\n1 1 4\n"
        return _rank(write_mtx_dir(w / "m", text), o)

    @add("truncated-tsv-gz", "a .tsv.gz cut short (EOFError, exited 130)", "")
    def _(w: Path, o: Path) -> list[str]:
        raw = write_tsv(w / "x.tsv").read_bytes()
        blob = gzip.compress(raw)
        (w / "x.tsv.gz").write_bytes(blob[: len(blob) // 2])
        return _rank(w / "x.tsv.gz", o)

    @add("binary-tsv", "random bytes named .tsv", "")
    def _(w: Path, o: Path) -> list[str]:
        (w / "b.tsv").write_bytes(np.random.default_rng(0).bytes(4000))
        return _rank(w / "b.tsv", o)

    @add("text-values", "a table with words among the numbers", "not numeric")
    def _(w: Path, o: Path) -> list[str]:
        p = write_tsv(w / "x.tsv")
        lines = p.read_text().splitlines()
        lines[2] = lines[2].rsplit("\t", 1)[0] + "\tlots"
        p.write_text("\n".join(lines) + "\n")
        return _rank(p, o)

    # --- values that are not counts
    @add("complex-counts", "complex-valued counts", "complex")
    def _(w: Path, o: Path) -> list[str]:
        return _rank(write_h5ad(w / "c.h5ad", counts().astype(np.complex64)), o)

    @add("all-zero", "every count is zero (ARPACK crashed)", "zero")
    def _(w: Path, o: Path) -> list[str]:
        return _rank(write_h5ad(w / "z.h5ad", np.zeros((60, len(GENES)), np.float32)), o)

    @add("log-normalised", "log1p-normalised single cells given as counts", "log")
    def _(w: Path, o: Path) -> list[str]:
        return _rank(write_h5ad(w / "l.h5ad", np.log1p(counts() * 3.7).astype(np.float32)), o)

    @add("negative", "negative values (scaled data)", "negative")
    def _(w: Path, o: Path) -> list[str]:
        X = counts()
        X[3, 2] = -1
        return _rank(write_h5ad(w / "n.h5ad", X), o)

    @add("nan-values", "NaN among the counts", "NaN")
    def _(w: Path, o: Path) -> list[str]:
        X = counts()
        X[3, 2] = np.nan
        return _rank(write_h5ad(w / "n.h5ad", X), o)

    @add("no-cells", "a matrix with no cells", "empty")
    def _(w: Path, o: Path) -> list[str]:
        return _rank(write_h5ad(w / "e.h5ad", counts()[:0]), o)

    # --- labels and options
    @add("nan-patients", "malignant cells without a patient label", "no patient label")
    def _(w: Path, o: Path) -> list[str]:
        pat = np.array(["P1", "P2", None] * 20, dtype=object)
        p = write_h5ad(w / "p.h5ad", patient=pat)
        return _rank(p, o, "--malignant-key", "status=malignant", "--patient-key", "patient")

    @add("unknown-column", "--malignant-key names a column the file lacks", "not in the input")
    def _(w: Path, o: Path) -> list[str]:
        return _rank(write_h5ad(w / "a.h5ad"), o, "--malignant-key", "tumour=yes")

    @add("no-malignant", "--malignant-key value that no cell has", "no malignant cells")
    def _(w: Path, o: Path) -> list[str]:
        return _rank(write_h5ad(w / "a.h5ad"), o, "--malignant-key", "status=cancer")

    @add("out-current-folder", "--out . (the folder the run would replace)", "current folder")
    def _(w: Path, o: Path) -> list[str]:
        return ["rank", str(write_h5ad(w / "a.h5ad")), "--positivity", "cp10k", "--out", "."]

    @add("obs-no-match", "--obs table whose names match no cell", "no cell name of the obs")
    def _(w: Path, o: Path) -> list[str]:
        (w / "cells.tsv").write_text("barcode\ttumour\nAAAC-9\tyes\nAAAG-9\tno\n")
        return _rank(write_h5ad(w / "a.h5ad"), o, "--obs", str(w / "cells.tsv"))

    @add("obs-duplicate", "--obs table naming a cell twice", "more than once")
    def _(w: Path, o: Path) -> list[str]:
        (w / "cells.tsv").write_text("barcode\tlabel\nc0\ta\nc0\tb\n")
        return _rank(write_h5ad(w / "a.h5ad"), o, "--obs", str(w / "cells.tsv"))

    @add(
        "obs-malformed",
        "--obs table a parser cannot read (a row with extra fields)",
        "cannot read the obs table",
    )
    def _(w: Path, o: Path) -> list[str]:
        (w / "cells.tsv").write_text("barcode\tlabel\nc0\ta\tb\tc\nc1\n\t\t\t\t\n")
        return _rank(write_h5ad(w / "a.h5ad"), o, "--obs", str(w / "cells.tsv"))

    @add("threshold-negative", "--threshold -1", "out of range")
    def _(w: Path, o: Path) -> list[str]:
        return _rank(write_h5ad(w / "a.h5ad"), o, "--threshold", "-1")

    @add("threshold-nan", "--threshold nan", "not a finite number")
    def _(w: Path, o: Path) -> list[str]:
        return _rank(write_h5ad(w / "a.h5ad"), o, "--threshold", "nan")

    @add("candidates-negative", "gates --candidates -5", "out of range", family="gates")
    def _(w: Path, o: Path) -> list[str]:
        return _gates(write_h5ad(w / "a.h5ad"), o, "--candidates", "-5")

    @add("highlight-unknown", "--highlight of a name that is no gene", "unknown genes")
    def _(w: Path, o: Path) -> list[str]:
        return _rank(write_h5ad(w / "a.h5ad"), o, "--highlight", "XYZ42NOTAGENE")

    @add("layer-missing", "--layer that the .h5ad lacks", "layer")
    def _(w: Path, o: Path) -> list[str]:
        return _rank(write_h5ad(w / "a.h5ad"), o, "--layer", "spliced")

    @add("layer-on-10x", "--layer for a 10x .h5, which has no layers", "layer")
    def _(w: Path, o: Path) -> list[str]:
        return _rank(write_10x_h5(w / "a.h5"), o, "--layer", "counts")

    # --- outputs
    @add("out-is-a-file", "--out names an existing file", "not a directory", family="none")
    def _(w: Path, o: Path) -> list[str]:
        shutil.rmtree(o)
        o.write_text("my file\n")
        return _rank(write_h5ad(w / "a.h5ad"), o)

    @add("mixed-runs", "gates into a folder holding a rank run", "another --out")
    def _(w: Path, o: Path) -> list[str]:
        return _gates(write_h5ad(w / "a.h5ad"), o, "--max-vital-risk", "1")

    @add("disk-full", "outputs larger than the file-size limit (a full disk)", "", fsize=20_000)
    def _(w: Path, o: Path) -> list[str]:
        return _rank(write_h5ad(w / "a.h5ad"), o)

    # --- other commands
    @add("benchmark-empty", "benchmark with an empty table", "empty", family="benchmark")
    def _(w: Path, o: Path) -> list[str]:
        (w / "e.tsv").write_text("")
        table = str(w / "e.tsv")
        return ["benchmark", "--targets", table, "--toxicities", table, "--out", str(o)]

    @add("benchmark-binary", "benchmark with a binary table", "not a UTF-8", family="benchmark")
    def _(w: Path, o: Path) -> list[str]:
        (w / "b.tsv").write_bytes(np.random.default_rng(1).bytes(3000))
        table = str(w / "b.tsv")
        return ["benchmark", "--targets", table, "--toxicities", table, "--out", str(o)]

    @add("report-bad-run-json", "report of a run whose run.json has wrong types", "run.json")
    def _(w: Path, o: Path) -> list[str]:
        (o / "run.json").write_text('{"command": 5, "denominators": [1, 2], "params": "x"}\n')
        return ["report", str(o)]

    @add("report-not-a-run", "report of a folder with no antigenscout outputs", "", family="none")
    def _(w: Path, o: Path) -> list[str]:
        return ["report", str(w)]

    @add("profile-unknown-gene", "profile of a name that is no gene", "unknown", family="profile")
    def _(w: Path, o: Path) -> list[str]:
        return ["profile", "XYZ42NOTAGENE", "--out", str(o)]

    @add("profile-deep-nesting", "profile of a receptor formula nested 3,000 deep", "nested deeper")
    def _(w: Path, o: Path) -> list[str]:
        return ["profile", "(" * 3000 + "CD19" + ")" * 3000, "--out", str(o)]

    @add("simulate-no-patients", "simulate --patients 0", "patients", family="simulate")
    def _(w: Path, o: Path) -> list[str]:
        return ["simulate", "--model", "stein2019", "--patients", "0", "--out", str(o)]

    @add(
        "simulate-target-alone",
        "simulate --target without a ranking or coverages",
        "--tumour-coverage",
        family="simulate",
    )
    def _(w: Path, o: Path) -> list[str]:
        return ["simulate", "--model", "cart-cml", "--target", "IL1RAP", "--out", str(o)]

    @add(
        "simulate-coverage-and-ranking",
        "simulate --tumour-coverage with --from",
        "without a ranking",
        family="simulate",
    )
    def _(w: Path, o: Path) -> list[str]:
        return [
            "simulate",
            "--model",
            "cart-cml",
            "--from",
            str(w),
            "--target",
            "IL1RAP",
            "--tumour-coverage",
            "0.5",
            "--out",
            str(o),
        ]

    return c


CASES: list[Case] = _cases()

#: A previous run of each command family, as left in --out before the bad run.
PREVIOUS: dict[str, dict[str, str]] = {
    "rank": {
        "targets.tsv": "target\ttumor_coverage\nCD33\t0.5\n",
        "risk.tsv": "target\tname\tpositive_fraction\trisk\nCD33\tHSC\t0.1\t0.1\n",
        "run.json": '{"command": "rank", "denominators": {}}\n',
    },
    "gates": {
        "gates.tsv": "gate\ttumor_coverage\nCD33\t0.5\n",
        "run.json": '{"command": "gates"}\n',
    },
    "profile": {"profile.tsv": "cell_type\n", "run.json": '{"command": "profile"}\n'},
    "simulate": {"cohort.tsv": "patient\n1\n", "run.json": '{"command": "simulate"}\n'},
    "benchmark": {"metrics.json": "{}\n"},
    "none": {},
}


# ----------------------------------------------------------------------------- running


def _snapshot(path: Path) -> dict[str, str]:
    if path.is_file():
        return {"": hashlib.sha256(path.read_bytes()).hexdigest()}
    if not path.exists():
        return {}
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def run_case(case: Case, work: Path | None = None) -> Result:
    """Run one case in a child process and measure it."""
    own = work is None
    work = Path(tempfile.mkdtemp(prefix=f"bad-{case.id}-")) if work is None else work
    try:
        out = work / "out"
        out.mkdir()
        for name, text in PREVIOUS[case.family].items():
            (out / name).write_text(text)
        argv = case.setup(work, out)
        before = _snapshot(out)

        env = {**os.environ, "COLUMNS": "400", "NUMBA_CACHE_DIR": str(work / ".numba")}
        report = work / "launch.json"
        launch = [
            json.dumps([sys.executable, "-m", "antigenscout", *argv]),
            str(ADDRESS_SPACE_CAP),
            str(case.fsize or 0),
            str(report),
        ]
        t0 = time.perf_counter()
        with (work / "stderr").open("w") as err, (work / "stdout").open("w") as std:
            # measured through a small launcher: a child forked from this (large) test process
            # inherits its resident high-water mark in ru_maxrss, a grandchild of a fresh
            # launcher only the launcher's few MB
            subprocess.run(
                [sys.executable, "-c", _LAUNCHER, *launch],
                stdout=std,
                stderr=err,
                stdin=subprocess.DEVNULL,
                cwd=work,
                env=env,
                check=False,
            )
        launched = json.loads(report.read_text())
        seconds = time.perf_counter() - t0
        stderr = (work / "stderr").read_text(errors="replace")
        return Result(
            case=case,
            argv=argv,
            code=launched["returncode"],
            stderr=stderr,
            seconds=seconds,
            max_rss_mb=launched["maxrss_kb"] / 1024,
            out_unchanged=_snapshot(out) == before,
            lines=[x for x in stderr.splitlines() if x.strip()],
        )
    finally:
        if own:
            shutil.rmtree(work, ignore_errors=True)
