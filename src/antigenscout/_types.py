"""Literal option types shared across the public API."""

from __future__ import annotations

from collections.abc import Callable
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

#: A progress callback of the multi-step tools (``score_targets``, ``search_gates``,
#: ``build_atlas``), called as ``progress(step, done, total)``: the step now running (e.g.
#: ``"neighbour graph"``) and how many of its ``total`` cells are done; ``total`` is
#: ``None`` for a step that is not counted (then ``done`` is 0).
ProgressCallback = Callable[[str, int, int | None], None]


def counted(progress: ProgressCallback | None, step: str) -> Callable[[int, int], None] | None:
    """``progress`` as a ``(done, total)`` callback of one counted ``step`` (``None``: none).

    >>> seen = []
    >>> counted(lambda *a: seen.append(a), "calls")(5, 10)
    >>> seen
    [('calls', 5, 10)]
    """
    if progress is None:
        return None
    return lambda done, total: progress(step, done, total)


def no_progress(step: str, done: int, total: int | None) -> None:
    """The :data:`ProgressCallback` that reports nothing."""  # noqa: D401
