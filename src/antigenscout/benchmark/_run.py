"""Benchmark antigenscout and two anchor baselines against the clinical record.

See ``docs/clinical_benchmark.md`` for the definitions; the rules that read the clinical
tables are in :mod:`antigenscout.benchmark._rules`, the tissue vocabulary in
:mod:`antigenscout.benchmark._vocabulary` and the metric formulas in
:mod:`antigenscout.benchmark._metrics`.
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import sparse

from .._errors import AntigenscoutError, InputError
from ._evaluations import decoy_block, decoys, target_clusters, within_tissue
from ._metrics import (
    KS,
    N_BOOT,
    SEED,
    TOP_QS,
    expected_top_hit,
    paired_bootstrap,
    percentile_parts,
    summarise_percentiles,
    top_contexts,
    topk_hits,
)
from ._rules import (
    IndicationRule,
    attribution_class,
    gate_op,
    is_clinical,
    load_indications,
    match_indication,
    not_gene_product,
    parse_genes,
    parse_modalities,
    split_top_level,
)
from ._vocabulary import TissueVocabulary

if TYPE_CHECKING:
    from ..reference import Reference

__all__ = ["METHODS", "BenchmarkResult", "default_shared", "run_benchmark"]

#: Rankers compared; the first is the engine.
METHODS = ("antigenscout", "fold_change", "sens_at_spec")
#: Toxicity rankings reported as diagnostics beside the methods (not baselines).
DIAGNOSTICS = ("antigenscout_severity", "antigenscout_consequence")
#: Pseudobulk analogue of "count > 0": HPA's detection limit, 1 nTPM (or TPM / FPKM).
DETECTED_NTPM = 1.0
#: Pooled-specificity floor of the LogiCAR-style baseline (fitness 0 below it).
MIN_SPECIFICITY = 0.9
#: Contexts at least this vital count as "serious" for none-reported negative controls.
VITAL_WEIGHT = 0.8
#: Pseudocount (nTPM-like units) of the fold-change baseline.
FC_PSEUDOCOUNT = 1.0
VANGALEN_SUBDIR = Path("data") / "singlecell" / "vangalen2019_aml"
#: The clinical record's tables shipped in the package (scripts/build_benchmark_data.py).
PACKAGED_TABLES = Path(__file__).resolve().parent / "data"
TARGET_COLUMNS = ("id", "indication", "target_genes", "antigen_note", "modality")
TOXICITY_COLUMNS = (
    "id",
    "therapy",
    "modality",
    "target_genes",
    "antigen_note",
    "off_tumor_tissue_or_cell",
    "evidence_type",
    "attribution",
)


def default_shared() -> Path | None:
    """``$ANTIGENSCOUT_SHARED``, else ``shared/`` beside the repository, else ``None``."""
    env = os.environ.get("ANTIGENSCOUT_SHARED")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[3].parent / "shared")
    candidates.append(Path.cwd().parent / "shared")
    for c in candidates:
        if (c / "benchmark").is_dir():
            return c
    return None


@dataclass
class BenchmarkResult:
    """Outcome of :func:`run_benchmark`.

    Attributes
    ----------
    metrics
        Nested dict written to ``metrics.json`` (see ``docs/clinical_benchmark.md``).
    targets_rows
        One row per validated-target row: mapping, percentiles per method, or the reason it
        was not scored.
    toxicity_rows
        One row per toxicity row (or part of a row): class, mapped contexts, ranks and hits
        per method, or the reason it was not scored.
    indications
        Indication text → rule, dataset and samples used.
    out_dir
        Where the files were written (``None`` when not written).
    seconds
        Wall time.
    extended_rows
        Like ``targets_rows`` for the extended set (``None`` unless ``extended=True``).
    extended_excluded
        Agent-list entries not made into extended rows, with the reason.
    """

    metrics: dict[str, Any]
    targets_rows: pd.DataFrame
    toxicity_rows: pd.DataFrame
    indications: pd.DataFrame
    out_dir: Path | None = None
    seconds: float = 0.0
    extended_rows: pd.DataFrame | None = None
    extended_excluded: pd.DataFrame | None = None

    def summary(self) -> pd.DataFrame:
        """Methods × headline metrics (antigenscout first, then the baselines)."""
        rows = {}
        for m in METHODS:
            block = self.metrics if m == "antigenscout" else self.metrics["baselines"][m]
            t, tox = block["targets"], block["toxicity"]
            rows[m] = {
                "targets scored": t["n_scored"],
                "median percentile": t["median_percentile"],
                "top 10%": t["top10_fraction"],
                "top 5%": t["top5_fraction"],
                "top 1%": t["top1_fraction"],
                "on-target recall@1": tox["on_target"]["recall_at_1"],
                "on-target recall@3": tox["on_target"]["recall_at_3"],
                "on-target recall@5": tox["on_target"]["recall_at_5"],
                "neg. control flag@3 (lower is better)": tox["negative_controls"]["flag_rate_at_3"],
            }
        return pd.DataFrame(rows).T


# --------------------------------------------------------------------------- tumour data


@dataclass
class _Tumour:
    """Tumour expression prepared for the engine and the baselines."""

    name: str
    adata: AnnData
    kind: str  # single_cell | bulk
    malignant_key: str | None
    patient_key: str | None
    mean_ntpm: pd.Series  # per gene, tumour mean in nTPM-like units
    positive: Callable[[list[str], str], float]  # sensitivity of a gene set under a gate op
    engine: dict[str, pd.DataFrame] = field(default_factory=dict)


def _bulk_tumour(name: str, adata: AnnData) -> _Tumour:
    X = adata.X.toarray() if sparse.issparse(adata.X) else np.asarray(adata.X, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    var = pd.Index(adata.var_names.astype(str))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = pd.Series(np.nanmean(X, axis=0), index=var).fillna(0.0)
    detected = np.nan_to_num(X, nan=0.0) >= DETECTED_NTPM

    def positive(genes: list[str], op: str) -> float:
        cols = detected[:, var.get_indexer(genes)]
        hit = cols.all(axis=1) if op == "and" else cols.any(axis=1)
        return float(hit.mean())

    return _Tumour(name, adata, "bulk", None, None, mean, positive)


def _single_cell_tumour(name: str, adata: AnnData) -> _Tumour:
    mask = (adata.obs["malignant"].astype(str) == "malignant").to_numpy()
    if not mask.any():
        msg = f"{name}: no cells with obs['malignant'] == 'malignant'; cannot define the tumour"
        raise InputError(msg)
    X = sparse.csr_matrix(adata.X[mask], dtype=np.float64)
    lib = np.asarray(X.sum(axis=1)).ravel()
    lib[lib == 0] = 1.0
    cpm = sparse.diags(1e6 / lib) @ X
    var = pd.Index(adata.var_names.astype(str))
    mean = pd.Series(np.asarray(cpm.mean(axis=0)).ravel(), index=var)
    Xc = X.tocsc()

    def positive(genes: list[str], op: str) -> float:
        cols = (Xc[:, var.get_indexer(genes)] > 0).toarray()
        hit = cols.all(axis=1) if op == "and" else cols.any(axis=1)
        return float(hit.mean())

    patient = "patient" if "patient" in adata.obs else None
    return _Tumour(name, adata, "single_cell", "malignant=malignant", patient, mean, positive)


class _TumourStore:
    """Loads each dataset once, on first use."""

    def __init__(
        self,
        shared: Path | None,
        override: Mapping[str, AnnData] | None,
        reference: Reference,
    ) -> None:
        self.shared = shared
        self.reference = reference
        self.override = dict(override or {})
        self._full: dict[str, AnnData] = {}
        self._made: dict[tuple[str, tuple[str, ...]], _Tumour] = {}

    def _load_full(self, dataset: str) -> AnnData:
        if dataset in self._full:
            return self._full[dataset]
        from .. import datasets  # noqa: PLC0415
        from ..pp import harmonise_genes  # noqa: PLC0415

        if dataset in self.override:
            adata = self.override[dataset].copy()
        elif dataset == "tcga":
            adata = datasets.tcga_medians()
        elif dataset == "cell_lines":
            adata = datasets.hpa_cell_lines()
        elif dataset == "vangalen2019":
            folder = None if self.shared is None else self.shared / VANGALEN_SUBDIR
            if folder is None or not folder.is_dir():
                msg = (
                    "van Galen 2019 AML files not found (expected "
                    f"<shared>/{VANGALEN_SUBDIR}); pass --shared DIR"
                )
                raise InputError(msg)
            adata = datasets.vangalen2019(folder)
        else:  # pragma: no cover - guarded by load_indications
            msg = f"unknown dataset {dataset!r}"
            raise InputError(msg)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # unmapped genes are expected and listed in uns
            harmonise_genes(adata, self.reference)
        self._full[dataset] = adata
        return adata

    def get(self, rule: IndicationRule) -> _Tumour:
        key = (rule.dataset, rule.samples)
        if key in self._made:
            return self._made[key]
        full = self._load_full(rule.dataset)
        name = rule.dataset if not rule.samples else f"{rule.dataset}:{'+'.join(rule.samples)}"
        if (
            rule.dataset == "vangalen2019"
            or full.uns.get("antigenscout", {}).get("kind") == "single_cell"
        ):
            tum = _single_cell_tumour(name, full)
        else:
            missing = [s for s in rule.samples if s not in full.obs_names]
            if missing:
                msg = (
                    f"samples {missing} of indication rule {rule.rule!r} are not in the "
                    f"{rule.dataset} table; fix indications.tsv"
                )
                raise InputError(msg)
            sub = full[list(rule.samples)].copy() if rule.samples else full
            tum = _bulk_tumour(name, sub)
        self._made[key] = tum
        return tum


# --------------------------------------------------------------------------- engine


def _engine_table(tum: _Tumour, modality: str, reference: Reference) -> pd.DataFrame:
    key = modality
    if key not in tum.engine:
        from ..tl import score_targets  # noqa: PLC0415

        adata = tum.adata
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score_targets(
                adata,
                malignant_key=tum.malignant_key,
                patient_key=tum.patient_key,
                modality=modality,
                reference=reference,
                kind="single_cell" if tum.kind == "single_cell" else "bulk",
                cancer=_hpa_cancer(tum) if reference.pathology is not None else None,
            )
        tum.engine[key] = adata.uns["antigenscout_targets"]["targets"].copy()
        del adata.uns["antigenscout_targets"]
    return tum.engine[key]


def _hpa_cancer(tum: _Tumour) -> str | None:
    """The HPA pathology cancer type of a bulk TCGA tumour, when all its cohorts share one."""  # noqa: D401
    from ..datasets import TCGA_HPA_CANCER  # noqa: PLC0415

    if tum.kind != "bulk" or not tum.name.startswith("tcga"):
        return None
    codes = tum.name.partition(":")[2].split("+") if ":" in tum.name else []
    cancers = {TCGA_HPA_CANCER.get(c) for c in codes}
    return cancers.pop() if len(cancers) == 1 and None not in cancers else None


def _combine(values: np.ndarray, op: str) -> np.ndarray:
    """Gate a genes × k array of fractions with the estimate ``profile`` uses
    (:func:`antigenscout.tl._profile.gate_fraction`): AND = min (the Fréchet upper bound:
    the chains of a target are made by the same cells), OR = ``1 − Π(1 − v)`` for
    independent antigens (issue #10 item 5: not pushed to 1 by the union bound).
    """  # noqa: D205
    from ..tl._gates import Gate  # noqa: PLC0415
    from ..tl._profile import gate_fraction  # noqa: PLC0415

    lits = [Gate.lit(i) for i in range(values.shape[0])]
    gate = lits[0] if len(lits) == 1 else (Gate.and_ if op == "and" else Gate.or_)(*lits)
    return gate_fraction(gate, values)[0]


# --------------------------------------------------------------------------- baselines


@dataclass
class _Healthy:
    """Pooled-normal summaries of the reference (shared by the baselines)."""

    expression: pd.DataFrame  # genes × contexts, NaN kept
    mean: pd.Series  # pooled normal mean per gene
    detected: pd.DataFrame  # genes × contexts bool (>= DETECTED_NTPM)
    measured: pd.Series  # contexts with a value per gene

    @classmethod
    def from_reference(cls, reference: Reference) -> _Healthy:
        expr = reference.expression
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            mean = expr.mean(axis=1, skipna=True).fillna(0.0)
        return cls(expr, mean, expr >= DETECTED_NTPM, expr.notna().sum(axis=1))

    def expressed_fraction(self, genes: list[str], op: str) -> float:
        det = self.detected.reindex(genes).fillna(False).to_numpy(dtype=bool)
        hit = det.all(axis=0) if op == "and" else det.any(axis=0)
        n = int(self.measured.reindex(genes).fillna(0).max())
        return float(hit.sum() / n) if n else 0.0


def _baseline_scores(tum: _Tumour, cands: pd.Index, healthy: _Healthy) -> dict[str, pd.Series]:
    """Fold change and LogiCAR-style fitness of every single candidate."""
    t = tum.mean_ntpm.reindex(cands).fillna(0.0)
    n = healthy.mean.reindex(cands).fillna(0.0)
    fc = (t + FC_PSEUDOCOUNT) / (n + FC_PSEUDOCOUNT)
    # sensitivity of each candidate
    X = tum.adata.X
    var = pd.Index(tum.adata.var_names.astype(str))
    idx = var.get_indexer(cands)
    if tum.kind == "single_cell":
        mask = (tum.adata.obs["malignant"].astype(str) == "malignant").to_numpy()
        Xm = sparse.csr_matrix(X[mask])[:, idx]
        sens = np.asarray((Xm > 0).mean(axis=0)).ravel()
    else:
        Xd = X.toarray() if sparse.issparse(X) else np.asarray(X)
        sens = (np.nan_to_num(np.asarray(Xd, dtype=np.float64)[:, idx]) >= DETECTED_NTPM).mean(0)
    det = healthy.detected.reindex(cands).fillna(False).to_numpy(dtype=bool)
    measured = healthy.measured.reindex(cands).fillna(0).to_numpy(dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        normal_frac = np.where(measured > 0, det.sum(axis=1) / measured, 0.0)
    spec_ok = (1.0 - normal_frac) >= MIN_SPECIFICITY
    fit = pd.Series(np.where(spec_ok, sens, 0.0), index=cands)
    return {"fold_change": fc, "sens_at_spec": fit}


def _baseline_gate(tum: _Tumour, genes: list[str], op: str, healthy: _Healthy) -> dict[str, float]:
    t = tum.mean_ntpm.reindex(genes).fillna(0.0).to_numpy()
    n = healthy.mean.reindex(genes).fillna(0.0).to_numpy()
    if op == "and":
        fc = (t.min() + FC_PSEUDOCOUNT) / (n.min() + FC_PSEUDOCOUNT)
    else:
        fc = (t.sum() + FC_PSEUDOCOUNT) / (n.sum() + FC_PSEUDOCOUNT)
    sens = tum.positive(genes, op)
    spec = 1.0 - healthy.expressed_fraction(genes, op)
    return {"fold_change": float(fc), "sens_at_spec": sens if spec >= MIN_SPECIFICITY else 0.0}


# --------------------------------------------------------------------------- targets


def _read_table(path: Path, columns: tuple[str, ...], what: str) -> pd.DataFrame:
    if not path.is_file():
        msg = f"{what} table {str(path)!r} does not exist; pass an existing TSV with --{what}"
        raise InputError(msg)
    try:
        df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        msg = f"{what} table {str(path)!r} is empty; it needs a header with {', '.join(columns)}"
        raise InputError(msg) from None
    except (UnicodeDecodeError, pd.errors.ParserError) as e:
        msg = (
            f"{what} table {str(path)!r} is not a UTF-8 tab-separated table "
            f"({type(e).__name__}); give a TSV with the columns {', '.join(columns)}"
        )
        raise InputError(msg) from None
    missing = [c for c in columns if c not in df.columns]
    if missing:
        msg = (
            f"{str(path)!r} lacks the columns {missing}; the {what} table needs "
            f"{', '.join(columns)}"
        )
        raise InputError(msg)
    if df.empty:
        msg = f"{what} table {str(path)!r} has a header but no rows; add at least one row"
        raise InputError(msg)
    return df


def _map_genes(genes: list[str], reference: Reference) -> tuple[list[str], list[str]]:
    if not genes:
        return [], []
    mapped, unmapped = reference.map_genes(genes)
    return [str(s) for s in mapped.dropna()], unmapped


def _score_target_row(  # noqa: PLR0911, PLR0912, PLR0915
    row: pd.Series,
    rules: list[IndicationRule],
    store: _TumourStore,
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


def _gate_score(
    table: pd.DataFrame, genes: list[str], op: str, modality: str, reference: Reference
) -> tuple[float, float, float]:
    """``(score, coverage, vital_risk)`` of a gate, on the engine's single-gene scale.

    The engine's score is ``cover × (1 − harm_factor × vital_risk) × modality_factor``
    (``cover`` = ``coverage_q25`` where the engine reports it, i.e. for modalities ranked
    on per-patient coverage, else ``tumor_coverage``). For a gate, coverages and healthy
    fractions (each gene's at its engagement threshold, as for single genes) are combined
    with :func:`_combine` (AND = min, OR = the independence estimate) and the gate's vital risk
    is the engine's (the worst context, or over organ systems for a living drug:
    ``HealthyRisk.over_organs``); the modality factor
    is the smallest
    (AND: every antigen must be reachable) or largest (OR: either suffices) of the genes'.
    Columns missing from the engine's table are taken as 1 (factor) or as
    ``tumor_coverage`` (cover), so a rewritten engine degrades to ``cover × (1 − risk)``.
    """
    from ..pp import DEFAULT_THRESHOLD  # noqa: PLC0415
    from ..tl import healthy_risk  # noqa: PLC0415
    from ..tl._organs import organ_system_risk  # noqa: PLC0415

    # each gene's healthy fractions at its own engagement threshold, as the engine judges
    # the single genes the gate is placed among
    at = None
    if "engagement_threshold_cp10k" in table:
        at = table.loc[genes, "engagement_threshold_cp10k"].astype(float)
    hr = healthy_risk(
        reference, threshold_cp10k=DEFAULT_THRESHOLD, modality=modality, gene_threshold_cp10k=at
    )
    cov = float(_combine(table.loc[genes, "tumor_coverage"].to_numpy(dtype=float)[:, None], op)[0])
    # the engine adds coverage_q25 only for modalities ranked on per-patient coverage
    cover_col = "coverage_q25" if "coverage_q25" in table else "tumor_coverage"
    try:
        from ..tl._targetability import MODALITY_PROFILES  # noqa: PLC0415

        harm = float(getattr(MODALITY_PROFILES.get(modality), "harm_factor", 1.0))
    except ImportError:  # pragma: no cover - engine rewritten
        harm = 1.0
    cover = float(_combine(table.loc[genes, cover_col].to_numpy(dtype=float)[:, None], op)[0])
    # genes combined on what the cells carry; the agent's exposure applied once to the gate
    frac = hr.unexposed(hr.fraction.reindex(genes).fillna(0.0)).to_numpy(dtype=float)
    gate_risk = _combine(frac, op) * hr.reach() * hr.weight.to_numpy()
    if hr.over_organs:
        risk = float(organ_system_risk(gate_risk[None, :], hr.contexts["system"].to_numpy())[0])
    else:
        risk = float(gate_risk.max())
    if "modality_factor" in table:
        f = table.loc[genes, "modality_factor"].to_numpy(dtype=float)
        factor = float(f.min() if op == "and" else f.max())
    else:
        factor = 1.0
    score = cover * (1.0 - min(1.0, max(0.0, harm * risk))) * factor
    return score, cov, risk


# --------------------------------------------------------------------------- toxicity


def _toxicity_parts(row: pd.Series) -> list[tuple[str, str, str]]:
    """``(part id, tissue text, attribution text)``; a row whose tissue and attribution
    both list the same number (> 1) of ';'-separated parts is split pairwise.
    """  # noqa: D205
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
    """Per-context values each method ranks for a toxicity row (cached: the within-tissue
    evaluation reads them again; callers must not modify them).

    antigenscout ranks every row by *localisation*, engagement alone (docs/engagement.md:
    "where will it bind"), one rule whatever the row's class, like the baselines. Engagement
    is judged at the modality's engagement floor, as ``profile`` judges an agent without a
    tumour (a toxicity row has no tumour level for the therapeutic window). Severity
    (engagement × vital weight) is kept as the diagnostic ``antigenscout_severity``, and the
    lasting loss of function beyond the organ's reserve (``HealthyRisk.consequence``) as
    ``antigenscout_consequence``.
    """  # noqa: D205
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


def _toxicity_metrics(df: pd.DataFrame, method: str) -> dict[str, Any]:
    scored = df[df["status"] == "scored"] if len(df) else df
    out: dict[str, Any] = {"n_rows": len(df)}
    for cls, key, name in (
        ("on_target", "recall", "on_target"),
        ("negative_control", "flag_rate", "negative_controls"),
        ("uncertain", "hit_rate", "uncertain"),
    ):
        block_all = df[df["class"] == cls] if len(df) else df
        block = scored[scored["class"] == cls] if len(scored) else scored
        res: dict[str, Any] = {"n_rows": len(block_all), "n_scored": len(block)}
        if len(block_all):  # rows naming a body site the reference has no context for
            res["n_not_represented"] = int(block_all["status"].eq("not_represented").sum())
        for k in KS:
            col = f"{method}_hit_at_{k}"
            res[f"{key}_at_{k}"] = float(block[col].mean()) if len(block) else None
        if cls == "on_target" and len(block):
            clin = block[block["clinical_evidence"].astype(bool)]
            res["clinical_only"] = {
                "n_scored": len(clin),
                **{
                    f"recall_at_{k}": (
                        float(clin[f"{method}_hit_at_{k}"].mean()) if len(clin) else None
                    )
                    for k in KS
                },
            }
        out[name] = res
    return out


# --------------------------------------------------------------------------- driver


def run_benchmark(  # noqa: PLR0913, PLR0915
    targets_path: str | os.PathLike[str] | None = None,
    toxicities_path: str | os.PathLike[str] | None = None,
    *,
    shared: str | os.PathLike[str] | None = None,
    out_dir: str | os.PathLike[str] | None = None,
    reference: Reference | None = None,
    indications: str | os.PathLike[str] | None = None,
    datasets: Mapping[str, AnnData] | None = None,
    progress: Callable[[str], None] | None = None,
    extended: bool = False,
    lists_dir: str | os.PathLike[str] | None = None,
    n_boot: int = N_BOOT,
    seed: int = SEED,
) -> BenchmarkResult:
    """Score antigenscout and the anchor baselines against the clinical record.

    Parameters
    ----------
    targets_path
        ``validated_targets.tsv``; default ``<shared>/benchmark/validated_targets.tsv``.
    toxicities_path
        ``toxicities.tsv``; default ``<shared>/benchmark/toxicities.tsv``.
    shared
        The shared folder (``benchmark/``, ``data/singlecell/vangalen2019_aml``); default
        ``$ANTIGENSCOUT_SHARED`` or ``shared/`` beside the repository.
    out_dir
        Folder receiving ``metrics.json``, ``targets_rows.tsv``, ``toxicity_rows.tsv`` and
        ``indications_used.tsv``; nothing is written when ``None``.
    reference
        Healthy reference; the embedded one when ``None``.
    indications
        Indication-rule table; the packaged ``indications.tsv`` when ``None``.
    datasets
        Tumour data to use instead of the packaged loaders, keyed ``'tcga'``,
        ``'cell_lines'`` (bulk samples × genes) or ``'vangalen2019'`` (cells × genes with
        ``obs['malignant']`` and ``obs['patient']``).
    progress
        Called with a short message as each stage starts.
    extended
        Also score the rows built from the agent lists (:mod:`._extended`), reported under
        ``metrics['extended']`` and in ``extended_targets_rows.tsv``.
    lists_dir
        The agent lists; default ``<shared>/data/reference_lists``.
    n_boot, seed
        Bootstrap resamples and seed of the 95% intervals and paired differences.

    Returns
    -------
    :class:`BenchmarkResult`.

    Examples
    --------
    >>> from antigenscout.benchmark import run_benchmark
    >>> res = run_benchmark(out_dir="bench_out")  # doctest: +SKIP
    >>> res.metrics["targets"]["median_percentile"]  # doctest: +SKIP
    """
    from .. import __version__  # noqa: PLC0415
    from ..io._write import prepare_out_dir, write_json, write_table  # noqa: PLC0415
    from ..pp import DEFAULT_THRESHOLD  # noqa: PLC0415
    from ..reference import load_reference  # noqa: PLC0415

    t0 = time.perf_counter()
    say = progress or (lambda _msg: None)
    shared_dir = Path(shared) if shared is not None else default_shared()
    if shared is not None and not Path(shared).is_dir():
        msg = f"--shared {str(shared)!r} is not a folder; give the folder holding benchmark/"
        raise InputError(msg)
    # without a shared folder, the copy of the clinical tables shipped in the package
    bench = PACKAGED_TABLES if shared_dir is None else shared_dir / "benchmark"
    tpath = Path(targets_path) if targets_path else bench / "validated_targets.tsv"
    xpath = Path(toxicities_path) if toxicities_path else bench / "toxicities.tsv"
    targets = _read_table(tpath, TARGET_COLUMNS, "targets")
    toxic = _read_table(xpath, TOXICITY_COLUMNS, "toxicities")
    out_path = prepare_out_dir(out_dir) if out_dir is not None else None

    say("loading reference")
    reference = load_reference() if reference is None else reference
    rules = load_indications(indications)
    store = _TumourStore(shared_dir, datasets, reference)
    healthy = _Healthy.from_reference(reference)

    say("scoring validated targets")
    trows = [_score_target_row(r, rules, store, reference, healthy) for _, r in targets.iterrows()]
    tdf = _complete_targets(pd.DataFrame(trows))
    say("scoring toxicities")
    xdf, xblocks = _score_toxicities(toxic, reference, n_boot, seed)

    ind = _indications_used(tdf)
    boot = {"n_resamples": int(n_boot), "seed": int(seed)}
    tblocks = _target_blocks(tdf, n_boot, seed)

    def block(method: str) -> dict[str, Any]:
        return {"targets": tblocks[method], "toxicity": xblocks[method]}

    engine = block("antigenscout")
    metrics: dict[str, Any] = {
        **engine,
        "baselines": {
            "fold_change": {
                **block("fold_change"),
                "description": (
                    "targets: (tumour mean + 1) / (pooled-normal mean + 1), all reference "
                    "contexts pooled; toxicity: contexts ranked by raw expression"
                ),
            },
            "sens_at_spec": {
                **block("sens_at_spec"),
                "description": (
                    "targets: fraction of tumour cells with count > 0 (bulk: samples >= 1 "
                    "TPM) if the fraction of reference contexts with >= 1 nTPM is <= 0.1, "
                    "else 0; toxicity: every context with >= 1 nTPM flagged (all tied)"
                ),
            },
        },
        "paired_differences": _differences(tblocks, xblocks, "paired"),
        # per tissue, do the damaged (target, agent) pairs outrank the spared ones?
        "toxicity_within_tissue": xblocks["within_tissue"],
        # each known target among candidates of its tumour level: the healthy side alone
        "targets_decoy": tblocks["decoy"],
        # the same differences with the rows of one target resampled together
        "paired_differences_by_target": _differences(tblocks, xblocks, "paired_by_target"),
        "bootstrap": {
            **boot,
            "method": (
                "rows resampled with replacement, the same resample for every method "
                "(paired); 95% percentile intervals; difference = antigenscout - baseline; "
                "verdict 'better' when the difference's interval excludes 0 in the "
                "metric's good direction"
            ),
            "units": {
                "targets": "scored validated-target rows",
                "toxicity.on_target": "scored on-target toxicity rows",
                "toxicity.negative_controls": "scored negative-control rows",
            },
        },
        "diagnostics": {
            "antigenscout_severity_toxicity": {
                **_toxicity_metrics(xdf, "antigenscout_severity"),
                "description": (
                    "every toxicity row ranked by severity (engagement x vital weight), "
                    "as the benchmark ranked all rows before localisation was separated"
                ),
            },
            "antigenscout_consequence_toxicity": {
                **_toxicity_metrics(xdf, "antigenscout_consequence"),
                "description": (
                    "every toxicity row ranked by consequence (the lasting, vital-weighted "
                    "loss of function beyond the organ's reserve; docs/engagement.md)"
                ),
            },
        },
        "params": {
            "threshold_cp10k": DEFAULT_THRESHOLD,
            "detected_ntpm": DETECTED_NTPM,
            "min_specificity": MIN_SPECIFICITY,
            "vital_weight": VITAL_WEIGHT,
            "ks": list(KS),
            "top_qs": dict(TOP_QS),
            "reference": reference.metadata.get("name", "embedded"),
            "antigenscout_version": __version__,
        },
        "inputs": {
            "targets": str(tpath),
            "toxicities": str(xpath),
            "tables": (
                "packaged copy (scripts/build_benchmark_data.py; no shared folder found)"
                if bench == PACKAGED_TABLES and (targets_path is None or toxicities_path is None)
                else "given or shared folder"
            ),
            "shared": None if shared_dir is None else str(shared_dir),
        },
    }

    ext_rows: pd.DataFrame | None = None
    ext_excluded: pd.DataFrame | None = None
    if extended:
        from ._extended import LISTS_SUBDIR, build_extended_targets  # noqa: PLC0415

        folder = Path(lists_dir) if lists_dir is not None else None
        if folder is None and shared_dir is not None:
            folder = shared_dir / LISTS_SUBDIR
        if folder is None:
            msg = "--extended needs the agent lists: pass --shared DIR (with data/reference_lists)"
            raise InputError(msg)
        say("building the extended evaluation set from the agent lists")
        ext = build_extended_targets(folder, visible=targets, reference=reference, rules=rules)
        say(f"scoring {len(ext.rows)} extended rows")
        erows = [
            _score_target_row(r, rules, store, reference, healthy) for _, r in ext.rows.iterrows()
        ]
        ext_rows = _complete_targets(pd.DataFrame(erows))
        if len(ext_rows):
            ext_rows.insert(4, "drugs", ext.rows["drugs"].to_numpy())
            ext_rows["source"] = ext.rows["source"].to_numpy()
        ext_excluded = ext.excluded
        eblocks = _target_blocks(ext_rows, n_boot, seed)
        metrics["extended"] = {
            "description": (
                "rows built from shared/data/reference_lists (approved and trialled CAR-T, "
                "ADC, bispecific/multispecific T-cell engager, TCR-T and radioligand agents) "
                "that the engine was never shown; (genes, tumour data) pairs of the visible "
                "rows removed; evaluation only"
            ),
            "lists": str(folder),
            "counts": ext.counts,
            "targets": eblocks["antigenscout"],
            "baselines": {b: {"targets": eblocks[b]} for b in METHODS[1:]},
            "paired_differences": {b: {"targets": eblocks["paired"][b]} for b in METHODS[1:]},
            "paired_differences_by_target": {
                b: {"targets": eblocks["paired_by_target"][b]} for b in METHODS[1:]
            },
            "by_modality": _by_modality(ext_rows),
            "targets_decoy": eblocks["decoy"],
        }
    seconds = time.perf_counter() - t0
    metrics["seconds"] = round(seconds, 2)
    result = BenchmarkResult(metrics, tdf, xdf, ind, out_path, seconds, ext_rows, ext_excluded)
    if out_path is not None:
        write_json(out_path / "metrics.json", metrics)
        write_table(tdf, out_path / "targets_rows.tsv")
        write_table(xdf, out_path / "toxicity_rows.tsv")
        write_table(ind, out_path / "indications_used.tsv")
        if ext_rows is not None and ext_excluded is not None:
            write_table(ext_rows, out_path / "extended_targets_rows.tsv")
            write_table(ext_excluded, out_path / "extended_excluded.tsv")
    return result


# --------------------------------------------------------------------------- summaries


def _differences(tblocks: dict[str, Any], xblocks: dict[str, Any], key: str) -> dict[str, Any]:
    """``{baseline: {'targets': ..., 'toxicity': {'on_target', 'negative_controls'}}}`` of the
    paired differences stored under ``key`` (``paired`` or ``paired_by_target``).
    """  # noqa: D205
    return {
        b: {
            "targets": tblocks[key][b],
            "toxicity": {c: xblocks[key][c][b] for c in ("on_target", "negative_controls")},
        }
        for b in METHODS[1:]
    }


def _score_toxicities(
    toxic: pd.DataFrame, reference: Reference, n_boot: int, seed: int
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Rows and per-method metrics (with intervals and paired differences) of a toxicity
    table.
    """  # noqa: D205
    vocab = TissueVocabulary.from_reference(reference)
    xrows = [x for _, r in toxic.iterrows() for x in _score_toxicity_rows(r, reference, vocab)]
    xdf = pd.DataFrame(xrows)
    for m in (*METHODS, *DIAGNOSTICS):
        for k in KS:
            col = f"{m}_hit_at_{k}"
            if col not in xdf:
                xdf[col] = np.nan
    blocks = _toxicity_blocks(xdf, n_boot, seed)
    blocks["diagnostics"] = {m: _toxicity_metrics(xdf, m) for m in DIAGNOSTICS}

    def values(row: pd.Series) -> dict[str, pd.Series]:
        genes = tuple(str(row["genes"]).split(";"))
        return _context_values(genes, str(row.get("gate") or "and"), row["modality"], reference)

    blocks["within_tissue"] = (
        within_tissue(xdf, reference.contexts, values, METHODS, n_boot=n_boot, seed=seed)
        if len(xdf) and "status" in xdf
        else None
    )
    return xdf, blocks


def score_toxicities(
    toxicities_path: str | os.PathLike[str],
    *,
    reference: Reference | None = None,
    n_boot: int = 2000,
    seed: int = 20240601,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Score one toxicity record alone (a second record kept for reporting, such as
    ``shared/benchmark/toxicities_more.tsv``), as :func:`run_benchmark` scores its own.

    Returns
    -------
    ``(rows, metrics)``: one row per (toxicity, tissue part) as ``toxicity_rows.tsv``, and per
    method (``antigenscout``, ``fold_change``, ``sens_at_spec``) the on-target recall and
    negative-control flag rates with 95% intervals, plus ``paired`` differences (by row and,
    ``paired_by_target``, by target) and ``within_tissue`` (:func:`._evaluations.within_tissue`).
    """  # noqa: D205
    from ..reference import load_reference  # noqa: PLC0415

    reference = load_reference() if reference is None else reference
    toxic = _read_table(Path(toxicities_path), TOXICITY_COLUMNS, "toxicities")
    return _score_toxicities(toxic, reference, n_boot, seed)


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


def _ties_summary(ties: pd.Series) -> dict[str, Any]:
    t = pd.Series(ties, dtype=float).dropna()
    return {
        "n_rows": len(t),
        "rows_with_ties": int((t > 0).sum()),
        "median_tied": float(t.median()) if len(t) else None,
        "max_tied": int(t.max()) if len(t) else None,
    }


_TARGET_STATS = {
    "median_percentile": ("percentile", lambda a: np.median(a, axis=1), True),
    "mean_percentile": ("percentile", lambda a: a.mean(axis=1), True),
    **{key: (_top_col(key), lambda a: a.mean(axis=1), True) for key in TOP_QS},
}


def _target_blocks(tdf: pd.DataFrame, n_boot: int, seed: int) -> dict[str, Any]:
    """Per-method target metrics with ``ci95`` and ``ties``, and the paired differences."""
    scored = tdf[tdf["status"] == "scored"] if len(tdf) else tdf
    cols = [f"{m}_{c}" for m in METHODS for c in ("percentile", *(_top_col(k) for k in TOP_QS))]
    both = scored.dropna(subset=cols) if len(scored) else scored
    values = {
        m: {c: both[f"{m}_{c}"].to_numpy(dtype=float) for c in ("percentile",
            *(_top_col(k) for k in TOP_QS))}
        for m in METHODS
    }  # fmt: skip
    boot = paired_bootstrap(values, _TARGET_STATS, n_boot=n_boot, seed=seed)
    by_target = paired_bootstrap(
        values, _TARGET_STATS, n_boot=n_boot, seed=seed, clusters=target_clusters(both)
    )
    out: dict[str, Any] = {}
    for m in METHODS:
        p = scored[f"{m}_percentile"] if len(scored) else pd.Series(dtype=float)
        tops = {k: scored[f"{m}_{_top_col(k)}"] for k in TOP_QS} if len(scored) else None
        out[m] = {
            "n_rows": len(tdf),
            **summarise_percentiles(p, tops),
            "ci95": boot["ci95"][m],
            "ties": _ties_summary(scored[f"{m}_ties"] if len(scored) else pd.Series()),
        }
    out["paired"] = boot["paired"]
    out["paired_by_target"] = by_target["paired"]
    out["decoy"] = decoy_block(scored, METHODS, n_boot=n_boot, seed=seed)
    return out


def _toxicity_blocks(xdf: pd.DataFrame, n_boot: int, seed: int) -> dict[str, Any]:
    """Per-method toxicity metrics with ``ci95`` and ``ties``, and the paired differences."""
    scored = xdf[xdf["status"] == "scored"] if len(xdf) and "status" in xdf else xdf.iloc[0:0]
    out: dict[str, Any] = {m: _toxicity_metrics(xdf, m) for m in METHODS}
    out["paired"] = {}
    out["paired_by_target"] = {}
    for cls, name, key, hib in (
        ("on_target", "on_target", "recall", True),
        ("negative_control", "negative_controls", "flag_rate", False),
    ):
        block = scored[scored["class"] == cls] if len(scored) else scored
        values = {
            m: {f"hit_at_{k}": (block[f"{m}_hit_at_{k}"].to_numpy(dtype=float) if len(block)
                                else np.array([])) for k in KS}
            for m in METHODS
        }  # fmt: skip
        stats = {f"{key}_at_{k}": (f"hit_at_{k}", lambda a: a.mean(axis=1), hib) for k in KS}
        boot = paired_bootstrap(values, stats, n_boot=n_boot, seed=seed)
        clustered = paired_bootstrap(
            values, stats, n_boot=n_boot, seed=seed, clusters=target_clusters(block)
        )
        out["paired_by_target"][name] = clustered["paired"]
        for m in METHODS:
            out[m][name]["ci95"] = boot["ci95"][m]
            ties_col = f"{m}_ties"
            ties = block[ties_col] if len(block) and ties_col in block else pd.Series()
            out[m][name]["ties"] = _ties_summary(ties)
        out["paired"][name] = boot["paired"]
    return out


def _by_modality(tdf: pd.DataFrame) -> dict[str, Any]:
    """Scored rows and medians per engine modality (point estimates only)."""
    if not len(tdf) or "modality" not in tdf:
        return {}
    scored = tdf[tdf["status"] == "scored"]
    out: dict[str, Any] = {}
    for mod, g in scored.groupby("modality"):
        out[str(mod)] = {
            "n_scored": len(g),
            **{f"{m}_median_percentile": float(g[f"{m}_percentile"].median()) for m in METHODS},
            **{f"{m}_top5_fraction": float(g[f"{m}_top5"].mean()) for m in METHODS},
        }
    return out
