"""Cell sources an atlas is built from, read chunk by chunk (never loaded whole).

A source is a small picklable description (a path and a few names), so that a Dask worker on
another machine can open the same file and read its own rows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from .._errors import InputError

__all__ = ["CellSource", "open_source"]

#: Gene-symbol columns looked for in ``var`` (CELLxGENE: ``feature_name``).
_SYMBOL_COLUMNS = ("feature_name", "gene_symbols", "gene_symbol", "symbol", "gene_name")


@dataclass(frozen=True)
class CellSource:
    """Where the cells are and how to read a set of their rows.

    Parameters
    ----------
    kind
        ``'h5ad'`` (read backed), ``'soma'`` (TileDB-SOMA experiment) or ``'memory'``
        (an AnnData already in memory, e.g. a 10x folder read by :func:`antigenscout.io.read`).
    path
        File or experiment URI (``''`` for ``'memory'``).
    measurement, layer
        SOMA measurement and X layer (``'RNA'``, ``'raw'`` in the CELLxGENE Census).
    soma_joinids
        SOMA only: the experiment's obs ``soma_joinid`` of each row, in row order.
    var_joinids
        SOMA only: var ``soma_joinid`` of each gene, in gene order.
    matrix
        ``'memory'`` only: the cells × genes counts.
    """

    kind: str
    path: str
    measurement: str = "RNA"
    layer: str = "raw"
    soma_joinids: np.ndarray | None = field(default=None, repr=False)
    var_joinids: np.ndarray | None = field(default=None, repr=False)
    matrix: Any = field(default=None, repr=False)

    def read_rows(self, rows: np.ndarray, *, stored: bool = False) -> sparse.csr_matrix:
        """Return the counts of ``rows`` (sorted row positions) as CSR, cells × all genes.

        The values are float64, or with ``stored`` the values as the source holds them (no
        converted copy).
        """
        rows = np.asarray(rows, dtype=np.int64)
        if self.kind == "memory":
            X = sparse.csr_matrix(self.matrix[rows])
        elif self.kind == "h5ad":
            X = _h5ad_rows(self.path, rows)
        else:
            X = _soma_rows(self, rows)
        return X if stored else sparse.csr_matrix(X, dtype=np.float64)


def _h5ad_rows(path: str, rows: np.ndarray) -> sparse.csr_matrix:
    import h5py  # noqa: PLC0415
    from anndata.io import sparse_dataset  # noqa: PLC0415

    with h5py.File(path, "r") as f:
        node = f["X"]
        if isinstance(node, h5py.Dataset):
            lo, hi = int(rows[0]), int(rows[-1]) + 1
            block = np.asarray(node[lo:hi])[rows - lo]
            return sparse.csr_matrix(block)
        ds = sparse_dataset(node)
        lo, hi = int(rows[0]), int(rows[-1]) + 1
        if hi - lo <= 4 * len(rows):  # one contiguous read, then pick the rows
            X = sparse.csr_matrix(ds[lo:hi])[rows - lo]
        else:
            X = sparse.csr_matrix(ds[rows])
        return X


def _soma_rows(src: CellSource, rows: np.ndarray) -> sparse.csr_matrix:
    import tiledbsoma as soma  # noqa: PLC0415

    assert src.soma_joinids is not None
    assert src.var_joinids is not None
    ids = src.soma_joinids[rows]
    with soma.Experiment.open(src.path) as exp:
        X = exp.ms[src.measurement].X[src.layer]
        tbl = X.read(coords=(ids, slice(None))).tables().concat()
    r = tbl.column("soma_dim_0").to_numpy()
    c = tbl.column("soma_dim_1").to_numpy()
    v = tbl.column("soma_data").to_numpy()
    row_of = pd.Index(ids).get_indexer(r)
    col_of = pd.Index(src.var_joinids).get_indexer(c)
    keep = col_of >= 0
    out = sparse.csr_matrix(
        (v[keep], (row_of[keep], col_of[keep])), shape=(len(rows), len(src.var_joinids))
    )
    out.sum_duplicates()
    out.sort_indices()
    return out


def _is_soma(path: Path) -> bool:
    return path.is_dir() and (path / "obs").is_dir() and (path / "ms").is_dir()


def open_source(
    path: str | os.PathLike[str] | Any,
    columns: list[str],
    *,
    measurement: str = "RNA",
    layer: str = "raw",
    obs_filter: str | None = None,
) -> tuple[CellSource, pd.DataFrame, pd.DataFrame]:
    """Open a cell source and read only what planning needs.

    Parameters
    ----------
    path
        ``.h5ad`` file (opened backed), TileDB-SOMA experiment folder/URI, any other input
        :func:`antigenscout.io.read` understands (10x ``.h5``/folder, ``.zarr``, ``.loom``; read
        into memory), or an AnnData.
    columns
        obs columns to read (cell type, donor).
    measurement, layer
        SOMA measurement and X layer.
    obs_filter
        SOMA only: value filter on cells, e.g. ``"disease == 'normal'"``.

    Returns
    -------
    The source, the requested obs columns (one row per cell, row order) and ``var`` with a
    ``symbol`` column (gene symbol where the source has one, else the var name).
    """
    from anndata import AnnData  # noqa: PLC0415

    soma = not isinstance(path, AnnData) and (
        _is_soma(Path(os.fspath(path))) or str(path).startswith(("s3://", "tiledb://"))
    )
    if obs_filter and not soma:
        msg = "obs_filter applies to TileDB-SOMA inputs only; subset other inputs first"
        raise InputError(msg, param="obs_filter")
    if isinstance(path, AnnData):
        return _memory_source(path, columns, "AnnData")
    p = Path(os.fspath(path))
    if soma:
        return _soma_source(str(path), columns, measurement, layer, obs_filter)
    if p.name.lower().endswith(".h5ad") and p.is_file():
        return _h5ad_source(p, columns)
    if not p.exists():
        msg = (
            f"atlas input {str(p)!r} does not exist; give an .h5ad, a SOMA experiment "
            "or a 10x folder"
        )
        raise InputError(msg)
    from .. import io  # noqa: PLC0415

    return _memory_source(io.read(p), columns, str(p))


def _need(obs_cols: list[str] | pd.Index, columns: list[str], where: str) -> None:
    missing = [c for c in columns if c not in obs_cols]
    if missing:
        shown = ", ".join(list(map(str, obs_cols))[:12])
        msg = f"{where}: obs has no column {', '.join(map(repr, missing))} (has {shown})"
        raise InputError(msg)


def _with_symbols(var: pd.DataFrame) -> pd.DataFrame:
    var = var.copy()
    var.index = var.index.astype(str)
    sym = next((c for c in _SYMBOL_COLUMNS if c in var.columns), None)
    var["symbol"] = var[sym].astype(str).to_numpy() if sym else var.index.to_numpy()
    return var[["symbol"]]


def _memory_source(
    adata: Any, columns: list[str], where: str
) -> tuple[CellSource, pd.DataFrame, pd.DataFrame]:
    _need(adata.obs.columns, columns, where)
    X = adata.X
    if X is None:
        msg = f"{where}: the data hold no counts in X"
        raise InputError(msg)
    X = sparse.csr_matrix(X) if not isinstance(X, np.ndarray) else X
    src = CellSource("memory", "", matrix=X)
    obs = adata.obs[columns].reset_index(drop=True)
    return src, obs, _with_symbols(adata.var)


def _h5ad_source(path: Path, columns: list[str]) -> tuple[CellSource, pd.DataFrame, pd.DataFrame]:
    import h5py  # noqa: PLC0415
    from anndata.io import read_elem  # noqa: PLC0415

    from ..io._guard import probe_hdf5  # noqa: PLC0415

    probe_hdf5(path, source=str(path), what="atlas .h5ad")
    with h5py.File(path, "r") as f:
        if "X" not in f or "obs" not in f or "var" not in f:
            msg = f"{path}: not an AnnData .h5ad (needs X, obs and var)"
            raise InputError(msg)
        obs_group = f["obs"]
        _need(list(obs_group.keys()), columns, str(path))
        obs = pd.DataFrame({c: np.asarray(read_elem(obs_group[c])) for c in columns})
        var = read_elem(f["var"])
    return CellSource("h5ad", str(path)), obs, _with_symbols(var)


def _soma_source(
    uri: str, columns: list[str], measurement: str, layer: str, obs_filter: str | None = None
) -> tuple[CellSource, pd.DataFrame, pd.DataFrame]:
    from ..io._soma import _import_tiledbsoma  # noqa: PLC0415

    soma = _import_tiledbsoma()
    try:
        exp = soma.Experiment.open(uri)
    except Exception as e:
        msg = f"cannot open SOMA experiment {uri!r} ({type(e).__name__}: {e})"
        raise InputError(msg) from e
    with exp:
        names = list(exp.obs.schema.names)
        _need(names, columns, uri)
        if measurement not in exp.ms:
            msg = f"measurement {measurement!r} is not in {uri!r} (has {sorted(exp.ms.keys())})"
            raise InputError(msg, param="measurement")
        ms = exp.ms[measurement]
        if "X" not in ms or layer not in ms.X:
            have = sorted(ms.X.keys()) if "X" in ms else []
            msg = f"X layer {layer!r} is not in measurement {measurement!r} of {uri!r} (has {have})"
            raise InputError(msg)
        try:
            obs = (
                exp.obs.read(column_names=["soma_joinid", *columns], value_filter=obs_filter)
                .concat()
                .to_pandas()
            )
        except Exception as e:
            msg = f"obs_filter {obs_filter!r} failed on {uri!r} ({type(e).__name__}: {e})"
            raise InputError(msg, param="obs_filter") from e
        var = ms.var.read().concat().to_pandas()
    obs = obs.sort_values("soma_joinid", kind="stable").reset_index(drop=True)
    var = var.sort_values("soma_joinid", kind="stable").reset_index(drop=True)
    ids = next((c for c in ("feature_id", "var_id", "gene_id") if c in var.columns), None)
    var.index = var[ids].astype(str) if ids else var["soma_joinid"].astype(str)
    src = CellSource(
        "soma",
        uri,
        measurement=measurement,
        layer=layer,
        soma_joinids=obs["soma_joinid"].to_numpy(np.int64),
        var_joinids=var["soma_joinid"].to_numpy(np.int64),
    )
    return src, obs[columns], _with_symbols(var)
