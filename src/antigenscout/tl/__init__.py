"""Tools: score single targets, search logic gates, profile agents, the healthy-risk model."""

from ._gates import (
    Gate,
    HealthyCells,
    HealthyMixed,
    HealthyPseudobulk,
    evaluate_gates,
    parse_gate,
)
from ._profile import profile_agent
from ._risk import HealthyRisk, healthy_risk, positive_fraction_from_mean
from ._score import candidate_genes, pareto_rank, score_targets
from ._search import search_gates

__all__ = [
    "Gate",
    "HealthyCells",
    "HealthyMixed",
    "HealthyPseudobulk",
    "HealthyRisk",
    "candidate_genes",
    "evaluate_gates",
    "healthy_risk",
    "pareto_rank",
    "parse_gate",
    "positive_fraction_from_mean",
    "profile_agent",
    "score_targets",
    "search_gates",
]
