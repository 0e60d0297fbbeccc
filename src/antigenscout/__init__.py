"""antigenscout: rank immunotherapy targets by tumour coverage against healthy-tissue risk.

Subpackages follow scanpy's layout: :mod:`~antigenscout.io` (readers),
:mod:`~antigenscout.reference` (the embedded healthy atlas), :mod:`~antigenscout.pp`
(gene harmonising, positivity), :mod:`~antigenscout.tl` (scoring, gates, profiles),
:mod:`~antigenscout.get` (tidy tables), :mod:`~antigenscout.datasets`,
:mod:`~antigenscout.kinetics` (therapy simulation).
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from . import datasets, get, io, kinetics, pl, pp, reference, report, tl

try:
    __version__ = version("antigenscout")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "__version__",
    "datasets",
    "get",
    "io",
    "kinetics",
    "pl",
    "pp",
    "reference",
    "report",
    "tl",
]
