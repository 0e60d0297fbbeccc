"""Profile an agent by its receptor genes: which healthy cells does it engage?"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from .._errors import InputError, ReferenceLookupError
from ._risk import healthy_risk

if TYPE_CHECKING:
    from ..reference import Reference

__all__ = ["profile_agent"]


def profile_agent(
    genes: list[str] | tuple[str, ...],
    *,
    gate: Literal["all", "any"] = "all",
    reference: Reference | None = None,
    threshold: float | None = None,
    engaged_fraction: float = 0.5,
    kinds: tuple[str, ...] = ("cell_type",),
) -> pd.DataFrame:
    """Healthy contexts an agent engages through its receptor genes.

    Parameters
    ----------
    genes
        Receptor (binding partner) genes of the agent, e.g. ``["HLA-DRA", "HLA-DRB1"]``
        for an MHC class II binder. Symbols, Ensembl ids or synonyms.
    gate
        ``'all'``: the receptor needs every gene (a heterodimer such as HLA-DR α/β; the
        fraction is the Fréchet upper bound ``min`` of the members); ``'any'``: any one
        gene suffices (the fraction is the upper bound ``min(1, sum)``).
    reference
        Healthy reference; the embedded default when ``None``.
    threshold
        Positivity threshold in CP10k (the calibrated default when ``None``).
    engaged_fraction
        A context counts as engaged when at least this fraction of its cells is positive.
    kinds
        Context kinds to list: ``'cell_type'`` and/or ``'tissue'``.

    Returns
    -------
    DataFrame with one row per context, sorted by positive fraction then expression:
    ``context``, ``cell_type`` (readable name), ``kind``, ``tissue``, ``system``,
    ``expression`` (nTPM; min over genes for ``all``, sum for ``any``),
    ``positive_fraction``, ``vital_weight``, ``engaged``, and one ``expr__<gene>``
    column per receptor gene.

    Examples
    --------
    >>> import antigenscout as asc
    >>> prof = asc.tl.profile_agent(["CD19"])
    >>> "B" in prof.iloc[0]["cell_type"]
    True
    """
    from ..pp._positivity import DEFAULT_THRESHOLD
    from ..reference import load_reference

    if not genes:
        msg = "profile needs at least one receptor gene, e.g. `antigenscout profile CD19`"
        raise InputError(msg)
    if gate not in ("all", "any"):
        msg = f"gate must be 'all' or 'any'; got {gate!r}"
        raise InputError(msg)
    reference = load_reference() if reference is None else reference
    mapped, unmapped = reference.map_genes(list(genes))
    if unmapped:
        msg = (
            f"unknown gene(s): {', '.join(unmapped)}; use HGNC symbols or Ensembl ids "
            "(e.g. CD19, ENSG00000177455)"
        )
        raise ReferenceLookupError(msg)
    symbols = list(dict.fromkeys(mapped.astype(str)))
    missing = [g for g in symbols if g not in reference.expression.index]
    if missing:
        msg = f"no healthy expression data for {', '.join(missing)} in the reference"
        raise ReferenceLookupError(msg)
    threshold = DEFAULT_THRESHOLD if threshold is None else threshold
    hr = healthy_risk(reference, threshold_cp10k=threshold)
    ctx = reference.contexts
    expr = reference.expression.loc[symbols, ctx.index].to_numpy(dtype=np.float64)
    frac = hr.fraction.loc[symbols, ctx.index].to_numpy(dtype=np.float64)
    if gate == "all":
        f = frac.min(axis=0)
        e = expr.min(axis=0)
    else:
        f = np.minimum(1.0, frac.sum(axis=0))
        e = expr.sum(axis=0)
    out = pd.DataFrame(
        {
            "context": ctx.index,
            "cell_type": ctx["name"].to_numpy(),
            "kind": ctx["kind"].to_numpy(),
            "tissue": ctx["tissue"].to_numpy(),
            "system": ctx["system"].to_numpy(),
            "expression": e,
            "positive_fraction": f,
            "vital_weight": ctx["vital_weight"].to_numpy(dtype=float),
            "engaged": f >= engaged_fraction,
        }
    )
    for g, row in zip(symbols, expr, strict=True):
        out[f"expr__{g}"] = row
    out = out[out["kind"].isin(kinds)]
    return out.sort_values(
        ["positive_fraction", "expression"], ascending=False, kind="stable"
    ).reset_index(drop=True)
