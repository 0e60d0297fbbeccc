"""Read an AnnData ``.h5ad`` file, locating the raw counts; shared AnnData count logic."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import anndata
import numpy as np
import pandas as pd
from anndata import AnnData

from .._errors import InputError
from ._guard import check_expansion, check_fits, probe_hdf5, reader_errors
from ._validate import (
    _stored,
    check_dtype,
    check_file,
    check_kind,
    check_unique_genes,
    check_values,
    finalise,
    is_integer_valued,
    normalisation_hint,
)

__all__ = ["read_h5ad", "validated_anndata"]

#: Layer names searched, in order, when ``.X`` does not hold counts.
COUNT_LAYERS: tuple[str, ...] = ("counts", "raw_counts", "count", "umi_counts", "umis", "UMI")

#: Stored values of a backed ``.X`` checked for integer counts when opening it.
BACKED_SAMPLE = 1_000_000

#: Declared dataset bytes × this factor must fit in memory to read an h5ad fully.
_READ_OVERHEAD = 2.0


@reader_errors("an h5ad file")
def read_h5ad(
    path: str | os.PathLike[str],
    *,
    layer: str | None = None,
    kind: str | None = None,
    backed: bool = False,
) -> AnnData:
    """Read a ``.h5ad`` file with raw counts in ``.X``, a layer or ``.raw``.

    The file's HDF5 structure is first walked in a child process (see
    :func:`~antigenscout.io._guard.probe_hdf5`), so a damaged file that would crash
    libhdf5 raises :class:`~antigenscout.InputError` instead; a file whose datasets would
    not fit in memory is refused before anything is loaded.

    Parameters
    ----------
    path
        The ``.h5ad`` file.
    layer
        Layer that holds the raw counts; it is moved into ``.X``. ``"X"`` forces ``.X``
        and ``"raw"`` takes ``.raw.X`` (with ``.raw.var``). When ``None``, ``.X`` is used if
        it holds whole numbers; otherwise the first integer-valued layer among
        ``counts``, ``raw_counts``, ``count``, ``umi_counts``, ``umis``, ``UMI``, then an
        integer-valued ``.raw``.
    kind
        ``'single_cell'`` or ``'bulk'``; defaults to the value stored in
        ``uns['antigenscout']['kind']`` by antigenscout, else ``'single_cell'``. Bulk data may
        hold non-integer values (e.g. TPM).
    backed
        Open the file read-only on disk (anndata ``backed='r'``) without loading ``.X``:
        for files larger than memory. The counts must be in ``.X`` (``layer`` may only be
        ``None`` or ``"X"``) stored dense or as CSR. The metadata are validated (``obs``,
        ``var``, unique gene ids, the dtype and shape of ``.X``) and the first million
        stored values are checked to be non-negative whole numbers; the rest is checked
        chunk by chunk when :func:`~antigenscout.tl.score_targets` streams it. Layers and
        ``.raw`` are not loaded. Close the file with ``adata.file.close()``.

    Returns
    -------
    AnnData with counts in ``.X`` (float32 CSR for single cells), the file's ``obs``,
    ``obsm``, ``obsp`` (e.g. a neighbour graph's ``connectivities`` and ``distances``) and
    ``uns``, ``var['gene_id_input']`` and ``uns['antigenscout']`` with ``kind``, ``source``
    and ``counts_from``. Other layers, ``.raw`` and ``varm`` are not kept. With
    ``backed=True``, ``.X`` stays on disk with the file's dtype and
    ``uns['antigenscout']['backed']`` is True.

    Examples
    --------
    >>> import antigenscout as asc
    >>> adata = asc.io.read_h5ad("tumour.h5ad", layer="counts")  # doctest: +SKIP
    >>> big = asc.io.read_h5ad("atlas.h5ad", backed=True)  # doctest: +SKIP
    """
    p = check_file(path)
    if kind is not None:
        check_kind(kind)
    source = repr(str(p))
    info = probe_hdf5(p, source=source, what="an h5ad file")
    if backed:
        return _read_backed(p, info, layer=layer, kind=kind, source=source)
    check_expansion(info["nbytes"], p.stat().st_size, what="arrays", source=source)
    check_fits(
        info["nbytes"] * _READ_OVERHEAD,
        what=f"{len(info['datasets'])} datasets of {info['nbytes']:,} bytes in all",
        source=source,
    )
    try:
        with warnings.catch_warnings():
            # duplicated names are reported below with a fix; anndata's warning adds nothing
            warnings.filterwarnings(
                "ignore", message=".*names are not unique", category=UserWarning
            )
            adata = anndata.read_h5ad(p)
    except Exception as e:
        msg = (
            f"cannot read {source} as an h5ad file ({type(e).__name__}: "
            f"{(str(e).splitlines() or [''])[0][:200]}); "
            "check that it is a complete AnnData .h5ad file"
        )
        raise InputError(msg) from e
    return validated_anndata(adata, layer=layer, kind=kind, source=source)


def validated_anndata(
    adata: AnnData, *, layer: str | None, kind: str | None, source: str
) -> AnnData:
    """Locate the raw counts of an in-memory AnnData and return it validated.

    The logic shared by :func:`read_h5ad`, :func:`~antigenscout.io.read_zarr` and
    :func:`~antigenscout.io.read_loom`: ``layer`` and ``kind`` as in :func:`read_h5ad`.

    Parameters
    ----------
    adata
        AnnData as read from the file.
    layer
        Slot with the counts (``None``: find it; ``"X"``; ``"raw"``; a layer name).
    kind
        ``'single_cell'``, ``'bulk'`` or ``None`` (stored value, else single-cell).
    source
        Quoted file name, used in messages.

    Returns
    -------
    AnnData as described in :func:`read_h5ad`.
    """
    stored = adata.uns.get("antigenscout", {})
    if kind is None:
        kind = stored.get("kind", "single_cell") if isinstance(stored, dict) else "single_cell"
    kind = str(kind)
    check_kind(kind)
    X, var, where = _pick_counts(adata, layer=layer, kind=kind, source=source)
    uns = {k: v for k, v in adata.uns.items() if k != "antigenscout"}
    out = finalise(
        X,
        adata.obs,
        var,
        kind=kind,
        source=source,
        require_counts=kind == "single_cell",
        obsm=dict(adata.obsm.items()) or None,
        obsp=dict(adata.obsp.items()) or None,
    )
    out.uns.update(uns)
    out.uns["antigenscout"]["counts_from"] = where
    return out


def _pick_counts(  # noqa: PLR0912
    adata: AnnData, *, layer: str | None, kind: str, source: str
) -> tuple[Any, pd.DataFrame, str]:
    """Return (matrix, var, where) for the slot that holds the raw counts."""
    if layer is not None:
        if layer == "X":
            if adata.X is None:
                msg = f"{source} has no .X matrix; pass layer= naming the counts layer"
                raise InputError(msg)
            return adata.X, adata.var, "X"
        if layer == "raw":
            if adata.raw is None:
                msg = f"{source} has no .raw; pass layer= naming the counts layer instead"
                raise InputError(msg)
            return adata.raw.X, adata.raw.var, "raw"
        if layer not in adata.layers:
            have = list(adata.layers.keys())
            msg = (
                f"layer {layer!r} is not in {source} (layers: {have or 'none'}); "
                "pass one of those, 'X' or 'raw'"
            )
            raise InputError(msg, param="layer")
        return adata.layers[layer], adata.var, f"layers[{layer!r}]"

    if adata.X is not None:
        check_dtype(_stored(adata.X).dtype, source, where=".X")
        if kind != "single_cell" or is_integer_valued(adata.X):
            return adata.X, adata.var, "X"
    for name in COUNT_LAYERS:
        if name in adata.layers and is_integer_valued(adata.layers[name]):
            return adata.layers[name], adata.var, f"layers[{name!r}]"
    if adata.raw is not None and is_integer_valued(adata.raw.X):
        return adata.raw.X, adata.raw.var, "raw"
    if adata.X is None:
        state = "is missing"
    else:
        hint = normalisation_hint(adata.X)
        state = f"holds non-integer values ({hint or 'normalised?'})"
    msg = (
        f".X of {source} {state} and no integer 'counts' layer or .raw was found; "
        "antigenscout needs raw counts: store them in adata.layers['counts'] and pass "
        "layer='counts' (CLI: --layer counts)"
    )
    raise InputError(msg)


# --------------------------------------------------------------------------- backed


def _read_backed(
    p: Path, info: dict[str, Any], *, layer: str | None, kind: str | None, source: str
) -> AnnData:
    """Open ``p`` with ``.X`` on disk after validating its metadata (see :func:`read_h5ad`)."""
    import h5py  # noqa: PLC0415
    from anndata.io import read_elem  # noqa: PLC0415

    if layer not in (None, "X"):
        msg = (
            f"backed reading streams .X only, but layer={layer!r} was given for {source}; "
            "copy the counts into .X and re-save the file, or read it without backed"
        )
        raise InputError(msg)
    f = h5py.File(p, "r")
    try:
        for key in ("X", "obs", "var"):
            if key not in f:
                msg = (
                    f"{source} has no {key!r} element, so it cannot be opened backed; "
                    "check that it is an AnnData .h5ad file with counts in .X"
                )
                raise InputError(msg)
        elems = {k: read_elem(f[k]) for k in ("obs", "var", "obsm", "obsp", "uns") if k in f}
        obs: pd.DataFrame = elems["obs"]
        var: pd.DataFrame = elems["var"]
        sample = _check_backed_x(f["X"], n_obs=len(obs), n_var=len(var), source=source)
        stored = elems.get("uns", {}).get("antigenscout", {})
        if kind is None:
            kind = stored.get("kind", "single_cell") if isinstance(stored, dict) else None
        kind = str(kind or "single_cell")
        check_kind(kind)
        check_values(sample, source)
        if kind == "single_cell" and not is_integer_valued(sample):
            hint = normalisation_hint(sample)
            msg = (
                f".X of {source} holds non-integer values ({hint or 'normalised?'}) and "
                "backed reading streams .X only; re-save the file with raw counts in .X"
            )
            raise InputError(msg)
        _check_backed_values(f["X"], kind=kind, source=source)
        var = var.copy()
        var.index = pd.Index(var.index.astype(str), name=None)
        check_unique_genes(var.index, source)
        if "gene_id_input" not in var.columns:
            var.insert(0, "gene_id_input", var.index.to_numpy(dtype=object))
        obs = obs.copy()
        obs.index = pd.Index(obs.index.astype(str), name=None)
        if not obs.index.is_unique:
            obs.index = anndata.utils.make_index_unique(obs.index)
        elems.update(obs=obs, var=var)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*not unique", category=UserWarning)
            adata = AnnData(filename=f, **elems)  # type: ignore[arg-type]
    except BaseException:
        f.close()
        raise
    uns = adata.uns.get("antigenscout")
    adata.uns["antigenscout"] = {
        **(uns if isinstance(uns, dict) else {}),
        "kind": kind,
        "source": source,
        "counts_from": "X",
        "backed": True,
    }
    return adata


def _check_backed_values(x: Any, *, kind: str, source: str) -> None:
    """Check every stored value of a backed ``.X``, read in chunks (bounded memory).

    Values must be finite, non-negative and, for single cells, whole numbers. The first rows
    were checked with a hint of how they look normalised; this pass finds a bad value anywhere
    after them.
    """
    import h5py  # noqa: PLC0415

    data = x["data"] if isinstance(x, h5py.Group) else x
    if data.dtype.kind not in "f":
        return  # integer or bool storage: whole, and negatives are checked on the sample
    flat = data.ndim == 1
    step = _INDEX_CHUNK if flat else max(1, _INDEX_CHUNK // max(int(data.shape[1]), 1))
    for start in range(0, int(data.shape[0]), step):
        block = np.asarray(data[start : start + step])
        check_values(block, source)
        if kind == "single_cell" and not is_integer_valued(block):
            where = f"values {start:,}–{start + block.shape[0]:,}" if flat else f"row {start:,} on"
            msg = (
                f".X of {source} holds non-integer values beyond its first rows ({where}); "
                "backed reading streams .X only: re-save the file with raw counts in .X"
            )
            raise InputError(msg)


#: Entries of a backed CSR's index and pointer arrays checked per read (bounded memory).
_INDEX_CHUNK = 1 << 23


def _check_backed_indices(x: Any, *, n_obs: int, n_var: int, source: str) -> None:
    """Check the column indices and row pointers of a backed CSR ``.X``, read in chunks.

    Every column index must lie within ``0..n_var-1`` and the row pointers run from 0 up to the
    number of values: a corrupt index would make the streamed reads go outside their arrays (a
    crash, or silently wrong counts).
    """
    ptr_ds, idx_ds = x["indptr"], x["indices"]
    nnz = len(idx_ds)
    last = 0
    for start in range(0, len(ptr_ds), _INDEX_CHUNK):
        ptr = np.asarray(ptr_ds[start : start + _INDEX_CHUNK], dtype=np.int64)
        if (
            (start == 0 and ptr.size and ptr[0] != 0)
            or (ptr.size and ptr[0] < last)
            or (ptr.size > 1 and bool((np.diff(ptr) < 0).any()))
        ):
            msg = f".X of {source} has row pointers that decrease; the file is corrupt: re-export"
            raise InputError(msg)
        last = int(ptr[-1]) if ptr.size else last
    if last != nnz:
        msg = (
            f".X of {source} has row pointers ending at {last:,} but {nnz:,} values; the file "
            "is corrupt: re-export it"
        )
        raise InputError(msg)
    for start in range(0, nnz, _INDEX_CHUNK):
        idx = np.asarray(idx_ds[start : start + _INDEX_CHUNK])
        if idx.size and (int(idx.min()) < 0 or int(idx.max()) >= n_var):
            msg = (
                f".X of {source} has column indices outside 0..{n_var - 1}; the file is "
                "corrupt: re-export it"
            )
            raise InputError(msg)


def _check_backed_x(x: Any, *, n_obs: int, n_var: int, source: str) -> np.ndarray:
    """Validate a backed ``.X`` element; return up to :data:`BACKED_SAMPLE` stored values."""
    import h5py  # noqa: PLC0415

    if isinstance(x, h5py.Dataset):
        if x.ndim != 2 or tuple(x.shape) != (n_obs, n_var):  # noqa: PLR2004
            msg = (
                f".X of {source} has shape {x.shape} but obs/var have {n_obs} × {n_var}; "
                "the file is inconsistent: re-export it"
            )
            raise InputError(msg)
        check_dtype(x.dtype, source, where=".X")
        rows = max(1, min(n_obs, BACKED_SAMPLE // max(n_var, 1)))
        return np.asarray(x[:rows])
    encoding = str(x.attrs.get("encoding-type", ""))
    if encoding not in ("csr_matrix", "csc_matrix"):
        msg = (
            f".X of {source} is stored as {encoding or 'an unknown group'}, which cannot be "
            "opened backed; re-save it with a dense or CSR .X, or read it without backed"
        )
        raise InputError(msg)
    if encoding == "csc_matrix":
        msg = (
            f".X of {source} is stored CSC (by gene), which cannot be streamed by cell; "
            "re-save it as CSR (adata.X = adata.X.tocsr()) or read it without backed"
        )
        raise InputError(msg)
    for key in ("data", "indices", "indptr"):
        if key not in x or not isinstance(x[key], h5py.Dataset) or x[key].ndim != 1:
            msg = f".X of {source} lacks a 1-D {key!r} array; the file is corrupt: re-export it"
            raise InputError(msg)
    shape = tuple(int(s) for s in x.attrs.get("shape", ()))
    if shape != (n_obs, n_var) or len(x["indptr"]) != n_obs + 1:
        msg = (
            f".X of {source} declares shape {shape} with {len(x['indptr'])} row pointers but "
            f"obs/var have {n_obs} × {n_var}; the file is inconsistent: re-export it"
        )
        raise InputError(msg)
    if len(x["data"]) != len(x["indices"]):
        msg = (
            f".X of {source} has {len(x['data'])} values but {len(x['indices'])} column "
            "indices; the file is corrupt: re-export it"
        )
        raise InputError(msg)
    check_dtype(x["data"].dtype, source, where=".X")
    _check_backed_indices(x, n_obs=n_obs, n_var=n_var, source=source)
    if len(x["data"]) == 0:
        msg = f"no counts in {source}: its .X stores no non-zero value; give the counts file"
        raise InputError(msg)
    return np.asarray(x["data"][:BACKED_SAMPLE])
