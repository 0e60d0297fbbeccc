"""Read an AnnData ``.zarr`` directory store, locating the raw counts like ``.h5ad``."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from anndata import AnnData

from .._errors import InputError
from ._guard import check_fits, reader_errors
from ._h5ad import validated_anndata
from ._validate import check_kind

__all__ = ["read_zarr"]


@reader_errors("an AnnData zarr store")
def read_zarr(
    path: str | os.PathLike[str],
    *,
    layer: str | None = None,
    kind: str | None = None,
) -> AnnData:
    """Read an AnnData ``.zarr`` directory store (zarr format 2 or 3).

    The declared sizes of its arrays are summed first and a store that would not fit in
    memory is refused before anything is loaded.

    Parameters
    ----------
    path
        The ``.zarr`` folder written by :meth:`anndata.AnnData.write_zarr`.
    layer
        Slot with the raw counts, as in :func:`~antigenscout.io.read_h5ad` (``None`` finds
        them in ``.X``, a ``counts``-like layer or ``.raw``; ``"X"``; ``"raw"``; a layer).
    kind
        ``'single_cell'`` or ``'bulk'``; as in :func:`~antigenscout.io.read_h5ad`.

    Returns
    -------
    AnnData laid out as by :func:`~antigenscout.io.read_h5ad` (``obsm`` and ``obsp`` kept).

    Examples
    --------
    >>> import antigenscout as asc
    >>> adata = asc.io.read_zarr("tumour.zarr", layer="counts")  # doctest: +SKIP
    """
    import anndata  # noqa: PLC0415
    import zarr  # noqa: PLC0415

    d = Path(path)
    if kind is not None:
        check_kind(kind)
    if not d.is_dir():
        what = "does not exist" if not d.exists() else "is not a folder"
        msg = f"zarr store {str(d)!r} {what}; give the .zarr folder written by write_zarr"
        raise InputError(msg)
    source = repr(str(d))
    try:
        group = zarr.open_group(d, mode="r")
        members = list(group.members(max_depth=None))
    except Exception as e:
        msg = (
            f"{source} is not a readable zarr store ({type(e).__name__}: "
            f"{(str(e).splitlines() or [''])[0][:200]}); give the .zarr folder of an AnnData"
        )
        raise InputError(msg) from e
    if "X" not in group and "layers" not in group:
        msg = (
            f"{source} is a zarr store but not an AnnData one (no X or layers); "
            "write it with AnnData.write_zarr"
        )
        raise InputError(msg)
    _check_sparse_chunks(group, members, source)
    nbytes = sum(float(getattr(obj, "nbytes", 0) or 0) for _, obj in members)
    check_fits(2.0 * nbytes, what=f"arrays of {nbytes:,.0f} bytes in all", source=source)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*names are not unique", category=UserWarning)
        adata = anndata.read_zarr(d)
    return validated_anndata(adata, layer=layer, kind=kind, source=source)


def _check_sparse_chunks(group: Any, members: list, source: str) -> None:
    """Refuse a store whose sparse matrices miss chunks of their values or indices.

    Zarr reads a missing chunk as its fill value, so counts would silently become zeros (an
    interrupted copy). Dense arrays may legitimately skip all-zero chunks and are not checked.
    """
    for name, obj in members:
        parts = str(name).split("/")
        if parts[-1] not in ("data", "indices") or not hasattr(obj, "nchunks"):
            continue
        parent = group["/".join(parts[:-1])] if len(parts) > 1 else group
        if parent.attrs.get("encoding-type") not in ("csr_matrix", "csc_matrix"):
            continue
        try:
            have, want = int(obj.nchunks_initialized), int(obj.nchunks)
        except Exception:  # a store that cannot count its chunks is read as it is
            continue
        if have < want:
            msg = (
                f"{name} of {source} misses {want - have:,} of its {want:,} chunks, which would "
                "be read as zeros; the store is incomplete (an interrupted copy?): copy it again"
            )
            raise InputError(msg)
