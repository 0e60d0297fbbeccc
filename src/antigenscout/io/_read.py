"""Dispatcher :func:`read`: find a file's format and hand it to that format's reader.

Every reader returns an :class:`~anndata.AnnData` with cells or samples as ``obs``, genes as
``var``, raw values in ``.X`` (a float32 CSR matrix for single cells, a dense float32 array
for bulk samples), the identifiers as found in the file in ``var['gene_id_input']`` and
``uns['antigenscout'] = {'kind': 'single_cell' | 'bulk', 'source': <path>}``.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from anndata import AnnData

from .._errors import InputError
from ._h5ad import read_h5ad
from ._loom import read_loom
from ._soma import read_soma
from ._table import read_table
from ._tenx import read_10x_h5, read_10x_mtx
from ._validate import _examples, check_file
from ._zarr import read_zarr

__all__ = ["join_obs", "read"]


#: Formats whose files hold several matrices, so that ``layer=`` can pick one.
LAYERED: frozenset[str] = frozenset({"h5ad", "zarr", "loom", "soma"})

#: Human names of the formats, used in messages.
FORMAT_NAMES: dict[str, str] = {
    "h5ad": "AnnData .h5ad",
    "zarr": "AnnData .zarr",
    "loom": "loom",
    "10x_h5": "10x HDF5 (.h5)",
    "10x_mtx": "10x MatrixMarket",
    "table": "delimited table (TSV/CSV)",
    "soma": "TileDB-SOMA",
}


def read(
    path: str | os.PathLike[str],
    *,
    layer: str | None = None,
    kind: str | None = None,
    backed: bool = False,
    obs: str | os.PathLike[str] | pd.DataFrame | None = None,
    **options: Any,
) -> AnnData:
    """Read an expression matrix, choosing the reader from the path.

    ========================================  ==========================================
    path                                      reader
    ========================================  ==========================================
    ``*.h5ad``                                :func:`~antigenscout.io.read_h5ad`
    ``*.zarr`` folder (AnnData zarr store)    :func:`~antigenscout.io.read_zarr`
    ``*.loom``                                :func:`~antigenscout.io.read_loom`
    ``*.h5`` (CellRanger HDF5)                :func:`~antigenscout.io.read_10x_h5`
    directory, ``matrix.mtx(.gz)``            :func:`~antigenscout.io.read_10x_mtx`
    ``*.tsv``, ``*.csv``, ``*.txt`` (+.gz)    :func:`~antigenscout.io.read_table`
    ``soma://``, ``tiledb://``, SOMA folder   :func:`~antigenscout.io.read_soma`
    ========================================  ==========================================

    Parameters
    ----------
    path
        File, directory or SOMA URI.
    layer
        Matrix holding the raw counts, for formats with several (h5ad, zarr, loom, SOMA);
        ``None`` lets the reader find the counts. Giving a layer for a format without
        layers (10x, tables) raises :class:`~antigenscout.InputError`.
    kind
        ``'single_cell'`` or ``'bulk'``; ``None`` uses the reader's default.
    backed
        Open an ``.h5ad`` file read-only on disk (``backed='r'``) instead of loading ``.X``;
        see :func:`~antigenscout.io.read_h5ad`. Other formats are always read into memory,
        so ``backed=True`` with them raises :class:`~antigenscout.InputError`.
    obs
        Cell metadata to join on the cell names (barcodes): a TSV/CSV file whose first
        column holds them, or a DataFrame indexed by them (:func:`join_obs`). This is how a
        10x ``.h5``, an mtx folder or a table, which cannot carry labels, gets its malignant,
        patient and compartment columns (CLI: ``--obs FILE``).
    **options
        Format-specific options passed to the chosen reader (e.g. ``orientation=`` for
        tables, ``obs_value_filter=`` for SOMA); an option the format does not have raises
        :class:`~antigenscout.InputError`.

    Returns
    -------
    AnnData with cells/samples × genes, raw values in ``.X``.

    Examples
    --------
    >>> import antigenscout as asc
    >>> adata = asc.io.read("tumour.h5ad", layer="counts")  # doctest: +SKIP
    """
    fmt, target = detect_format(path)
    reader = _READERS[fmt]
    if layer is not None and fmt not in LAYERED:
        msg = (
            f"layer={layer!r} was given but {FORMAT_NAMES[fmt]} files have no layers; "
            "drop the layer option (CLI: --layer) for this input"
        )
        raise InputError(msg)
    if backed and fmt != "h5ad":
        msg = (
            f"backed reading is only available for .h5ad files, not {FORMAT_NAMES[fmt]}; "
            "drop backed=True (the file is read into memory)"
        )
        raise InputError(msg)
    params = inspect.signature(reader).parameters
    unknown = [k for k in options if k not in params]
    if unknown:
        allowed = [k for k in params if k not in ("path", "uri", "layer", "kind", "backed")]
        msg = (
            f"option {unknown[0]!r} does not apply to {FORMAT_NAMES[fmt]} files "
            f"(their options: {', '.join(allowed) or 'none'}); drop it"
        )
        raise InputError(msg)
    kwargs: dict[str, Any] = dict(options)
    if layer is not None:
        kwargs["layer"] = layer
    if kind is not None:
        kwargs["kind"] = kind
    if backed:
        kwargs["backed"] = True
    adata = reader(target, **kwargs)
    if obs is not None:
        join_obs(adata, obs)
    return adata


def join_obs(adata: AnnData, obs: str | os.PathLike[str] | pd.DataFrame) -> AnnData:
    """Join a table of cell metadata onto ``adata.obs`` by cell name, in place.

    The table (a TSV/CSV file whose first column holds the cell names, or a DataFrame
    indexed by them) must name at least one of ``adata``'s cells, hold each name once and
    bring no column ``adata.obs`` already has. Cells without a row get empty labels, rows
    naming no cell are ignored; both counts are kept in ``adata.uns['antigenscout']
    ['obs_from']`` and said by the CLI.

    >>> import anndata as ad, numpy as np, pandas as pd
    >>> a = ad.AnnData(np.ones((3, 1)), obs=pd.DataFrame(index=["c1", "c2", "c3"]))
    >>> _ = join_obs(a, pd.DataFrame({"patient": ["P1", "P2"]}, index=["c1", "c3"]))
    >>> a.obs["patient"].tolist(), a.uns["antigenscout"]["obs_from"]["cells_without_row"]
    (['P1', nan, 'P2'], 1)
    """
    if isinstance(obs, pd.DataFrame):
        table, where = obs.copy(), "the obs table"
    else:
        p = check_file(obs, what="obs table")
        where = repr(str(p))
        sep = "," if p.name.lower().removesuffix(".gz").endswith(".csv") else "\t"
        try:
            table = pd.read_csv(p, sep=sep, index_col=0, dtype=str, compression="infer")
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, EOFError) as e:
            msg = (
                f"cannot read the obs table {where} ({type(e).__name__}: {e}); give a TSV or "
                "CSV file whose first column holds the cell names and whose other columns hold "
                "labels (malignant status, patient, ...)"
            )
            raise InputError(msg) from None
    table.index = table.index.astype(str)
    if table.empty or table.shape[1] == 0:
        msg = (
            f"the obs table {where} has no rows or no label columns; it needs the cell names "
            "in its first column and one column per label"
        )
        raise InputError(msg)
    dup = table.index[table.index.duplicated()].unique()
    if len(dup):
        msg = (
            f"the obs table {where} names {len(dup):,} cells more than once (e.g. "
            f"{_examples(dup)}); keep one row per cell"
        )
        raise InputError(msg)
    clash = [c for c in table.columns if c in adata.obs.columns]
    if clash:
        msg = (
            f"the obs table {where} has columns the input already has: {', '.join(clash)}; "
            "rename them in the table"
        )
        raise InputError(msg)
    names = pd.Index(adata.obs_names.astype(str))
    found = names.isin(table.index)
    if not found.any():
        msg = (
            f"no cell name of the obs table {where} matches the input's cells (input: "
            f"{_examples(names)}; table: {_examples(table.index)}); its first column must "
            "hold the cell names (barcodes) exactly as the input spells them"
        )
        raise InputError(msg)
    joined = table.reindex(names)
    joined.index = adata.obs_names
    adata.obs = pd.concat([adata.obs, joined], axis=1)
    info = adata.uns.setdefault("antigenscout", {})
    info["obs_from"] = {
        "source": where,
        "path": None if isinstance(obs, pd.DataFrame) else str(Path(obs).resolve()),
        "columns": [str(c) for c in table.columns],
        "cells_matched": int(found.sum()),
        "cells_without_row": int((~found).sum()),
        "rows_without_cell": int((~table.index.isin(names)).sum()),
    }
    return adata


def detect_format(path: str | os.PathLike[str]) -> tuple[str, Any]:  # noqa: PLR0911
    """Return ``(format, target)`` for ``path``; ``target`` is what the reader is given.

    Raises :class:`InputError` when the path does not exist or its format is unknown.
    """
    text = os.fspath(path)
    if "://" in text and not text.startswith("file://"):
        return "soma", text
    p = Path(text.removeprefix("file://"))
    name = p.name.lower()
    if p.is_dir():
        if (p / "__tiledb_group.tdb").exists() or (p / "__group").is_dir():
            return "soma", str(p)
        if name.endswith(".zarr") or any(
            (p / marker).is_file() for marker in (".zgroup", "zarr.json", ".zattrs")
        ):
            return "zarr", p
        return "10x_mtx", p
    check_file(p)
    if name.endswith(".h5ad"):
        return "h5ad", p
    if name.endswith(".loom"):
        return "loom", p
    if name.endswith((".h5", ".hdf5")):
        return "10x_h5", p
    if name.endswith((".mtx", ".mtx.gz")):
        return "10x_mtx", p.parent
    stem = name.removesuffix(".gz")
    if stem.endswith((".tsv", ".csv", ".txt", ".tab")):
        return "table", p
    msg = (
        f"cannot tell the format of {str(p)!r} from its name; use a .h5ad, .zarr, .loom, "
        ".h5 (10x), .mtx folder, or .tsv/.csv(.gz) file"
    )
    raise InputError(msg)


_READERS: dict[str, Callable[..., AnnData]] = {
    "h5ad": read_h5ad,
    "zarr": read_zarr,
    "loom": read_loom,
    "10x_h5": read_10x_h5,
    "10x_mtx": read_10x_mtx,
    "table": read_table,
    "soma": read_soma,
}
