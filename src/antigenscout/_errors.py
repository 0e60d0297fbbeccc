"""Exception and warning classes.

Every error a user can cause derives from :class:`AntigenscoutError`; the CLI turns
these into a one-line message and exit code 2, never a traceback.
"""

from __future__ import annotations

import warnings

__all__ = [
    "AntigenscoutError",
    "AntigenscoutWarning",
    "InputError",
    "ReferenceLookupError",
    "UnmappedGenesWarning",
    "warn",
]


class AntigenscoutError(Exception):
    """Base class of errors caused by user input or configuration."""


class InputError(AntigenscoutError, ValueError):
    """Input data or parameters are unusable; the message names the problem and the fix."""


class ReferenceLookupError(AntigenscoutError, LookupError):
    """A gene, cell type or tissue is unknown to the reference."""


class AntigenscoutWarning(UserWarning):
    """Base class of warnings emitted by antigenscout."""


class UnmappedGenesWarning(AntigenscoutWarning):
    """Some input genes could not be mapped to the reference namespace."""


def warn(message: str, category: type[Warning] = AntigenscoutWarning) -> None:
    """Emit a warning attributed to the caller outside antigenscout."""
    import antigenscout

    prefix = str(antigenscout.__path__[0])
    warnings.warn(message, category, stacklevel=2, skip_file_prefixes=(prefix,))
