"""Self-contained HTML reports of antigenscout runs.

:func:`write_html` turns the output directory of ``antigenscout rank | demo | gates |
simulate`` into one HTML file (inline SVG charts, inlined scripts and styles, no network
access at view time). The static matplotlib versions of the charts live in
:mod:`antigenscout.pl`.
"""

from ._cli import add_report
from ._markup import SECTIONS
from ._run import RunData, load_run
from .html import render_html, write_html

__all__ = ["SECTIONS", "RunData", "add_report", "load_run", "render_html", "write_html"]
