"""The inputs of a gate search packed once for exact counting: :class:`_Problem`.

The healthy side may be cells, pseudobulk contexts or both.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numba
import numpy as np

from antigenscout._errors import InputError

from .._kernels import PackedBits, as_bool_sparse, group_gene_popcount, group_popcount, pack_groups
from ._gate import (
    Gate,
)

# --------------------------------------------------------------------------------------------
# Inputs
# --------------------------------------------------------------------------------------------


@dataclass
class HealthyCells:
    """Single-cell healthy reference: exact co-positivity per cell type.

    Parameters
    ----------
    X
        Healthy cells × genes positivity (dense bool or scipy sparse), genes aligned with the
        tumour matrix.
    cell_types
        Integer cell-type code per healthy cell, in ``0 .. n_types - 1``.
    weights
        ``(n_types,)`` vital weight per type in [0, 1].
    names
        Optional ``(n_types,)`` cell-type names (default ``type0``, ``type1``, ...).
    """

    X: object
    cell_types: np.ndarray
    weights: np.ndarray
    names: Sequence[str] | None = None


@dataclass
class HealthyPseudobulk:
    """Pseudobulk healthy reference: per-type positive fractions; gate risks are Fréchet bounds.

    Parameters
    ----------
    fractions
        ``(n_types, n_genes)`` positive fraction per cell type and gene, in [0, 1].
    weights
        ``(n_types,)`` vital weight per type in [0, 1].
    names
        Optional ``(n_types,)`` cell-type names.
    shown
        Optional ``(n_types, n_genes)``: the fraction of cells *shown* to carry the antigen
        (protein, measured cells); a NOT arm vetoes only those (``Gate.frechet``). Values
        above ``fractions`` are lowered to it. ``None``: the fractions themselves.
    """

    fractions: np.ndarray
    weights: np.ndarray
    names: Sequence[str] | None = None
    shown: np.ndarray | None = None


@dataclass
class HealthyMixed:
    """Healthy single cells of some types plus pseudobulk fractions of the others.

    A gate's per-type fraction is exact for the single-cell types and the Fréchet interval for
    the pseudobulk types; the worst risk is the maximum over the types of both parts. Typical
    use: healthy cells of one organ (bone marrow inside an AML dataset) with the rest of the
    body from a pseudobulk reference. The two parts should describe different cell types (a type
    in both is simply counted twice, which is conservative).

    ``risk_is_bound`` is True for a gate exactly when its worst (upper) risk comes from a
    pseudobulk type; on a tie the single-cell type is named, because then the reported risk is
    attained by an exact count and is itself exact.

    Parameters
    ----------
    cells
        The single-cell part (exact co-positivity).
    pseudobulk
        The pseudobulk part (per-type fractions over the same genes).
    """

    cells: HealthyCells
    pseudobulk: HealthyPseudobulk


HealthyInput = (
    HealthyCells | HealthyPseudobulk | HealthyMixed | Sequence[HealthyCells | HealthyPseudobulk]
)


def _split_healthy(
    healthy: HealthyInput,
) -> tuple[HealthyCells | None, HealthyPseudobulk | None]:
    """Split any accepted healthy input into its single-cell and pseudobulk parts."""
    if isinstance(healthy, HealthyCells):
        return healthy, None
    if isinstance(healthy, HealthyPseudobulk):
        return None, healthy
    if isinstance(healthy, HealthyMixed):
        parts: list[object] = [healthy.cells, healthy.pseudobulk]
    elif isinstance(healthy, Sequence) and not isinstance(healthy, str):
        parts = list(healthy)
    else:
        parts = []
    cells = [p for p in parts if isinstance(p, HealthyCells)]
    bulk = [p for p in parts if isinstance(p, HealthyPseudobulk)]
    if len(cells) != 1 or len(bulk) != 1 or len(parts) != 2:  # noqa: PLR2004
        msg = (
            "healthy must be a HealthyCells, a HealthyPseudobulk, or a HealthyMixed "
            "(equivalently a pair of one HealthyCells and one HealthyPseudobulk)."
        )
        raise InputError(msg)
    return cells[0], bulk[0]


def _weights_names(part: HealthyCells | HealthyPseudobulk, where: str) -> tuple[np.ndarray, list]:
    w = np.asarray(part.weights, dtype=np.float64)
    if w.ndim != 1 or not np.all((w >= 0) & (w <= 1)):
        msg = f"{where}.weights must be a 1-D array of vital weights in [0, 1]."
        raise InputError(msg)
    names = part.names
    if names is None:
        names = [f"type{i}" for i in range(w.size)]
    if len(names) != w.size:
        msg = f"{where}.names has {len(names)} entries; expected {w.size} (one per weight)."
        raise InputError(msg)
    return w, [str(x) for x in names]


class _Problem:
    """Validated, packed inputs shared by evaluation and search.

    Healthy types are held in one list: first the single-cell types that have cells (exact),
    then the pseudobulk types (Fréchet bounds); ``type_is_bound`` tells them apart.
    """

    def __init__(  # noqa: PLR0913, PLR0915, PLR0917
        self,
        T: object,
        patients: np.ndarray,
        healthy: HealthyInput,
        genes: Sequence[str],
        compartments: np.ndarray | None,
        not_missed: np.ndarray | None = None,
    ) -> None:
        self.genes = np.asarray([str(g) for g in genes], dtype=object)
        g = self.genes.size
        self.T = as_bool_sparse(T, "T (tumour positivity)")
        n_t = self.T.shape[0]
        if self.T.shape[1] != g:
            msg = f"T has {self.T.shape[1]} gene columns but {g} gene names were given."
            raise InputError(msg)
        if n_t == 0:
            msg = "T has no tumour cells; pass at least one cell."
            raise InputError(msg)
        if len(set(self.genes.tolist())) != g:
            msg = "Gene names must be unique; de-duplicate them before the gate search."
            raise InputError(msg)
        patients = np.asarray(patients)
        if patients.shape != (n_t,):
            msg = f"patients must hold one label per tumour cell ({n_t}); got {patients.shape}."
            raise InputError(msg)
        self.tumour = pack_groups(self.T, patients, name="T")
        self.n_tumor = n_t
        n_p = self.tumour.group_sizes.size
        if not_missed is None:
            self.miss_pg = np.zeros((n_p, g))
        else:
            self.miss_pg = np.asarray(not_missed, dtype=np.float64)
            if self.miss_pg.shape != (n_p, g) or not np.all(np.isfinite(self.miss_pg)):
                msg = (
                    f"not_missed must be ({n_p} patients in sorted order, {g} genes) finite "
                    f"cell counts; got {self.miss_pg.shape}."
                )
                raise InputError(msg)
            self.miss_pg = np.clip(self.miss_pg, 0.0, self.tumour.group_sizes[:, None])
        self.miss = self.miss_pg.sum(0)  # tumour cells per gene a NOT arm may wrongly count
        self.any_miss = bool(self.miss.any())
        self.compartments: dict[str, np.ndarray] = {}
        if compartments is not None:
            comp = np.asarray(compartments)
            if comp.shape != (n_t,):
                msg = f"compartments must hold one label per tumour cell ({n_t}); got {comp.shape}."
                raise InputError(msg)
            for lab in np.unique(comp):
                self.compartments[str(lab)] = self.tumour.mask(comp == lab)
        cells, bulk = _split_healthy(healthy)
        mixed = cells is not None and bulk is not None
        self.has_cells = cells is not None
        self.has_bulk = bulk is not None
        self.healthy: PackedBits | None = None
        self.frac: np.ndarray | None = None
        self.frac_shown: np.ndarray | None = None
        # tumour positives per gene, from the packed bits (duplicates and explicit zeros of
        # the sparse input do not count)
        self.s = group_gene_popcount(self.tumour.words, self.tumour.word_ptr).sum(0)
        w_parts: list[np.ndarray] = []
        name_parts: list[list[str]] = []
        single_parts: list[np.ndarray] = []  # per-type single-gene (upper) fractions
        if cells is not None:
            self._init_cells(cells, "healthy.cells" if mixed else "healthy", g)
            w_parts.append(self.w_cells)
            name_parts.append(self.names_cells)
            single_parts.append(self.h_counts / self.cell_sizes[:, None])
        if bulk is not None:
            self._init_bulk(bulk, "healthy.pseudobulk" if mixed else "healthy", g)
            w_parts.append(self.w_bulk)
            name_parts.append(self.names_bulk)
            single_parts.append(self.frac)
        self.w = np.concatenate(w_parts)
        self.type_names = np.asarray([n for p in name_parts for n in p], dtype=object)
        n_exact = self.w_cells.size if cells is not None else 0
        self.type_is_bound = np.arange(self.w.size) >= n_exact  # pseudobulk types come last
        h_single = np.concatenate(single_parts, axis=0)
        self.h_single = h_single  # (n_types, n_genes) single-gene (upper) fraction per type
        self.r_single = (self.w[:, None] * h_single).max(0) if self.w.size else np.zeros(g)

    def _init_cells(self, cells: HealthyCells, where: str, g: int) -> None:
        w, names = _weights_names(cells, where)
        H = as_bool_sparse(cells.X, f"{where}.X")
        if H.shape[1] != g:
            msg = f"{where}.X has {H.shape[1]} gene columns; expected {g} (as T)."
            raise InputError(msg)
        ct = np.asarray(cells.cell_types)
        if ct.shape != (H.shape[0],) or not np.issubdtype(ct.dtype, np.integer):
            msg = f"{where}.cell_types must be integer codes, one per healthy cell."
            raise InputError(msg)
        n_types = w.size
        if ct.size and (ct.min() < 0 or ct.max() >= n_types):
            msg = (
                f"{where}.cell_types must lie in 0..{n_types - 1} (one weight per type); "
                f"got {ct.min()}..{ct.max()}."
            )
            raise InputError(msg)
        self.healthy = pack_groups(H, ct, name=f"{where}.X")
        self.H = H
        self.h_labels = ct
        self.htypes = self.healthy.groups.astype(np.int64)  # types that have cells
        self.cell_sizes = self.healthy.group_sizes
        self.w_cells = w[self.htypes]
        self.names_cells = [names[i] for i in self.htypes.tolist()]
        self.h_counts = group_gene_popcount(self.healthy.words, self.healthy.word_ptr)

    def _init_bulk(self, bulk: HealthyPseudobulk, where: str, g: int) -> None:
        w, names = _weights_names(bulk, where)
        frac = np.asarray(bulk.fractions, dtype=np.float64)
        if frac.ndim != 2 or frac.shape[1] != g:  # noqa: PLR2004
            msg = f"{where}.fractions must be (n_types, {g}); got {frac.shape}."
            raise InputError(msg)
        if not np.all((frac >= 0) & (frac <= 1)):
            msg = f"{where}.fractions must lie in [0, 1] (fractions of positive cells)."
            raise InputError(msg)
        if w.size != frac.shape[0]:
            msg = f"{where}.weights has {w.size} entries; fractions has {frac.shape[0]}."
            raise InputError(msg)
        self.frac = np.ascontiguousarray(frac)
        if bulk.shown is None:
            self.frac_shown = self.frac
        else:
            shown = np.asarray(bulk.shown, dtype=np.float64)
            if shown.shape != frac.shape or not np.all((shown >= 0) & (shown <= 1)):
                msg = f"{where}.shown must be {frac.shape} fractions in [0, 1], like fractions."
                raise InputError(msg)
            self.frac_shown = np.ascontiguousarray(np.minimum(shown, frac))
        self.w_bulk = w
        self.names_bulk = names

    # per-type gate fractions for an evaluated gate ------------------------------------------
    def healthy_fraction(self, gate: Gate) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-type (lower, upper, estimate) gate fraction over all types (single-cell first).

        Exact (lower = upper = estimate) for single-cell types; for pseudobulk types the
        Fréchet interval and the estimate under independence (:meth:`Gate.independent`),
        clipped into the interval.
        """
        lows: list[np.ndarray] = []
        highs: list[np.ndarray] = []
        ests: list[np.ndarray] = []
        if self.healthy is not None:
            bits = gate.bits(self.healthy)
            f = _group_counts(bits, self.healthy.word_ptr) / self.cell_sizes
            lows.append(f)
            highs.append(f)
            ests.append(f)
        if self.frac is not None:
            lo, hi = gate.frechet(self.frac, self.frac_shown)
            lows.append(lo)
            highs.append(hi)
            ests.append(np.clip(gate.independent(self.frac, self.frac_shown), lo, hi))
        return np.concatenate(lows), np.concatenate(highs), np.concatenate(ests)


def _healthy_mode(prob: _Problem) -> str:
    if prob.has_cells and prob.has_bulk:
        return "mixed"
    return "cells" if prob.has_cells else "pseudobulk"


def _group_counts(bits: np.ndarray, word_ptr: np.ndarray) -> np.ndarray:
    return group_popcount(bits, word_ptr)


@contextmanager
def _threads(n_jobs: int | None):
    if n_jobs is None:
        yield
        return
    if not isinstance(n_jobs, int) or n_jobs == 0:
        msg = f"n_jobs must be a positive int, -1 (all cores) or None; got {n_jobs!r}."
        raise InputError(msg)
    old = numba.get_num_threads()
    n = (
        numba.config.NUMBA_NUM_THREADS
        if n_jobs < 0
        else min(n_jobs, numba.config.NUMBA_NUM_THREADS)
    )
    numba.set_num_threads(n)
    try:
        yield
    finally:
        numba.set_num_threads(old)
