"""Read cells from a TileDB-SOMA experiment (e.g. the CELLxGENE Census)."""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._errors import InputError
from ._validate import check_kind, finalise

__all__ = ["read_soma"]


def _import_tiledbsoma() -> Any:
    try:
        import tiledbsoma  # noqa: PLC0415
    except ImportError:
        msg = (
            "reading SOMA experiments needs the optional package tiledbsoma; "
            "install it with pip install 'antigenscout[soma]'"
        )
        raise InputError(msg) from None
    return tiledbsoma


def read_soma(  # noqa: PLR0913
    uri: str | os.PathLike[str],
    *,
    obs_value_filter: str | None = None,
    var_value_filter: str | None = None,
    measurement: str = "RNA",
    layer: str = "raw",
    kind: str = "single_cell",
) -> AnnData:
    """Read a slice of a TileDB-SOMA experiment as AnnData.

    Needs the optional dependency ``tiledbsoma`` (``pip install 'antigenscout[soma]'``).
    For the CELLxGENE Census, open it with ``cellxgene_census.open_soma()`` to learn the
    URI of the ``homo_sapiens`` experiment, or pass a local copy.

    Parameters
    ----------
    uri
        URI or local path of the SOMA ``Experiment``.
    obs_value_filter
        SOMA value filter on cells, e.g.
        ``"tissue_general == 'bone marrow' and disease == 'normal'"``.
    var_value_filter
        SOMA value filter on genes, e.g. ``"feature_name in ['CD33', 'CLEC12A']"``.
    measurement
        Measurement name (``"RNA"`` in the Census).
    layer
        ``X`` layer with raw counts (``"raw"`` in the Census).
    kind
        ``'single_cell'`` (default) or ``'bulk'``.

    Returns
    -------
    AnnData, cells × genes, float32 CSR counts. ``var_names`` are ``feature_id`` (Ensembl ids)
    when present, with ``var['gene_symbols']`` from ``feature_name``; obs keeps the SOMA
    columns; ``obs_names`` are the experiment's obs ids (``soma_joinid`` where it has none).

    Examples
    --------
    >>> import antigenscout as asc
    >>> adata = asc.io.read_soma(
    ...     census_uri, obs_value_filter="tissue_general == 'bone marrow'"
    ... )  # doctest: +SKIP
    """
    check_kind(kind)
    soma = _import_tiledbsoma()
    uri = os.fspath(uri)
    source = repr(uri)
    try:
        exp = soma.Experiment.open(uri)
    except Exception as e:
        msg = (
            f"cannot open SOMA experiment {source} ({type(e).__name__}: {e}); "
            "check the URI and that it is a SOMA Experiment"
        )
        raise InputError(msg) from e
    with exp:
        if measurement not in exp.ms:
            msg = (
                f"measurement {measurement!r} is not in {source} (has {sorted(exp.ms.keys())}); "
                "pass measurement= naming one of those"
            )
            raise InputError(msg)
        ms = exp.ms[measurement]
        layers = sorted(ms.X.keys()) if "X" in ms else []
        if layer not in layers:
            msg = (
                f"X layer {layer!r} is not in measurement {measurement!r} of {source} "
                f"(has {layers}); pass layer= naming the raw-count layer"
            )
            raise InputError(msg)
        try:
            with exp.axis_query(
                measurement_name=measurement,
                obs_query=soma.AxisQuery(value_filter=obs_value_filter),
                var_query=soma.AxisQuery(value_filter=var_value_filter),
            ) as query:
                adata = query.to_anndata(X_name=layer)
        except Exception as e:
            msg = (
                f"SOMA query on {source} failed ({type(e).__name__}: {e}); "
                "check obs_value_filter/var_value_filter column names and syntax"
            )
            raise InputError(msg) from e

    obs = adata.obs.copy()
    obs.index = _ids(obs, ("obs_id", "cell_id"))
    var = adata.var.copy()
    var.index = _ids(var, ("feature_id", "var_id", "gene_id"))
    if "feature_name" in var.columns:
        var["gene_symbols"] = var["feature_name"].astype(str).to_numpy()
    X = adata.X
    if X is None:
        X = np.zeros(adata.shape, dtype=np.float32)
    out = finalise(X, obs, var, kind=kind, source=source)
    out.uns["antigenscout"].update(
        {
            "measurement": measurement,
            "layer": layer,
            "obs_value_filter": obs_value_filter or "",
            "var_value_filter": var_value_filter or "",
        }
    )
    return out


def _ids(frame: pd.DataFrame, candidates: tuple[str, ...]) -> pd.Index:
    for c in candidates:
        if c in frame.columns:
            return pd.Index(frame[c].astype(str).to_numpy(), dtype=str)
    return pd.Index(frame.index.astype(str), dtype=str)
