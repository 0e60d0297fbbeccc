"""Literal option types, their value sets and the defaults shared by the API and the CLI.

Each value set is written once, as a ``Literal`` alias with the tuple of its values from
``typing.get_args``; the public tools annotate and validate with them and the commands'
``click.Choice`` lists come from them (``antigenscout._cli_options``). A default a tool and
its command share is a named constant here. This module imports nothing heavy.
"""

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

Positivity = Literal["knn", "cp10k", "detected"]
#: The positivity models, for validation (the values of :data:`Positivity`).
POSITIVITY_MODELS: tuple[str, ...] = get_args(Positivity)

#: What an input holds: single cells or bulk samples.
DataKind = Literal["single_cell", "bulk"]
DATA_KINDS: tuple[str, ...] = get_args(DataKind)
#: ``kind`` of the tools that read it from the data when ``"auto"``.
KindOption = Literal["auto", "single_cell", "bulk"]
KIND_OPTIONS: tuple[str, ...] = get_args(KindOption)

#: Which axis of a TSV/CSV table holds the genes.
Orientation = Literal["auto", "genes_by_samples", "samples_by_genes"]
ORIENTATIONS: tuple[str, ...] = get_args(Orientation)

#: Routes of administration (docs/engagement.md, "Exposure"): ``systemic`` (intravenous or
#: subcutaneous, the default), ``intrathecal`` (into the CSF: the blood–brain barrier no longer
#: stands between a protein agent and the CNS) and ``intravesical`` (into the bladder: the
#: urothelium is reached fully, the rest of the body only across it).
Route = Literal["systemic", "intrathecal", "intravesical"]
ROUTES: tuple[str, ...] = get_args(Route)

#: Operators of a logic gate.
GateOp = Literal["and", "or", "not"]
GATE_OPS: tuple[str, ...] = get_args(GateOp)
#: What the gate search maximises: coverage, or coverage x (1 - risk).
Objective = Literal["coverage", "score"]
OBJECTIVES: tuple[str, ...] = get_args(Objective)
#: How ``profile_agent`` combines a list of receptor genes: all (one receptor) or any.
ProfileGate = Literal["all", "any"]
PROFILE_GATES: tuple[str, ...] = get_args(ProfileGate)

#: Defaults shared by a tool and its command.
DEFAULT_MODALITY: Modality = "car-t"
#: ``profile_agent``'s agent class (``antigenscout profile --agent``).
DEFAULT_AGENT: Modality = "agonist"
DEFAULT_POSITIVITY: Positivity = "knn"
DEFAULT_ROUTE: Route = "systemic"
DEFAULT_OBJECTIVE: Objective = "coverage"
#: Coverage at which a patient counts as covered.
DEFAULT_PATIENT_THRESHOLD = 0.8
#: ``adata.obsp`` key of a precomputed neighbour graph used by the ``knn`` model.
DEFAULT_GRAPH_KEY = "connectivities"
#: ``tl.search_gates``' cap on a gate's worst vital-weighted healthy risk (the CLI's
#: ``--max-vital-risk``). The matrix-level ``tl._gates.search_gate_matrix`` and ``evaluate_gates``
#: keep their own default of 0.1.
DEFAULT_MAX_VITAL_RISK = 0.5
#: Largest gate ``tl.search_gates`` builds by default.
DEFAULT_MAX_GENES = 2
#: Gates ``tl.search_gates`` returns by default.
DEFAULT_TOP_K = 50
#: ``adata.uns`` keys ``tl.score_targets`` and ``tl.search_gates`` write their results to.
TARGETS_KEY = "antigenscout_targets"
GATES_KEY = "antigenscout_gates"
#: ``profile_agent``'s reading of a list of receptor genes: one receptor of them all.
DEFAULT_PROFILE_GATE: ProfileGate = "all"
#: Best-ranked targets with per-context rows in ``risk.tsv`` (``rank``, ``demo``) and in
#: a report made from an AnnData.
N_RISK_TARGETS = 100

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
    """Ignore a progress report: the :data:`ProgressCallback` that reports nothing."""
