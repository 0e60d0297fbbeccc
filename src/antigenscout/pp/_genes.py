"""Map input gene identifiers (symbols, Ensembl ids, synonyms) to canonical symbols."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from .._errors import InputError, UnmappedGenesWarning, warn

__all__ = ["harmonise_genes"]


class GeneMapper(Protocol):
    """What :func:`harmonise_genes` needs from a reference."""

    def map_genes(self, names: Any) -> tuple[pd.Series, list[str]]:
        """Return canonical symbols aligned to ``names`` (NA if unmapped) and the unmapped."""
        ...


def harmonise_genes(  # noqa: PLR0912, PLR0915
    adata: AnnData,
    reference: GeneMapper | None = None,
    *,
    copy: bool = False,
) -> AnnData | None:
    """Rename genes to the reference's canonical symbols, summing ids that collapse.

    Each of ``adata.var_names`` (symbol, Ensembl id with or without version, or synonym) is
    mapped with ``reference.map_genes``. Names left unmapped are tried again through
    ``var['gene_symbols']`` when that column exists (10x and SOMA readers write it).

    - Several input genes that map to the same symbol are summed into one column, in ``.X``
      and in every layer (sparse matrices stay sparse); the merge is recorded.
    - Unmapped genes are kept under their input names, listed in
      ``uns['antigenscout']['unmapped_genes']`` and reported with an
      :class:`~antigenscout.UnmappedGenesWarning`.
    - If no gene maps, an :class:`~antigenscout.InputError` is raised.

    Parameters
    ----------
    adata
        Cells/samples × genes.
    reference
        Object with ``map_genes(names) -> (pd.Series, list[str])``; by default
        :func:`antigenscout.reference.load_reference`.
    copy
        Return a new AnnData instead of modifying ``adata``.

    Returns
    -------
    ``None``, or the new AnnData when ``copy=True``. Sets ``var_names`` to canonical symbols,
    ``var['gene_id_input']`` (input ids, ``'|'``-joined where merged),
    ``var['gene_mapped']`` (bool), ``uns['antigenscout']['unmapped_genes']`` and
    ``uns['antigenscout']['merged_genes']`` (symbol → input ids). ``.raw`` is left as is.

    Examples
    --------
    >>> import antigenscout as asc
    >>> adata = asc.datasets.demo()
    >>> asc.pp.harmonise_genes(adata)  # doctest: +SKIP
    """
    if not isinstance(adata, AnnData):
        msg = f"harmonise_genes expects an AnnData; got {type(adata).__name__}"
        raise InputError(msg)
    if adata.n_vars == 0:
        msg = "adata has no genes (0 columns); read a matrix with at least one gene"
        raise InputError(msg)
    if reference is None:
        from antigenscout.reference import load_reference  # noqa: PLC0415

        reference = load_reference()

    names = adata.var_names.astype(str)
    mapped = _map(reference, names)
    if "gene_symbols" in adata.var.columns and mapped.isna().any():
        todo = np.flatnonzero(mapped.isna().to_numpy())
        alt = adata.var["gene_symbols"].astype(str).to_numpy()[todo]
        mapped.iloc[todo] = _map(reference, pd.Index(alt)).to_numpy()
    ok = mapped.notna().to_numpy()
    if not ok.any():
        msg = (
            f"none of the {len(names)} genes (e.g. {_examples(names)}) maps to the reference; "
            "use human gene symbols or Ensembl gene ids as var_names"
        )
        raise InputError(msg)

    if copy:
        adata = adata.copy()
    elif adata.is_view:
        adata._init_as_actual(adata.copy())

    input_ids = (
        adata.var["gene_id_input"].astype(str).to_numpy()
        if "gene_id_input" in adata.var.columns
        else names.to_numpy(dtype=object)
    )
    final = np.where(ok, mapped.to_numpy(dtype=object), names.to_numpy(dtype=object)).astype(str)
    unmapped = [str(x) for x in names[~ok]]

    codes, uniques = pd.factorize(final)  # order of first occurrence
    counts = np.bincount(codes, minlength=len(uniques))
    merged: dict[str, list[str]] = {}
    if (counts > 1).any() and adata.isbacked:
        dup = [str(u) for u, c in zip(uniques, counts, strict=True) if c > 1]
        msg = (
            f"{len(dup)} gene symbols gather several input ids (e.g. {_examples(dup)}), and a "
            "backed file cannot be summed in place: read it into memory (CLI: --in-memory) "
            "or merge those genes in the file"
        )
        raise InputError(msg)
    if (counts > 1).any():
        first = np.array([np.flatnonzero(codes == k)[0] for k in range(len(uniques))])
        for k in np.flatnonzero(counts > 1):
            merged[str(uniques[k])] = [str(x) for x in input_ids[codes == k]]
        indicator = sparse.csr_matrix(
            (np.ones(len(codes), dtype=np.float32), (np.arange(len(codes)), codes)),
            shape=(len(codes), len(uniques)),
        )
        new_x = _sum_columns(adata.X, indicator) if adata.X is not None else None
        new_layers = {k: _sum_columns(v, indicator) for k, v in adata.layers.items()}
        joined = [
            "|".join(merged[str(u)]) if str(u) in merged else str(input_ids[i])
            for u, i in zip(uniques, first, strict=True)
        ]
        adata._inplace_subset_var(first)
        if new_x is not None:
            adata.X = new_x
        for k, v in new_layers.items():
            adata.layers[k] = v
        adata.var["gene_id_input"] = np.asarray(joined, dtype=object)
        adata.var["gene_mapped"] = ok[first]
    else:
        adata.var["gene_id_input"] = np.asarray(input_ids, dtype=object)
        adata.var["gene_mapped"] = ok
    adata.var_names = pd.Index(np.asarray(uniques, dtype=str))

    info = adata.uns.get("antigenscout")
    info = dict(info) if isinstance(info, dict) else {}
    info["unmapped_genes"] = unmapped
    info["merged_genes"] = merged
    adata.uns["antigenscout"] = info
    if unmapped:
        warn(
            f"{len(unmapped)} of {len(names)} genes are not in the reference and keep their "
            f"input names (e.g. {_examples(unmapped)}); they are listed in "
            "adata.uns['antigenscout']['unmapped_genes'] (CLI: run.json, "
            "input.unmapped_genes)",
            UnmappedGenesWarning,
        )
    return adata if copy else None


def _map(reference: GeneMapper, names: pd.Index) -> pd.Series:
    try:
        result = reference.map_genes(list(names))
    except AttributeError:
        msg = (
            f"reference of type {type(reference).__name__} has no map_genes method; "
            "pass the object returned by antigenscout.reference.load_reference()"
        )
        raise InputError(msg) from None
    series = result[0] if isinstance(result, tuple) else result
    values = pd.Series(series).to_numpy(dtype=object)
    if len(values) != len(names):
        msg = (
            f"reference.map_genes returned {len(values)} values for {len(names)} names; "
            "it must return one symbol (or NA) per input name"
        )
        raise InputError(msg)
    out = pd.Series(values, index=range(len(names)), dtype=object)
    return out.where(out.notna() & (out.astype(str) != ""), None).astype(object)


def _sum_columns(X: Any, indicator: sparse.csr_matrix) -> Any:
    """``X @ indicator`` keeping sparse input sparse (CSR) and the dtype of ``X``."""
    if isinstance(X, sparse.spmatrix | sparse.sparray):
        out = sparse.csr_matrix(X) @ indicator.astype(X.dtype)
        return sparse.csr_matrix(out)
    arr = np.asarray(X)
    return np.asarray((indicator.T.astype(arr.dtype) @ arr.T).T)


def _examples(names: Any, n: int = 5) -> str:
    items = [str(x) for x in list(names)[:n]]
    more = len(names) - len(items)
    return ", ".join(items) + (f" and {more} more" if more > 0 else "")
