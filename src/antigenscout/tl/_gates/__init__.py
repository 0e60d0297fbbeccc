"""Exact logic-gate evaluation and search on array inputs.

A gate is a Boolean formula over 1–5 antigens built from AND, OR and NOT on single antigens
(:class:`Gate`). This package evaluates gates exactly on tumour and healthy cells and searches the
space of gates for the best coverage under a cap on vital healthy risk (:func:`search_gate_matrix`).
The bounds used for pruning are stated and proved in ``docs/gates.md``. Its rooms, each read
alone:

* ``_gate``: the gate, its text form (:func:`parse_gate`), its exact and bounded fractions;
* ``_problem``: the inputs (:class:`HealthyCells`, :class:`HealthyPseudobulk`,
  :class:`HealthyMixed`) packed once for exact counting (``_Problem``);
* ``_evaluate``: given gates, one row each (:func:`evaluate_gates`);
* ``_bounds``: pair statistics and the pair values the search ranks on;
* ``_engine``: the search (:func:`search_gate_matrix`): pairs exhaustively, triples by branch and
  bound, larger gates by beam;
* ``_arms``: does each arm of a reported gate earn its place against noise.

Definitions (all denominators explicit):

* tumour coverage = (tumour cells positive for the gate) / (all tumour cells);
* per-patient coverage = the same within one patient; ``patients_covered_fraction`` = fraction of
  patients whose coverage is at least ``coverage_threshold``;
* risk in healthy cell type ``c`` = ``w_c`` × (type-``c`` cells positive for the gate) /
  (type-``c`` cells); ``worst_healthy_risk`` = the maximum over types. With a pseudobulk healthy
  reference (fractions only) the per-type gate fraction is unknown and the Fréchet upper bound is
  used instead (``risk_is_bound=True``). A mixed input (:class:`HealthyMixed`) holds single
  cells of some types and fractions of the others: the maximum runs over both, and
  ``risk_is_bound`` says whether the maximum came from a pseudobulk type;
* a gate is feasible when ``worst_healthy_risk <= max_vital_risk``;
* ``score`` = ``tumor_coverage * (1 - worst_healthy_risk)`` for feasible gates, 0 otherwise.
"""

from ._engine import TRIPLE_BUDGET, check_gate_shape, search_gate_matrix
from ._evaluate import evaluate_gates
from ._gate import Gate, parse_gate
from ._problem import HealthyCells, HealthyMixed, HealthyPseudobulk

__all__ = [
    "TRIPLE_BUDGET",
    "Gate",
    "HealthyCells",
    "HealthyMixed",
    "HealthyPseudobulk",
    "check_gate_shape",
    "evaluate_gates",
    "parse_gate",
    "search_gate_matrix",
]
