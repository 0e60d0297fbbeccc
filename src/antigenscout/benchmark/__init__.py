"""Benchmark against the clinical record: validated targets and observed toxicities.

``run_benchmark`` scores antigenscout and two anchor baselines (pooled fold change and
LogiCAR-style sensitivity at pooled specificity) on the curated tables in
``shared/benchmark``, with paired bootstrap intervals, and (``extended=True``) on rows built
from the agent lists in ``shared/data/reference_lists`` (``build_extended_targets``),
reported apart; ``antigenscout benchmark`` is its command-line form. See
``docs/clinical_benchmark.md``.
"""

from ._baselines import METHODS
from ._extended import ExtendedSet, build_extended_targets
from ._metrics import (
    expected_top_hit,
    paired_bootstrap,
    percentile_of,
    summarise_percentiles,
    topk_hits,
)
from ._record import default_shared
from ._rules import (
    attribution_class,
    load_indications,
    match_indication,
    parse_genes,
    parse_modalities,
)
from ._run import BenchmarkResult, run_benchmark, score_toxicities
from ._vocabulary import TissueMapping, TissueVocabulary, normalise

__all__ = [
    "METHODS",
    "BenchmarkResult",
    "ExtendedSet",
    "TissueMapping",
    "TissueVocabulary",
    "attribution_class",
    "build_extended_targets",
    "default_shared",
    "expected_top_hit",
    "load_indications",
    "match_indication",
    "normalise",
    "paired_bootstrap",
    "parse_genes",
    "parse_modalities",
    "percentile_of",
    "run_benchmark",
    "score_toxicities",
    "summarise_percentiles",
    "topk_hits",
]
