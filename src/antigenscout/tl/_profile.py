"""Profile an agent by its receptor: which healthy cells, and what fraction of each, it engages.

A receptor is a logic expression over genes: ``CD19``; a heterodimer ``HLA-DRA AND HLA-DRB1``;
alternatives ``(HLA-DRA AND HLA-DRB1) OR (HLA-DPA1 AND HLA-DPB1)``; cytokine receptors with
shared subunits ``IL2RB AND IL2RG``. Per healthy context each gene has an engagement (the
fraction of cells carrying enough of it, :mod:`antigenscout.tl._risk`); the expression's
fraction is computed from them:

- ``A AND B``: chains of one receptor are made by the same cells, so the estimate is the
  smaller fraction (the Fréchet upper bound); the lower bound is ``max(0, a + b - 1)``;
- ``A OR B``: alternative receptors, estimated as independent, ``1 - (1 - a)(1 - b)``, between
  the lower bound ``max(a, b)`` and the upper bound ``min(1, a + b)``;
- ``NOT A``: ``1 - a``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._errors import InputError, ReferenceLookupError
from .._types import (
    DEFAULT_AGENT,
    DEFAULT_PROFILE_GATE,
    DEFAULT_ROUTE,
    PROFILE_GATES,
    Modality,
    ProfileGate,
    Route,
)
from ..io._validate import check_threshold
from ._exposure import APICAL_NOTE, check_route, exposure_summary
from ._gates import Gate, parse_gate
from ._healthy_expression import MISSING_RNA_SOURCE, healthy_expression
from ._isoforms import ISOFORM_SOURCE
from ._measured import PROTEIN_SOURCE, context_source, measured_threshold
from ._risk import healthy_risk

if TYPE_CHECKING:
    from ..reference import Reference

__all__ = ["gate_fraction", "profile_agent"]


def gate_fraction(gate: Gate, fraction: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Estimate and bounds of the fraction of cells a receptor expression engages.

    Parameters
    ----------
    gate
        Expression over row indices of ``fraction``.
    fraction
        Genes × contexts engaged fractions in [0, 1].

    Returns
    -------
    ``(estimate, lower, upper)`` per context (see the module docstring).

    Examples
    --------
    >>> from antigenscout.tl._gates import Gate
    >>> f = np.array([[0.8], [0.5]])
    >>> [round(float(x[0]), 2) for x in gate_fraction(Gate.and_(Gate.lit(0), Gate.lit(1)), f)]
    [0.5, 0.3, 0.5]
    >>> [round(float(x[0]), 2) for x in gate_fraction(Gate.or_(Gate.lit(0), Gate.lit(1)), f)]
    [0.9, 0.8, 1.0]
    """
    if gate.op == "lit":
        f = fraction[gate.gene]
        return (1.0 - f, 1.0 - f, 1.0 - f) if gate.negated else (f, f, f)
    parts = [gate_fraction(c, fraction) for c in gate.children]
    est = np.stack([p[0] for p in parts])
    lo = np.stack([p[1] for p in parts])
    hi = np.stack([p[2] for p in parts])
    if gate.op == "and":
        return (
            est.min(axis=0),
            np.maximum(0.0, lo.sum(axis=0) - (len(parts) - 1)),
            hi.min(axis=0),
        )
    return (
        1.0 - np.prod(1.0 - est, axis=0),
        lo.max(axis=0),
        np.minimum(1.0, hi.sum(axis=0)),
    )


def profile_agent(  # noqa: PLR0913, PLR0915
    genes: list[str] | tuple[str, ...] | str,
    *,
    gate: ProfileGate = DEFAULT_PROFILE_GATE,
    agent: Modality = DEFAULT_AGENT,
    reference: Reference | None = None,
    threshold: float | None = None,
    engaged_fraction: float = 0.5,
    kinds: tuple[str, ...] = ("cell_type",),
    pregnancy: bool = False,
    route: Route = DEFAULT_ROUTE,
) -> pd.DataFrame:
    """Healthy contexts an agent engages through its receptor, as fractions of their cells.

    Parameters
    ----------
    genes
        The receptor: a logic expression (``"(HLA-DRA AND HLA-DRB1) OR (HLA-DPA1 AND
        HLA-DPB1)"``) or a list of genes combined by ``gate``. Symbols, Ensembl ids or
        synonyms.
    gate
        For a list: ``'all'`` (one receptor made of every gene, e.g. a heterodimer) or
        ``'any'`` (alternatives).
    agent
        The agent class (a ``--modality``), which sets the antigen level a cell needs:
        ``'agonist'`` (a cytokine or ligand engages at low receptor density), ``'car-t'``,
        ``'adc'``, ...; see docs/modalities.md.
    reference
        Healthy reference; the embedded default when ``None``.
    threshold
        Antigen level (CP10k) a cell needs; overrides the agent class's floor.
    engaged_fraction
        A context counts as engaged when at least this fraction of its cells is.
    kinds
        Context kinds to list: ``'cell_type'`` and/or ``'tissue'``.
    pregnancy
        Keep the contexts of pregnancy (placenta, trophoblasts); out of the default adult
        body, they are listed at 0 engaged. A protein agent reaches cells behind the
        blood–brain, blood–retina and blood–testis barriers only in part (docs/engagement.md,
        "Exposure"; ``source`` says so).
    route
        How the agent is given: ``'systemic'``, ``'intrathecal'`` (the blood–brain barrier no
        longer limits a protein agent) or ``'intravesical'`` (the bladder reached fully, the
        rest of the body across the urothelium); :func:`~antigenscout.tl._exposure.exposure`.

    Returns
    -------
    DataFrame with one row per context, most engaged first: ``context``, ``cell_type``
    (readable name), ``kind``, ``tissue``, ``system``, ``expression`` (nTPM of the least
    expressed gene of the receptor), ``positive_fraction`` (estimated fraction of cells
    engaged), ``fraction_low``/``fraction_high`` (bounds from the logic and the engagement
    interval), ``source`` (naming a gene whose RNA there is taken as another isoform and
    excluded, docs/engagement.md "Isoforms"), ``vital_weight``, ``engaged``, and
    ``frac__<gene>`` / ``expr__<gene>`` per gene. ``attrs['isoform_notes']``: gene → isoform
    note, for the receptor's genes that have one.

    Examples
    --------
    >>> import antigenscout as asc
    >>> prof = asc.tl.profile_agent(["CD19"])
    >>> "B" in prof.iloc[0]["cell_type"]
    True
    """
    from ..reference import load_reference  # noqa: PLC0415
    from ._targetability import MODALITY_PROFILES  # noqa: PLC0415

    if isinstance(genes, str):
        expression = genes
    else:
        if not genes:
            msg = "profile needs at least one receptor gene, e.g. `antigenscout profile CD19`"
            raise InputError(msg)
        if gate not in PROFILE_GATES:
            msg = f"gate must be 'all' or 'any'; got {gate!r}"
            raise InputError(msg, param="gate")
        expression = f" {'AND' if gate == 'all' else 'OR'} ".join(genes)
    if agent not in MODALITY_PROFILES:
        msg = f"agent must be one of {', '.join(MODALITY_PROFILES)}; got {agent!r}"
        raise InputError(msg, param="agent")
    check_route(route)
    reference = load_reference() if reference is None else reference
    words = [
        t
        for t in expression.replace("(", " ").replace(")", " ").split()
        if t.upper() not in {"AND", "OR", "NOT"}
    ]
    if not words:
        msg = f"the receptor {expression!r} names no gene"
        raise InputError(msg)
    mapped, unmapped = reference.map_genes(words)
    if unmapped:
        msg = (
            f"unknown gene(s): {', '.join(unmapped)}; use HGNC symbols or Ensembl ids "
            "(e.g. CD19, ENSG00000177455)"
        )
        raise ReferenceLookupError(msg)
    canon = dict(zip(words, mapped.astype(str), strict=True))
    symbols = list(dict.fromkeys(canon.values()))
    missing = [g for g in symbols if g not in reference.expression.index]
    if missing:
        msg = f"no healthy expression data for {', '.join(missing)} in the reference"
        raise ReferenceLookupError(msg)
    text = " ".join(canon.get(t, t) for t in _tokens(expression))
    receptor = parse_gate(text, symbols)

    floor = check_threshold(threshold, default=MODALITY_PROFILES[agent].engage_floor_cp10k)
    # the base threshold is the one the measured single-cell fractions were called at, as in
    # scoring: at any other, measured contexts would silently fall back to the RNA model
    measured_at = measured_threshold(reference)
    if measured_at is None:
        from ..pp import DEFAULT_THRESHOLD  # noqa: PLC0415

        measured_at = DEFAULT_THRESHOLD
    hr = healthy_risk(
        reference,
        threshold_cp10k=float(measured_at),
        modality=agent,
        gene_threshold_cp10k=pd.Series(floor, index=symbols, dtype=float),
        pregnancy=pregnancy,
        route=route,
    )
    ctx = reference.contexts
    # genes are combined on what each context's cells carry, and the agent's exposure to the
    # context is applied once to the receptor (not once per gene)
    reach = hr.reach(ctx.index)

    def carried(df: pd.DataFrame | None) -> np.ndarray:
        src = hr.fraction if df is None else df
        return hr.unexposed(src.loc[symbols, ctx.index]).to_numpy(dtype=np.float64)

    frac = hr.fraction.loc[symbols, ctx.index].to_numpy(dtype=np.float64)
    est, _, _ = gate_fraction(receptor, carried(None))
    _, lo, _ = gate_fraction(receptor, carried(hr.low))
    _, _, hi = gate_fraction(receptor, carried(hr.high))
    est, lo, hi = est * reach, lo * reach, hi * reach
    # the levels the model read: infiltrate removed, a missing level filled (inf: no RNA)
    expr = healthy_expression(reference)[0].loc[symbols, ctx.index].to_numpy(dtype=np.float64)
    expr[np.isinf(expr)] = np.nan
    out = pd.DataFrame(
        {
            "context": ctx.index,
            "cell_type": ctx["name"].to_numpy(),
            "kind": ctx["kind"].to_numpy(),
            "tissue": ctx["tissue"].to_numpy(),
            "system": ctx["system"].to_numpy(),
            "expression": np.nanmin(np.nan_to_num(expr, nan=0.0), axis=0),
            "positive_fraction": est,
            "fraction_low": np.minimum(lo, est),
            "fraction_high": np.maximum(hi, est),
            "source": _sources(hr, symbols, ctx, floor, float(measured_at)),
            "vital_weight": ctx["vital_weight"].to_numpy(dtype=float),
            "engaged": est >= engaged_fraction,
        }
    )
    per_gene = {}  # one concat, not one insert per column (3,000 genes: 6,000 warnings)
    for g, f_row, e_row in zip(symbols, frac, expr, strict=True):
        per_gene[f"frac__{g}"] = f_row
        per_gene[f"expr__{g}"] = e_row
    out = pd.concat([out, pd.DataFrame(per_gene, index=out.index)], axis=1)
    out = out[out["kind"].isin(kinds)]
    listed = None if hr.exposure is None else hr.exposure.reindex(out["context"])
    out.attrs["exposure"] = exposure_summary(listed, pregnancy, route)
    out.attrs["receptor"] = text
    out.attrs["threshold_cp10k"] = floor
    notes = hr.isoform_note(symbols)
    out.attrs["isoform_notes"] = {g: str(n) for g, n in notes.items() if n != "none"}
    return out.sort_values(
        ["positive_fraction", "expression"], ascending=False, kind="stable"
    ).reset_index(drop=True)


def _sources(  # noqa: PLR0912
    hr: Any, symbols: list[str], ctx: pd.DataFrame, floor: float, measured_at: float
) -> np.ndarray:
    """Return per context what judged it (measured protein named with the genes it covers).

    Also where a measured context's interval reaches what its mean allows, and why.
    """
    base = context_source(ctx).to_numpy().astype(object)
    out = base.copy()
    if hr.protein is not None:
        prot = hr.protein_measured(symbols)
        for j in np.flatnonzero(prot.any(axis=0)):
            genes = [g for g, p in zip(symbols, prot[:, j], strict=True) if p]
            rest = "" if prot[:, j].all() else f"; {base[j]} for the other genes"
            out[j] = f"{PROTEIN_SOURCE}: {', '.join(genes)}{rest}"
    gap = hr.missing(symbols)
    for j in np.flatnonzero(gap.any(axis=0)):
        genes = [g for g, m in zip(symbols, gap[:, j], strict=True) if m]
        out[j] = f"{MISSING_RNA_SOURCE}: {', '.join(genes)}"
    reads = hr.reads_at_threshold
    if reads is not None:
        from ._rate import MIN_READS_AT_THRESHOLD  # noqa: PLC0415

        r = reads.reindex(index=symbols, columns=ctx.index).to_numpy(dtype=np.float64)
        measured = ~np.isnan(r).all(axis=0) | (base != "RNA model")
        least = np.where(np.isnan(r), np.inf, r).min(axis=0)
        for j in np.flatnonzero(measured):
            if floor < measured_at:
                out[j] = (
                    f"{out[j]}; called at {measured_at:g} CP10k, a lower bound at "
                    f"{floor:g}: upper end from the mean"
                )
            elif least[j] < MIN_READS_AT_THRESHOLD:
                out[j] = (
                    f"{out[j]}; too shallow to call a cell at this level ({least[j]:.1f} "
                    f"reads expected at it, < {MIN_READS_AT_THRESHOLD:g}): upper end from "
                    "the mean"
                )
    iso = hr.isoform_sources()
    if iso is not None:
        for (g, c), what in iso.items():
            j = ctx.index.get_indexer([c])[0]
            if g in symbols and j >= 0 and str(what).startswith(ISOFORM_SOURCE):
                out[j] = f"{out[j]}; {g}: {what}"
    if hr.apical is not None and hr.apical_contexts is not None:
        pol = ctx.index.isin(hr.apical_contexts)
        hidden = [g for g in symbols if g in set(hr.apical)]
        for j in np.flatnonzero(pol) if hidden else []:
            out[j] = f"{out[j]}; {', '.join(hidden)}: {APICAL_NOTE}"
    if hr.exposure_why is not None:
        why = hr.exposure_why.reindex(ctx.index).fillna("").to_numpy(dtype=object)
        for j in np.flatnonzero(why != ""):
            out[j] = f"{out[j]}; {why[j]}"
    return out


def _tokens(text: str) -> list[str]:
    return text.replace("(", " ( ").replace(")", " ) ").split()
