"""Every bad input of ``tests/bad_inputs.py``: one line, exit 2, fast, small, nothing lost."""

from __future__ import annotations

from pathlib import Path

import pytest

from bad_inputs import CASES, MAX_RSS_MB, MAX_SECONDS, Case, run_case


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
