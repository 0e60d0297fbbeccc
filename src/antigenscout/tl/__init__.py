"""Tools: score single targets, search logic gates, profile agents, the healthy-risk model."""

from ._evidence import (
    cptac_detection,
    fused_coverage,
    pathology_coverage,
    protein_evidence_conflict,
)
from ._gates import (
    Gate,
    HealthyCells,
    HealthyMixed,
    HealthyPseudobulk,
    evaluate_gates,
    parse_gate,
)
from ._profile import profile_agent
from ._rate import patient_rate_coverage
from ._risk import healthy_risk, positive_fraction_from_mean
from ._risk_table import HealthyRisk
from ._score import pareto_rank, score_targets
from ._search import search_gates
from ._targetability import MODALITY_PROFILES, ModalityProfile, modalities, reachability
from ._tumor import candidate_genes

__all__ = [
    "MODALITY_PROFILES",
    "Gate",
    "HealthyCells",
    "HealthyMixed",
    "HealthyPseudobulk",
    "HealthyRisk",
    "ModalityProfile",
    "candidate_genes",
    "cptac_detection",
    "evaluate_gates",
    "fused_coverage",
    "healthy_risk",
    "modalities",
    "pareto_rank",
    "parse_gate",
    "pathology_coverage",
    "patient_rate_coverage",
    "positive_fraction_from_mean",
    "profile_agent",
    "protein_evidence_conflict",
    "reachability",
    "score_targets",
    "search_gates",
]
