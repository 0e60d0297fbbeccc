"""run.json records what was read and says each choice the user did not make."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from scipy import sparse

from antigenscout._provenance import choices_made, sha256_path
from antigenscout.cli import main

GENES = ["CD33", "IL3RA", "CLEC12A", "CD34", "B2M", "PTPRC", "FLT3", "MS4A1"]


def _h5ad(path: Path, *, counts_layer: bool = False, graph: bool = False) -> Path:
    rng = np.random.default_rng(1)
    n = 80
    X = rng.poisson(2.0, (n, len(GENES))).astype(np.float32)
    obs = pd.DataFrame(
        {"status": rng.choice(["malignant", "normal"], n), "patient": rng.choice(["P1", "P2"], n)},
        index=[f"c{i}" for i in range(n)],
    )
    a = ad.AnnData(
        X=sparse.csr_matrix(np.log1p(X) if counts_layer else X),
        obs=obs,
        var=pd.DataFrame(index=GENES),
    )
    if counts_layer:
        a.layers["counts"] = sparse.csr_matrix(X)
    if graph:
        rows = np.repeat(np.arange(n), 3)
        cols = (rows + np.tile([1, 2, 3], n)) % n
        a.obsp["connectivities"] = sparse.csr_matrix((np.ones(3 * n), (rows, cols)), (n, n))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a.write_h5ad(path)
    return path


def test_sha256_of_a_folder_is_its_files_in_order(tmp_path: Path) -> None:
    d = tmp_path / "store"
    (d / "sub").mkdir(parents=True)
    (d / "a").write_bytes(b"1")
    (d / "sub" / "b").write_bytes(b"22")
    h = hashlib.sha256()
    for rel, data in (("a", b"1"), ("sub/b", b"22")):
        h.update(rel.encode() + b"\0")
        h.update(hashlib.sha256(data).hexdigest().encode())
    assert sha256_path(d) == h.hexdigest()


def test_rank_says_every_unasked_choice_and_records_the_input(tmp_path: Path, capsys) -> None:
    path = _h5ad(tmp_path / "in.h5ad", counts_layer=True, graph=True)
    out = tmp_path / "out"
    argv = ["rank", str(path), "--out", str(out), "--highlight", "CD33"]
    argv += ["--highlight", "CD123,FLT3"]  # repeated: every use counts
    assert main(argv) == 0
    err = capsys.readouterr().err
    run = json.loads((out / "run.json").read_text())
    notes = run["notes"]
    assert any(n.startswith("counts read from layers['counts']") for n in notes)
    assert any(n.startswith("no --malignant-key") for n in notes)
    assert any(n.startswith("no --patient-key") for n in notes)
    assert any("obsp['connectivities'] found in the input" in n for n in notes)
    assert err.count("note: ") == len(notes) == 4
    rec = run["input"]
    assert rec["path"] == str(path.resolve())
    assert rec["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert (rec["format"], rec["matrix"], rec["kind"]) == (
        "h5ad",
        "layers['counts']",
        "single_cell",
    )
    assert (rec["n_obs"], rec["n_vars"]) == (80, len(GENES))
    assert rec["command_line"][1:] == argv
    risk = pd.read_csv(out / "risk.tsv", sep="\t")
    assert {"CD33", "IL3RA", "FLT3"} <= set(risk["target"])  # CD123 is IL3RA


def test_nothing_is_said_when_every_choice_was_made(tmp_path: Path, capsys) -> None:
    path = _h5ad(tmp_path / "in.h5ad")
    out = tmp_path / "out"
    argv = ["rank", str(path), "--malignant-key", "status=malignant", "--patient-key", "patient"]
    assert main([*argv, "--out", str(out)]) == 0
    assert "note: " not in capsys.readouterr().err
    assert json.loads((out / "run.json").read_text())["notes"] == []


def test_bulk_rows_need_no_malignant_key() -> None:
    assert choices_made({"malignant_key": None, "patient_key": None, "kind": "bulk"}, None) == []


def test_a_table_says_how_it_was_read_and_which_genes_were_merged(tmp_path: Path, capsys) -> None:
    """A bulk table: its orientation and kind were guessed, and two input ids (a symbol and
    its synonym) were summed into one gene; each is a note, and naming them silences it."""
    rng = np.random.default_rng(0)
    genes = ["CD33", "IL3RA", "CD123", "FLT3", "KIT", "PTPRC", "CD34", "MS4A1"]
    df = pd.DataFrame(
        rng.poisson(50, (len(genes), 6)),
        index=pd.Index(genes, name="gene"),
        columns=[f"patient_{i}" for i in range(6)],
    )
    path = tmp_path / "bulk.tsv"
    df.to_csv(path, sep="\t")
    out = tmp_path / "out"
    assert main(["rank", str(path), "--out", str(out)]) == 0
    notes = json.loads((out / "run.json").read_text())["notes"]
    assert any(n.startswith("table read as genes in rows") for n in notes)
    assert any(n.startswith("table read as bulk samples (6 columns") for n in notes)
    merged = next(n for n in notes if "gather several input ids" in n)
    assert "IL3RA = IL3RA + CD123" in merged
    rec = json.loads((out / "run.json").read_text())["input"]
    assert rec["merged_genes"] == {"IL3RA": ["IL3RA", "CD123"]}
    assert rec["unmapped_genes"] == []
    capsys.readouterr()
    argv = ["rank", str(path), "--out", str(out), "--orientation", "genes-by-samples"]
    assert main([*argv, "--kind", "bulk"]) == 0
    notes = json.loads((out / "run.json").read_text())["notes"]
    assert not any(n.startswith("table read as") for n in notes)
