"""Measured evidence of engagement: single-cell fractions, surface protein and IHC.

The reference's measured single-cell fractions (:func:`measured_fraction`) and CITE-seq protein
fractions (:func:`protein_fraction`), their intervals (:func:`_wilson`, :func:`shallow_upper`),
the floor HPA immunohistochemistry puts under a tissue's fraction (:func:`_ihc_floor`), what
judges each context (:func:`context_source`) and the fraction of cells measurement *shows* to
carry an antigen (:func:`shown_fraction`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ._gamma import MIN_READS_AT_THRESHOLD

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..reference import Reference
    from ._risk_table import HealthyRisk

__all__ = [
    "IHC_MAX_FLOOR",
    "IHC_RELIABILITY_WEIGHT",
    "context_source",
    "shallow_upper",
    "shown_fraction",
]


#: Weight of an HPA IHC call by its reliability class.
IHC_RELIABILITY_WEIGHT: dict[str, float] = {"Enhanced": 1.0, "Supported": 0.8}
#: Largest positive fraction an IHC call alone can imply (High, Enhanced).
IHC_MAX_FLOOR = 0.5


#: HPA IHC cell types that belong to the immune infiltrate, not the tissue itself.
IHC_IMMUNE_CELL_TYPES = frozenset(
    {
        "germinal center cells",
        "non-germinal center cells",
        "mucosal lymphoid cells",
        "lymphoid tissue",
        "cells in red pulp",
        "cells in white pulp",
        "hematopoietic cells",
        "macrophages",
        "Langerhans",
    }
)


def shallow_upper(
    mean_cpm: np.ndarray,
    t_cpm: np.ndarray,
    n_cells: np.ndarray,
    mean_library: np.ndarray,
    measured_at_cpm: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Upper end of a measured context's engagement where the measured fraction cannot set it.

    Two cases. (1) Too shallow: the context's cells hold ``R_t = n_cells * mean_library * t /
    1e6`` expected reads at the engagement level ``t`` (CPM); below ``MIN_READS_AT_THRESHOLD``
    (10, the rate model's rule for a call, docs/engagement.md) an antigen at ``t`` in every
    cell would show a handful of reads, so the measured fraction cannot rule it out. (2) Below
    the level the fraction was measured at (``t < measured_at_cpm``): it counts cells at that
    level, a lower bound for cells at ``t``. What bounds the fraction from above is the mean: a
    fraction ``f`` of cells at ``t`` or more makes the mean at least ``f * t``, so ``f <= mean
    / t``, with the mean at its Garwood 95% upper limit from the pooled reads (at its value
    where the depth is unknown).

    Parameters
    ----------
    mean_cpm, t_cpm
        Genes × contexts pseudobulk mean and engagement level (CPM).
    n_cells, mean_library
        Per context: cells and UMIs per cell (NaN where unknown).
    measured_at_cpm
        The level the measured fractions were called at (CPM), if known.

    Returns
    -------
    ``(bound, reads_at_t)``: genes × contexts upper end (NaN where neither case holds) and
    expected reads at ``t`` (NaN where the depth is unknown).

    Examples
    --------
    CD19 in 27 marrow pro-B cells of ~2,240 UMIs (one read; 16.5 CPM) at a CAR's 20 CPM:

    >>> b, r = shallow_upper(np.array([[16.5]]), np.array([[20.0]]), np.array([27.0]),
    ...                      np.array([2241.0]))
    >>> round(float(r[0, 0]), 1), float(b[0, 0])
    (1.2, 1.0)
    """
    from scipy.stats import chi2  # noqa: PLC0415

    t = np.asarray(t_cpm, dtype=np.float64)
    mean = np.maximum(np.asarray(mean_cpm, dtype=np.float64), 0.0)
    umis = np.asarray(n_cells, dtype=np.float64) * np.asarray(mean_library, dtype=np.float64)
    reads_at_t = umis[None, :] * t / 1e6
    reads = mean * umis[None, :] / 1e6
    known = np.isfinite(reads_at_t) & (reads_at_t > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_hi = np.where(
            known, chi2.ppf(0.95, 2 * np.nan_to_num(reads) + 2) / 2 / reads_at_t * t, mean
        )
        bound = np.clip(mean_hi / t, 0.0, 1.0)
    applies = known & (reads_at_t < MIN_READS_AT_THRESHOLD)
    if measured_at_cpm is not None:
        applies |= t < measured_at_cpm
    return np.where(applies, bound, np.nan), reads_at_t


def _wilson(p: np.ndarray, n: np.ndarray, z: float = 1.645) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval (90% for ``z = 1.645``) of proportions ``p`` out of ``n``."""
    n = np.where(n > 0, n, np.nan)
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    lo = np.nan_to_num(centre - half, nan=0.0)
    hi = np.nan_to_num(centre + half, nan=1.0)
    return np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)


#: ``source`` of an engagement measured as surface protein.
PROTEIN_SOURCE = "measured protein (CITE-seq)"


def protein_fraction(reference: Reference) -> tuple[pd.DataFrame, pd.DataFrame, float] | None:
    """Measured protein fractions as wide tables: ``(fraction, n_cells, measured_at_cp10k)``.

    Genes × contexts, NaN where not measured. ``measured_at_cp10k``: the RNA level protein
    positivity stands for (the reference's measured-fraction threshold; the default 0.2
    CP10k), from which it is carried to higher engagement thresholds as the measured
    single-cell fractions are.
    """
    table = getattr(reference, "protein", None)
    if table is None or len(table) == 0:
        return None
    table = table[table["context"].isin(reference.contexts.index)]
    frac = (table["n_positive"] / table["n_cells"]).to_numpy(dtype=np.float64)
    f0 = pd.DataFrame({"gene": table["gene"], "context": table["context"], "v": frac})
    f0 = f0.pivot_table(index="gene", columns="context", values="v", aggfunc="max")
    n = table.pivot_table(index="gene", columns="context", values="n_cells", aggfunc="max")
    meta = reference.metadata.get("protein_fraction", {})
    at = meta.get("measured_at_cp10k") or measured_threshold(reference) or 0.2
    return f0, n.reindex_like(f0), float(at)


def context_source(contexts: pd.DataFrame) -> pd.Series:
    """Return what judges each context's engagement.

    ``atlas:<name>`` for a user's atlas, ``measured single cells`` for other single-cell
    contexts, else ``RNA model``.
    """
    declared = contexts["source"].astype(str) if "source" in contexts else None
    measured = (
        contexts["n_cells"].notna().to_numpy()
        if "n_cells" in contexts
        else np.zeros(len(contexts), dtype=bool)
    )
    out = np.where(measured, "measured single cells", "RNA model").astype(object)
    if declared is not None:
        atlas = declared.str.startswith("atlas").to_numpy()
        out[atlas] = declared.to_numpy()[atlas]
    return pd.Series(out, index=contexts.index, name="source")


def shown_fraction(risk: HealthyRisk, reference: Reference, genes: Sequence[str]) -> pd.DataFrame:
    """Genes × contexts: the fraction of each context's cells *shown* to carry the antigen.

    Measured contexts (single cells, an atlas) and measured protein keep their engagement (its lower
    interval end where there is one); contexts judged by the RNA model only keep what HPA
    immunohistochemistry shows (the IHC floor), else 0. Never above the engagement. A NOT arm
    of a gate vetoes only these cells (:class:`antigenscout.tl.HealthyPseudobulk`). Fractions of
    what the cells carry, before the agent's per-context exposure (:meth:`HealthyRisk.unexposed`;
    an apical antigen keeps its factor).
    """
    genes = pd.Index(genes)
    est = risk.unexposed(risk.fraction.reindex(genes).fillna(0.0))
    low = risk.low if risk.low is not None else risk.fraction
    base = risk.unexposed(low.reindex(genes).fillna(0.0))
    measured = np.broadcast_to(
        (context_source(risk.contexts) != "RNA model").to_numpy()[None, :], base.shape
    )
    measured = measured | risk.protein_measured(genes)
    out = pd.DataFrame(
        np.where(measured, base.to_numpy(dtype=np.float64), 0.0),
        index=genes,
        columns=risk.contexts.index,
    )
    if len(reference.ihc):
        floor = _ihc_floor(reference.ihc, genes, risk.contexts.index)
        out = out.where(out >= floor, floor)
    return out.clip(lower=0.0, upper=est.to_numpy(dtype=np.float64), axis=None)


def measured_threshold(reference: Reference) -> float | None:
    """Return the threshold (CP10k) the reference's single-cell fractions were called at, if any."""
    at = (reference.metadata or {}).get("measured_fraction", {}).get("threshold_cp10k")
    return None if at is None else float(at)


def measured_fraction(reference: Reference, threshold_cp10k: float) -> pd.DataFrame | None:
    """Return the reference's measured single-cell fractions, if taken at ``threshold_cp10k``."""
    measured = getattr(reference, "measured_fraction", None)
    if measured is None:
        return None
    at = measured_threshold(reference)
    if at is None or not np.isclose(at, threshold_cp10k):
        return None
    return measured


def _ihc_floor(ihc: pd.DataFrame, genes: pd.Index, contexts: pd.Index) -> pd.DataFrame:
    """Genes × contexts lower bound on the positive fraction from IHC detection."""
    ihc = ihc.dropna(subset=["context"])
    ihc = ihc[ihc["symbol"].isin(genes) & ihc["context"].isin(contexts)]
    ihc = ihc[~ihc["cell_type"].astype(str).isin(IHC_IMMUNE_CELL_TYPES)]
    rel = ihc["reliability"].astype(str).map(IHC_RELIABILITY_WEIGHT).fillna(0.0)
    value = IHC_MAX_FLOOR * ihc["level"].to_numpy(dtype=float) / 3.0 * rel.to_numpy()
    floor = (
        pd.DataFrame(
            {"symbol": ihc["symbol"].astype(str), "context": ihc["context"].astype(str), "v": value}
        )
        .groupby(["symbol", "context"])["v"]
        .max()
        .unstack(fill_value=0.0)
    )
    return floor.reindex(index=genes, columns=contexts, fill_value=0.0)
