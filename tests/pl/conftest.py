"""Fixtures: the synthetic run directories of ``tests/report/synthetic_run.py``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest


def _load_synthetic():
    name = "antigenscout_tests_synthetic_run"
    if name in sys.modules:
        return sys.modules[name]
    path = Path(__file__).resolve().parents[1] / "report" / "synthetic_run.py"
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


synthetic = _load_synthetic()


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every output file of a run, written once per module."""
    return synthetic.write_full_run(tmp_path_factory.mktemp("pl") / "run")
