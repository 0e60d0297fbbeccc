"""Shared fixtures: the real reference data beside the repository."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _shared_data() -> Path | None:
    env = os.environ.get("ANTIGENSCOUT_SHARED")
    candidates = [Path(env) / "data"] if env else []
    candidates.append(REPO.parent / "shared" / "data")
    for c in candidates:
        if c.is_dir():
            return c
    return None


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path to ``../shared/data``; tests that need it are skipped when it is absent."""
    path = _shared_data()
    if path is None:
        pytest.skip("../shared/data is not beside the repository")
    return path


def pytest_addoption(parser: pytest.Parser) -> None:
    """``--update-golden``: rewrite tests/golden/ from this run (tests/test_golden.py)."""
    parser.addoption(
        "--update-golden",
        action="store_true",
        help="rewrite the pinned golden outputs in tests/golden/ instead of comparing",
    )
