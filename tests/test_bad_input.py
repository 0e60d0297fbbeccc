"""Every bad input of ``tests/bad_inputs.py``: one line, exit 2, fast, small, nothing lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from bad_inputs import (
    CASES,
    HANG_H5AD,
    MAX_RSS_MB,
    MAX_SECONDS,
    SEGFAULT_H5AD,
    Case,
    run_case,
)


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path) -> None:
    res = run_case(case, tmp_path)
    assert res.code == 2, res.stderr
    assert "Traceback" not in res.stderr
    assert len(res.lines) == 1, res.stderr
    assert res.lines[0].startswith("error: ")
    assert case.expect.lower() in res.lines[0].lower()
    assert res.out_unchanged
    assert res.seconds < MAX_SECONDS
    assert res.max_rss_mb < MAX_RSS_MB


@pytest.mark.slow
@pytest.mark.parametrize(("path", "how"), [(SEGFAULT_H5AD, "signal"), (HANG_H5AD, "hang")])
def test_fixtures_really_crash_a_plain_reader(path: Path, how: str) -> None:
    """The damaged files are real crashers of anndata/libhdf5, not merely invalid files."""
    import subprocess
    import sys

    code = f"import anndata; anndata.read_h5ad({str(path)!r})"
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=20)  # noqa: PLW1510
    except subprocess.TimeoutExpired:
        assert how == "hang"
        return
    if proc.returncode == 0:
        pytest.skip(f"this anndata/h5py reads {path.name} without crashing now")
    assert how == "signal"
    assert proc.returncode < 0
