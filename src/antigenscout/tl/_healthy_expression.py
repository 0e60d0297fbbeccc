"""The healthy RNA levels the risk model reads.

The reference's expression less the immune infiltrate of whole tissues (PTPRC-scaled) and of
HPA's single-cell clusters of parenchymal cells (:func:`immune_admixture`: leukocyte profiles by
:data:`INFILTRATE_MARKERS`, capillary endothelium by :data:`ENDOTHELIUM_MARKERS`), removed by
:func:`minus_infiltrate`; then :func:`healthy_expression` fills the RNA-model contexts where the
reference has no RNA for a gene.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from ..reference import Reference


#: Systems whose cell types form the immune infiltrate of whole tissues.
IMMUNE_SYSTEMS = frozenset({"immune (lymphoid)", "immune (myeloid)"})


#: The infiltrate of HPA's single-cell clusters of parenchymal cells: HPA's immune single-cell
#: profiles, each with leukocyte-lineage marker genes that reach 100 nTPM in it, at least 4 times
#: their level in every other profile here, and a median of at most 1 nTPM over the parenchymal
#: clusters. Fixed from the immune profiles before any receptor was looked at (docs/reference.md,
#: "Immune admixture of single-cell clusters"). Kupffer cells share the macrophage markers and
#: are represented by "Macrophages".
INFILTRATE_MARKERS: dict[str, tuple[str, ...]] = {
    "sc:Macrophages": ("C1QA", "C1QB", "C1QC", "CD163", "TREM2"),
    "sc:monocytes": ("LILRA5", "LILRB2", "FPR1"),
    "sc:dendritic cells": ("LILRA4", "PTCRA", "PLD4"),  # HPA's blood DCs: plasmacytoid
    "sc:Langerhans cells": ("CD1C", "CD1E", "CLEC10A", "CD1A"),  # the CD1c+ DC profile
    "sc:T-cells": ("CD3D", "TRAT1", "IL7R"),
    "sc:NK-cells": ("KLRF1", "SH2D1B", "GNLY", "NKG7"),
    "sc:B-cells": ("MS4A1", "PAX5", "VPREB3", "FCER2"),
    "sc:Plasma cells": ("MZB1", "JCHAIN", "IGKC"),
    "sc:granulocytes": ("TPSAB1", "CPA3", "MS4A2", "HPGDS"),  # HPA's cluster: mast/basophils
}
#: Capillary endothelium in HPA's single-cell clusters of parenchymal cells (the skeletal myocyte
#: cluster holds VWF, CDH5 and CLDN5 at 4–6% of the endothelial cluster, and with them the
#: endothelium's MHC class II), by the same marker rule as the leukocytes: CDH5, EMCN and TIE1
#: reach 100 nTPM in HPA's endothelial profile and have a median of at most 1 nTPM over the
#: parenchymal clusters (PECAM1, VWF, CLDN5 and ESAM do not: 1.3–2.9 nTPM).
ENDOTHELIUM_MARKERS: dict[str, tuple[str, ...]] = {"sc:Endothelial cells": ("CDH5", "EMCN", "TIE1")}
#: Clusters whose own cells are endothelium: not cleaned of it.
ENDOTHELIAL_CLUSTERS = frozenset({"sc:Endothelial cells", "sc:Lymphatic endothelial cells"})
#: Made by every leukocyte: bounds the infiltrate's total share of a cluster.
PAN_LEUKOCYTE = "PTPRC"
#: HPA single-cell types outside the immune systems whose own cells are leukocytes (tissue
#: macrophages): they make the infiltrate's genes themselves and keep them.
RESIDENT_LEUKOCYTES = frozenset({"sc:Microglial cells", "sc:Hofbauer cells"})


def parenchymal_cell_types(contexts: pd.DataFrame) -> pd.Index:
    """HPA single-cell types (``sc:``) of non-immune cells: those whose infiltrate is removed."""
    sc = contexts.index.astype(str).str.startswith("sc:")
    if "kind" in contexts:
        sc &= (contexts["kind"] == "cell_type").to_numpy()
    if "system" in contexts:
        sc &= ~contexts["system"].isin(IMMUNE_SYSTEMS).to_numpy()
    sc &= ~contexts.index.isin(list(RESIDENT_LEUKOCYTES))
    return contexts.index[sc]


@lru_cache(maxsize=8)
def immune_admixture(reference: Reference) -> pd.DataFrame:
    """Share of each HPA immune cell type, and of the endothelium, in each parenchymal cluster.

    For parenchymal cluster ``c`` and profile ``k`` of :data:`INFILTRATE_MARKERS` or
    :data:`ENDOTHELIUM_MARKERS`, ``a_ck = median over k's markers g of expr(g, c) /
    expr(g, k)`` (markers the reference lacks, or that profile ``k`` does not express, are
    skipped). PTPRC, made by every leukocyte, bounds the leukocyte shares: where
    ``sum_k a_ck * PTPRC(k)`` exceeds the cluster's own PTPRC, they are scaled down to match
    (markers can be ambient RNA; PTPRC counts the cells). Endothelial clusters
    (:data:`ENDOTHELIAL_CLUSTERS`) have no endothelial share. The shares of a cluster sum to at
    most 1.

    Returns
    -------
    Parenchymal clusters (:func:`parenchymal_cell_types`) × profiles present in the
    reference; empty when there are none. Cached per reference (hashed by identity).

    Examples
    --------
    A cluster carrying 2% of a macrophage profile:

    >>> import pandas as pd
    >>> from antigenscout.reference import Reference
    >>> ctx = pd.DataFrame({"kind": ["cell_type"] * 2, "system": ["immune (myeloid)", "x"]},
    ...                    index=["sc:Macrophages", "sc:Myocytes"])
    >>> expr = pd.DataFrame({"sc:Macrophages": [100.0, 200.0, 400.0],
    ...                      "sc:Myocytes": [2.0, 4.0, 8.0]}, index=["C1QA", "C1QB", "CD163"])
    >>> ref = Reference(genes=pd.DataFrame(index=expr.index), contexts=ctx, expression=expr,
    ...                 ihc=pd.DataFrame(), surface=pd.DataFrame())
    >>> float(immune_admixture(ref).loc["sc:Myocytes", "sc:Macrophages"])
    0.02
    """
    ctx = reference.contexts
    expr = reference.expression
    parenchyma = parenchymal_cell_types(ctx).intersection(expr.columns, sort=False)
    marker_sets = {**INFILTRATE_MARKERS, **ENDOTHELIUM_MARKERS}
    profiles = [k for k in marker_sets if k in expr.columns and k in ctx.index]
    out = pd.DataFrame(0.0, index=parenchyma, columns=pd.Index(profiles, dtype=object))
    if len(parenchyma) == 0:
        return out
    for k in profiles:
        markers = [g for g in marker_sets[k] if g in expr.index]
        level = np.nan_to_num(expr.loc[markers, k].to_numpy(dtype=np.float64))
        markers = [g for g, v in zip(markers, level, strict=True) if v > 0]
        if not markers:
            continue
        level = expr.loc[markers, k].to_numpy(dtype=np.float64)
        seen = np.nan_to_num(expr.loc[markers, parenchyma].to_numpy(dtype=np.float64))
        out[k] = np.median(seen / level[:, None], axis=0)
        if k in ENDOTHELIUM_MARKERS:
            out.loc[out.index.isin(list(ENDOTHELIAL_CLUSTERS)), k] = 0.0
    leukocytes = [k for k in profiles if k in INFILTRATE_MARKERS]
    if PAN_LEUKOCYTE in expr.index and leukocytes:
        # every leukocyte makes PTPRC: the shares may not imply more of it than the cluster has
        implied = out[leukocytes].to_numpy() @ np.nan_to_num(
            expr.loc[PAN_LEUKOCYTE, leukocytes].to_numpy(dtype=np.float64)
        )
        seen = np.nan_to_num(expr.loc[PAN_LEUKOCYTE, parenchyma].to_numpy(dtype=np.float64))
        scale = np.where(implied > seen, seen / np.where(implied > 0, implied, 1.0), 1.0)
        out[leukocytes] = out[leukocytes].mul(scale, axis=0)
    total = out.sum(axis=1).to_numpy()
    return out.div(np.maximum(total, 1.0), axis=0)


@lru_cache(maxsize=8)
def minus_infiltrate(reference: Reference) -> pd.DataFrame:
    """Expression with the immune infiltrate's share removed from tissues and parenchymal cells.

    Returns
    -------
    Genes × contexts expression: tissue contexts reduced by ``phi_t * max_immune(g)``
    (``phi_t`` = tissue PTPRC / median immune PTPRC); HPA single-cell clusters of parenchymal
    cells reduced by ``sum_k a_ck * expr(g, k)`` (:func:`immune_admixture`); both floored at
    0; other contexts unchanged. Cached per reference (hashed by identity): callers must not
    modify it.
    """
    ctx = reference.contexts
    expr = reference.expression[ctx.index]
    out = expr.astype(np.float64)
    admix = immune_admixture(reference)
    if admix.shape[0] and admix.shape[1]:
        prof = np.nan_to_num(expr[admix.columns].to_numpy(dtype=np.float64))
        share = prof @ admix.to_numpy(dtype=np.float64).T
        cols = list(admix.index)
        out[cols] = np.maximum(0.0, out[cols].to_numpy() - share)
    immune = ctx.index[
        (ctx["kind"] == "cell_type")
        & ctx["system"].isin(IMMUNE_SYSTEMS)
        & ~ctx.index.str.startswith("marrow:")
    ]
    tissues = ctx.index[ctx["kind"] == "tissue"]
    if len(immune) == 0 or len(tissues) == 0 or "PTPRC" not in expr.index:
        return out
    ptprc_ref = float(np.nanmedian(expr.loc["PTPRC", immune].to_numpy(dtype=float)))
    phi = np.clip(expr.loc["PTPRC", tissues].to_numpy(dtype=float) / ptprc_ref, 0.0, 1.0)
    phi = np.nan_to_num(phi, nan=0.0)
    immune_max = np.nan_to_num(expr[immune].to_numpy(dtype=float)).max(axis=1)
    tissue_vals = out[tissues].to_numpy()
    out[tissues] = np.maximum(0.0, tissue_vals - immune_max[:, None] * phi[None, :])
    return out


#: ``source`` of an RNA-model context whose RNA the reference lacks for the gene.
MISSING_RNA_SOURCE = "RNA model, no RNA for the gene here: its median level elsewhere"


@lru_cache(maxsize=4)
def healthy_expression(reference: Reference) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the RNA levels the risk model reads, and where they were filled in.

    :func:`minus_infiltrate`, then every RNA-model context in which the reference has
    no RNA for a gene (an HPA table that lacks it: multi-copy families, ids of another
    Ensembl release) takes the gene's median level over the RNA-model contexts that have it,
    and a gene with none at all is put at +inf (engaged everywhere): a gene the reference
    cannot see must not look safe. Measured single-cell contexts (``n_cells`` set) are left
    as they are. Cached per reference.

    Returns
    -------
    ``(levels, filled)``: genes × contexts levels and the boolean mask of filled entries.
    """
    expr = minus_infiltrate(reference)
    ctx = reference.contexts
    rna = ctx.index[ctx["n_cells"].isna().to_numpy()] if "n_cells" in ctx else ctx.index
    vals = expr[rna].to_numpy(dtype=np.float64)
    gap = np.isnan(vals)
    has = ~gap.all(axis=1)
    fill = np.full(len(expr), np.inf)
    if has.any():
        with np.errstate(all="ignore"):
            fill[has] = np.nanmedian(vals[has], axis=1)
    vals = np.where(gap, fill[:, None], vals)
    out = expr.copy()
    out[rna] = vals
    filled = pd.DataFrame(False, index=expr.index, columns=expr.columns)
    filled[rna] = gap
    return out, filled
