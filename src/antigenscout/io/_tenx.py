"""Read 10x Genomics CellRanger output: the filtered HDF5 file or the MatrixMarket folder."""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import IO, Any

import numpy as np
import pandas as pd
import scipy.io
from anndata import AnnData
from scipy import sparse

from .._errors import InputError
from ._read import check_file, check_kind, finalise

__all__ = ["read_10x_h5", "read_10x_mtx"]

#: ``feature_type`` kept in ``.X``; antibody-capture features go to ``obsm['protein']``.
_GEX = "Gene Expression"
_ADT = "Antibody Capture"


def read_10x_h5(path: str | os.PathLike[str], *, kind: str = "single_cell") -> AnnData:
    """Read a CellRanger HDF5 matrix (``filtered_feature_bc_matrix.h5``; v3 or v2 layout).

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
    import h5py

    check_kind(kind)
    p = check_file(path)
    source = repr(str(p))
    try:
        with h5py.File(p, "r") as f:
            if "matrix" in f:
                g = f["matrix"]
                feat = g["features"]
                ids = _strings(feat["id"][:])
                names = _strings(feat["name"][:])
                ftype = (
                    _strings(feat["feature_type"][:])
                    if "feature_type" in feat
                    else np.full(len(ids), _GEX, dtype=object)
                )
            else:
                genomes = [k for k in f if isinstance(f[k], h5py.Group)]
                if len(genomes) != 1:
                    msg = (
                        f"{source} is not a CellRanger HDF5 matrix (no 'matrix' group); "
                        "give the filtered_feature_bc_matrix.h5 written by CellRanger"
                    )
                    raise InputError(msg)
                g = f[genomes[0]]
                ids = _strings(g["genes"][:])
                names = _strings(g["gene_names"][:])
                ftype = np.full(len(ids), _GEX, dtype=object)
            barcodes = _strings(g["barcodes"][:])
            n_feat, n_cells = (int(x) for x in g["shape"][:])
            m = sparse.csc_matrix(
                (g["data"][:], g["indices"][:], g["indptr"][:]), shape=(n_feat, n_cells)
            )
    except InputError:
        raise
    except Exception as e:
        msg = (
            f"cannot read {source} as a 10x HDF5 matrix ({type(e).__name__}: {e}); "
            "check that it is a complete CellRanger .h5 file"
        )
        raise InputError(msg) from e
    return _assemble(m.T.tocsr(), ids, names, ftype, barcodes, kind=kind, source=source)


def read_10x_mtx(path: str | os.PathLike[str], *, kind: str = "single_cell") -> AnnData:
    """Read a CellRanger MatrixMarket folder.

    The folder holds ``matrix.mtx`` (genes × cells), ``features.tsv`` (v3) or ``genes.tsv``
    (v2) and ``barcodes.tsv``, each optionally gzip-compressed.

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
    try:
        with _open(mtx) as fh:
            m = scipy.io.mmread(fh)
        table = pd.read_csv(feats, sep="\t", header=None, dtype=str, keep_default_na=False)
        barcodes = pd.read_csv(bcs, sep="\t", header=None, dtype=str, keep_default_na=False)
    except Exception as e:
        msg = (
            f"cannot read the 10x files in {source} ({type(e).__name__}: {e}); "
            "check that matrix.mtx, features.tsv and barcodes.tsv are complete"
        )
        raise InputError(msg) from e
    m = sparse.csr_matrix(m)
    ids = table.iloc[:, 0].to_numpy(dtype=object)
    names = table.iloc[:, 1].to_numpy(dtype=object) if table.shape[1] > 1 else ids
    ftype = (
        table.iloc[:, 2].to_numpy(dtype=object)
        if table.shape[1] > 2
        else np.full(len(ids), _GEX, dtype=object)
    )
    bc = barcodes.iloc[:, 0].to_numpy(dtype=object)
    if m.shape != (len(ids), len(bc)):
        msg = (
            f"matrix.mtx in {source} is {m.shape[0]} × {m.shape[1]} but there are {len(ids)} "
            f"features and {len(bc)} barcodes; the three files must come from the same run"
        )
        raise InputError(msg)
    return _assemble(m.T.tocsr(), ids, names, ftype, bc, kind=kind, source=source)


def _assemble(
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
