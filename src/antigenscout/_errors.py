"""Exception and warning classes.

Every error a user can cause derives from :class:`AntigenscoutError`; the CLI turns
these into a one-line message and exit code 2, never a traceback.
"""

from __future__ import annotations

import os
import sys
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
    r"""Base class of errors caused by user input or configuration.

    The message is one line whatever it quotes (a parser's multi-line complaint, a file
    name with a newline): runs of white space become one space. An error about one parameter
    names it (``param=``) and starts its message with the parameter's name, as the Python
    API spells it; the command line writes the option's flag in its place.

    >>> str(InputError("cannot read 'x' (Expected 2 fields\nin line 3); fix it"))
    "cannot read 'x' (Expected 2 fields in line 3); fix it"
    """

    def __init__(self, *args: object, param: str | None = None) -> None:
        if len(args) == 1 and isinstance(args[0], str):
            args = (" ".join(args[0].split()),)
        super().__init__(*args)
        #: The API parameter at fault, named first in the message; the CLI writes its flag.
        self.param = param


class InputError(AntigenscoutError, ValueError):
    """Input data or parameters are unusable; the message names the problem and the fix."""


class ReferenceLookupError(AntigenscoutError, LookupError):
    """A gene, cell type or tissue is unknown to the reference."""


class AntigenscoutWarning(UserWarning):
    """Base class of warnings emitted by antigenscout."""


class UnmappedGenesWarning(AntigenscoutWarning):
    """Some input genes could not be mapped to the reference namespace."""


def warn(message: str, category: type[Warning] = AntigenscoutWarning) -> None:
    """Emit a warning attributed to the first caller outside antigenscout."""
    prefix = os.path.dirname(os.path.abspath(__file__))
    frame = sys._getframe(1)
    level = 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(prefix):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level - 1)
