"""Load an atlas for use: a folder written by ``atlas build``, or an ``.h5ad`` built on the spot.

This is the one module that sees both the atlas and its builder, so neither imports the other.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .._errors import InputError
from ._atlas import Atlas
from ._build import build_atlas

__all__ = ["load_atlas"]


def load_atlas(
    path: str | os.PathLike[str],
    *,
    cell_type_key: str = "cell_type",
    donor_key: str | None = None,
    dask: Any = None,
) -> Atlas:
    """Load an atlas directory, or build one on the fly from an ``.h5ad`` of healthy cells.

    Parameters
    ----------
    path
        Directory written by ``antigenscout atlas build``, or an ``.h5ad``.
    cell_type_key, donor_key, dask
        For an ``.h5ad``: see :func:`antigenscout.atlas.build_atlas`.

    Returns
    -------
    The :class:`Atlas`.
    """
    p = Path(path)
    if p.is_file() and p.name.lower().endswith(".h5ad"):
        return build_atlas(p, cell_type_key=cell_type_key, donor_key=donor_key, dask=dask)
    if p.is_file():
        msg = f"--atlas {str(p)!r}: give an atlas directory or an .h5ad file"
        raise InputError(msg)
    return Atlas.read(p)
