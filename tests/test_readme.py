"""The README's Python example runs as written, on the embedded demo data."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_the_readme_python_example_runs_as_written() -> None:
    block = re.search(r"```python\n(.*?)```", README.read_text(), re.S)
    assert block is not None
    namespace: dict = {}
    exec(compile(block.group(1), str(README), "exec"), namespace)
    adata = namespace["adata"]
    table = adata.uns["antigenscout_targets"]["targets"]
    assert len(table) > 100
    assert table["tumor_coverage"].between(0, 1).all()
