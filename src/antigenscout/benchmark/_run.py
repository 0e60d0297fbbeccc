"""Benchmark antigenscout and two anchor baselines against the clinical record.

See ``docs/clinical_benchmark.md`` for the definitions. The entry points (:func:`run_benchmark`,
:func:`score_toxicities`) assemble ``metrics.json`` and write the tables; the clinical record
is read in :mod:`antigenscout.benchmark._record`, the tumours in
:mod:`antigenscout.benchmark._tumors`, the engine's side in
:mod:`antigenscout.benchmark._engine`, the baselines in :mod:`antigenscout.benchmark._baselines`,
the rows scored in :mod:`antigenscout.benchmark._targets` and
:mod:`antigenscout.benchmark._toxicity` and summarised in
:mod:`antigenscout.benchmark._summaries`. The rules that read the clinical tables are in
:mod:`antigenscout.benchmark._rules`, the tissue vocabulary in
:mod:`antigenscout.benchmark._vocabulary` and the metric formulas in
:mod:`antigenscout.benchmark._metrics`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from anndata import AnnData

from .._errors import InputError
from ._baselines import DETECTED_NTPM, METHODS, MIN_SPECIFICITY, _Healthy
from ._evaluations import within_tissue
from ._metrics import KS, N_BOOT, SEED, TOP_QS
from ._record import PACKAGED_TABLES, TARGET_COLUMNS, TOXICITY_COLUMNS, _read_table, default_shared
from ._rules import load_indications
from ._summaries import (
    _by_modality,
    _differences,
    _target_blocks,
    _toxicity_blocks,
    _toxicity_metrics,
)
from ._targets import _complete_targets, _indications_used, _score_target_row
from ._toxicity import DIAGNOSTICS, VITAL_WEIGHT, _context_values, _score_toxicity_rows
from ._tumors import _TumorStore
from ._vocabulary import TissueVocabulary

if TYPE_CHECKING:
    from ..reference import Reference

__all__ = ["BenchmarkResult", "run_benchmark"]


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
        msg = f"shared {str(shared)!r} is not a folder; give the folder holding benchmark/"
        raise InputError(msg, param="shared")
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
    store = _TumorStore(shared_dir, datasets, reference)
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
            msg = (
                "extended needs the agent lists in the shared folder (data/reference_lists); "
                "give shared, the folder that holds them"
            )
            raise InputError(msg, param="extended")
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


def _score_toxicities(
    toxic: pd.DataFrame, reference: Reference, n_boot: int, seed: int
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Return the rows and per-method metrics of a toxicity table.

    The metrics come with intervals and paired differences.
    """
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
    """Score one toxicity record alone, as :func:`run_benchmark` scores its own.

    The record is a second one kept for reporting, such as
    ``shared/benchmark/toxicities_more.tsv``.

    Returns
    -------
    ``(rows, metrics)``: one row per (toxicity, tissue part) as ``toxicity_rows.tsv``, and per
    method (``antigenscout``, ``fold_change``, ``sens_at_spec``) the on-target recall and
    negative-control flag rates with 95% intervals, plus ``paired`` differences (by row and,
    ``paired_by_target``, by target) and ``within_tissue`` (:func:`._evaluations.within_tissue`).
    """
    from ..reference import load_reference  # noqa: PLC0415

    reference = load_reference() if reference is None else reference
    toxic = _read_table(Path(toxicities_path), TOXICITY_COLUMNS, "toxicities")
    return _score_toxicities(toxic, reference, n_boot, seed)
