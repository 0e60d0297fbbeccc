"""Benchmark against the clinical record: validated targets and observed toxicities.

``run_benchmark`` scores antigenscout and two anchor baselines (pooled fold change and
LogiCAR-style sensitivity at pooled specificity) on the curated tables in
``shared/benchmark``; ``antigenscout benchmark`` is its command-line form. See
``docs/clinical_benchmark.md``.
"""

from ._metrics import percentile_of, summarise_percentiles, topk_hits
from ._rules import (
    attribution_class,
    load_indications,
    match_indication,
    parse_genes,
    parse_modalities,
)
from ._run import METHODS, BenchmarkResult, default_shared, run_benchmark
from ._vocabulary import TissueMapping, TissueVocabulary, normalise

__all__ = [
    "METHODS",
    "BenchmarkResult",
    "TissueMapping",
    "TissueVocabulary",
    "attribution_class",
    "default_shared",
    "load_indications",
    "match_indication",
    "normalise",
    "parse_genes",
    "parse_modalities",
    "percentile_of",
    "run_benchmark",
    "summarise_percentiles",
    "topk_hits",
]
