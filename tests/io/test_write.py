"""Whole-run staging: ``--out`` holds one complete run or the previous one, untouched."""

from __future__ import annotations

import errno
import hashlib
from pathlib import Path

import pytest

from antigenscout._errors import InputError
from antigenscout.io._write import staged_run, write_json, write_table


def _snapshot(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(path.rglob("*"))
        if p.is_file()
    }


def _leftovers(parent: Path) -> list[Path]:
    return [p for p in parent.iterdir() if p.name.startswith(".")]


def _write_rank(stage: Path, tag: str) -> None:
    import pandas as pd

    write_table(pd.DataFrame({"target": [tag]}), stage / "targets.tsv")
    write_json(stage / "run.json", {"command": "rank", "tag": tag})


def test_new_out_is_created_whole(tmp_path: Path) -> None:
    out = tmp_path / "a" / "run"
    with staged_run(out, "rank") as stage:
        assert stage.parent == out.parent
        assert not out.exists()  # nothing visible before the run is complete
        _write_rank(stage, "one")
    assert sorted(p.name for p in out.iterdir()) == ["run.json", "targets.tsv"]
    assert _leftovers(out.parent) == []


def test_failure_leaves_previous_run_byte_identical(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with staged_run(out, "rank") as stage:
        _write_rank(stage, "one")
    before = _snapshot(out)

    def full_disk() -> None:
        with staged_run(out, "rank") as stage:
            _write_rank(stage, "two")
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match="No space"):
        full_disk()
    assert _snapshot(out) == before
    assert _leftovers(tmp_path) == []


def test_rerun_replaces_whole_run_and_keeps_foreign_files(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with staged_run(out, "demo") as stage:
        _write_rank(stage, "one")
        (stage / "risk.tsv").write_text("old risk\n")
    (out / "notes.txt").write_text("my notes\n")
    with staged_run(out, "rank") as stage:  # demo and rank write the same kind of run
        _write_rank(stage, "two")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "run.json", "targets.tsv"]
    assert "two" in (out / "targets.tsv").read_text()  # risk.tsv of run one is gone
    assert (out / "notes.txt").read_text() == "my notes\n"
    assert _leftovers(tmp_path) == []


def test_run_of_another_command_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with staged_run(out, "rank") as stage:
        _write_rank(stage, "one")
    before = _snapshot(out)
    with pytest.raises(InputError, match=r"'rank' run.*another --out"), staged_run(out, "gates"):
        pass
    assert _snapshot(out) == before


def test_out_that_is_a_file_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "file"
    out.write_text("keep\n")
    with pytest.raises(InputError, match="not a directory"), staged_run(out, "rank"):
        pass
    assert out.read_text() == "keep\n"


def test_empty_existing_folder_is_used(tmp_path: Path) -> None:
    out = tmp_path / "empty"
    out.mkdir()
    with staged_run(out, "profile") as stage:
        (stage / "profile.tsv").write_text("x\n")
    assert (out / "profile.tsv").read_text() == "x\n"


def test_tsv_cells_a_spreadsheet_would_run_are_escaped_and_read_back(tmp_path) -> None:
    """OWASP CSV injection: text cells (and labels) starting with = + - @ tab or CR get a
    leading apostrophe in the TSV; numbers do not; read_output_table gives the values back."""
    import pandas as pd

    from antigenscout.io._write import read_output_table, spreadsheet_safe, write_table

    df = pd.DataFrame(
        {
            "target": ["=HYPERLINK(x)", "+1+1", "@SUM(A1)", "-cmd", "CD19", "x"],
            "value": [-0.5, 1.0, 2.0, 3.0, 4.0, 5.0],
            "note": ["-0.25", "ok", "a=b", "-", "=", "'=kept"],
        }
    )
    df.columns = ["target", "value", "=col"]
    path = write_table(df, tmp_path / "t.tsv")
    raw = path.read_text().splitlines()
    assert raw[0].split("\t") == ["target", "value", "'=col"]
    cells = [line.split("\t") for line in raw[1:]]
    assert [c[0] for c in cells[:5]] == [
        "'=HYPERLINK(x)",
        "'+1+1",
        "'@SUM(A1)",
        "'-cmd",
        "CD19",
    ]
    assert [c[1] for c in cells] == ["-0.5", "1", "2", "3", "4", "5"]  # numbers untouched
    assert cells[0][2] == "-0.25"  # a number held as text
    assert cells[2][2] == "a=b"  # an = inside
    assert spreadsheet_safe(pd.DataFrame({"a": ["\tx", "\rx"]}))["a"].tolist() == ["'\tx", "'\rx"]
    # categorical labels (as AnnData keeps them) and a categorical index are escaped too
    cat = pd.DataFrame(
        {"label": pd.Categorical(["=1+1", "ok"])},
        index=pd.CategoricalIndex(["@a", "b"], name="cell"),
    )
    safe = spreadsheet_safe(cat)
    assert safe["label"].tolist() == ["'=1+1", "ok"]
    assert safe.index.tolist() == ["'@a", "b"]
    assert safe.index.name == "cell"
    back = read_output_table(path)
    assert back.columns.tolist() == ["target", "value", "=col"]
    assert back["target"].tolist() == df["target"].tolist()
    assert back["=col"].astype(str).tolist()[1:] == ["ok", "a=b", "-", "=", "'=kept"]


def test_out_that_would_replace_the_current_folder_is_refused_first(tmp_path, monkeypatch) -> None:
    import pytest

    from antigenscout._errors import InputError
    from antigenscout.io._write import staged_run

    sub = tmp_path / "work"
    sub.mkdir()
    monkeypatch.chdir(sub)
    for out in (".", str(sub), str(tmp_path)):
        with (
            pytest.raises(InputError, match="current folder or one above"),
            staged_run(out, "rank"),
        ):
            pytest.fail("the run must not start")


def test_a_symlinked_out_receives_the_run_in_its_target(tmp_path) -> None:
    from antigenscout.io._write import staged_run

    target = tmp_path / "real"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    with staged_run(link, "rank") as stage:
        (stage / "targets.tsv").write_text("target\nCD33\n")
    assert link.is_symlink()
    assert (target / "targets.tsv").read_text() == "target\nCD33\n"


def test_a_run_of_another_command_landing_meanwhile_is_kept_and_so_is_this_one(tmp_path) -> None:
    import pytest

    from antigenscout._errors import InputError
    from antigenscout.io._write import staged_run

    out = tmp_path / "out"

    def gates_run() -> None:
        with staged_run(out, "gates") as stage:
            (stage / "gates.tsv").write_text("gate\nA\n")
            out.mkdir()  # a rank run, started together, finished first
            (out / "targets.tsv").write_text("target\nCD33\n")

    with pytest.raises(InputError, match="received a 'rank' run") as e:
        gates_run()
    assert (out / "targets.tsv").read_text() == "target\nCD33\n"
    aside = tmp_path / "out-gates"
    assert (aside / "gates.tsv").read_text() == "gate\nA\n"
    assert str(aside) in str(e.value)


def test_files_left_in_a_killed_runs_staging_folder_come_back(tmp_path) -> None:
    import subprocess
    import sys

    from antigenscout.io._write import _OWNER, staged_run

    out = tmp_path / "out"
    out.mkdir()
    (out / "targets.tsv").write_text("old\n")
    # a run killed after moving the user's notes into its staging folder, before the swap
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    stage = tmp_path / ".out.abc123.partial"
    stage.mkdir()
    (stage / _OWNER).write_text(dead)
    (stage / "my_notes.txt").write_text("keep me\n")
    (stage / "targets.tsv").write_text("half-written\n")
    alive = tmp_path / ".out.def456.partial"  # a run still working: left alone
    alive.mkdir()
    (alive / _OWNER).write_text(str(__import__("os").getpid()))
    with staged_run(out, "rank") as new:
        (new / "targets.tsv").write_text("new\n")
    assert (out / "my_notes.txt").read_text() == "keep me\n"
    assert (out / "targets.tsv").read_text() == "new\n"
    assert not stage.exists()
    assert alive.exists()
