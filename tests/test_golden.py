"""Golden outputs: the demo's whole runs, pinned byte for byte.

Four runs a person types (``demo``, ``gates`` on the demo's cells with a design, ``simulate``
from the demo's ranking and ``simulate`` of a published model) write tables that must not change
when the code is only reorganised. Each written table is kept gzipped in ``tests/golden/`` and
compared byte for byte. ``summary.json`` and ``run.json`` (the parameters, denominators and
reference a run records) hold full-precision floats (an ODE solver's last bits); they are
compared after every float is written at the 6 significant digits the tables use, without
the keys that differ from run to run (time taken, version, the input file's hash), and with
the runs' folder written ``<runs>``.

A change that is meant to move results regenerates the files::

    python -m pytest tests/test_golden.py --update-golden

and says in its commit message why the results moved.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from antigenscout.cli import main

GOLDEN = Path(__file__).parent / "golden"

#: Keys of summary.json that name this run rather than its result.
_VOLATILE = {"version", "created", "seconds", "elapsed_seconds", "sha256"}


def _round_floats(value: object) -> object:
    if isinstance(value, float):
        return float(f"{value:.6g}")
    if isinstance(value, dict):
        return {k: _round_floats(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_round_floats(v) for v in value]
    return value


def _canonical(path: Path, root: Path) -> bytes:
    """The bytes compared: a table as written; JSON rounded, run keys out, ``root`` named."""
    if path.suffix == ".json":
        data = json.loads(path.read_text().replace(str(root), "<runs>"))
        return (json.dumps(_round_floats(data), indent=1, sort_keys=True) + "\n").encode()
    return path.read_bytes()


def _demo_h5ad(folder: Path) -> Path:
    from antigenscout import datasets

    adata = datasets.demo()
    datasets.add_vangalen_compartment(adata)
    path = folder / "demo.h5ad"
    adata.write_h5ad(path)
    return path


@pytest.fixture(scope="module")
def golden_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Run the four commands once; return each run's output folder by name."""
    root = tmp_path_factory.mktemp("golden")
    demo = root / "demo"
    h5ad = _demo_h5ad(root)
    commands = {
        "demo": ["demo", "--out", str(demo)],
        "gates": [
            "gates",
            str(h5ad),
            "--malignant-key",
            "malignant=malignant",
            "--patient-key",
            "patient",
            "--compartment-key",
            "compartment",
            "--max-genes",
            "3",
            "--top",
            "30",
            "--design",
            "CLEC12A AND NOT CD34",
            "--out",
            str(root / "gates"),
        ],
        "simulate-ranking": [
            "simulate",
            "--model",
            "cart-leukaemia",
            "--from",
            str(demo),
            "--target",
            "CLEC12A",
            "--allow-other-indication",
            "--patients",
            "40",
            "--out",
            str(root / "simulate-ranking"),
        ],
        "simulate-stein2019": [
            "simulate",
            "--model",
            "stein2019",
            "--patients",
            "40",
            "--out",
            str(root / "simulate-stein2019"),
        ],
    }
    for name, argv in commands.items():  # in order: the ranking feeds a simulation
        assert main(argv) == 0, name
    return {name: root / name for name in commands}


#: (run, table) pairs pinned.
PINNED = [
    ("demo", "targets.tsv"),
    ("demo", "risk.tsv"),
    ("demo", "patient_coverage.tsv"),
    ("demo", "patient_model.tsv"),
    ("demo", "ambient.tsv"),
    ("demo", "run.json"),
    ("gates", "gates.tsv"),
    ("gates", "designs.tsv"),
    ("gates", "set_aside.tsv"),
    ("gates", "run.json"),
    ("simulate-ranking", "cohort.tsv"),
    ("simulate-ranking", "summary.json"),
    ("simulate-stein2019", "cohort.tsv"),
    ("simulate-stein2019", "summary.json"),
]


def _first_difference(got: bytes, want: bytes) -> str:
    got_lines, want_lines = got.decode().splitlines(), want.decode().splitlines()
    if len(got_lines) != len(want_lines):
        return f"{len(got_lines)} lines written, {len(want_lines)} pinned"
    header = want_lines[0].split("\t")
    for i, (g, w) in enumerate(zip(got_lines, want_lines, strict=True)):
        if g != w:
            cells = [
                f"{header[j] if j < len(header) else j}: {a!r} != {b!r}"
                for j, (a, b) in enumerate(zip(g.split("\t"), w.split("\t"), strict=False))
                if a != b
            ]
            return f"line {i + 1} differs ({'; '.join(cells[:5])})"
    return "identical lines, different bytes"


@pytest.mark.slow
@pytest.mark.parametrize(("run", "table"), PINNED, ids=[f"{r}/{t}" for r, t in PINNED])
def test_output_matches_golden(
    golden_runs: dict[str, Path], run: str, table: str, request: pytest.FixtureRequest
) -> None:
    got = _canonical(golden_runs[run] / table, golden_runs[run].parent)
    pinned = GOLDEN / run / f"{table}.gz"
    if request.config.getoption("--update-golden"):
        pinned.parent.mkdir(parents=True, exist_ok=True)
        with gzip.GzipFile(pinned, "wb", mtime=0) as f:  # mtime 0: same bytes, same file
            f.write(got)
        return
    assert pinned.exists(), f"{pinned} missing: run pytest {__file__} --update-golden"
    want = gzip.decompress(pinned.read_bytes())
    assert got == want, f"{run}/{table}: {_first_difference(got, want)}"


def test_round_floats_keeps_structure_and_drops_run_keys() -> None:
    data = {"a": 0.123456789, "b": [1.0000004, 2], "version": "x", "c": {"seconds": 1.5, "d": None}}
    assert _round_floats(data) == {"a": 0.123457, "b": [1.0, 2], "c": {"d": None}}
