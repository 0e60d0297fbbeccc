"""The lint exceptions docs/style.md counts are the ones the code marks."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from lint_exceptions import count_noqa  # noqa: E402


def test_docs_style_counts_the_marked_exceptions() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "lint_exceptions.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def test_count_noqa_reads_comments_only() -> None:
    text = (
        "def f(a, b, c, d, e, g):  # noqa: PLR0913,PLR0917\n"
        "    s = '# noqa: D205'\n"
        '    """# noqa: D401"""\n'
        "    return 1  # noqa:E501  keep\n"
    )
    assert count_noqa(text) == {"PLR0913": 1, "PLR0917": 1, "E501": 1}


#: The most lines a source file may hold (issue #26): a module over it is split by concern.
MAX_LINES = 1200


def test_no_source_file_is_over_the_line_limit() -> None:
    sizes = {
        str(p.relative_to(REPO)): len(p.read_text(encoding="utf-8").splitlines())
        for p in (REPO / "src").rglob("*.py")
    }
    assert len(sizes) > 50  # the package was found
    assert {p: n for p, n in sizes.items() if n > MAX_LINES} == {}
