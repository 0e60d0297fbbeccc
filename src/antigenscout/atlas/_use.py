"""Using a merged atlas: exact gate co-positivity from its bit-packed cell sample."""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._errors import AntigenscoutWarning

if TYPE_CHECKING:
    from ..reference import Reference
    from ..tl._gates import HealthyCells

__all__ = ["atlas_healthy_cells"]


def atlas_healthy_cells(
    reference: Reference,
    genes: pd.Index,
    threshold: float,
    modality: str | None = None,
    *,
    pregnancy: bool = False,
) -> tuple[HealthyCells, dict[str, Any], list[str]] | None:
    """Return the atlas's sampled cells as exact healthy cells for gate search.

    Parameters
    ----------
    reference
        A reference made by :meth:`~antigenscout.reference.Reference.with_atlas`.
    genes
        Candidate genes (reference symbols), the columns of the gate search.
    threshold
        The run's positivity threshold (CP10k); the sample holds calls at the atlas's own
        threshold, so another threshold falls back to the pseudobulk (with a warning).
    modality, pregnancy
        What the agent reaches: each cell type's weight is multiplied by its context's
        :func:`~antigenscout.tl._exposure.exposure`, as the reference contexts' engagement is.

    Returns
    -------
    ``(cells, params, context ids)`` or ``None`` when the atlas cannot be used exactly. A gene
    the atlas does not measure is negative in its cells (stated in ``params``).
    """
    from ..tl._exposure import apical_genes, exposure  # noqa: PLC0415
    from ..tl._gates import HealthyCells  # noqa: PLC0415

    atlas = reference.atlas
    if not np.isclose(atlas.threshold_cp10k, threshold):
        warnings.warn(
            f"atlas {atlas.name!r} was measured at {atlas.threshold_cp10k} CP10k, the run uses "
            f"{threshold}: its cell types are judged from pseudobulk bounds, not exact cells",
            AntigenscoutWarning,
            stacklevel=2,
        )
        return None
    if len(atlas.sample_types) == 0:
        return None
    symbols, _ = reference.map_genes(list(atlas.genes["symbol"].astype(str)))
    sym = pd.Series(np.arange(len(symbols)), index=symbols.to_numpy())
    sym = sym[sym.index.notna()]
    sym = sym[~sym.index.duplicated()]
    pos = sym.reindex(pd.Index(genes)).fillna(-1).to_numpy(np.int64)
    X = atlas.sample_positive(pos)
    ids = [f"atlas:{t}" for t in atlas.cell_types.index.astype(str)]
    ctx = reference.contexts.reindex(ids)
    names = ctx["name"].astype(str).tolist()
    # risk = weight × engaged fraction × exposure: an atlas cell type behind a barrier, or of
    # pregnancy, is reached as its reference context is (docs/engagement.md, Exposure)
    reach = exposure(ctx, modality, pregnancy=pregnancy).to_numpy(dtype=np.float64)
    weights = ctx["vital_weight"].to_numpy(dtype=np.float64) * reach
    cells = HealthyCells(X, atlas.sample_types.astype(np.int64), weights, names=names)
    # a cell is positive or not: the apical factor (a share of the antigen reached) is not
    # applied to exact cells, which is the cautious side (docs/engagement.md, Exposure)
    polarised = ctx.get("polarised")
    n_polarised = 0 if polarised is None else int(polarised.fillna(False).astype(bool).sum())
    params = {
        "atlas": atlas.name,
        "cells": len(atlas.sample_types),
        "cell_types": len(ids),
        "candidates_not_in_atlas": int((pos < 0).sum()),
        "threshold_cp10k": atlas.threshold_cp10k,
        "apical_factor_not_applied": {
            "polarised_cell_types": n_polarised,
            "apical_candidates": int(apical_genes(reference, pd.Index(genes)).sum()),
        },
    }
    return cells, params, ids
