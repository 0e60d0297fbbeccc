"""A gate: a Boolean formula over antigens (AND, OR, NOT), its text form and its fractions.

The fractions are exact or bounded.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from antigenscout._errors import InputError
from antigenscout._types import GATE_OPS

from .._kernels import PackedBits

_EPS = 1e-12


# --------------------------------------------------------------------------------------------
# Gate representation
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gate:
    """A Boolean formula over gene indices in canonical form.

    Build gates with :meth:`lit`, :meth:`and_`, :meth:`or_` and :meth:`negate` (or
    :func:`parse_gate`); these flatten nested AND/OR, sort children (positive genes first, then
    sub-formulas, then negated genes) and refuse a gene that appears twice, so two gates that
    differ only in order are equal and hash alike.

    Attributes
    ----------
    op
        ``"lit"``, ``"and"`` or ``"or"``.
    gene
        Gene index of a literal (``-1`` otherwise).
    negated
        Whether a literal is negated.
    children
        Sub-formulas of an AND/OR.
    """

    op: Literal["lit", "and", "or"]
    gene: int = -1
    negated: bool = False
    children: tuple[Gate, ...] = field(default=())

    # construction ---------------------------------------------------------------------------
    @staticmethod
    def lit(gene: int, negated: bool = False) -> Gate:
        """Return the gate of a single gene (``negated=True`` for ``NOT gene``)."""
        return Gate("lit", int(gene), bool(negated))

    @staticmethod
    def and_(*children: Gate) -> Gate:
        """Conjunction of ``children`` (flattened, sorted, no repeated gene)."""
        return Gate._combine("and", children)

    @staticmethod
    def or_(*children: Gate) -> Gate:
        """Disjunction of ``children`` (flattened, sorted, no repeated gene)."""
        return Gate._combine("or", children)

    @staticmethod
    def _combine(op: Literal["and", "or"], children: Iterable[Gate]) -> Gate:
        flat: list[Gate] = []
        for c in children:
            if c.op == op:
                flat.extend(c.children)
            else:
                flat.append(c)
        if len(flat) == 1:
            return flat[0]
        if not flat:
            msg = f"An {op.upper()} gate needs at least one operand."
            raise InputError(msg)
        seen: set[int] = set()
        for c in flat:
            g = set(c.genes)
            if seen & g:
                msg = (
                    f"Gene index {sorted(seen & g)[0]} appears twice in one gate; use each "
                    "antigen at most once (A AND A is A; A AND NOT A is empty)."
                )
                raise InputError(msg)
            seen |= g
        flat.sort(key=Gate.sort_key)
        return Gate(op, -1, False, tuple(flat))

    def negate(self) -> Gate:
        """Logical complement, pushed down to the genes by De Morgan's laws."""
        if self.op == "lit":
            return Gate("lit", self.gene, not self.negated)
        flipped = [c.negate() for c in self.children]
        return Gate.or_(*flipped) if self.op == "and" else Gate.and_(*flipped)

    # properties -----------------------------------------------------------------------------
    def sort_key(self) -> tuple:
        """Total order used for canonical sorting of children."""
        if self.op == "lit":
            return (2, self.gene) if self.negated else (0, self.gene)
        return (1, self.op, tuple(c.sort_key() for c in self.children))

    @property
    def genes(self) -> tuple[int, ...]:
        """Sorted gene indices used by the gate."""
        if self.op == "lit":
            return (self.gene,)
        return tuple(sorted(g for c in self.children for g in c.genes))

    @property
    def n_genes(self) -> int:
        """Number of distinct genes."""
        return len(self.genes)

    @property
    def ops(self) -> tuple[str, ...]:
        """Operators used, a subset of ``("and", "or", "not")`` in that order."""
        used: set[str] = set()
        stack = [self]
        while stack:
            x = stack.pop()
            if x.op == "lit":
                if x.negated:
                    used.add("not")
            else:
                used.add(x.op)
                stack.extend(x.children)
        return tuple(o for o in GATE_OPS if o in used)

    def to_string(self, names: Sequence[str] | None = None) -> str:
        """Readable form, e.g. ``CD33 AND NOT CD34`` or ``(A OR B) AND NOT C``."""
        if self.op == "lit":
            name = str(names[self.gene]) if names is not None else f"g{self.gene}"
            return f"NOT {name}" if self.negated else name
        parts = []
        for c in self.children:
            s = c.to_string(names)
            parts.append(f"({s})" if c.op != "lit" else s)
        return f" {self.op.upper()} ".join(parts)

    def __str__(self) -> str:
        return self.to_string()

    # evaluation -----------------------------------------------------------------------------
    def bits(self, packed: PackedBits) -> np.ndarray:
        """Bitset (``uint64`` words laid out like ``packed``) of the cells positive for the gate.

        Padding bits are always zero, also under ``NOT``.
        """
        if self.op == "lit":
            w = packed.words[self.gene]
            return (~w) & packed.valid if self.negated else w.copy()
        out = self.children[0].bits(packed)
        for c in self.children[1:]:
            if self.op == "and":
                out &= c.bits(packed)
            else:
                out |= c.bits(packed)
        return out

    def frechet(
        self, frac: np.ndarray, shown: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Fréchet bounds ``(lower, upper)`` on the positive fraction per row of ``frac``.

        ``frac`` is ``(n_types, n_genes)`` of per-type positive fractions; ``shown`` (same
        shape, ``shown <= frac``; default ``frac``) is the part of it shown by measurement
        (protein or measured cells). A positive literal is ``[f, f]``; a negated one
        ``[1 - f, 1 - shown]``: a veto only counts where its antigen is shown present. For an
        AND of ``k`` operands ``[max(0, Σ L - (k - 1)), min U]``; for an OR
        ``[max L, min(1, Σ U)]``.
        """
        if self.op == "lit":
            f = frac[:, self.gene].astype(np.float64)
            if not self.negated:
                return f, f.copy()
            v = f if shown is None else shown[:, self.gene].astype(np.float64)
            return 1.0 - f, 1.0 - v
        lo_hi = [c.frechet(frac, shown) for c in self.children]
        lows = np.stack([x[0] for x in lo_hi])
        highs = np.stack([x[1] for x in lo_hi])
        k = len(self.children)
        if self.op == "and":
            return np.maximum(0.0, lows.sum(0) - (k - 1)), highs.min(0)
        return lows.max(0), np.minimum(1.0, highs.sum(0))

    def independent(self, frac: np.ndarray, shown: np.ndarray | None = None) -> np.ndarray:
        """Estimate the positive fraction per row of ``frac`` as if the antigens were independent.

        Independence is within a type: AND multiplies, OR is ``1 − Π(1 − x)``; a negated literal
        is ``1 − shown`` (a veto counts only where shown, as in :meth:`frechet`).
        """
        if self.op == "lit":
            f = frac[:, self.gene].astype(np.float64)
            if not self.negated:
                return f
            return 1.0 - (f if shown is None else shown[:, self.gene].astype(np.float64))
        parts = np.stack([c.independent(frac, shown) for c in self.children])
        if self.op == "and":
            return parts.prod(0)
        return 1.0 - (1.0 - parts).prod(0)


_TOKEN = re.compile(r"\s*(\(|\)|[^\s()]+)")


#: Deepest nesting of parentheses and NOTs a gate's text may have (a designed gate of 2-5
#: antigens needs a few; deeper text would exhaust Python's recursion).
MAX_NESTING = 32


def parse_gate(text: str, genes: Sequence[str]) -> Gate:
    """Parse ``"(A OR B) AND NOT C"`` into a :class:`Gate` over indices into ``genes``.

    ``NOT`` binds tighter than ``AND``, which binds tighter than ``OR``; keywords are
    case-insensitive. ``NOT`` of a parenthesised formula is pushed down to the genes.

    Raises
    ------
    InputError
        On a syntax error, an unknown gene, a repeated gene, or parentheses and NOTs nested
        deeper than :data:`MAX_NESTING`.
    """
    index = {str(g): i for i, g in enumerate(genes)}
    toks = _TOKEN.findall(text)
    pos = 0
    depth = 0

    def peek() -> str | None:
        return toks[pos] if pos < len(toks) else None

    def take() -> str:
        nonlocal pos
        if pos >= len(toks):
            msg = f"Gate {text!r} ends too early; check for a missing gene or ')'."
            raise InputError(msg)
        pos += 1
        return toks[pos - 1]

    def expr_or() -> Gate:
        parts = [expr_and()]
        while (t := peek()) is not None and t.upper() == "OR":
            take()
            parts.append(expr_and())
        return Gate.or_(*parts)

    def expr_and() -> Gate:
        parts = [expr_not()]
        while (t := peek()) is not None and t.upper() == "AND":
            take()
            parts.append(expr_not())
        return Gate.and_(*parts)

    def expr_not() -> Gate:
        nonlocal depth
        t = take()
        if t.upper() == "NOT" or t == "(":
            depth += 1
            if depth > MAX_NESTING:
                msg = (
                    f"Gate {text[:60]!r}…: parentheses and NOTs nested deeper than "
                    f"{MAX_NESTING} levels; write the formula flatter (A AND B AND C)."
                )
                raise InputError(msg)
        if t.upper() == "NOT":
            g = expr_not().negate()
            depth -= 1
            return g
        if t == "(":
            g = expr_or()
            if take() != ")":
                msg = f"Gate {text!r}: expected ')'."
                raise InputError(msg)
            depth -= 1
            return g
        if t not in index:
            msg = f"Gate {text!r}: unknown gene {t!r}; use names from the gene list."
            raise InputError(msg)
        return Gate.lit(index[t])

    g = expr_or()
    if pos != len(toks):
        msg = f"Gate {text!r}: unexpected {toks[pos]!r}; join terms with AND / OR."
        raise InputError(msg)
    return g


def _negated(gate: Gate) -> list[int]:
    """Genes that appear under NOT in ``gate``."""
    if gate.op == "lit":
        return [gate.gene] if gate.negated else []
    return [g for c in gate.children for g in _negated(c)]
