"""Literal option types shared across the public API."""

from __future__ import annotations

from typing import Literal, get_args

Modality = Literal[
    "car-t",
    "car-nk",
    "antibody",
    "adc",
    "bispecific",
    "radioligand",
    "tcr-t",
    "vaccine",
    "agonist",
    "any",
]
MODALITIES: tuple[str, ...] = get_args(Modality)

Positivity = Literal["detected", "cp10k", "knn"]
#: The positivity models, for validation (the values of :data:`Positivity`).
POSITIVITY_MODELS: tuple[str, ...] = ("detected", "cp10k", "knn")
