"""antigenscout: rank immunotherapy targets by tumour coverage against healthy-tissue risk.

Subpackages follow scanpy's layout: :mod:`~antigenscout.io` (readers),
:mod:`~antigenscout.reference` (the embedded healthy atlas), :mod:`~antigenscout.pp`
(gene harmonising, positivity), :mod:`~antigenscout.tl` (scoring, gates, profiles),
:mod:`~antigenscout.get` (tidy tables), :mod:`~antigenscout.datasets`,
:mod:`~antigenscout.kinetics` (therapy simulation), :mod:`~antigenscout.atlas` (a healthy
atlas of your own).
"""

from __future__ import annotations

import importlib
import os

# numba's OpenMP layer (GNU libgomp) with its default wait policy ran a parallel loop on one
# core on the 2-vCPU development VM (same wall time on 1 and 2 threads); with passive waiting
# both threads run (docs/benchmarks.md). libgomp reads this once, when numba first loads it,
# after this import; a value the user has set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as _version
from typing import TYPE_CHECKING, Any

from ._errors import (
    AntigenscoutError,
    AntigenscoutWarning,
    InputError,
    ReferenceLookupError,
    UnmappedGenesWarning,
)

if TYPE_CHECKING:
    from . import atlas, datasets, get, io, kinetics, pl, pp, reference, report, tl

try:
    __version__ = _version("antigenscout")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

#: Subpackages, imported on first attribute access so that ``import antigenscout`` (and the
#: CLI's ``--help``) stays fast; ``asc.tl`` etc. behave as if imported eagerly.
_SUBPACKAGES = frozenset(
    {"atlas", "datasets", "get", "io", "kinetics", "pl", "pp", "reference", "report", "tl"}
)


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


def __dir__() -> list[str]:
    return sorted({*globals(), *_SUBPACKAGES})


__all__ = [
    "AntigenscoutError",
    "AntigenscoutWarning",
    "InputError",
    "ReferenceLookupError",
    "UnmappedGenesWarning",
    "__version__",
    "atlas",
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
