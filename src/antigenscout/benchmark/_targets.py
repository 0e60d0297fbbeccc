"""Validated targets: each row placed among its tumour's candidates by every method.

A row is mapped to an indication rule, its tumour and genes, then placed (percentile, expected
top hits, decoys) by the engine and the baselines; rows that cannot be scored say why.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._errors import AntigenscoutError
from ._baselines import METHODS, _baseline_gate, _baseline_scores, _Healthy
from ._engine import _engine_table, _gate_score
from ._evaluations import decoys
from ._metrics import TOP_QS, expected_top_hit, percentile_parts
from ._record import _map_genes
from ._rules import (
    IndicationRule,
    gate_op,
    match_indication,
    not_gene_product,
    parse_genes,
    parse_modalities,
)
from ._tumors import _TumorStore

if TYPE_CHECKING:
    from ..reference import Reference


def _score_target_row(  # noqa: PLR0911, PLR0912, PLR0915
    row: pd.Series,
    rules: list[IndicationRule],
    store: _TumorStore,
    reference: Reference,
    healthy: _Healthy,
) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": row["id"],
        "indication": row["indication"],
        "target_genes": row["target_genes"],
        "modality_text": row["modality"],
    }

    def skip(reason: str) -> dict[str, Any]:
        out["status"] = "not_scored"
        out["reason"] = reason
        return out

    mods = parse_modalities(row["modality"])
    out["modality"] = mods[0] if mods else None
    rule = match_indication(row["indication"], rules)
    if rule is not None:
        out.update(rule=rule.rule, dataset=rule.dataset, samples=";".join(rule.samples))
    ngp = not_gene_product(row["target_genes"], row.get("antigen_note", ""))
    if ngp:
        return skip(f"target is not a gene product: {ngp}")
    if not mods:
        return skip(f"modality {row['modality']!r} not recognised")
    raw = parse_genes(row["target_genes"])
    genes, unmapped = _map_genes(raw, reference)
    if unmapped or not genes:
        return skip(f"gene symbols not in the reference: {unmapped or row['target_genes']}")
    op = gate_op(row.get("antigen_note", ""), row["modality"])
    out["genes"] = ";".join(genes)
    out["gate"] = op if len(genes) > 1 else ""
    if rule is None:
        return skip("no indication rule matches (add one to indications.tsv)")
    if rule.dataset == "none":
        return skip(f"no tumour data: {rule.rationale}")
    try:
        tum = store.get(rule)
    except AntigenscoutError as e:
        return skip(f"tumour data unavailable: {e}")
    var = pd.Index(tum.adata.var_names.astype(str))
    absent = [g for g in genes if g not in var]
    if absent:
        return skip(f"{absent} not measured in {tum.name}")
    table = _engine_table(tum, out["modality"], reference)
    cands = pd.Index(table.index.astype(str))
    out["n_candidates"] = len(cands)
    filtered = [g for g in genes if g not in cands]
    out["status"] = "scored"
    out["reason"] = ""
    if filtered:
        # the modality's candidate filter (e.g. surface protein) dropped a real target:
        # counted as a miss for every ranker (all rank the same candidate set)
        out["reason"] = f"{filtered} not a {out['modality']} candidate (filtered out): miss"
        for m in METHODS:
            out[f"{m}_percentile"] = 0.0
            for key in TOP_QS:
                out[f"{m}_{_top_col(key)}"] = 0.0
        return out

    def place(method: str, value: np.ndarray | float, others: np.ndarray) -> None:
        below, tied, n = percentile_parts(value, others)
        out[f"{method}_percentile"] = (below + 0.5 * tied) / n if n else float("nan")
        out[f"{method}_ties"] = tied
        for key, q in TOP_QS.items():
            out[f"{method}_{_top_col(key)}"] = expected_top_hit(below, tied, n, q)

    base = _baseline_scores(tum, cands, healthy)
    keys = ["score", "tumor_coverage"]
    if len(genes) == 1:
        g = genes[0]
        others = table.drop(index=g)
        place(
            "antigenscout",
            table.loc[g, keys].to_numpy(dtype=float),
            others[keys].to_numpy(dtype=float),
        )
        out["antigenscout_rank"] = int(table.loc[g, "rank"])
        out["tumor_coverage"] = float(table.loc[g, "tumor_coverage"])
        out["vital_risk"] = float(table.loc[g, "vital_risk"])
        out["worst_context"] = str(table.loc[g, "worst_context"])
        for m, s in base.items():
            place(m, float(s[g]), s.drop(index=g).to_numpy())
            out[f"{m}_rank"] = int((s > s[g]).sum() + 1)
            out[f"{m}_value"] = float(s[g])
        # among candidates of the same class with the tumour level of the target, only the
        # healthy side can tell it apart (issue #21, item 5b)
        near = decoys(table, g)
        if len(near):
            out["n_decoys"] = len(near)
            for m, key, vals in (
                ("antigenscout", table.loc[g, keys], table.loc[near, keys]),
                *((m, s[g], s.reindex(near)) for m, s in base.items()),
            ):
                below, tied, n = percentile_parts(
                    np.asarray(key, dtype=float), np.asarray(vals, dtype=float)
                )
                out[f"{m}_decoy_percentile"] = (below + 0.5 * tied) / n
        return out

    # a gate: evaluated with per-gene fractions (Fréchet bound for AND, independence for OR)
    score, cov, risk = _gate_score(table, genes, op, out["modality"], reference)
    place("antigenscout", np.array([score, cov]), table[keys].to_numpy(dtype=float))
    out["antigenscout_rank"] = int((table["score"] > score).sum() + 1)
    out["tumor_coverage"] = float(cov)
    out["vital_risk"] = risk
    gate_base = _baseline_gate(tum, genes, op, healthy)
    for m, s in base.items():
        v = gate_base[m]
        place(m, v, s.to_numpy())
        out[f"{m}_rank"] = int((s > v).sum() + 1)
        out[f"{m}_value"] = float(v)
    return out


def _top_col(key: str) -> str:
    """``top5_fraction`` → ``top5`` (the per-row expected-hit column suffix)."""
    return key.removesuffix("_fraction")


def _complete_targets(tdf: pd.DataFrame) -> pd.DataFrame:
    """Add the per-method columns that no row filled (e.g. nothing scored)."""
    if "status" not in tdf:
        tdf["status"] = pd.Series(dtype=str)
    for m in METHODS:
        for col in ("percentile", "ties", *(_top_col(k) for k in TOP_QS)):
            if f"{m}_{col}" not in tdf:
                tdf[f"{m}_{col}"] = np.nan
    return tdf


def _indications_used(tdf: pd.DataFrame) -> pd.DataFrame:
    cols = ["indication", "rule", "dataset", "samples"]
    if "rule" not in tdf:
        return pd.DataFrame(columns=cols)
    return tdf[cols].drop_duplicates("indication").reset_index(drop=True)
