"""The CLI end to end: outputs, and one-line errors with exit code 2 on bad input."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from antigenscout.cli import main

GENES = ["CD33", "IL3RA", "CLEC12A", "CD34", "B2M", "PTPRC", "CD19", "MS4A1"]


def _write_h5ad(path: Path, X: np.ndarray, genes: list[str] = GENES) -> Path:
    rng = np.random.default_rng(0)
    n = X.shape[0]
    obs = pd.DataFrame(
        {
            "status": rng.choice(["malignant", "normal"], n),
            "patient": rng.choice(["P1", "P2"], n),
        },
        index=[f"c{i}" for i in range(n)],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # duplicate names on purpose
        adata = ad.AnnData(X=sparse.csr_matrix(X), obs=obs, var=pd.DataFrame(index=genes))
        adata.write_h5ad(path)
    return path


@pytest.fixture
def good_h5ad(tmp_path: Path) -> Path:
    rng = np.random.default_rng(1)
    return _write_h5ad(tmp_path / "in.h5ad", rng.poisson(2.0, (80, len(GENES))).astype(np.float32))


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err
    return code, err


def test_rank_writes_outputs(good_h5ad: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "out"
    argv = ["rank", str(good_h5ad), "--malignant-key", "status=malignant"]
    argv += ["--patient-key", "patient", "--positivity", "cp10k", "--out", str(out)]
    code, _ = _run(argv, capsys)
    assert code == 0
    targets = pd.read_csv(out / "targets.tsv", sep="\t")
    required = {
        "target",
        "tumor_coverage",
        "patient_coverage_median",
        "patients_covered_fraction",
        "worst_healthy_cell_type",
        "worst_healthy_risk",
        "vital_risk",
        "surface_evidence",
        "score",
        "rank",
    }
    assert required <= set(targets.columns)
    assert set(targets["target"]) <= set(GENES)
    assert (out / "risk.tsv").is_file()
    assert (out / "run.json").is_file()
    assert not list(out.glob(".*.tmp"))  # no temporary file left behind


def test_profile_cd19_names_b_cells_first(tmp_path: Path, capsys) -> None:
    code, _ = _run(["profile", "CD19", "--out", str(tmp_path)], capsys)
    assert code == 0
    prof = pd.read_csv(tmp_path / "profile.tsv", sep="\t")
    assert {"cell_type", "system", "expression", "engaged"} <= set(prof.columns)
    assert "B cell" in prof.iloc[0]["cell_type"]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing_file", "does not exist"),
        ("unknown_column", "not in the input's obs"),
        ("no_malignant", "no malignant cells"),
        ("negative", "negative"),
        ("nan", "NaN"),
        ("duplicate_genes", "duplicate"),
        ("empty", "empty"),
        ("unknown_gene", "unknown gene"),
    ],
)
def test_bad_input_one_line_exit_2_nothing_overwritten(
    case: str, message: str, tmp_path: Path, capsys
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    sentinel = out / "targets.tsv"
    sentinel.write_text("earlier result\n")
    rng = np.random.default_rng(2)
    X = rng.poisson(2.0, (40, len(GENES))).astype(np.float32)
    path = tmp_path / "in.h5ad"
    key = "status=malignant"
    if case == "missing_file":
        path = tmp_path / "nope.h5ad"
    elif case == "unknown_column":
        _write_h5ad(path, X)
        key = "tumour_flag=malignant"
    elif case == "no_malignant":
        _write_h5ad(path, X)
        key = "status=cancer"
    elif case == "negative":
        X[3, 2] = -1
        _write_h5ad(path, X)
    elif case == "nan":
        X[3, 2] = np.nan
        _write_h5ad(path, X)
    elif case == "duplicate_genes":
        _write_h5ad(path, X, [*GENES[:-1], GENES[0]])
    elif case == "empty":
        _write_h5ad(path, X[:0])
    if case == "unknown_gene":
        argv = ["profile", "NOTAGENE42", "--out", str(out)]
    else:
        argv = ["rank", str(path), "--malignant-key", key, "--out", str(out)]
        argv += ["--positivity", "cp10k"]
    code, err = _run(argv, capsys)
    assert code == 2
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error:")
    assert message.lower() in lines[0].lower()
    assert "Traceback" not in err
    assert sentinel.read_text() == "earlier result\n"


def test_console_script_has_no_traceback(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "antigenscout", "rank", str(tmp_path / "x.h5ad"), "--out", "o"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert proc.stderr.startswith("error:")


def test_outputs_respect_umask(good_h5ad: Path, tmp_path: Path, capsys) -> None:
    import os
    import stat

    out = tmp_path / "o"
    main(["profile", "CD33", "--out", str(out)])
    mode = stat.S_IMODE(os.stat(out / "profile.tsv").st_mode)
    mask = os.umask(0)
    os.umask(mask)
    assert mode == 0o666 & ~mask


def test_profile_il1rap_engages_monocytes(tmp_path: Path, capsys) -> None:
    assert main(["profile", "IL1RAP", "--out", str(tmp_path)]) == 0
    prof = pd.read_csv(tmp_path / "profile.tsv", sep="\t")
    engaged = prof.loc[prof["engaged"], "cell_type"].str.lower()
    assert engaged.str.contains("monocyte").any()


def test_profile_mhc_class_ii_engages_dc_b_and_monocytes(tmp_path: Path, capsys) -> None:
    assert main(["profile", "HLA-DRA", "HLA-DRB1", "--out", str(tmp_path)]) == 0
    prof = pd.read_csv(tmp_path / "profile.tsv", sep="\t")
    engaged = " | ".join(prof.loc[prof["engaged"], "cell_type"].str.lower())
    for kind in ("dendritic", "b cells", "monocyte"):
        assert kind in engaged, kind


def test_unmapped_genes_warn_in_one_line(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(4)
    genes = [*GENES, "NOT_A_GENE_1"]
    path = _write_h5ad(
        tmp_path / "in.h5ad", rng.poisson(2.0, (40, len(genes))).astype(np.float32), genes
    )
    argv = ["rank", str(path), "--malignant-key", "status=malignant", "--positivity", "cp10k"]
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        code = main([*argv, "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 0
    line = next(x for x in err.splitlines() if "NOT_A_GENE_1" in x)
    assert line.startswith("warning:")


def test_gates_writes_required_columns(good_h5ad: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "g"
    argv = ["gates", str(good_h5ad), "--malignant-key", "status=malignant"]
    argv += ["--patient-key", "patient", "--positivity", "cp10k", "--max-genes", "2"]
    argv += ["--ops", "and,not", "--max-vital-risk", "1", "--out", str(out)]
    assert main(argv) == 0
    gates = pd.read_csv(out / "gates.tsv", sep="\t")
    required = {
        "gate",
        "n_genes",
        "tumor_coverage",
        "patients_covered_fraction",
        "worst_healthy_cell_type",
        "worst_healthy_risk",
        "risk_is_bound",
        "score",
        "rank",
    }
    assert required <= set(gates.columns)
    assert (gates["tumor_coverage"] <= 1).all()
    assert gates["gate"].str.contains(" AND ").any()
