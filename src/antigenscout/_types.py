"""Literal option types shared across the public API."""

from __future__ import annotations

from typing import Literal, get_args

Modality = Literal["car-t", "car-nk", "antibody", "adc", "bispecific", "tcr-t", "vaccine"]
MODALITIES: tuple[str, ...] = get_args(Modality)
#: Modalities whose agent binds an intact protein on the cell surface.
SURFACE_MODALITIES: frozenset[str] = frozenset({"car-t", "car-nk", "antibody", "adc", "bispecific"})

Positivity = Literal["detected", "cp10k", "knn"]
