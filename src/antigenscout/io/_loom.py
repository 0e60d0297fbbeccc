"""Read a ``.loom`` file (genes × cells HDF5) with h5py, locating the raw counts."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from .._errors import InputError
from ._guard import check_fits, probe_hdf5, reader_errors
from ._h5ad import COUNT_LAYERS, validated_anndata
from ._validate import check_dtype, check_file, check_kind

__all__ = ["read_loom"]

#: Row (gene) attributes tried, in order, for the gene identifiers.
GENE_ATTRS: tuple[str, ...] = ("Gene", "var_names", "Accession", "gene_ids", "gene_id")
#: Column (cell) attributes tried, in order, for the cell identifiers.
CELL_ATTRS: tuple[str, ...] = ("CellID", "obs_names", "cell_names", "CellId")
#: Cells read per block when converting the dense on-disk matrix to CSR.
BLOCK_CELLS = 4096
#: Most bytes of the dense matrix held at once while it is converted to CSR.
SLAB_BYTES = 256 << 20
#: A declared dense matrix may exceed memory by this factor (it is read block by block
#: into a sparse matrix), no more.
DENSE_SLACK = 8.0


@reader_errors("a loom file")
def read_loom(
    path: str | os.PathLike[str],
    *,
    layer: str | None = None,
    kind: str | None = None,
) -> AnnData:
    """Read a ``.loom`` file: counts in the main matrix or a layer, genes × cells.

    Parameters
    ----------
    path
        The ``.loom`` file.
    layer
        ``None``: the main ``/matrix`` if it holds whole numbers, else the first integer
        layer among ``counts``, ``raw_counts``, ``count``, ``umi_counts``, ``umis``,
        ``UMI``; ``"X"`` or ``"matrix"``: the main matrix; otherwise a ``/layers`` name.
    kind
        ``'single_cell'`` (default) or ``'bulk'``.

    Returns
    -------
    AnnData laid out as by :func:`~antigenscout.io.read_h5ad`: cells × genes, float32 CSR.
    ``var_names`` come from ``/row_attrs/Gene`` (else ``var_names``, ``Accession``,
    ``gene_ids``), ``obs_names`` from ``/col_attrs/CellID`` (else ``obs_names``,
    ``cell_names``); other one-dimensional attributes become ``var``/``obs`` columns.

    Examples
    --------
    >>> import antigenscout as asc
    >>> adata = asc.io.read_loom("velocyto.loom", layer="spliced")  # doctest: +SKIP
    """
    import h5py  # noqa: PLC0415

    p = check_file(path)
    if kind is not None:
        check_kind(kind)
    source = repr(str(p))
    probe_hdf5(p, source=source, what="a loom file")
    with h5py.File(p, "r") as f:
        if "matrix" not in f or not isinstance(f["matrix"], h5py.Dataset):
            msg = f"{source} has no /matrix dataset, so it is not a loom file; give a .loom file"
            raise InputError(msg)
        main = f["matrix"]
        if main.ndim != 2:  # noqa: PLR2004
            msg = f"/matrix of {source} is {main.ndim}-D, not genes × cells; re-export the file"
            raise InputError(msg)
        n_genes, n_cells = (int(s) for s in main.shape)
        layers_group = f.get("layers", {})
        available = [k for k in layers_group if isinstance(layers_group[k], h5py.Dataset)]
        if layer in ("X", "matrix"):
            wanted: list[str] = [""]
            layer = "X"
        elif layer is not None:
            if layer not in available:
                msg = (
                    f"layer {layer!r} is not in {source} (layers: {available or 'none'}); "
                    "pass one of those or 'X' for the main matrix"
                )
                raise InputError(msg, param="layer")
            wanted = [layer]
        else:
            wanted = ["", *(n for n in COUNT_LAYERS if n in available)]
        mats: dict[str, Any] = {}
        for name in wanted:
            ds = main if name == "" else layers_group[name]
            mats[name] = _read_dense_as_csr(ds, (n_genes, n_cells), name or "/matrix", source)
        var = _attrs(f, "row_attrs", n_genes, GENE_ATTRS, source)
        obs = _attrs(f, "col_attrs", n_cells, CELL_ATTRS, source)
    adata = AnnData(
        X=mats.pop("", None),
        obs=obs,
        var=var,
        layers=mats or None,
    )
    return validated_anndata(adata, layer=layer, kind=kind, source=source)


def _read_dense_as_csr(ds: Any, shape: tuple[int, int], name: str, source: str) -> Any:
    """Read a genes × cells on-disk dataset block by block into a cells × genes CSR."""
    if tuple(ds.shape) != shape:
        msg = (
            f"{name} of {source} is {ds.shape} but /matrix is {shape}; every loom layer must "
            "have the shape of the main matrix: re-export the file"
        )
        raise InputError(msg)
    check_dtype(ds.dtype, source, where=name)
    n_genes, n_cells = shape
    itemsize = ds.dtype.itemsize
    check_fits(
        float(n_genes) * n_cells * itemsize / DENSE_SLACK,
        what=f"a {n_genes:,} × {n_cells:,} {ds.dtype} matrix in {name}",
        source=source,
    )
    axis, step = slab_plan((n_genes, n_cells), ds.chunks, itemsize)
    if axis == 1:  # slabs of cells
        blocks = [
            sparse.csr_matrix(np.asarray(ds[:, start : start + step]).T)
            for start in range(0, n_cells, step)
        ]
        if not blocks:
            return sparse.csr_matrix((n_cells, n_genes), dtype=ds.dtype)
        return sparse.vstack(blocks, format="csr")
    rows = [
        sparse.csr_matrix(np.asarray(ds[start : start + step, :]))
        for start in range(0, n_genes, step)
    ]
    return sparse.vstack(rows, format="csr").T.tocsr()


def slab_plan(
    shape: tuple[int, int], chunks: tuple[int, int] | None, itemsize: int
) -> tuple[int, int]:
    """Return ``(axis, step)`` for reading a genes × cells dataset in slabs of whole chunks.

    Slabs of ``step`` cells (axis 1) or genes (axis 0) hold whole HDF5 chunks, so each
    compressed chunk is decompressed once; slabs of at most :data:`SLAB_BYTES` (or one chunk)
    where possible.

    Slabs of cells where a chunk spans no more cells than such a slab, else slabs of genes: a
    chunk per gene over every cell would otherwise be decompressed again for every slab.

    >>> slab_plan((20000, 100000), (1, 100000), 4)  # a chunk per gene: slabs of genes
    (0, 671)
    >>> slab_plan((20000, 100000), (64, 64), 4)  # slabs of whole chunk columns
    (1, 3328)
    """
    n_genes, n_cells = shape
    chunk_genes, chunk_cells = chunks or (1, 1)
    per_cells = max(1, min(BLOCK_CELLS, SLAB_BYTES // max(1, n_genes * itemsize)))
    if chunk_cells <= per_cells:
        return 1, max(chunk_cells, per_cells // chunk_cells * chunk_cells)
    per_genes = max(1, SLAB_BYTES // max(1, n_cells * itemsize))
    # a chunk wider than a slab of cells: one chunk's width of cells, or whole chunks of
    # genes, whichever holds fewer bytes at once
    if chunk_genes * n_cells > n_genes * chunk_cells:
        return 1, chunk_cells
    return 0, max(chunk_genes, per_genes // chunk_genes * chunk_genes)


def _attrs(f: Any, group: str, n: int, id_names: tuple[str, ...], source: str) -> pd.DataFrame:
    """One-dimensional attributes of ``/row_attrs`` or ``/col_attrs`` as a DataFrame."""
    import h5py  # noqa: PLC0415

    cols: dict[str, np.ndarray] = {}
    if group in f:
        for key, ds in f[group].items():
            if not isinstance(ds, h5py.Dataset) or ds.ndim != 1:
                continue
            if len(ds) != n:
                msg = (
                    f"/{group}/{key} of {source} has {len(ds)} entries but the matrix has {n} "
                    f"{'genes' if group == 'row_attrs' else 'cells'}; re-export the file"
                )
                raise InputError(msg)
            values = ds[()]
            if values.dtype.kind in "SO":
                values = np.array(
                    [v.decode() if isinstance(v, bytes) else str(v) for v in values],
                    dtype=object,
                )
            cols[key] = values
    id_key = next((k for k in id_names if k in cols), None)
    if id_key is None:
        index = pd.Index([str(i) for i in range(n)])
    else:
        index = pd.Index(np.asarray(cols.pop(id_key)).astype(str))
    return pd.DataFrame(cols, index=index)
