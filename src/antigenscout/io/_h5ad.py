"""Read an AnnData ``.h5ad`` file, locating the raw counts."""

from __future__ import annotations

import os
import warnings
from typing import Any

import anndata
import pandas as pd
from anndata import AnnData

from .._errors import InputError
from ._read import check_file, finalise, is_integer_valued

__all__ = ["read_h5ad"]

#: Layer names searched, in order, when ``.X`` does not hold counts.
COUNT_LAYERS: tuple[str, ...] = ("counts", "raw_counts", "count", "umi_counts", "umis", "UMI")


def read_h5ad(
    path: str | os.PathLike[str],
    *,
    layer: str | None = None,
    kind: str | None = None,
) -> AnnData:
    """Read a ``.h5ad`` file with raw counts in ``.X``, a layer or ``.raw``.

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

    Returns
    -------
    AnnData with counts in ``.X`` (float32 CSR for single cells), the file's ``obs``,
    ``obsm`` and ``uns``, ``var['gene_id_input']`` and ``uns['antigenscout']['kind']``.
    Other layers, ``.raw``, ``varm`` and pairwise matrices are not kept.

    Examples
    --------
    >>> import antigenscout as asc
    >>> adata = asc.io.read_h5ad("tumour.h5ad", layer="counts")  # doctest: +SKIP
    """
    p = check_file(path)
    source = repr(str(p))
    try:
        with warnings.catch_warnings():
            # duplicated names are reported below with a fix; anndata's warning adds nothing
            warnings.filterwarnings(
                "ignore", message=".*names are not unique", category=UserWarning
            )
            adata = anndata.read_h5ad(p)
    except Exception as e:
        msg = (
            f"cannot read {source} as an h5ad file ({type(e).__name__}: {str(e).splitlines()[0]}); "
            "check that it is a complete AnnData .h5ad file"
        )
        raise InputError(msg) from e
    stored = adata.uns.get("antigenscout", {})
    if kind is None:
        kind = stored.get("kind", "single_cell") if isinstance(stored, dict) else "single_cell"
    X, var, where = _pick_counts(adata, layer=layer, kind=str(kind), source=source)
    uns = {k: v for k, v in adata.uns.items() if k != "antigenscout"}
    out = finalise(
        X,
        adata.obs,
        var,
        kind=str(kind),
        source=source,
        require_counts=kind == "single_cell",
        obsm=dict(adata.obsm.items()) or None,
    )
    out.uns.update(uns)
    out.uns["antigenscout"]["counts_from"] = where
    return out


def _pick_counts(
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
            raise InputError(msg)
        return adata.layers[layer], adata.var, f"layers[{layer!r}]"

    if adata.X is not None and (kind != "single_cell" or is_integer_valued(adata.X)):
        return adata.X, adata.var, "X"
    for name in COUNT_LAYERS:
        if name in adata.layers and is_integer_valued(adata.layers[name]):
            return adata.layers[name], adata.var, f"layers[{name!r}]"
    if adata.raw is not None and is_integer_valued(adata.raw.X):
        return adata.raw.X, adata.raw.var, "raw"
    state = "is missing" if adata.X is None else "holds non-integer values (log-normalised?)"
    msg = (
        f".X of {source} {state} and no integer 'counts' layer or .raw was found; "
        "antigenscout needs raw counts: store them in adata.layers['counts'] and pass "
        "layer='counts' (CLI: --layer counts)"
    )
    raise InputError(msg)
