"""Isoforms: engagement 0 where the reference reads a context's RNA as another isoform.

The reference's curated isoform table (``reference/annotations/isoforms.tsv``) says where a
context's RNA is another isoform of the gene than the one an agent binds (soluble sIL-1RAcP in
the liver, CLDN18.1 in the lung); :func:`apply_isoforms` sets those engagements to 0 and keeps
what they were (docs/engagement.md, "Isoforms").
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from ..reference import Reference
    from ._risk_table import HealthyRisk

__all__ = ["ISOFORM_SOURCE"]


#: ``source`` of a context whose RNA the isoform table reads as another isoform of the gene.
ISOFORM_SOURCE = "other isoform"


def apply_isoforms(hr: HealthyRisk, reference: Reference) -> HealthyRisk:
    """Engagement 0 where the reference's isoform table reads a context's RNA as another isoform.

    Rows with ``effect`` ``exclude`` set the (gene, context) engagement, and its interval, to 0
    unless surface protein was measured there (a measured surface protein is the membrane
    isoform); ``note`` rows change nothing. Every row that applies to ``hr``'s genes, with the
    engagement it had (``fraction_before``) and whether it was applied, is kept in
    ``HealthyRisk.isoform`` for the outputs (:meth:`HealthyRisk.isoform_note`, ``source``).
    """
    if reference.isoforms is None:
        return hr
    pairs = reference.isoform_pairs(hr.contexts.index)
    pairs = pairs[pairs["gene"].isin(hr.fraction.index)].reset_index(drop=True)
    if pairs.empty:
        return hr
    r = hr.fraction.index.get_indexer(pairs["gene"])
    c = hr.contexts.index.get_indexer(pairs["context"].fillna("").astype(str))
    at = c >= 0
    before = np.full(len(pairs), np.nan)
    before[at] = hr.fraction.to_numpy(dtype=np.float64)[r[at], c[at]]
    applied = at & (pairs["effect"] == "exclude").to_numpy()
    if applied.any() and hr.protein is not None:
        prot = hr.protein.reindex(index=hr.fraction.index, columns=hr.contexts.index)
        applied[applied] = np.isnan(prot.to_numpy(dtype=np.float64)[r[applied], c[applied]])
    pairs["fraction_before"] = before
    pairs["applied"] = applied

    def zeroed(df: pd.DataFrame | None) -> pd.DataFrame | None:
        if df is None or not applied.any():
            return df
        a = df.to_numpy(dtype=np.float64, copy=True)
        a[r[applied], c[applied]] = 0.0
        return pd.DataFrame(a, index=df.index, columns=df.columns)

    cols = ["gene", "context", "effect", "target_isoform", "other_isoform", "note", "source"]
    return replace(
        hr,
        fraction=zeroed(hr.fraction),
        low=zeroed(hr.low),
        high=zeroed(hr.high),
        isoform=pairs[[*cols, "fraction_before", "applied"]],
    )
