"""Load what a command is pointed at: the healthy reference, with a healthy atlas merged in.

Both the top-level commands (``antigenscout.cli``) and ``simulate``
(``antigenscout.kinetics._cli``) import this, so their imports point one way, from the
commands to the engine. Import it inside a command: it imports the reference and the atlas.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import h5py

from ._console import err_console
from ._errors import InputError
from .atlas import load_atlas
from .reference import Reference, load_reference

__all__ = ["load_reference_with_atlas"]


def load_reference_with_atlas(reference_dir: Path | None, atlas_path: Path | None) -> Reference:
    """Return the reference (embedded or ``--reference``), with ``--atlas`` merged in when given."""
    reference = load_reference(reference_dir)
    if atlas_path is None:
        return reference
    if not atlas_path.exists():
        msg = f"--atlas {str(atlas_path)!r} does not exist; give an atlas folder or an .h5ad"
        raise InputError(msg)
    donor = None
    if atlas_path.is_file():
        with contextlib.suppress(OSError, KeyError), h5py.File(atlas_path, "r") as f:
            donor = "donor_id" if "donor_id" in f["obs"] else None
    atlas = load_atlas(atlas_path, cell_type_key="cell_type", donor_key=donor)
    unmapped = atlas.metadata.get("unmapped_cell_types") or []
    if unmapped:
        err_console().print(
            f"atlas {atlas.name}: {len(unmapped)} cell types map to no body context and weigh "
            f"1.0: {', '.join(unmapped[:8])}{' …' if len(unmapped) > 8 else ''}",  # noqa: PLR2004
            soft_wrap=True,
            markup=False,
        )
    return reference.with_atlas(atlas)
