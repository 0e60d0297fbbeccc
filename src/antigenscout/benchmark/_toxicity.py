"""Observed toxicities: each row's tissue mapped to reference contexts and ranked.

Every method ranks the reference contexts for the row's target (:func:`_context_values`); a
row is a hit at ``k`` when a damaged (or, for negative controls, a vital) context is among the
top ``k``.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

import pandas as pd

from ._baselines import DETECTED_NTPM
from ._engine import _combine
from ._metrics import KS, top_contexts, topk_hits
from ._record import _map_genes
from ._rules import (
    attribution_class,
    gate_op,
    is_clinical,
    not_gene_product,
    parse_genes,
    parse_modalities,
    split_top_level,
)

if TYPE_CHECKING:
    from ..reference import Reference
    from ._vocabulary import TissueVocabulary

#: Toxicity rankings reported as diagnostics beside the methods (not baselines).
DIAGNOSTICS = ("antigenscout_severity", "antigenscout_consequence")
#: Contexts at least this vital count as "serious" for none-reported negative controls.
VITAL_WEIGHT = 0.8


def _toxicity_parts(row: pd.Series) -> list[tuple[str, str, str]]:
    """Return ``(part id, tissue text, attribution text)`` for each part of a toxicity row.

    A row whose tissue and attribution both list the same number (> 1) of ';'-separated parts is
    split pairwise.
    """
    tissues = split_top_level(row["off_tumor_tissue_or_cell"])
    attrs = split_top_level(row["attribution"])
    if len(tissues) > 1 and len(tissues) == len(attrs):
        letters = "abcdefghijklmnopqrstuvwxyz"
        return [
            (f"{row['id']}{letters[i]}", t, a)
            for i, (t, a) in enumerate(zip(tissues, attrs, strict=True))
        ]
    return [(row["id"], row["off_tumor_tissue_or_cell"], row["attribution"])]


@lru_cache(maxsize=256)
def _context_values(
    genes: tuple[str, ...], op: str, modality: str | None, reference: Reference
) -> dict[str, pd.Series]:
    """Return the per-context values each method ranks for a toxicity row.

    Cached: the within-tissue evaluation reads them again; callers must not modify them.

    antigenscout ranks every row by *localisation*, engagement alone (docs/engagement.md:
    "where will it bind"), one rule whatever the row's class, like the baselines. Engagement
    is judged at the modality's engagement floor, as ``profile`` judges an agent without a
    tumour (a toxicity row has no tumour level for the therapeutic window). Severity
    (engagement × vital weight) is kept as the diagnostic ``antigenscout_severity``, and the
    lasting loss of function beyond the organ's reserve (``HealthyRisk.consequence``) as
    ``antigenscout_consequence``.
    """
    from ..pp import DEFAULT_THRESHOLD  # noqa: PLC0415
    from ..tl import healthy_risk  # noqa: PLC0415
    from ..tl._organs import consequence, organ_reserve  # noqa: PLC0415
    from ..tl._targetability import MODALITY_PROFILES  # noqa: PLC0415

    profile = MODALITY_PROFILES.get(modality or "")
    floor = DEFAULT_THRESHOLD
    if profile is not None:
        floor = (
            profile.engage_floor_cp10k
            if profile.name == "agonist"
            else max(profile.engage_floor_cp10k, DEFAULT_THRESHOLD)
        )
    hr = healthy_risk(
        reference,
        threshold_cp10k=DEFAULT_THRESHOLD,
        modality=modality,
        gene_threshold_cp10k=pd.Series(floor, index=genes, dtype=float),
    )
    ctx = reference.contexts.index
    frac = hr.fraction.reindex(index=genes, columns=ctx).fillna(0.0)
    # genes combined on what the cells carry; the agent's exposure applied once per context
    carried = hr.unexposed(frac).to_numpy(dtype=float)
    engaged = pd.Series(_combine(carried, op) * hr.reach(ctx), index=ctx)
    weight = hr.weight.reindex(ctx).to_numpy(dtype=float)
    severity = engaged * weight
    reserve = organ_reserve(reference.contexts).reindex(ctx)
    lasting = consequence(
        engaged.to_numpy()[None, :],
        weight,
        reserve["reserve"].to_numpy(),
        reserve["renewal_days"].to_numpy(),
        persists=hr.over_organs,
    )[0]
    expr = reference.expression.reindex(index=genes, columns=ctx).fillna(0.0).to_numpy(float)
    raw = expr.min(axis=0) if op == "and" else expr.sum(axis=0)
    det = expr >= DETECTED_NTPM
    detected = det.all(axis=0) if op == "and" else det.any(axis=0)
    return {
        "antigenscout": engaged,
        "antigenscout_severity": severity,
        "antigenscout_consequence": pd.Series(lasting, index=ctx),
        "fold_change": pd.Series(raw, index=ctx),
        "sens_at_spec": pd.Series(detected.astype(float), index=ctx),
    }


def _score_toxicity_rows(
    row: pd.Series, reference: Reference, vocab: TissueVocabulary
) -> list[dict[str, Any]]:
    results = []
    vital = reference.contexts.index[
        reference.contexts["vital_weight"].astype(float) >= VITAL_WEIGHT
    ]
    for part_id, tissue, attribution in _toxicity_parts(row):
        cls, sub = attribution_class(attribution)
        out: dict[str, Any] = {
            "id": part_id,
            "therapy": row.get("therapy", ""),
            "target_genes": row["target_genes"],
            "modality_text": row["modality"],
            "tissue_text": tissue,
            "attribution": attribution,
            "class": cls,
            "subclass": sub,
            "clinical_evidence": is_clinical(row.get("evidence_type", "")),
        }
        mods = parse_modalities(row["modality"])
        out["modality"] = mods[0] if mods else None
        mapping = vocab.map(tissue)
        out["mapping_status"] = mapping.status
        out["mapped_contexts"] = ";".join(mapping.contexts)
        out["unmapped_segments"] = ";".join(mapping.unmapped_segments)
        results.append(out)

        ngp = not_gene_product(row["target_genes"], row.get("antigen_note", ""))
        if ngp:
            out.update(status="not_scored", reason=f"target is not a gene product: {ngp}")
            continue
        genes, unmapped = _map_genes(parse_genes(row["target_genes"]), reference)
        if unmapped or not genes:
            reason = f"gene symbols not in the reference: {unmapped or row['target_genes']}"
            out.update(status="not_scored", reason=reason)
            continue
        op = gate_op(row.get("antigen_note", ""), row["modality"])
        out["genes"] = ";".join(genes)
        out["gate"] = op if len(genes) > 1 else ""
        if sub == "none_reported":
            # nothing was damaged: flag = a serious (vital) context among the top k,
            # except contexts the text names as the observed exception ("beyond X")
            targets = [c for c in vital if c not in set(mapping.contexts)]
            out["checked"] = f"vital contexts (weight >= {VITAL_WEIGHT})"
        elif mapping.contexts:
            targets = list(mapping.contexts)
            out["checked"] = "mapped contexts"
        elif mapping.absent_terms:
            # a body site the embedded reference has no context for (cornea, lacrimal gland,
            # inner ear): said, not silently absent (docs/clinical_benchmark.md)
            out.update(
                status="not_represented",
                reason="the reference has no context for: " + ", ".join(mapping.absent_terms),
            )
            continue
        else:
            out.update(
                status="not_scored",
                reason=f"tissue text not mapped to the reference: {tissue!r}",
            )
            continue
        # one gene: the operator is moot; "and" as the within-tissue evaluation asks (cached)
        values = _context_values(
            tuple(genes), op if len(genes) > 1 else "and", out["modality"], reference
        )
        for m, v in values.items():
            hits = topk_hits(v, targets)
            out[f"{m}_best_rank"] = hits["best_rank"]
            out[f"{m}_ties"] = hits["ties"]
            for k in KS:
                out[f"{m}_hit_at_{k}"] = hits[f"hit_at_{k}"]
            out[f"{m}_top3"] = ";".join(top_contexts(v, 3))
        out.update(status="scored", reason="")
    return results
