"""The glossary of the written tables: in sync with docs/outputs.md, and covering every
column the CLI writes (rank, gates with designs and healthy cells, profile)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from antigenscout import datasets
from antigenscout._errors import InputError
from antigenscout.cli import main
from antigenscout.get import column_glossary, describe_column

REPO = Path(__file__).resolve().parents[2]


def test_docs_outputs_is_generated_from_the_glossary() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "outputs_doc.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_placeholders_match_the_names_the_data_supplies() -> None:
    assert describe_column("targets.tsv", "coverage__HSC-like") == describe_column(
        "targets.tsv", "coverage__<compartment>"
    )
    assert describe_column("patient_coverage.tsv", "AML328") == describe_column(
        "patient_coverage.tsv", "<patient>"
    )
    assert describe_column("profile.tsv", "frac__HLA-DRA").startswith("One per receptor gene")
    assert describe_column("targets.tsv", "no_such_column") is None
    g = column_glossary()
    assert not g.duplicated(["file", "column"]).any()
    assert (g["description"].str.len() > 20).all()
    with pytest.raises(InputError, match=r"tables described are targets\.tsv"):
        column_glossary("nope.tsv")


@pytest.mark.slow
def test_every_written_column_is_described(tmp_path: Path) -> None:
    demo = tmp_path / "demo.h5ad"
    datasets.demo().write_h5ad(demo)
    runs = {
        "rank": ["demo", "--out", str(tmp_path / "rank")],
        "gates": [
            "gates", str(demo), "--malignant-key", "malignant=malignant",
            "--patient-key", "patient", "--compartment-key", "cell_type",
            "--ops", "and,or,not", "--healthy-value", "condition=healthy",
            "--healthy-key", "cell_type", "--design", "CD33 AND NOT CD34",
            "--out", str(tmp_path / "gates"),
        ],
        "profile": [
            "profile", "(HLA-DRA AND HLA-DRB1) OR HLA-DPA1", "--out", str(tmp_path / "profile"),
        ],
    }  # fmt: skip
    written = {}
    for name, argv in runs.items():
        assert main(argv) == 0, name
        for f in sorted((tmp_path / name).glob("*.tsv")):
            written[f.name] = list(pd.read_csv(f, sep="\t", nrows=0).columns)
    assert {"targets.tsv", "gates.tsv", "designs.tsv", "set_aside.tsv", "profile.tsv"} <= set(
        written
    )
    missing = [
        f"{file}:{col}"
        for file, cols in written.items()
        for col in cols
        if not str(col).startswith("Unnamed") and describe_column(file, str(col)) is None
    ]
    assert missing == []
