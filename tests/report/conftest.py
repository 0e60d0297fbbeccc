"""Fixtures: synthetic run directories written with the CLI's output schemas."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest


def _load_synthetic():
    name = "antigenscout_tests_synthetic_run"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, Path(__file__).with_name("synthetic_run.py")
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


synthetic = _load_synthetic()


@pytest.fixture
def full_run(tmp_path: Path) -> Path:
    """targets, risk, patient coverage, run.json, gates and simulation outputs."""
    return synthetic.write_full_run(tmp_path / "run")


@pytest.fixture
def targets_run(tmp_path: Path) -> Path:
    """Only what ``antigenscout rank`` writes."""
    return synthetic.write_targets_run(tmp_path / "rank")


@pytest.fixture
def gates_run(tmp_path: Path) -> Path:
    """Only ``gates.tsv``."""
    return synthetic.write_gates(tmp_path / "gates")


@pytest.fixture
def sim_run(tmp_path: Path) -> Path:
    """Only simulation outputs."""
    return synthetic.write_simulation(tmp_path / "sim")
