"""The CLI end to end: outputs, and one-line errors with exit code 2 on bad input."""

from __future__ import annotations

import json
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
    code, err = _run(argv, capsys)
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
    # what the agent reaches is said and recorded: CAR-T cells cross the barriers, and the
    # five pregnancy contexts are out of the default adult body
    exposure = json.loads((out / "run.json").read_text())["params"]["exposure"]
    assert exposure["pregnancy"] is False
    assert exposure["contexts_left_out"] == 5
    assert exposure["contexts_behind_barrier"] == 0
    assert exposure["barrier_exposure"] is None
    assert "exposure: 5 pregnancy contexts left out (--pregnancy keeps them)" in " ".join(
        err.split()
    )
    # the per-patient rate model of the ranked targets, with the per-cell coverage beside it
    model = pd.read_csv(out / "patient_model.tsv", sep="\t")
    patients = pd.read_csv(out / "patient_coverage.tsv", sep="\t", index_col=0)
    assert set(model["target"]) == set(targets["target"])
    assert len(model) == len(targets) * patients.shape[1]
    assert ((model["coverage_low"] <= model["coverage_model"])
            & (model["coverage_model"] <= model["coverage_high"])).all()  # fmt: skip
    row = model.iloc[0]
    assert row["coverage_cells"] == pytest.approx(patients.loc[row["target"], str(row["patient"])])


def test_profile_cd19_names_b_cells_first(tmp_path: Path, capsys) -> None:
    code, _ = _run(["profile", "CD19", "--out", str(tmp_path)], capsys)
    assert code == 0
    prof = pd.read_csv(tmp_path / "profile.tsv", sep="\t")
    assert {"cell_type", "system", "expression", "engaged"} <= set(prof.columns)
    assert "B cell" in prof.iloc[0]["cell_type"]


def test_profile_route_is_said_and_recorded(tmp_path: Path, capsys) -> None:
    """An intrathecal antibody reaches astrocytes as a systemic one does not; the route is in
    run.json and on the terminal; an unknown route is refused with the choices named."""
    fractions = {}
    for route in ("systemic", "intrathecal"):
        out = tmp_path / route
        code, err = _run(
            ["profile", "GFAP", "--agent", "antibody", "--route", route, "--out", str(out)],
            capsys,
        )
        assert code == 0
        prof = pd.read_csv(out / "profile.tsv", sep="\t").set_index("context")
        fractions[route] = prof.loc["sc:Astrocytes", "positive_fraction"]
        exposure = json.loads((out / "run.json").read_text())["params"]["exposure"]
        assert exposure["route"] == route
    assert fractions["intrathecal"] > 0.5 > fractions["systemic"]
    assert "route intrathecal" in " ".join(err.split())
    code, err = _run(["profile", "GFAP", "--route", "oral", "--out", str(tmp_path / "x")], capsys)
    assert code == 2
    assert "intravesical" in err
    assert not (tmp_path / "x").exists()


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
    # a given design is scored beside the search, written and said
    g0, g1 = (
        gates["genes"].iloc[0].split(";")[:2]
        if ";" in gates["genes"].iloc[0]
        else (gates["genes"].iloc[0], gates["genes"].iloc[1])
    )
    design = f"{g0} AND NOT {g1}"
    out2 = tmp_path / "d"
    assert main([*argv[:-1], str(out2), "--design", design]) == 0
    err = capsys.readouterr().err
    designs = pd.read_csv(out2 / "designs.tsv", sep="\t")
    assert designs["design"].tolist() == [design]
    assert required - {"rank"} <= set(designs.columns)
    assert f"design {design}: coverage" in " ".join(err.split())
    assert main([*argv[:-1], str(tmp_path / "x"), "--design", f"{g0} AND NOPE"]) == 2


def test_gates_triple_budget_reports_the_beam(tmp_path: Path, capsys) -> None:
    """``--triple-budget 0`` beams every OR triple: run.json records the work estimate and the
    beam, gates.tsv's rows carry optimal / optimality_gap consistent with the stated bound,
    and the terminal says which rows are not proven optimal; ``--exact-triples`` is exact."""
    import json

    rng = np.random.default_rng(7)
    counts = rng.poisson(rng.uniform(0.03, 0.5, len(GENES)) * 8, (300, len(GENES)))
    path = _write_h5ad(tmp_path / "sparse.h5ad", counts.astype(np.float32))
    base = ["gates", str(path), "--malignant-key", "status=malignant"]
    base += ["--patient-key", "patient", "--positivity", "cp10k", "--max-genes", "3"]
    base += ["--ops", "and,or,not", "--max-vital-risk", "0.5", "--top", "10"]
    assert main([*base, "--triple-budget", "0", "--out", str(tmp_path / "b")]) == 0
    err = capsys.readouterr().err
    run = json.loads((tmp_path / "b" / "run.json").read_text())
    search = run["params"]["search"]
    assert search["triple_beam"] is True
    assert search["triple_or_work"] > 0
    beam = pd.read_csv(tmp_path / "b" / "gates.tsv", sep="\t")
    gap = (search["skipped_upper_bound"] - beam["objective"]).clip(lower=0)
    assert (beam["optimality_gap"] - gap).abs().max() < 1e-6  # the TSV rounds
    assert not beam["optimal"].all()
    assert "not proven optimal" in err
    assert main([*base, "--exact-triples", "--out", str(tmp_path / "e")]) == 0
    exact = pd.read_csv(tmp_path / "e" / "gates.tsv", sep="\t")
    assert exact["optimal"].all()
    # the exact top is never beaten by what the beam claims
    assert (
        beam["objective"].to_numpy() <= exact["objective"].to_numpy()[: len(beam)] + 1e-12
    ).all()
    assert (
        main([*base, "--exact-triples", "--triple-budget", "5", "--out", str(tmp_path / "x")]) != 0
    )


# ----------------------------------------------------------------------------- terminal


def _run_in_terminal(argv: list[str], cwd: Path, timeout: float = 300) -> tuple[int, str]:
    """Run the CLI with stdout and stderr on a pseudo-terminal, as a person types it."""
    import os
    import pty
    import select
    import time

    master, slave = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "120", "LINES": "40"}
    env.pop("CI", None)  # rich treats CI as "no terminal"; a person's shell has none
    proc = subprocess.Popen(
        [sys.executable, "-m", "antigenscout", *argv],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=cwd,
        env=env,
        close_fds=True,
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.5)
        if ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        elif proc.poll() is not None:
            break
    else:
        proc.kill()
    os.close(master)
    code = proc.wait(timeout=30)
    return code, b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.slow
def test_readme_demo_command_in_a_terminal(tmp_path: Path) -> None:
    """The README's first command, progress bars and report included, under a real tty."""
    code, text = _run_in_terminal(
        ["demo", "--out", "antigenscout-demo", "--report", "--highlight", "CD123"], tmp_path
    )
    assert code == 0, text
    assert "Traceback" not in text
    assert "Top 10 of" in text
    out = tmp_path / "antigenscout-demo"
    assert {"targets.tsv", "risk.tsv", "run.json", "report.html"} <= {p.name for p in out.iterdir()}
    risk = pd.read_csv(out / "risk.tsv", sep="\t")
    assert "IL3RA" in set(risk["target"])  # CD123 is IL3RA's common name


@pytest.mark.slow
def test_rank_in_a_terminal_shows_progress_and_finishes(good_h5ad: Path, tmp_path: Path) -> None:
    argv = ["rank", str(good_h5ad), "--malignant-key", "status=malignant"]
    argv += ["--patient-key", "patient", "--out", str(tmp_path / "o")]
    code, text = _run_in_terminal(argv, tmp_path)
    assert code == 0, text
    assert "Traceback" not in text
    assert (tmp_path / "o" / "targets.tsv").is_file()


def test_help_does_not_import_the_engine() -> None:
    code = (
        "import sys; from antigenscout.cli import main; main(['--help']); "
        "heavy = [m for m in ('numpy', 'pandas', 'anndata', 'numba', 'scanpy') "
        "if m in sys.modules]; print('HEAVY', heavy)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "HEAVY []" in proc.stdout
    for cmd in ("demo", "rank", "gates", "profile", "simulate", "report", "benchmark"):
        assert cmd in proc.stdout


# ----------------------------------------------------------------------------- formats


@pytest.fixture
def counts() -> tuple[np.ndarray, list[str]]:
    rng = np.random.default_rng(7)
    return rng.poisson(1.5, (120, len(GENES))).astype(np.int32), GENES


def _write_format(fmt: str, X: np.ndarray, genes: list[str], tmp: Path) -> Path:
    import gzip

    import h5py
    import scipy.io

    barcodes = [f"cell{i}" for i in range(X.shape[0])]
    if fmt == "h5ad":
        adata = ad.AnnData(X=sparse.csr_matrix(X.astype(np.float32)))
        adata.obs_names, adata.var_names = barcodes, genes
        adata.write_h5ad(tmp / "in.h5ad")
        return tmp / "in.h5ad"
    if fmt == "10x_h5":
        m = sparse.csc_matrix(X.T)
        with h5py.File(tmp / "in.h5", "w") as f:
            g = f.create_group("matrix")
            g["data"], g["indices"], g["indptr"] = m.data, m.indices, m.indptr
            g["shape"] = np.array(m.shape)
            g["barcodes"] = np.array(barcodes, dtype="S")
            feat = g.create_group("features")
            feat["id"] = np.array(genes, dtype="S")
            feat["name"] = np.array(genes, dtype="S")
            feat["feature_type"] = np.array(["Gene Expression"] * len(genes), dtype="S")
        return tmp / "in.h5"
    if fmt == "10x_mtx":
        d = tmp / "mtx"
        d.mkdir()
        with gzip.open(d / "matrix.mtx.gz", "wb") as fh:
            scipy.io.mmwrite(fh, sparse.coo_matrix(X.T))
        pd.DataFrame({"id": genes, "name": genes, "t": "Gene Expression"}).to_csv(
            d / "features.tsv.gz", sep="\t", header=False, index=False
        )
        pd.Series(barcodes).to_csv(d / "barcodes.tsv.gz", header=False, index=False)
        return d
    if fmt == "tsv":
        pd.DataFrame(X.T, index=genes, columns=barcodes).to_csv(tmp / "in.tsv", sep="\t")
        return tmp / "in.tsv"
    if fmt == "csv":
        pd.DataFrame(X, index=barcodes, columns=genes).to_csv(tmp / "in.csv")
        return tmp / "in.csv"
    raise AssertionError(fmt)


FORMATS = ("h5ad", "10x_h5", "10x_mtx", "tsv", "csv")


@pytest.mark.parametrize("fmt", FORMATS)
def test_rank_and_gates_on_every_format(fmt: str, counts, tmp_path: Path, capsys) -> None:
    """The same counts in each documented format give the same ranking and gates."""
    X, genes = counts
    path = _write_format(fmt, X, genes, tmp_path)
    ref_dir = tmp_path / "ref"
    ref_dir.mkdir()
    ref = _write_format("h5ad", X, genes, ref_dir)
    common = ["--positivity", "cp10k", "--kind", "single-cell"]
    results = {}
    for name, p in (("fmt", path), ("ref", ref)):
        out = tmp_path / f"rank_{name}"
        assert main(["rank", str(p), *common, "--out", str(out)]) == 0, capsys.readouterr().err
        results[name] = pd.read_csv(out / "targets.tsv", sep="\t")
        gout = tmp_path / f"gates_{name}"
        argv = ["gates", str(p), *common, "--max-vital-risk", "1", "--out", str(gout)]
        assert main(argv) == 0, capsys.readouterr().err
        results[f"g{name}"] = pd.read_csv(gout / "gates.tsv", sep="\t")
    pd.testing.assert_frame_equal(results["fmt"], results["ref"])
    pd.testing.assert_frame_equal(results["gfmt"], results["gref"])
    assert len(results["gfmt"]) > 0


@pytest.mark.parametrize("fmt", ["10x_h5", "10x_mtx", "tsv"])
def test_layer_on_a_format_without_layers_is_a_clear_error(
    fmt: str, counts, tmp_path: Path, capsys
) -> None:
    X, genes = counts
    path = _write_format(fmt, X, genes, tmp_path)
    code, err = _run(["rank", str(path), "--layer", "counts", "--out", str(tmp_path / "o")], capsys)
    assert code == 2
    assert err.startswith("error:")
    assert "layer" in err
    assert "Traceback" not in err


# ----------------------------------------------------------------------------- validation


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--threshold", "nan"], "not a finite number"),
        (["--threshold", "-1"], "out of range"),
        (["--threshold", "inf"], "not a finite number"),
        (["--patient-threshold", "1.5"], "out of range"),
        (["--highlight", "NOTAGENE9"], "unknown genes"),
        (["--highlight", "CD33,XYZ42NOTAGENE"], "XYZ42NOTAGENE"),
    ],
)
def test_bad_options_fail_before_work(
    extra: list[str], message: str, tmp_path: Path, capsys
) -> None:
    # the input does not exist: a failure about it would mean the option was checked late
    argv = ["rank", str(tmp_path / "absent.h5ad"), "--out", str(tmp_path / "o"), *extra]
    code, err = _run(argv, capsys)
    assert code == 2
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error:")
    assert message in lines[0]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--candidates", "-5"], "out of range"),
        (["--candidates", "0"], "out of range"),
        (["--top", "0"], "out of range"),
        (["--max-vital-risk", "nan"], "not a finite number"),
        (["--ops", "and,xor"], "--ops must be a comma-separated subset"),
    ],
)
def test_bad_gate_options(extra: list[str], message: str, good_h5ad: Path, tmp_path: Path, capsys):
    argv = ["gates", str(good_h5ad), "--out", str(tmp_path / "o"), *extra]
    code, err = _run(argv, capsys)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_missing_patient_labels_are_an_error_not_a_patient_called_nan(
    tmp_path: Path, capsys
) -> None:
    rng = np.random.default_rng(3)
    path = _write_h5ad(tmp_path / "in.h5ad", rng.poisson(2.0, (60, len(GENES))).astype("f4"))
    adata = ad.read_h5ad(path)
    adata.obs.loc[adata.obs_names[:4], "patient"] = np.nan
    adata.write_h5ad(path)
    argv = ["rank", str(path), "--malignant-key", "status=malignant", "--patient-key", "patient"]
    code, err = _run([*argv, "--positivity", "cp10k", "--out", str(tmp_path / "o")], capsys)
    assert code == 2
    assert "no patient label" in err
    assert not (tmp_path / "o").exists()


def test_missing_compartment_labels_form_an_unassigned_group(tmp_path: Path, capsys) -> None:
    rng = np.random.default_rng(3)
    path = _write_h5ad(tmp_path / "in.h5ad", rng.poisson(2.0, (60, len(GENES))).astype("f4"))
    adata = ad.read_h5ad(path)
    adata.obs["comp"] = pd.Categorical(np.where(np.arange(60) < 10, None, "stem"))
    adata.write_h5ad(path)
    argv = ["rank", str(path), "--compartment-key", "comp", "--positivity", "cp10k"]
    assert main([*argv, "--out", str(tmp_path / "o")]) == 0
    cols = pd.read_csv(tmp_path / "o" / "targets.tsv", sep="\t").columns
    assert any("unassigned" in c for c in cols)
    assert not any("nan" in c.lower().split("__")[-1] for c in cols)


def test_rank_then_gates_into_one_out_is_refused(good_h5ad: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "o"
    base = [str(good_h5ad), "--positivity", "cp10k", "--out", str(out)]
    assert main(["rank", *base]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, err = _run(["gates", *base, "--max-vital-risk", "1"], capsys)
    assert code == 2
    assert "another --out" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_full_disk_is_one_line_and_keeps_previous_run(
    good_h5ad: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    import errno

    from antigenscout.io import _write

    out = tmp_path / "o"
    base = ["rank", str(good_h5ad), "--positivity", "cp10k", "--out", str(out)]
    assert main(base) == 0
    capsys.readouterr()
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    calls = {"n": 0}
    real = _write.write_table

    def full(df, path, **kw):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(df, path, **kw)

    monkeypatch.setattr(_write, "write_table", full)
    code, err = _run([*base, "--threshold", "0.5"], capsys)
    assert code == 2
    assert "disk is full" in err
    assert len(err.strip().splitlines()) == 1
    assert ".partial" not in err  # the message names --out, not the staging folder
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_internal_fault_shows_traceback_and_asks_for_a_report(
    good_h5ad: Path, tmp_path: Path, capsys, monkeypatch
) -> None:
    from antigenscout import tl

    def broken(*a, **k):
        raise ZeroDivisionError(1)

    monkeypatch.setattr(tl, "score_targets", broken)
    code = main(["rank", str(good_h5ad), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1
    assert "Traceback" in err
    assert "ZeroDivisionError" in err
    assert "report it" in err
    assert not (tmp_path / "o").exists()


def test_backed_rank_equals_in_memory(good_h5ad: Path, tmp_path: Path, capsys) -> None:
    base = ["rank", str(good_h5ad), "--positivity", "cp10k", "--malignant-key", "status=malignant"]
    assert main([*base, "--backed", "--out", str(tmp_path / "b")]) == 0
    assert main([*base, "--in-memory", "--out", str(tmp_path / "m")]) == 0
    backed = pd.read_csv(tmp_path / "b" / "targets.tsv", sep="\t")
    memory = pd.read_csv(tmp_path / "m" / "targets.tsv", sep="\t")
    pd.testing.assert_frame_equal(backed, memory)


@pytest.mark.parametrize("gene", ["HLA-H", "MT-ND2"])
def test_highlight_of_a_non_coding_locus_is_refused(gene: str, tmp_path: Path, capsys) -> None:
    """A pseudogene or a mitochondrially encoded gene is no candidate of any modality: the
    message says why, not that another modality would take it."""
    argv = ["demo", "--highlight", gene, "--modality", "tcr-t", "--out", str(tmp_path / "o")]
    code, err = _run(argv, capsys)
    assert code == 2
    assert "not a protein-coding nuclear locus" in err
    assert "--modality tcr-t/vaccine" not in err
    assert not (tmp_path / "o").exists()


def test_bulk_table_with_cancer_reports_protein_evidence(tmp_path: Path, capsys) -> None:
    """A bulk TSV ranked with --cancer: coverage fused from IHC, CPTAC and the table's RNA
    (as the API computes it), with its interval and sources; IHC and CPTAC columns and the
    conflict flag beside it (TACSTD2 in breast cancer: IHC 0 of 11, CPTAC 121 of 121); the
    rule in run.json; no per-cell rate model."""
    import json

    from antigenscout.reference import load_reference
    from antigenscout.tl import fused_coverage

    genes = ["TACSTD2", "ERBB2", "NECTIN4", "CD19", "EGFR", "MSLN", "PTPRC", "GAPDH"]
    rng = np.random.default_rng(0)
    table = pd.DataFrame(
        rng.uniform(5.0, 300.0, size=(len(genes), 3)),
        index=pd.Index(genes, name="gene"),
        columns=["s1", "s2", "s3"],
    )
    path = tmp_path / "bulk.tsv"
    table.to_csv(path, sep="\t")
    out = tmp_path / "o"
    code, err = _run(
        ["rank", str(path), "--modality", "adc", "--cancer", "breast cancer", "--out", str(out)],
        capsys,
    )
    assert code == 0, err
    t = pd.read_csv(out / "targets.tsv", sep="\t", index_col="target")
    # one patient (no --patient-key): one RNA reading, the mean of the three samples
    expect = fused_coverage(
        load_reference(), "breast cancer", pd.Index(t.index), table.mean(axis=1).reindex(t.index)
    )
    np.testing.assert_allclose(t["tumor_coverage"], expect["coverage"], atol=1e-5)  # TSV: 6 digits
    np.testing.assert_allclose(t["coverage_high"], expect["coverage_high"], atol=1e-4)
    assert (t["coverage_low"] <= t["tumor_coverage"]).all()
    assert (t["tumor_coverage"] <= t["coverage_high"]).all()
    assert t.loc["TACSTD2", "coverage_source"] == (
        "HPA IHC Enhanced (11 patients) + CPTAC BRCA (121 tumours) + RNA (1 bulk level)"
    )
    assert t.loc["TACSTD2", "stained_fraction"] == 0.0
    assert t.loc["TACSTD2", "cptac_n_patients"] == 121
    assert t.loc["TACSTD2", "cptac_detected_fraction"] == 1.0
    assert bool(t.loc["TACSTD2", "protein_evidence_conflict"])
    run = json.loads((out / "run.json").read_text())
    assert run["params"]["coverage"]["ihc_validity"]["Enhanced"] > 0
    assert not (out / "patient_model.tsv").exists()
    assert "patient_model" not in err


def test_cancer_on_single_cells_is_refused(good_h5ad: Path, tmp_path: Path, capsys) -> None:
    argv = ["rank", str(good_h5ad), "--malignant-key", "status=malignant"]
    argv += ["--cancer", "breast cancer", "--out", str(tmp_path / "o")]
    code, err = _run(argv, capsys)
    assert code == 2
    assert "bulk tumours only" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("model", ["stein2019", "kimmel2021", "michor2005", "cart-leukaemia"])
def test_simulate_report_writes_the_report(model: str, tmp_path: Path) -> None:
    """``simulate --report`` writes report.html for every model: summary.json's
    ``reference`` is the model's paper (a string), not the reference metadata of run.json."""
    out = tmp_path / "sim"
    assert (
        main(["simulate", "--model", model, "--patients", "5", "--out", str(out), "--report"]) == 0
    )
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "<html" in html.lower()
    # the run records how it was made, and the report shows it; a ranking's terms are not
    # explained in a report that holds no ranking
    run = json.loads((out / "run.json").read_text())
    argv = ["simulate", "--model", model, "--patients", "5", "--out", str(out), "--report"]
    assert run["input"]["command_line"][1:] == argv
    assert run["input"]["version"]
    assert " ".join(run["input"]["command_line"]) in html
    assert "Tumour coverage is the fraction" not in html


def test_profile_run_records_the_command_line(tmp_path: Path) -> None:
    out = tmp_path / "p"
    assert main(["profile", "CD19", "--out", str(out)]) == 0
    run = json.loads((out / "run.json").read_text())
    assert run["input"]["command_line"][1:] == ["profile", "CD19", "--out", str(out)]


def test_option_names_as_the_api_names_them(good_h5ad: Path, tmp_path: Path, capsys) -> None:
    """--top-k / --n-candidates (gates) and --modality (profile) are the same options as
    --top / --candidates and --agent: the outputs are identical."""
    base = ["gates", str(good_h5ad), "--malignant-key", "status=malignant", "--patient-key"]
    base += ["patient", "--positivity", "cp10k", "--max-genes", "2", "--max-vital-risk", "1"]
    assert main([*base, "--top", "5", "--candidates", "6", "--out", str(tmp_path / "a")]) == 0
    assert main([*base, "--top-k", "5", "--n-candidates", "6", "--out", str(tmp_path / "b")]) == 0
    a = pd.read_csv(tmp_path / "a" / "gates.tsv", sep="\t")
    b = pd.read_csv(tmp_path / "b" / "gates.tsv", sep="\t")
    pd.testing.assert_frame_equal(a, b)
    assert main(["profile", "CD19", "--agent", "car-t", "--out", str(tmp_path / "p")]) == 0
    assert main(["profile", "CD19", "--modality", "car-t", "--out", str(tmp_path / "q")]) == 0
    p = (tmp_path / "p" / "profile.tsv").read_text()
    assert p == (tmp_path / "q" / "profile.tsv").read_text()
    capsys.readouterr()
