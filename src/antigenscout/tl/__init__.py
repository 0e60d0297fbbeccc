"""Tools: score single targets, profile agents, the healthy-risk model."""

from __future__ import annotations

from ._profile import profile_agent
from ._risk import HealthyRisk, healthy_risk, positive_fraction_from_mean
from ._score import candidate_genes, pareto_rank, score_targets

__all__ = [
    "HealthyRisk",
    "candidate_genes",
    "healthy_risk",
    "pareto_rank",
    "positive_fraction_from_mean",
    "profile_agent",
    "score_targets",
]
