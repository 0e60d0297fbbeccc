"""Read 10x Genomics CellRanger output: the filtered HDF5 file or the MatrixMarket folder."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from .._errors import InputError
from ._guard import check_fits, probe_hdf5, reader_errors
from ._mtx import read_mtx
from ._validate import check_dtype, check_file, check_kind, finalise

__all__ = ["read_10x_h5", "read_10x_mtx"]

#: ``feature_type`` kept in ``.X``; antibody-capture features go to ``obsm['protein']``.
_GEX = "Gene Expression"
_ADT = "Antibody Capture"


@reader_errors("a 10x HDF5 matrix")
def read_10x_h5(path: str | os.PathLike[str], *, kind: str = "single_cell") -> AnnData:
    """Read a CellRanger HDF5 matrix (``filtered_feature_bc_matrix.h5``; v3 or v2 layout).

    The file is first walked in a child process (a damaged file that crashes libhdf5
    raises :class:`~antigenscout.InputError`), then its CSC arrays are checked before the
    matrix is built: ``data``, ``indices`` and ``indptr`` exist and are 1-D,
    ``len(indptr) == n_cells + 1``, ``indptr`` starts at 0, never decreases and ends at
    ``len(data) == len(indices)``, every index is below ``n_features``, ``shape`` matches
    the features and barcodes, and the declared sizes fit in memory.

    Parameters
    ----------
    path
        The ``.h5`` file.
    kind
        ``'single_cell'`` (default) or ``'bulk'``.

    Returns
    -------
    AnnData, cells × genes, float32 CSR counts in ``.X``. ``var_names`` are the feature ids
    (Ensembl ids, unique by construction); ``var['gene_symbols']`` holds the names and
    ``var['gene_id_input']`` the ids. Antibody-capture features (CITE-seq) are stored as a
    DataFrame in ``obsm['protein']``; other non-gene features are dropped.

    Examples
    --------
    >>> import antigenscout as asc
    >>> adata = asc.io.read_10x_h5("filtered_feature_bc_matrix.h5")  # doctest: +SKIP
    """
    import h5py  # noqa: PLC0415

    check_kind(kind)
    p = check_file(path)
    source = repr(str(p))
    probe_hdf5(p, source=source, what="a 10x HDF5 matrix")
    try:
        f = h5py.File(p, "r")
    except Exception as e:
        msg = (
            f"cannot read {source} as a 10x HDF5 matrix ({type(e).__name__}: {e}); "
            "check that it is a complete CellRanger .h5 file"
        )
        raise InputError(msg) from e
    with f:
        if "matrix" in f and isinstance(f["matrix"], h5py.Group):
            g = f["matrix"]
            feat = _group(g, "features", source)
            ids = _strings(_vector(feat, "id", source))
            names = _strings(_vector(feat, "name", source, n=len(ids)))
            ftype = (
                _strings(_vector(feat, "feature_type", source, n=len(ids)))
                if "feature_type" in feat
                else np.full(len(ids), _GEX, dtype=object)
            )
        else:
            genomes = [k for k in f if isinstance(f[k], h5py.Group)]
            if len(genomes) != 1 or "genes" not in f[genomes[0]]:
                msg = (
                    f"{source} is not a CellRanger HDF5 matrix (no 'matrix' group); "
                    "give the filtered_feature_bc_matrix.h5 written by CellRanger"
                )
                raise InputError(msg)
            g = f[genomes[0]]
            ids = _strings(_vector(g, "genes", source))
            names = _strings(_vector(g, "gene_names", source, n=len(ids)))
            ftype = np.full(len(ids), _GEX, dtype=object)
        barcodes = _strings(_vector(g, "barcodes", source))
        m = _csc(g, n_features=len(ids), n_cells=len(barcodes), source=source)
    return _assemble(m.T.tocsr(), ids, names, ftype, barcodes, kind=kind, source=source)


def _group(parent: Any, key: str, source: str) -> Any:
    import h5py  # noqa: PLC0415

    if key not in parent or not isinstance(parent[key], h5py.Group):
        msg = (
            f"{source} lacks the group {parent.name.rstrip('/')}/{key}; it is not a complete "
            "CellRanger HDF5 matrix: give the filtered_feature_bc_matrix.h5"
        )
        raise InputError(msg)
    return parent[key]


def _dataset(parent: Any, key: str, source: str) -> Any:
    """Return the 1-D dataset ``parent[key]``, or raise InputError naming it."""
    import h5py  # noqa: PLC0415

    where = f"{parent.name.rstrip('/')}/{key}"
    if key not in parent or not isinstance(parent[key], h5py.Dataset):
        msg = (
            f"{source} lacks the dataset {where}; it is not a complete CellRanger HDF5 "
            "matrix: give the filtered_feature_bc_matrix.h5"
        )
        raise InputError(msg)
    ds = parent[key]
    if ds.ndim != 1:
        msg = f"{where} in {source} is {ds.ndim}-D, not 1-D; the file is corrupt: re-export it"
        raise InputError(msg)
    return ds


def _vector(parent: Any, key: str, source: str, *, n: int | None = None) -> np.ndarray:
    """Read a 1-D dataset (of at most ``n`` entries when given) after checking its size."""
    ds = _dataset(parent, key, source)
    where = f"{parent.name.rstrip('/')}/{key}"
    if n is not None and len(ds) != n:
        msg = (
            f"{where} in {source} has {len(ds):,} entries but there are {n:,} features; "
            "the file is corrupt: re-export it"
        )
        raise InputError(msg)
    check_fits(
        float(len(ds)) * max(ds.dtype.itemsize, 8) * 4,
        what=f"{len(ds):,} entries in {where}",
        source=source,
    )
    return np.asarray(ds[()])


def _csc(g: Any, *, n_features: int, n_cells: int, source: str) -> sparse.csc_matrix:
    """Validate and read the features × cells CSC matrix of a 10x HDF5 group."""
    shape = _vector(g, "shape", source)
    if shape.shape != (2,) or shape.dtype.kind not in "iu" or (shape < 0).any():
        msg = (
            f"{g.name}/shape in {source} is {shape.tolist()!r}, not two non-negative "
            "integers; the file is corrupt: re-export it"
        )
        raise InputError(msg)
    n_feat, n_bc = (int(x) for x in shape)
    if (n_feat, n_bc) != (n_features, n_cells):
        msg = (
            f"{source} declares a {n_feat:,} × {n_bc:,} matrix but lists {n_features:,} "
            f"features and {n_cells:,} barcodes; the file is corrupt: re-export it"
        )
        raise InputError(msg)
    data, indices, indptr = (_dataset(g, k, source) for k in ("data", "indices", "indptr"))
    check_dtype(data.dtype, source, where=f"{g.name}/data")
    for ds in (indices, indptr):
        if ds.dtype.kind not in "iu":
            msg = (
                f"{ds.name} in {source} has dtype {ds.dtype}, not integer; the file is "
                "corrupt: re-export it"
            )
            raise InputError(msg)
    nnz = len(data)
    if len(indices) != nnz or len(indptr) != n_cells + 1:
        msg = (
            f"{source} has {nnz:,} values, {len(indices):,} indices and {len(indptr):,} "
            f"column pointers for {n_cells:,} barcodes (need equal values and indices, and "
            "barcodes + 1 pointers); the file is corrupt: re-export it"
        )
        raise InputError(msg)
    per = data.dtype.itemsize + 8 + 24  # values, indices, and the CSC → CSR + float copies
    check_fits(
        float(nnz) * per + float(n_cells + n_features) * 16,
        what=f"{nnz:,} stored values in a {n_feat:,} × {n_bc:,} matrix",
        source=source,
    )
    ptr = np.asarray(indptr[()], dtype=np.int64)
    if ptr[0] != 0 or ptr[-1] != nnz or (np.diff(ptr) < 0).any():
        msg = (
            f"the column pointers (indptr) of {source} do not run from 0 up to {nnz:,} "
            "without decreasing; the file is corrupt: re-export it"
        )
        raise InputError(msg)
    idx = np.asarray(indices[()], dtype=np.int64)
    if idx.size and (idx.min() < 0 or idx.max() >= n_features):
        msg = (
            f"{source} has feature indices outside 0..{n_features - 1} "
            f"(min {idx.min()}, max {idx.max()}); the file is corrupt: re-export it"
        )
        raise InputError(msg)
    values = np.asarray(data[()])
    return sparse.csc_matrix((values, idx, ptr), shape=(n_feat, n_bc))


@reader_errors("a 10x MatrixMarket folder")
def read_10x_mtx(path: str | os.PathLike[str], *, kind: str = "single_cell") -> AnnData:
    """Read a CellRanger MatrixMarket folder.

    The folder holds ``matrix.mtx`` (genes × cells), ``features.tsv`` (v3) or ``genes.tsv``
    (v2) and ``barcodes.tsv``, each optionally gzip-compressed. The MatrixMarket header is
    validated (banner, integer/real/pattern field, ``general`` symmetry, a size line of
    non-negative integers matching the features and barcodes, a declared size that fits
    in memory) before its body is parsed (see :mod:`antigenscout.io._mtx`).

    Parameters
    ----------
    path
        The folder (e.g. ``filtered_feature_bc_matrix/``).
    kind
        ``'single_cell'`` (default) or ``'bulk'``.

    Returns
    -------
    AnnData laid out as by :func:`read_10x_h5`.

    Examples
    --------
    >>> import antigenscout as asc
    >>> adata = asc.io.read_10x_mtx("filtered_feature_bc_matrix/")  # doctest: +SKIP
    """
    check_kind(kind)
    d = Path(path)
    if not d.exists():
        msg = f"input folder {str(d)!r} does not exist; check the path"
        raise InputError(msg)
    if not d.is_dir():
        msg = f"{str(d)!r} is not a folder; give the folder holding matrix.mtx(.gz)"
        raise InputError(msg)
    source = repr(str(d))
    mtx = _find(d, ("matrix.mtx",))
    feats = _find(d, ("features.tsv", "genes.tsv"))
    bcs = _find(d, ("barcodes.tsv",))
    table = _tsv(feats, source)
    barcodes = _tsv(bcs, source)
    ids = table.iloc[:, 0].to_numpy(dtype=object)
    names = table.iloc[:, 1].to_numpy(dtype=object) if table.shape[1] > 1 else ids
    ftype = (
        table.iloc[:, 2].to_numpy(dtype=object)
        if table.shape[1] > 2  # noqa: PLR2004
        else np.full(len(ids), _GEX, dtype=object)
    )
    bc = barcodes.iloc[:, 0].to_numpy(dtype=object) if barcodes.shape[1] else np.array([])
    with _open(mtx) as fh:
        m = read_mtx(fh, repr(str(mtx)), shape=(len(ids), len(bc)))
    return _assemble(m.T.tocsr(), ids, names, ftype, bc, kind=kind, source=source)


def _tsv(path: Path, source: str) -> pd.DataFrame:
    """Read features.tsv / barcodes.tsv as strings; an empty file gives no rows."""
    try:
        return pd.read_csv(path, sep="\t", header=None, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    except Exception as e:
        msg = (
            f"cannot read {path.name} in {source} ({type(e).__name__}: "
            f"{(str(e).splitlines() or [''])[0][:200]}); the file is truncated or corrupt: "
            "check that matrix.mtx, features.tsv and barcodes.tsv are complete"
        )
        raise InputError(msg) from e


def _assemble(  # noqa: PLR0913
    X: sparse.csr_matrix,
    ids: np.ndarray,
    names: np.ndarray,
    ftype: np.ndarray,
    barcodes: np.ndarray,
    *,
    kind: str,
    source: str,
) -> AnnData:
    """Split gene and antibody features and wrap cells × features as AnnData."""
    ftype = np.asarray(ftype, dtype=object)
    gex = ftype == _GEX
    adt = ftype == _ADT
    if not gex.any():
        msg = (
            f"{source} has no 'Gene Expression' features (types: {sorted(set(ftype))}); "
            "give a matrix with RNA counts"
        )
        raise InputError(msg)
    obs = pd.DataFrame(index=pd.Index(barcodes, dtype=str))
    var = pd.DataFrame(
        {"gene_id_input": ids[gex], "gene_symbols": names[gex], "feature_types": ftype[gex]},
        index=pd.Index(ids[gex], dtype=str),
    )
    obsm: dict[str, Any] | None = None
    if adt.any():
        prot = X[:, np.flatnonzero(adt)].toarray().astype(np.float32)
        obsm = {"protein": pd.DataFrame(prot, index=obs.index, columns=names[adt].astype(str))}
    return finalise(X[:, np.flatnonzero(gex)], obs, var, kind=kind, source=source, obsm=obsm)


def _strings(values: np.ndarray) -> np.ndarray:
    return np.array(
        [v.decode() if isinstance(v, bytes | np.bytes_) else str(v) for v in values], dtype=object
    )


def _find(d: Path, stems: tuple[str, ...]) -> Path:
    for stem in stems:
        for name in (stem, stem + ".gz"):
            if (d / name).is_file():
                return d / name
    want = " or ".join(f"{s}(.gz)" for s in stems)
    msg = f"{want} is missing from {str(d)!r}; give the CellRanger matrix folder"
    raise InputError(msg)


def _open(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")
