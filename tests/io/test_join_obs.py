"""--obs: cell labels for formats that cannot carry them, joined on barcodes (10x .h5 here)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pandas as pd
import pytest
from test_read_10x import BARCODES, _matrix, _write_h5

import antigenscout as asc
from antigenscout._errors import InputError
from antigenscout.cli import main


def _labels(path: Path, rows: list[str], *, sep: str = "\t") -> Path:
    n = len(rows)
    pd.DataFrame(
        {
            "status": ["malignant" if i % 3 else "normal" for i in range(n)],
            "patient": ["P1" if i % 2 else "P2" for i in range(n)],
        },
        index=pd.Index(rows, name="barcode"),
    ).to_csv(path, sep=sep)
    return path


def test_a_10x_h5_gets_its_labels_and_the_run_says_what_was_joined(tmp_path: Path, capsys) -> None:
    h5 = tmp_path / "sample.h5"
    _write_h5(h5, _matrix())
    obs = _labels(tmp_path / "cells.tsv", [*BARCODES[:10], "NOT-A-CELL"])
    out = tmp_path / "out"
    argv = ["rank", str(h5), "--obs", str(obs), "--malignant-key", "status=malignant"]
    argv += ["--patient-key", "patient", "--positivity", "cp10k", "--out", str(out)]
    assert main(argv) == 0
    err = capsys.readouterr().err
    run = json.loads((out / "run.json").read_text())
    # 12 barcodes, 10 labelled: the 2 without a row are not malignant; 1 row names no cell
    labelled = [i for i in range(10) if i % 3]
    assert run["denominators"]["n_tumor_cells"] == len(labelled)
    assert run["denominators"]["n_patients"] == 2
    note = next(n for n in run["notes"] if n.startswith("--obs"))
    assert "2 of 12 cells have no row" in note
    assert "1 rows name no cell" in note
    assert "note: --obs" in err
    rec = run["input"]["obs"]
    assert rec["sha256"] == hashlib.sha256(obs.read_bytes()).hexdigest()
    assert rec["columns"] == ["status", "patient"]
    # the API joins the same way (CSV here)
    csv = _labels(tmp_path / "cells.csv", BARCODES, sep=",")
    adata = asc.io.read(h5, obs=csv)
    assert adata.obs["patient"].tolist()[:3] == ["P2", "P1", "P2"]
    assert adata.uns["antigenscout"]["obs_from"]["cells_without_row"] == 0


@pytest.mark.parametrize(
    ("rows", "columns", "match"),
    [
        (["x1", "x2"], None, "no cell name of the obs table"),
        ([BARCODES[0], BARCODES[0]], None, "more than once"),
        (BARCODES, ["status", "status2"], None),
        ([], None, "no rows"),
    ],
)
def test_bad_obs_tables_are_refused_with_the_fix(tmp_path: Path, rows, columns, match) -> None:
    h5 = tmp_path / "s.h5"
    _write_h5(h5, _matrix())
    path = tmp_path / "o.tsv"
    df = pd.DataFrame({"status": ["malignant"] * len(rows)}, index=pd.Index(rows, name="bc"))
    if columns:
        df = pd.DataFrame({c: "x" for c in columns}, index=pd.Index(rows, name="bc"))
    df.to_csv(path, sep="\t")
    if match is None:
        adata = asc.io.read(h5, obs=path)  # fine, and a clash with existing columns is not
        with pytest.raises(InputError, match="columns the input already has: status"):
            asc.io.join_obs(adata, path)
        return
    with pytest.raises(InputError, match=match):
        asc.io.read(h5, obs=path)


def test_examples_in_the_no_match_message_show_both_spellings(tmp_path: Path) -> None:
    h5 = tmp_path / "s.h5"
    _write_h5(h5, _matrix())
    path = _labels(tmp_path / "o.tsv", [b.removesuffix("-1") for b in BARCODES])
    with pytest.raises(InputError) as e:
        asc.io.read(h5, obs=path)
    assert BARCODES[0] in str(e.value)
    assert BARCODES[0].removesuffix("-1") in str(e.value)
