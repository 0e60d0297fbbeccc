"""Gate evaluation and search against brute force on plain numpy boolean arrays."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import sparse

from antigenscout._errors import InputError
from antigenscout._types import GATE_OPS
from antigenscout.tl._gates import (
    Gate,
    HealthyCells,
    HealthyMixed,
    HealthyPseudobulk,
    evaluate_gates,
    parse_gate,
    search_gate_matrix,
)
from antigenscout.tl._gates._bounds import _pair_stats
from antigenscout.tl._gates._engine import _KIND_CODE, _combine, _pair_gate, _Search
from antigenscout.tl._gates._problem import _Problem
from antigenscout.tl._kernels import MODE_AND, MODE_ANDNOT
from antigenscout.tl._triple_kernels import (
    _candidate_obj,
    child_risk_lower,
    or_child_bound_max,
    triple_candidates,
)

# ---------------------------------------------------------------------------------------------
# brute force: every gate of 1–3 genes in the search space, evaluated with numpy booleans
# ---------------------------------------------------------------------------------------------


def _shapes(ops: set[str]):
    """(name, arity, function on boolean columns, ops used) for the search space."""
    a, o, n = "and" in ops, "or" in ops, "not" in ops
    out = [("A", 1, lambda x: x[0], set())]
    if a:
        out.append(("A&B", 2, lambda x: x[0] & x[1], {"and"}))
        out.append(("A&B&C", 3, lambda x: x[0] & x[1] & x[2], {"and"}))
    if a and n:
        out.append(("A&~B", 2, lambda x: x[0] & ~x[1], {"and", "not"}))
        out.append(("A&B&~C", 3, lambda x: x[0] & x[1] & ~x[2], {"and", "not"}))
        out.append(("A&~B&~C", 3, lambda x: x[0] & ~x[1] & ~x[2], {"and", "not"}))
    if o:
        out.append(("A|B", 2, lambda x: x[0] | x[1], {"or"}))
        out.append(("A|B|C", 3, lambda x: x[0] | x[1] | x[2], {"or"}))
    if a and o:
        out.append(("(A|B)&C", 3, lambda x: (x[0] | x[1]) & x[2], {"and", "or"}))
        out.append(("(A&B)|C", 3, lambda x: (x[0] & x[1]) | x[2], {"and", "or"}))
    if a and o and n:
        out.append(("(A|B)&~C", 3, lambda x: (x[0] | x[1]) & ~x[2], set(ops)))
        out.append(("(A&~B)|C", 3, lambda x: (x[0] & ~x[1]) | x[2], set(ops)))
    return out


def _distinct_gates(g, ops, min_genes, max_genes):
    """Every gate of the shapes of ``ops`` on ``g`` genes once: ``(shape, k, formula, genes)``
    for each distinct Boolean function of its (sorted) genes (role permutations skipped)."""
    seen = set()
    for name, k, f, _ in _shapes(ops):
        if not min_genes <= k <= max_genes:
            continue
        for combo in itertools.permutations(range(g), k):
            srt = sorted(combo)
            table = tuple(
                bool(f([np.array([bits[srt.index(i)]]) for i in combo])[0])
                for bits in itertools.product([False, True], repeat=k)
            )
            if (tuple(srt), table) not in seen:
                seen.add((tuple(srt), table))
                yield name, k, f, combo


def _brute_values(T, Hs, ct, w, max_genes, ops, cap, objective, frac=None, min_genes=1, bulk=None):  # noqa: PLR0913, PLR0917
    """Objective of every feasible gate, each distinct Boolean function once.

    ``frac``: pseudobulk alone (weights ``w``); ``bulk=(frac, w_bulk)``: mixed input, risk =
    max(exact single-cell risk over ``Hs``, Fréchet upper risk over ``frac``)."""
    vals = []
    for _name, k, f, combo in _distinct_gates(T.shape[1], set(ops), min_genes, max_genes):
        cov = f([T[:, i] for i in combo]).mean()
        if frac is None:
            risk = max(
                (w[t] * f([Hs[ct == t][:, i] for i in combo]).mean() for t in np.unique(ct)),
                default=0.0,
            )
        else:
            risk = _frechet_brute(f, k, combo, frac, w)
        if bulk is not None:
            risk = max(risk, _frechet_brute(f, k, combo, *bulk))
        if risk <= cap + 1e-12:
            vals.append(cov * (1 - risk) if objective == "score" else cov)
    return np.sort(np.array(vals))[::-1]


def _frechet_brute(f, k, combo, frac, w):
    """Sharp upper bound of P(formula) given marginals: max over all joint distributions of the
    k events is a linear programme; for read-once formulas the recursive Fréchet bound equals
    the bound computed here by enumerating the extreme 'comonotone/countermonotone' couplings
    is not needed: we check the recursion directly with independent scalar code."""
    out = 0.0
    for t in range(frac.shape[0]):
        m = [frac[t, i] for i in combo]
        u = _u(f, m)
        out = max(out, w[t] * u)
    return out


def _u(f, m):
    # evaluate the formula's Fréchet upper bound by probing its structure on truth tables
    # (independent scalar re-implementation of the recursion for the shapes above)
    name = f.__code__.co_consts
    del name
    table = {}
    for bits in itertools.product([False, True], repeat=len(m)):
        table[bits] = bool(f([np.array([b]) for b in bits])[0])
    # identify the shape by its truth table and apply the scalar recursion
    a = m[0]
    b = m[1] if len(m) > 1 else None
    c = m[2] if len(m) > 2 else None
    cands = {
        "A": lambda: a,
        "A&B": lambda: min(a, b),
        "A&~B": lambda: min(a, 1 - b),
        "A|B": lambda: min(1.0, a + b),
        "A&B&C": lambda: min(a, b, c),
        "A&B&~C": lambda: min(a, b, 1 - c),
        "A&~B&~C": lambda: min(a, 1 - b, 1 - c),
        "A|B|C": lambda: min(1.0, a + b + c),
        "(A|B)&C": lambda: min(1.0, a + b, c),
        "(A&B)|C": lambda: min(1.0, min(a, b) + c),
        "(A|B)&~C": lambda: min(1.0, a + b, 1 - c),
        "(A&~B)|C": lambda: min(1.0, min(a, 1 - b) + c),
    }
    for name, _k, ff, _ in _shapes({"and", "or", "not"}):
        if len(m) == _k:
            tt = {
                bits: bool(ff([np.array([x]) for x in bits])[0])
                for bits in itertools.product([False, True], repeat=len(m))
            }
            if tt == table:
                return cands[name]()
    raise AssertionError


def _data(seed, n_t=120, n_h=150, g=6, n_types=3, n_pat=3):  # noqa: PLR0913, PLR0917
    rng = np.random.default_rng(seed)
    p = rng.uniform(0.1, 0.8, g)
    T = rng.random((n_t, g)) < p
    H = rng.random((n_h, g)) < rng.uniform(0.0, 0.5, g)
    ct = rng.integers(0, n_types, n_h)
    w = rng.uniform(0.2, 1.0, n_types)
    pat = rng.integers(0, n_pat, n_t)
    return T, H, ct, w, pat


GENES6 = [f"G{i}" for i in range(6)]
_ALL_OPS = ("and", "or", "not")


# ---------------------------------------------------------------------------------------------
# Gate representation
# ---------------------------------------------------------------------------------------------


def test_canonical_form_and_strings():
    a, b, c = Gate.lit(0), Gate.lit(1), Gate.lit(2)
    assert Gate.and_(a, b) == Gate.and_(b, a)
    assert hash(Gate.and_(a, Gate.and_(b, c))) == hash(Gate.and_(Gate.and_(c, a), b))
    g = Gate.and_(Gate.or_(b, a), c.negate())
    assert g.to_string(["A", "B", "C"]) == "(A OR B) AND NOT C"
    assert Gate.and_(Gate.lit(1, negated=True), a).to_string(["CD33", "CD34"]) == (
        "CD33 AND NOT CD34"
    )
    assert parse_gate("(A or B) and not C", ["A", "B", "C"]) == g
    assert parse_gate("NOT (A OR B) AND C", ["A", "B", "C"]).to_string(["A", "B", "C"]) == (
        "C AND NOT A AND NOT B"
    )
    assert g.ops == ("and", "or", "not")
    assert g.genes == (0, 1, 2)


def test_repeated_literal_refused():
    with pytest.raises(InputError, match="twice"):
        Gate.and_(Gate.lit(0), Gate.lit(0, negated=True))
    with pytest.raises(InputError, match="twice"):
        parse_gate("A OR (B AND A)", ["A", "B"])
    with pytest.raises(InputError, match="unknown gene"):
        parse_gate("A AND Z", ["A", "B"])


# ---------------------------------------------------------------------------------------------
# exact evaluation vs numpy
# ---------------------------------------------------------------------------------------------

ARRAY_TYPES = [
    pytest.param(lambda x: x, id="dense"),
    pytest.param(sparse.csr_array, id="csr"),
    pytest.param(sparse.csc_matrix, id="csc_matrix"),
]


@pytest.mark.parametrize("to_array", ARRAY_TYPES)
def test_evaluate_all_shapes_vs_numpy(to_array):
    # 131 tumour cells: three patients of odd sizes, so every group has padding bits
    T, H, ct, w, pat = _data(1, n_t=131, n_h=97)
    Tin = to_array(T)
    assert (type(Tin) is np.ndarray) == (to_array is ARRAY_TYPES[0].values[0])
    healthy = HealthyCells(to_array(H), ct, w)
    names = ["A", "B", "C"]
    for name, k, f, _ in _shapes({"and", "or", "not"}):
        for combo in itertools.permutations(range(6), k):
            text = name
            for r, letter in enumerate(names[:k]):
                text = text.replace(letter, f"G{combo[r]}")
            text = text.replace("&", " AND ").replace("|", " OR ").replace("~", "NOT ")
            df = evaluate_gates([text], Tin, pat, healthy, genes=GENES6, max_vital_risk=1.0)
            x = f([T[:, i] for i in combo])
            assert df["tumor_n_positive"].iloc[0] == x.sum()
            assert df["tumor_coverage"].iloc[0] == pytest.approx(x.mean())
            per = [x[pat == p].mean() for p in np.unique(pat)]
            assert df["patient_coverage_median"].iloc[0] == pytest.approx(np.median(per))
            assert df["patients_covered_fraction"].iloc[0] == pytest.approx(
                np.mean(np.array(per) >= 0.8)
            )
            risks = [w[t] * f([H[ct == t][:, i] for i in combo]).mean() for t in range(3)]
            assert df["worst_healthy_risk"].iloc[0] == pytest.approx(max(risks))
            assert df["worst_healthy_cell_type"].iloc[0] == f"type{int(np.argmax(risks))}"
            assert not df["risk_is_bound"].iloc[0]
        if k == 3:
            break  # the 3-gene permutations of one shape suffice per parametrisation


def test_not_never_counts_padding():
    # 65 cells: the second word holds one real cell and 63 padding bits
    T = np.zeros((65, 2), dtype=bool)
    T[:, 0] = True
    H = np.zeros((3, 2), dtype=bool)
    df = evaluate_gates(
        ["G0 AND NOT G1"],
        T,
        np.zeros(65, int),
        HealthyCells(H, np.zeros(3, int), np.ones(1)),
        genes=["G0", "G1"],
    )
    assert df["tumor_n_positive"].iloc[0] == 65
    assert df["tumor_coverage"].iloc[0] == 1.0


def test_or_coverage_never_above_one():
    T = np.ones((70, 3), dtype=bool)
    df = evaluate_gates(
        ["G0 OR G1 OR G2"],
        T,
        np.zeros(70, int),
        HealthyCells(T[:5], np.zeros(5, int), np.ones(1)),
        genes=["G0", "G1", "G2"],
    )
    assert df["tumor_coverage"].iloc[0] == 1.0


def test_pseudobulk_frechet_bounds():
    rng = np.random.default_rng(3)
    frac = rng.uniform(0, 1, (4, 3))
    w = rng.uniform(0, 1, 4)
    T = rng.random((50, 3)) < 0.5
    hb = HealthyPseudobulk(frac, w)
    names = ["G0", "G1", "G2"]
    cases = {
        "G0 AND G1": (lambda a, b, c: max(0, a + b - 1), lambda a, b, c: min(a, b)),
        "G0 OR G1": (lambda a, b, c: max(a, b), lambda a, b, c: min(1, a + b)),
        "G0 AND NOT G1": (lambda a, b, c: max(0, a - b), lambda a, b, c: min(a, 1 - b)),
        "(G0 OR G1) AND NOT G2": (
            lambda a, b, c: max(0, max(a, b) + (1 - c) - 1),
            lambda a, b, c: min(1, a + b, 1 - c),
        ),
    }
    for text, (lo, hi) in cases.items():
        df = evaluate_gates([text], T, np.zeros(50, int), hb, genes=names, max_vital_risk=1.0)
        up = [w[t] * hi(*frac[t]) for t in range(4)]
        low = [w[t] * lo(*frac[t]) for t in range(4)]
        assert df["worst_healthy_risk"].iloc[0] == pytest.approx(max(up))
        assert df["worst_healthy_risk_lower"].iloc[0] == pytest.approx(max(low))
        assert df["risk_is_bound"].iloc[0]


def test_compartments():
    T, H, ct, w, pat = _data(5, n_t=90)
    comp = np.where(np.arange(90) % 3 == 0, "stem", "bulk")
    df = evaluate_gates(
        ["G0 AND NOT G1"], T, pat, HealthyCells(H, ct, w), genes=GENES6, compartments=comp
    )
    x = T[:, 0] & ~T[:, 1]
    assert df["coverage_stem"].iloc[0] == pytest.approx(x[comp == "stem"].mean())
    assert df["coverage_bulk"].iloc[0] == pytest.approx(x[comp == "bulk"].mean())


# ---------------------------------------------------------------------------------------------
# search vs brute force
# ---------------------------------------------------------------------------------------------

OPS = [("and",), ("or",), ("and", "not"), ("and", "or"), ("and", "or", "not")]


@pytest.mark.parametrize("ops", OPS, ids=["+".join(o) for o in OPS])
@pytest.mark.parametrize("objective", ["coverage", "score"])
@pytest.mark.parametrize("pseudobulk", [False, True], ids=["cells", "pseudobulk"])
def test_search_exact_up_to_three(ops, objective, pseudobulk):
    T, H, ct, w, pat = _data(7, g=6)
    cap = 0.25
    if pseudobulk:
        frac = np.stack([H[ct == t].mean(0) for t in range(3)])
        healthy = HealthyPseudobulk(frac, w)
        expect = _brute_values(T, None, None, w, 3, ops, cap, objective, frac=frac)
    else:
        healthy = HealthyCells(sparse.csr_array(H), ct, w)
        expect = _brute_values(T, H, ct, w, 3, ops, cap, objective)
    k = 15
    df = search_gate_matrix(
        sparse.csc_array(T),
        pat,
        healthy,
        genes=GENES6,
        max_genes=3,
        ops=ops,
        max_vital_risk=cap,
        top_k=k,
        objective=objective,
    )
    got = df["objective"].to_numpy()
    n = min(k, expect.size)
    np.testing.assert_allclose(got[:n], expect[:n], rtol=0, atol=1e-12)
    assert len(df) == n
    assert df["optimal"].all()
    assert (df["worst_healthy_risk"] <= cap + 1e-12).all()
    assert df["gate"].is_unique
    assert (df["tumor_coverage"] <= 1).all()
    assert df["risk_is_bound"].all() == pseudobulk
    # every reported gate uses allowed ops and no repeated gene
    for ops_used, gene_list in zip(df["ops"], df["genes"], strict=True):
        assert set(filter(None, ops_used.split(","))) <= set(ops)
        assert len(set(gene_list.split(","))) == len(gene_list.split(","))


@pytest.mark.parametrize("min_genes", [2, 3])
def test_min_genes(min_genes):
    T, H, ct, w, pat = _data(17, g=6)
    ops = ("and", "or", "not")
    expect = _brute_values(T, H, ct, w, 3, ops, 0.2, "coverage", min_genes=min_genes)
    df = search_gate_matrix(
        T,
        pat,
        HealthyCells(H, ct, w),
        genes=GENES6,
        max_genes=3,
        min_genes=min_genes,
        max_vital_risk=0.2,
        top_k=10,
    )
    assert (df["n_genes"] >= min_genes).all()
    np.testing.assert_allclose(df["objective"], expect[: len(df)], atol=1e-12)
    assert len(df) == min(10, expect.size)


def test_pair_methods_agree():
    T, H, ct, w, pat = _data(11, g=6)
    kw = {"genes": GENES6, "max_genes": 2, "top_k": 40, "max_vital_risk": 0.3}
    a = search_gate_matrix(T, pat, HealthyCells(H, ct, w), pair_method="bits", **kw)
    b = search_gate_matrix(T, pat, HealthyCells(H, ct, w), pair_method="gram", **kw)
    assert a["gate"].tolist() == b["gate"].tolist()


@pytest.mark.parametrize("healthy_kind", ["cells", "mixed"])
@pytest.mark.parametrize("ops", [("and", "or", "not"), ("and", "not"), ("or",)])
@pytest.mark.parametrize("objective", ["coverage", "score"])
def test_two_gene_top_k_cut_skips_nothing_that_matters(monkeypatch, healthy_kind, ops, objective):
    """A 2-gene search counts only the pair tiles that can reach the top-k cut seeded by the
    most frequent candidates; its table equals the full pair statistics' (the Gram path)."""
    import antigenscout.tl._gates._bounds as gates_mod

    monkeypatch.setattr(gates_mod, "_SEED_GENES", 6)  # seed on 6 of 37 genes: tiles are skipped
    g = 37
    T, H, ct, w, pat, frac, w_pb, _, _ = _mixed_data(23, n_t=300, n_h=200, g=g)
    rng = np.random.default_rng(4)
    T = rng.random(T.shape) < rng.uniform(0.0, 0.9, g) ** 2  # frequent and rare genes
    healthy = HealthyCells(H, ct, w) if healthy_kind == "cells" else _mixed(H, ct, w, frac, w_pb)
    if healthy_kind != "cells":  # a veto shown in part of the pseudobulk types
        healthy = HealthyMixed(
            healthy.cells,
            HealthyPseudobulk(frac, w_pb, shown=frac * (rng.random(frac.shape) < 0.5)),
        )
    genes = [f"G{i}" for i in range(g)]
    n_pat = np.unique(pat).size
    missed = rng.uniform(0, 8, (n_pat, g)) * (rng.random((n_pat, g)) < 0.3)
    kw = {"genes": genes, "max_genes": 2, "top_k": 15, "ops": ops, "objective": objective,
          "not_missed": missed}  # fmt: skip
    for cap, min_genes in ((0.4, 1), (1.0, 2)):
        cands = genes[3:]  # a candidate subset, so genes outside it are skipped too
        a = search_gate_matrix(T, pat, healthy, max_vital_risk=cap, min_genes=min_genes,
                         candidates=cands, **kw)  # fmt: skip
        b = search_gate_matrix(T, pat, healthy, max_vital_risk=cap, min_genes=min_genes,
                         candidates=cands, pair_method="gram", **kw)  # fmt: skip
        assert a["gate"].tolist() == b["gate"].tolist()
        np.testing.assert_array_equal(a["objective"].to_numpy(), b["objective"].to_numpy())


def test_beam_four_five_is_sound():
    T, H, ct, w, pat = _data(13, g=7, n_t=150)
    genes = [f"G{i}" for i in range(7)]
    df = search_gate_matrix(
        T,
        pat,
        HealthyCells(H, ct, w),
        genes=genes,
        max_genes=5,
        top_k=10,
        beam_width=4,
        max_vital_risk=0.2,
    )
    ev = evaluate_gates(df["gate"].tolist(), T, pat, HealthyCells(H, ct, w), genes=genes)
    np.testing.assert_allclose(ev["tumor_coverage"], df["tumor_coverage"])
    assert (df["optimality_gap"] >= 0).all()
    assert ((df["optimality_gap"] == 0) == df["optimal"]).all()
    # with a beam wide enough to hold everything nothing is skipped
    full = search_gate_matrix(
        T,
        pat,
        HealthyCells(H, ct, w),
        genes=genes,
        max_genes=4,
        top_k=10,
        beam_width=10_000,
        max_vital_risk=0.2,
    )
    assert full["optimal"].all()
    assert full["objective"].iloc[0] >= df["objective"].iloc[0] - full["optimality_gap"].max()


def _np_eval(gate: Gate, X: np.ndarray) -> np.ndarray:
    """Independent dense evaluation of a gate tree."""
    if gate.op == "lit":
        col = X[:, gate.gene]
        return ~col if gate.negated else col
    parts = [_np_eval(c, X) for c in gate.children]
    return np.logical_and.reduce(parts) if gate.op == "and" else np.logical_or.reduce(parts)


def _chain_gate_coverages(  # noqa: PLR0913
    T: np.ndarray,
    H: np.ndarray,
    ct: np.ndarray,
    w: np.ndarray,
    *,
    n_genes: int,
    depth: int,
    cap: float,
) -> np.ndarray:
    """Brute force: tumour coverage of every chain gate of up to ``depth`` genes (each step
    extends by AND, OR or AND NOT one new gene) whose worst weighted healthy risk is within
    ``cap``, best first."""
    level = {Gate.lit(i) for i in range(n_genes)}
    every = set(level)
    for _ in range(depth - 1):
        nxt = set()
        for base in level:
            for i in set(range(n_genes)) - set(base.genes):
                nxt.add(Gate.and_(base, Gate.lit(i)))
                nxt.add(Gate.or_(base, Gate.lit(i)))
                nxt.add(Gate.and_(base, Gate.lit(i, negated=True)))
        level = nxt
        every |= nxt
    vals = [
        _np_eval(gt, T).mean()
        for gt in every
        if max(w[t] * _np_eval(gt, H[ct == t]).mean() for t in range(len(w))) <= cap + 1e-12
    ]
    return np.sort(vals)[::-1]


def test_wide_beam_is_exact_on_four_gene_chains():
    T, H, ct, w, pat = _data(19, g=5, n_t=80, n_h=90)
    genes = [f"G{i}" for i in range(5)]
    cap = 0.2
    expect = _chain_gate_coverages(T, H, ct, w, n_genes=5, depth=4, cap=cap)
    df = search_gate_matrix(
        T,
        pat,
        HealthyCells(H, ct, w),
        genes=genes,
        max_genes=4,
        max_vital_risk=cap,
        top_k=12,
        beam_width=100_000,
    )
    assert df["optimal"].all()
    np.testing.assert_allclose(df["objective"], expect[:12], atol=1e-12)


# ---------------------------------------------------------------------------------------------
# OR triples: exact within a work budget, a beam with a stated bound beyond it
# ---------------------------------------------------------------------------------------------


def _or_heavy(seed: int, g: int = 8):
    """Data with many OR triples near the top: frequent-ish, weakly overlapping genes."""
    rng = np.random.default_rng(seed)
    T = rng.random((150, g)) < rng.uniform(0.1, 0.45, g)
    H = rng.random((160, g)) < rng.uniform(0.0, 0.25, g)
    ct = rng.integers(0, 3, 160)
    w = rng.uniform(0.3, 1.0, 3)
    pat = rng.integers(0, 3, 150)
    return T, H, ct, w, pat


@pytest.mark.parametrize("objective", ["coverage", "score"])
@pytest.mark.parametrize("healthy_kind", ["cells", "mixed"])
def test_triple_budget_huge_is_the_exact_search(objective, healthy_kind):
    """With a budget above the work estimate the triple search is the exact one: the same
    table as ``triple_budget=None`` and the brute-force values, every row optimal."""
    g = 8
    T, H, ct, w, pat = _or_heavy(3, g)
    genes = [f"G{i}" for i in range(g)]
    cap = 0.3
    if healthy_kind == "cells":
        healthy = HealthyCells(H, ct, w)
        expect = _brute_values(T, H, ct, w, 3, _ALL_OPS, cap, objective)
    else:
        frac = np.random.default_rng(1).uniform(0.0, 0.3, (2, g))
        w_pb = np.array([0.5, 0.9])
        healthy = _mixed(H, ct, w, frac, w_pb)
        expect = _brute_values(T, H, ct, w, 3, _ALL_OPS, cap, objective, bulk=(frac, w_pb))
    kw = {"genes": genes, "max_genes": 3, "max_vital_risk": cap, "top_k": 20}
    exact = search_gate_matrix(T, pat, healthy, objective=objective, triple_budget=None, **kw)
    wide = search_gate_matrix(T, pat, healthy, objective=objective, triple_budget=10**12, **kw)
    assert wide.attrs["triple_or_work"] > 0
    assert not wide.attrs["triple_beam"]
    assert wide["gate"].tolist() == exact["gate"].tolist()
    assert wide["optimal"].all()
    np.testing.assert_allclose(wide["objective"], expect[:20], rtol=0, atol=1e-12)


@pytest.mark.parametrize("budget", [0, 50, 400])
@pytest.mark.parametrize("objective", ["coverage", "score"])
@pytest.mark.parametrize("seed", [3, 8])
def test_triple_budget_small_states_a_sound_bound(budget, objective, seed):
    """Over budget the OR children are beamed: every row is evaluated exactly, and the true
    i-th best value (brute force) is at most row i's objective + its optimality gap, i.e. at
    most max(row objective, the stated bound); with no OR expansion at all (budget 0) the
    search cannot prove its OR-rich top optimal."""
    g = 8
    T, H, ct, w, pat = _or_heavy(seed, g)
    genes = [f"G{i}" for i in range(g)]
    cap = 0.3
    healthy = HealthyCells(H, ct, w)
    expect = _brute_values(T, H, ct, w, 3, _ALL_OPS, cap, objective)
    k = 20
    df = search_gate_matrix(T, pat, healthy, genes=genes, max_genes=3, max_vital_risk=cap, top_k=k,
                      objective=objective, triple_budget=budget)  # fmt: skip
    assert df.attrs["triple_beam"]
    assert df.attrs["triple_or_work"] > budget
    bound = df.attrs["skipped_upper_bound"]
    got = df["objective"].to_numpy()
    gap = df["optimality_gap"].to_numpy()
    np.testing.assert_allclose(gap, np.maximum(0.0, bound - got), rtol=0, atol=0)
    assert ((gap == 0) == df["optimal"]).all()
    n = min(k, expect.size)
    assert len(df) == n
    assert (expect[:n] <= got + gap + 1e-12).all()  # brute force ≤ max(found, bound)
    assert (got <= expect[:n] + 1e-12).all()  # nothing better than the truth is claimed
    ev = evaluate_gates(df["gate"].tolist(), T, pat, healthy, genes=genes, max_vital_risk=cap)
    np.testing.assert_allclose(ev["tumor_coverage"], df["tumor_coverage"], atol=1e-12)
    if budget == 0:
        assert bound >= expect[0] - 1e-12
        assert not df["optimal"].all()


def test_triple_budget_bound_carries_into_the_four_gene_beam():
    """With OR triples beamed, the 4-gene beam's stated bound still covers every 4-gene chain
    gate: brute-force i-th best ≤ row i's objective + gap."""
    T, H, ct, w, pat = _data(19, g=5, n_t=80, n_h=90)
    genes = [f"G{i}" for i in range(5)]
    cap = 0.2
    expect = _chain_gate_coverages(T, H, ct, w, n_genes=5, depth=4, cap=cap)
    df = search_gate_matrix(T, pat, HealthyCells(H, ct, w), genes=genes, max_genes=4,
                      max_vital_risk=cap, top_k=12, beam_width=3, triple_budget=0)  # fmt: skip
    assert df.attrs["triple_beam"]
    n = len(df)
    assert (
        expect[:n] <= df["objective"].to_numpy() + df["optimality_gap"].to_numpy() + 1e-12
    ).all()


@pytest.mark.parametrize("objective", ["coverage", "score"])
def test_or_child_bound_max_is_above_every_feasible_or_child(objective):
    """The stated bound of a beamed parent, ``or_child_bound_max``, is at least the exact
    objective of each of its feasible OR children ``P ∨ c`` (numpy booleans)."""
    g = 7
    T, H, ct, w, pat = _or_heavy(5, g)
    genes = [f"G{i}" for i in range(g)]
    cap = 0.35
    prob = _Problem(T, pat, HealthyCells(H, ct, w), genes, None)
    st = _pair_stats(prob, "bits")
    pairs = [(k, a, b) for k in ("and", "or") for a in range(g) for b in range(a + 1, g)]
    pairs += [("andnot", a, b) for a in range(g) for b in range(g) if a != b]
    kind = np.array([_KIND_CODE[k] for k, _, _ in pairs], dtype=np.int64)
    pa = np.array([a for _, a, _ in pairs], dtype=np.int64)
    pb = np.array([b for _, _, b in pairs], dtype=np.int64)
    lit = {"and": lambda X, a, b: X[:, a] & X[:, b], "andnot": lambda X, a, b: X[:, a] & ~X[:, b],
           "or": lambda X, a, b: X[:, a] | X[:, b]}  # fmt: skip
    covp = np.array([lit[k](T, a, b).sum() for k, a, b in pairs], dtype=np.float64)
    riskp = np.array(
        [max(w[t] * lit[k](H, a, b)[ct == t].mean() for t in range(3)) for k, a, b in pairs]
    )
    ub = or_child_bound_max(kind, pa, pb, covp, riskp, np.arange(g), st.P, prob.s,
                            float(T.shape[0]), prob.r_single, st.r_and, st.r_or, st.r_andnot,
                            cap, objective == "score")  # fmt: skip
    n_checked = 0
    for p, (k, a, b) in enumerate(pairs):
        for c in set(range(g)) - {a, b}:
            child_t = lit[k](T, a, b) | T[:, c]
            child_h = lit[k](H, a, b) | H[:, c]
            risk = max(w[t] * child_h[ct == t].mean() for t in range(3))
            if risk > cap + 1e-12:
                continue
            v = child_t.mean() * ((1 - risk) if objective == "score" else 1.0)
            assert v <= ub[p] + 1e-12, (k, a, b, c, v, ub[p])
            n_checked += 1
    assert n_checked > 20


def test_triple_budget_refused():
    T, H, ct, w, pat = _data(1)
    with pytest.raises(InputError, match="triple_budget"):
        search_gate_matrix(
            T, pat, HealthyCells(H, ct, w), genes=GENES6, max_genes=3, triple_budget=-1
        )


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    cap=st.sampled_from([0.0, 0.1, 0.3, 1.0]),
    g=st.integers(3, 5),
)
def test_property_search_matches_brute_force(seed, cap, g):
    T, H, ct, w, pat = _data(seed, n_t=70, n_h=60, g=g)
    genes = [f"G{i}" for i in range(g)]
    ops = ("and", "or", "not")
    expect = _brute_values(T, H, ct, w, 3, ops, cap, "coverage")
    df = search_gate_matrix(
        T,
        pat,
        HealthyCells(H, ct, w),
        genes=genes,
        max_genes=3,
        ops=ops,
        max_vital_risk=cap,
        top_k=8,
    )
    n = min(8, expect.size)
    assert len(df) == n
    if n:
        np.testing.assert_allclose(df["objective"].to_numpy(), expect[:n], atol=1e-12)


# ---------------------------------------------------------------------------------------------
# mixed healthy input: exact single cells for some types, pseudobulk (Fréchet) for the others
# ---------------------------------------------------------------------------------------------

# independent scalar Fréchet bounds (lower, upper) of every searched shape
FRECHET = {
    "A": (lambda a, b, c: a, lambda a, b, c: a),
    "A&B": (lambda a, b, c: max(0.0, a + b - 1), lambda a, b, c: min(a, b)),
    "A&~B": (lambda a, b, c: max(0.0, a - b), lambda a, b, c: min(a, 1 - b)),
    "A|B": (lambda a, b, c: max(a, b), lambda a, b, c: min(1.0, a + b)),
    "A&B&C": (lambda a, b, c: max(0.0, a + b + c - 2), lambda a, b, c: min(a, b, c)),  # noqa: PLW0108
    "A&B&~C": (lambda a, b, c: max(0.0, a + b - c - 1), lambda a, b, c: min(a, b, 1 - c)),
    "A&~B&~C": (lambda a, b, c: max(0.0, a - b - c), lambda a, b, c: min(a, 1 - b, 1 - c)),
    "A|B|C": (lambda a, b, c: max(a, b, c), lambda a, b, c: min(1.0, a + b + c)),  # noqa: PLW0108
    "(A|B)&C": (
        lambda a, b, c: max(0.0, max(a, b) + c - 1),
        lambda a, b, c: min(1.0, a + b, c),
    ),
    "(A&B)|C": (
        lambda a, b, c: max(0.0, a + b - 1, c),
        lambda a, b, c: min(1.0, min(a, b) + c),
    ),
    "(A|B)&~C": (
        lambda a, b, c: max(0.0, max(a, b) - c),
        lambda a, b, c: min(1.0, a + b, 1 - c),
    ),
    "(A&~B)|C": (
        lambda a, b, c: max(0.0, a - b, c),
        lambda a, b, c: min(1.0, min(a, 1 - b) + c),
    ),
}


def _mixed_data(seed, n_t=120, n_h=150, g=6, n_cell_types=3, n_bulk_types=4, n_pat=3):  # noqa: PLR0913, PLR0917
    """Tumour, healthy single cells (exact part) and a pseudobulk part made from hidden cells,
    so its true per-type gate fractions are known too."""
    T, H, ct, w, pat = _data(seed, n_t=n_t, n_h=n_h, g=g, n_types=n_cell_types, n_pat=n_pat)
    rng = np.random.default_rng(seed + 1000)
    H2 = rng.random((200, g)) < rng.uniform(0.0, 0.6, g)
    ct2 = np.arange(200) % n_bulk_types
    frac = np.stack([H2[ct2 == t].mean(0) for t in range(n_bulk_types)])
    w_pb = rng.uniform(0.2, 1.0, n_bulk_types)
    return T, H, ct, w, pat, frac, w_pb, H2, ct2


def _mixed(H, ct, w, frac, w_pb):
    cells = HealthyCells(H, ct, w, names=[f"cell{t}" for t in range(w.size)])
    bulk = HealthyPseudobulk(frac, w_pb, names=[f"bulk{t}" for t in range(w_pb.size)])
    return HealthyMixed(cells, bulk)


def test_evaluate_mixed_all_shapes_vs_numpy():
    # odd group sizes: padding bits in every tumour patient and healthy type
    T, H, ct, w, pat, frac, w_pb, H2, ct2 = _mixed_data(21, n_t=131, n_h=97, g=5)
    genes = GENES6[:5]
    texts, expect = [], []
    for name, k, f, _ in _shapes({"and", "or", "not"}):
        for combo in itertools.permutations(range(5), k):
            text = name
            for r, letter in enumerate("ABC"[:k]):
                text = text.replace(letter, f"G{combo[r]}")
            texts.append(text.replace("&", " AND ").replace("|", " OR ").replace("~", "NOT "))
            exact = [w[t] * f([H[ct == t][:, i] for i in combo]).mean() for t in range(w.size)]
            lo_f, hi_f = FRECHET[name]
            m = [[frac[t, i] for i in combo] + [0.0] * (3 - k) for t in range(w_pb.size)]
            upper = [w_pb[t] * hi_f(*m[t]) for t in range(w_pb.size)]
            lower = [w_pb[t] * lo_f(*m[t]) for t in range(w_pb.size)]
            truth = [w_pb[t] * f([H2[ct2 == t][:, i] for i in combo]).mean() for t in range(4)]
            expect.append((exact, upper, lower, max(exact + truth)))
    df = evaluate_gates(texts, T, pat, _mixed(H, ct, w, frac, w_pb), genes=genes)
    assert len(df) == len(texts)
    names = [f"cell{t}" for t in range(3)] + [f"bulk{t}" for t in range(4)]
    for (exact, upper, lower, truth), (_, row) in zip(expect, df.iterrows(), strict=True):
        both = np.array(exact + upper)
        assert row["worst_healthy_risk"] == pytest.approx(max(*exact, *upper), abs=1e-12)
        # argmax over the cells' types first: ties name the exact type
        assert row["worst_healthy_cell_type"] == names[int(np.argmax(both))]
        assert row["risk_is_bound"] == (max(upper) > max(exact))
        assert row["worst_healthy_risk_lower"] == pytest.approx(
            max(*exact, *lower),
            abs=1e-12,
        )
        # the lower and upper risks bracket the true worst risk of the hidden cells
        assert row["worst_healthy_risk_lower"] <= truth + 1e-12
        assert truth <= row["worst_healthy_risk"] + 1e-12
        if not row["risk_is_bound"]:
            assert row["worst_healthy_risk"] == pytest.approx(row["worst_healthy_risk_lower"])
    assert df["risk_is_bound"].any()
    assert not df["risk_is_bound"].all()


def test_mixed_tie_names_the_exact_type():
    # the pseudobulk repeats the single cells' own fractions with the same weight: every single
    # gene ties, and the tie goes to the exact type (the risk is attained, so it is exact)
    T, H, ct, w, pat = _data(23, g=4)
    frac = np.stack([H[ct == t].mean(0) for t in range(3)])
    healthy = _mixed(H, ct, w, frac, w.copy())
    df = evaluate_gates(["G0", "G1", "G2", "G3"], T, pat, healthy, genes=GENES6[:4])
    for i, (_, row) in enumerate(df.iterrows()):
        exact = [w[t] * H[ct == t][:, i].mean() for t in range(3)]
        assert row["worst_healthy_cell_type"] == f"cell{int(np.argmax(exact))}"
        assert not row["risk_is_bound"]
        assert row["worst_healthy_risk"] == pytest.approx(max(exact))


@pytest.mark.parametrize("ops", OPS, ids=["+".join(o) for o in OPS])
@pytest.mark.parametrize("objective", ["coverage", "score"])
def test_search_exact_up_to_three_mixed(ops, objective):
    T, H, ct, w, pat, frac, w_pb, _, _ = _mixed_data(7, g=6)
    cap = 0.3
    expect = _brute_values(T, H, ct, w, 3, ops, cap, objective, bulk=(frac, w_pb))
    healthy = _mixed(sparse.csr_array(H), ct, w, frac, w_pb)
    k = 15
    df = search_gate_matrix(
        sparse.csc_array(T),
        pat,
        healthy,
        genes=GENES6,
        max_genes=3,
        ops=ops,
        max_vital_risk=cap,
        top_k=k,
        objective=objective,
    )
    n = min(k, expect.size)
    assert len(df) == n
    np.testing.assert_allclose(df["objective"].to_numpy(), expect[:n], rtol=0, atol=1e-12)
    assert df["optimal"].all()
    assert (df["worst_healthy_risk"] <= cap + 1e-12).all()
    assert df["gate"].is_unique
    assert df.attrs["params"]["healthy_mode"] == "mixed"
    # the search reports what evaluate_gates reports
    ev = evaluate_gates(df["gate"].tolist(), T, pat, healthy, genes=GENES6)
    for col in ["worst_healthy_risk", "worst_healthy_risk_lower", "tumor_coverage"]:
        np.testing.assert_allclose(ev[col], df[col], atol=1e-12)
    assert ev["risk_is_bound"].tolist() == df["risk_is_bound"].tolist()
    assert ev["worst_healthy_cell_type"].tolist() == df["worst_healthy_cell_type"].tolist()


@settings(max_examples=20, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    cap=st.sampled_from([0.0, 0.1, 0.3, 1.0]),
    g=st.integers(3, 5),
    objective=st.sampled_from(["coverage", "score"]),
)
def test_property_mixed_search_matches_brute_force(seed, cap, g, objective):
    T, H, ct, w, pat, frac, w_pb, _, _ = _mixed_data(seed, n_t=70, n_h=60, g=g)
    genes = [f"G{i}" for i in range(g)]
    ops = ("and", "or", "not")
    expect = _brute_values(T, H, ct, w, 3, ops, cap, objective, bulk=(frac, w_pb))
    df = search_gate_matrix(
        T,
        pat,
        _mixed(H, ct, w, frac, w_pb),
        genes=genes,
        max_genes=3,
        ops=ops,
        max_vital_risk=cap,
        top_k=8,
        objective=objective,
    )
    n = min(8, expect.size)
    assert len(df) == n
    if n:
        np.testing.assert_allclose(df["objective"].to_numpy(), expect[:n], atol=1e-12)


@pytest.mark.parametrize("kind_of_healthy", ["cells", "pseudobulk", "mixed"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_child_risk_lower_bound_never_above_reported_risk(kind_of_healthy, seed):
    """The per-type risk lower bound of ``P AND NOT c`` / ``P AND c`` (child_risk_lower) is
    never above the risk the search reports for the child, for every pair parent ``P`` and gene
    ``c``; for pseudobulk alone it equals the reported (upper Fréchet) risk."""
    g = 6
    T, H, ct, w, pat, frac, w_pb, _, _ = _mixed_data(seed, n_t=50, n_h=90, g=g)
    rng = np.random.default_rng(seed)
    # broad and rare genes side by side, so the bound is often far from 0 and often tight
    H = H | (rng.random(H.shape) < rng.choice([0.0, 0.9], g))
    frac = np.clip(frac + rng.choice([0.0, 0.5], g), 0.0, 1.0)
    genes = [f"G{i}" for i in range(g)]
    healthy = {
        "cells": HealthyCells(H, ct, w),
        "pseudobulk": HealthyPseudobulk(frac, w_pb),
        "mixed": _mixed(H, ct, w, frac, w_pb),
    }[kind_of_healthy]
    prob = _Problem(T, pat, healthy, genes, None)
    search = _Search(
        prob, _pair_stats(prob, "bits"), np.arange(g), frozenset(GATE_OPS), 0.5, "score"
    )
    pairs = [
        (k, a, b) for k in ("and", "andnot", "or") for a in range(g) for b in range(g) if a != b
    ]
    kind = np.array([_KIND_CODE[k] for k, _, _ in pairs], dtype=np.int64)
    pa = np.array([a for _, a, _ in pairs], dtype=np.int64)
    pb = np.array([b for _, _, b in pairs], dtype=np.int64)
    tv = search._parent_types(kind, pa, pb)
    assert tv[0].shape == (len(pairs), prob.w.size)
    n_pos = 0
    for p, (k, a, b) in enumerate(pairs):
        for c in set(range(g)) - {a, b}:
            for mode in (MODE_AND, MODE_ANDNOT):
                lb = child_risk_lower(p, c, mode, 0.0, np.inf, *tv)
                gate = _combine(_pair_gate(k, a, b), c, mode)
                _, hi, _ = prob.healthy_fraction(gate)
                reported = float((prob.w * hi).max())
                assert lb <= reported, (gate, lb, reported)
                # the search's own vectorised risk of the child agrees with the row's
                risk = search._risk_exact(_pair_gate(k, a, b), np.array([c]), mode)[0]
                assert lb <= risk
                if kind_of_healthy == "pseudobulk":
                    assert lb == reported
                if kind_of_healthy == "cells":
                    # independent numpy count of the child's worst risk
                    lit = {"and": (H[:, a] & H[:, b]), "andnot": H[:, a] & ~H[:, b]}
                    par = lit.get(k, H[:, a] | H[:, b])
                    child = par & (H[:, c] if mode == MODE_AND else ~H[:, c])
                    brute = max(w[t] * child[ct == t].mean() for t in np.unique(ct))
                    assert lb <= brute + 1e-12
                n_pos += lb > 0
    assert n_pos > 0  # the bound is not vacuous on this data


@pytest.mark.parametrize("kind_of_healthy", ["cells", "pseudobulk", "mixed"])
@pytest.mark.parametrize(("objective", "cap", "tau"), [("coverage", 0.3, 0.2), ("score", 0.5, 0.1)])
def test_triple_candidates_equal_full_enumeration(kind_of_healthy, objective, cap, tau):
    """Enumerating AND / AND NOT children only over the per-type ranges (and the AND children
    only over frequent enough genes) yields exactly the candidates of testing every gene."""
    g = 9
    T, H, ct, w, pat, frac, w_pb, _, _ = _mixed_data(3, n_t=70, n_h=120, g=g)
    rng = np.random.default_rng(7)
    H = H | (rng.random(H.shape) < rng.choice([0.0, 0.9], g))  # broad genes: risky parents
    frac = np.clip(frac + rng.choice([0.0, 0.6], g), 0.0, 1.0)
    T = T | (rng.random(T.shape) < rng.choice([0.0, 0.7], g))
    healthy = {
        "cells": HealthyCells(H, ct, w),
        "pseudobulk": HealthyPseudobulk(frac, w_pb),
        "mixed": _mixed(H, ct, w, frac, w_pb),
    }[kind_of_healthy]
    prob = _Problem(T, pat, healthy, [f"G{i}" for i in range(g)], None)
    search = _Search(
        prob, _pair_stats(prob, "bits"), np.arange(g), frozenset(GATE_OPS), cap, objective
    )
    st_ = search.st
    pairs = [(k, a, b) for k in (0, 1, 2) for a in range(g) for b in range(g) if a != b]
    kind = np.array([k for k, _, _ in pairs], dtype=np.int64)
    pa = np.array([a for _, a, _ in pairs], dtype=np.int64)
    pb = np.array([b for _, _, b in pairs], dtype=np.int64)
    sa, sb, P = prob.s[pa], prob.s[pb], st_.P[pa, pb]
    covp = np.select([kind == 0, kind == 1], [P, sa - P], sa + sb - P).astype(np.float64)
    riskp = np.select([kind == 0, kind == 1], [st_.r_and[pa, pb], st_.r_andnot[pa, pb]])
    riskp = np.where(kind == 2, st_.r_or[pa, pb], riskp)
    modes = np.array([0, 1, 2], dtype=np.int64)
    tv = search._parent_types(kind, pa, pb)
    args = (
        kind, pa, pb, covp, riskp, np.arange(g), modes, st_.P, prob.s, float(prob.n_tumor),
        prob.r_single, st_.r_and, st_.r_or, st_.r_andnot, cap, tau, objective == "score",
    )  # fmt: skip
    par, gene, mode, ub = triple_candidates(*args, *tv, *search._type_orders())
    got = sorted(zip(par.tolist(), gene.tolist(), mode.tolist(), ub.tolist(), strict=True))
    want = []
    for p in range(len(pairs)):
        for c in set(range(g)) - {int(pa[p]), int(pb[p])}:
            for m in (0, 1, 2):
                obj = _candidate_obj(p, c, m, *args[:5], *args[7:], *tv)
                if obj >= 0.0:
                    want.append((p, c, m, obj))
    assert got == sorted(want)
    assert 0 < len(want) < len(pairs) * (g - 2) * 3  # the bounds prune some, not all


def test_mixed_wide_beam_is_exact_on_four_gene_chains():
    T, H, ct, w, pat, frac, w_pb, _, _ = _mixed_data(19, n_t=80, n_h=90, g=5)
    genes = [f"G{i}" for i in range(5)]
    cap = 0.35
    level = {Gate.lit(i) for i in range(5)}
    every = set(level)
    for _ in range(3):
        nxt = set()
        for base in level:
            for i in set(range(5)) - set(base.genes):
                nxt.add(Gate.and_(base, Gate.lit(i)))
                nxt.add(Gate.or_(base, Gate.lit(i)))
                nxt.add(Gate.and_(base, Gate.lit(i, negated=True)))
        level = nxt
        every |= nxt
    vals = []
    for gt in every:
        exact = max(w[t] * _np_eval(gt, H[ct == t]).mean() for t in range(3))
        bound = (w_pb * gt.frechet(frac)[1]).max()  # Gate.frechet is checked above by scalars
        if max(exact, bound) <= cap + 1e-12:
            vals.append(_np_eval(gt, T).mean())
    expect = np.sort(vals)[::-1]
    df = search_gate_matrix(
        T,
        pat,
        _mixed(H, ct, w, frac, w_pb),
        genes=genes,
        max_genes=4,
        max_vital_risk=cap,
        top_k=12,
        beam_width=100_000,
    )
    assert df["optimal"].all()
    np.testing.assert_allclose(df["objective"], expect[:12], atol=1e-12)


def test_mixed_input_forms_and_errors():
    T, H, ct, w, pat, frac, w_pb, _, _ = _mixed_data(3, g=6)
    mixed = _mixed(H, ct, w, frac, w_pb)
    kw = {"genes": GENES6, "max_genes": 2, "top_k": 30, "max_vital_risk": 0.4}
    a = search_gate_matrix(T, pat, mixed, **kw)
    b = search_gate_matrix(T, pat, [mixed.pseudobulk, mixed.cells], **kw)  # a pair, either order
    c = search_gate_matrix(T, pat, mixed, pair_method="gram", **kw)
    assert a["gate"].tolist() == b["gate"].tolist() == c["gate"].tolist()
    np.testing.assert_array_equal(a["worst_healthy_risk"], c["worst_healthy_risk"])
    with pytest.raises(InputError, match="HealthyMixed"):
        search_gate_matrix(T, pat, [mixed.cells, mixed.cells], **kw)
    with pytest.raises(InputError, match="HealthyMixed"):
        search_gate_matrix(T, pat, (mixed.cells,), **kw)
    with pytest.raises(InputError, match=r"healthy\.pseudobulk\.fractions"):
        search_gate_matrix(T, pat, _mixed(H, ct, w, frac[:, :5], w_pb), **kw)
    with pytest.raises(InputError, match=r"healthy\.cells\.weights"):
        search_gate_matrix(T, pat, _mixed(H, ct, w * 2, frac, w_pb), **kw)


# ---------------------------------------------------------------------------------------------
# the planted pair of ANCHORS.md
# ---------------------------------------------------------------------------------------------


def planted_pair(seed: int = 0):
    """200 genes, 5,000 tumour and 10,000 normal cells; G0 AND G1 covers 85.1% of tumour cells
    and no normal cell is positive for both."""
    rng = np.random.default_rng(seed)
    n_t, n_h, g = 5000, 10_000, 200
    freq_t = np.clip(np.exp(rng.normal(np.log(0.2), 0.8, g)), 0.01, 0.9)
    freq_h = np.clip(np.exp(rng.normal(np.log(0.2), 0.8, g)), 0.05, 0.9)
    T = rng.random((n_t, g)) < freq_t
    H = rng.random((n_h, g)) < freq_h
    # tumour: 85.1% both, 6.9% only G0, 6.9% only G1, 1.1% neither (each single ~92%)
    perm = rng.permutation(n_t)
    both, only0, only1 = 4255, 345, 345
    T[:, :2] = False
    T[perm[:both], :2] = True
    T[perm[both : both + only0], 0] = True
    T[perm[both + only0 : both + only0 + only1], 1] = True
    # normal: G0 and G1 each in ~40% of normal cells, in disjoint subsets
    hp = rng.permutation(n_h)
    H[:, :2] = False
    H[hp[:4000], 0] = True
    H[hp[4000:8000], 1] = True
    ct = rng.integers(0, 10, n_h)
    return T, H, ct, rng.integers(0, 8, n_t)


def test_planted_pair_is_top_and_gate():
    T, H, ct, pat = planted_pair()
    genes = [f"G{i}" for i in range(T.shape[1])]
    df = search_gate_matrix(
        sparse.csr_array(T),
        pat,
        HealthyCells(sparse.csr_array(H), ct, np.ones(10)),
        genes=genes,
        max_genes=2,
        ops=("and",),
        max_vital_risk=0.0,
        min_genes=2,
        top_k=5,
    )
    top = df.iloc[0]
    assert top["gate"] == "G0 AND G1"
    assert top["tumor_coverage"] == pytest.approx(0.851)
    assert top["worst_healthy_risk"] == 0.0
    assert top["optimal"]
    # each single gene alone is far from specific
    assert H[:, 0].mean() > 0.3
    assert H[:, 1].mean() > 0.3


def test_input_errors():
    T, H, ct, w, pat = _data(2)
    hc = HealthyCells(H, ct, w)
    with pytest.raises(InputError, match="ops"):
        search_gate_matrix(T, pat, hc, genes=GENES6, ops=("xor",))
    with pytest.raises(InputError, match="needs 'and'"):
        search_gate_matrix(T, pat, hc, genes=GENES6, ops=("or", "not"))
    with pytest.raises(InputError, match="max_genes"):
        search_gate_matrix(T, pat, hc, genes=GENES6, max_genes=6)
    with pytest.raises(InputError, match="gene names"):
        search_gate_matrix(T, pat, hc, genes=GENES6[:5])
    with pytest.raises(InputError, match="0 and 1"):
        search_gate_matrix(T * 2.5, pat, hc, genes=GENES6)
    with pytest.raises(InputError, match="one label per tumour cell"):
        search_gate_matrix(T, pat[:-1], hc, genes=GENES6)


# ---------------------------------------------------------------------------------------------
# NOT arms on evidence: a veto counts only where shown (healthy) and shown absent (tumour)
# ---------------------------------------------------------------------------------------------

# independent scalar formulas: Fréchet upper bound with literal fractions ``m`` and, for the
# negated positions, the shown fractions ``v``; and the negated positions of each shape
_VETO_U = {
    "A": (lambda m, v: m[0], []),
    "A&B": (lambda m, v: min(m[0], m[1]), []),
    "A&~B": (lambda m, v: min(m[0], 1 - v[1]), [1]),
    "A|B": (lambda m, v: min(1.0, m[0] + m[1]), []),
    "A&B&C": (lambda m, v: min(m), []),
    "A&B&~C": (lambda m, v: min(m[0], m[1], 1 - v[2]), [2]),
    "A&~B&~C": (lambda m, v: min(m[0], 1 - v[1], 1 - v[2]), [1, 2]),
    "A|B|C": (lambda m, v: min(1.0, sum(m)), []),
    "(A|B)&C": (lambda m, v: min(1.0, m[0] + m[1], m[2]), []),
    "(A&B)|C": (lambda m, v: min(1.0, min(m[0], m[1]) + m[2]), []),
    "(A|B)&~C": (lambda m, v: min(1.0, m[0] + m[1], 1 - v[2]), [2]),
    "(A&~B)|C": (lambda m, v: min(1.0, min(m[0], 1 - v[1]) + m[2]), [1]),
}


def _brute_veto(T, pat, frac, shown, w, miss_pg, cap, objective, max_genes=3):  # noqa: PLR0913, PLR0917
    vals = []
    for name, _k, f, combo in _distinct_gates(T.shape[1], {"and", "or", "not"}, 1, max_genes):
        u_fn, neg_pos = _VETO_U[name]
        hit = f([T[:, i] for i in combo])
        # per patient: a patient loses at most its own hidden cells
        cov = (
            sum(
                max(0.0, hit[pat == p].sum() - sum(miss_pg[pi, combo[q]] for q in neg_pos))
                for pi, p in enumerate(np.unique(pat))
            )
            / T.shape[0]
        )
        risk = max(
            w[t] * u_fn([frac[t, i] for i in combo], [shown[t, i] for i in combo])
            for t in range(frac.shape[0])
        )
        if risk <= cap + 1e-12:
            vals.append(cov * (1 - risk) if objective == "score" else cov)
    return np.sort(np.array(vals))[::-1]


def _veto_data(seed, g=6, n_t=150, n_types=4, n_pat=3):
    rng = np.random.default_rng(seed)
    T = rng.random((n_t, g)) < rng.uniform(0.1, 0.8, g)
    pat = rng.integers(0, n_pat, n_t)
    frac = rng.uniform(0, 0.9, (n_types, g))
    shown = frac * (rng.random((n_types, g)) < 0.5) * rng.uniform(0, 1, (n_types, g))
    w = rng.uniform(0.3, 1.0, n_types)
    sizes = np.bincount(pat, minlength=n_pat)
    miss_pg = rng.uniform(0, 0.3, (n_pat, g)) * sizes[:, None] * (rng.random((n_pat, g)) < 0.6)
    return T, pat, frac, shown, w, miss_pg


@pytest.mark.parametrize("max_genes", [2, 3])  # 2: the top-k pair path; 3: full pair stats
@pytest.mark.parametrize("objective", ["coverage", "score"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_not_arm_on_evidence_matches_brute_force(objective, seed, max_genes):
    T, pat, frac, shown, w, miss_pg = _veto_data(seed)
    cap = 0.6
    expect = _brute_veto(T, pat, frac, shown, w, miss_pg, cap, objective, max_genes=max_genes)
    df = search_gate_matrix(
        sparse.csc_array(T),
        pat,
        HealthyPseudobulk(frac, w, shown=shown),
        genes=GENES6,
        max_genes=max_genes,
        max_vital_risk=cap,
        top_k=20,
        objective=objective,
        not_missed=miss_pg,
    )
    n = min(20, expect.size)
    np.testing.assert_allclose(df["objective"].to_numpy(), expect[:n], rtol=0, atol=1e-12)
    assert df["optimal"].all()
    ev = evaluate_gates(
        df["gate"].tolist(),
        T,
        pat,
        HealthyPseudobulk(frac, w, shown=shown),
        genes=GENES6,
        not_missed=miss_pg,
    )
    for col in ["worst_healthy_risk", "tumor_coverage", "tumor_coverage_cells"]:
        np.testing.assert_allclose(ev[col], df[col], atol=1e-12)


def test_not_arm_hidden_cells_stay_in_their_patient():
    # patient 0 fully covered and nothing hidden; patient 1 uncovered with 100 hidden cells
    T = np.zeros((20, 2), dtype=bool)
    T[:10, 0] = True
    pat = np.array([0] * 10 + [1] * 10)
    miss = np.array([[0.0, 0.0], [0.0, 100.0]])
    healthy = HealthyPseudobulk(np.zeros((1, 2)), np.ones(1))
    row = evaluate_gates(["G0 AND NOT G1"], T, pat, healthy, genes=["G0", "G1"],
                         not_missed=miss).iloc[0]  # fmt: skip
    assert row["tumor_coverage"] == pytest.approx(0.5)
    df = search_gate_matrix(T, pat, healthy, genes=["G0", "G1"], max_genes=2, min_genes=2,
                      ops=("and", "not"), max_vital_risk=1.0, not_missed=miss)  # fmt: skip
    assert df.set_index("gate").loc["G0 AND NOT G1", "tumor_coverage"] == pytest.approx(0.5)


def test_not_arm_hand_worked():
    # 10 tumour cells in two patients of 5; A in all, B detected in cells 0-1 (patient 0)
    T = np.zeros((10, 2), dtype=bool)
    T[:, 0] = True
    T[:2, 1] = True
    pat = np.array([0] * 5 + [1] * 5)
    # patient 0 may hold 2 more B-positive cells than called, patient 1 none
    miss = np.array([[0.0, 2.0], [0.0, 0.0]])
    # one healthy type with A in 80% of cells; B modelled in 90% but shown in only 30%
    frac = np.array([[0.8, 0.9]])
    shown = np.array([[0.8, 0.3]])
    healthy = HealthyPseudobulk(frac, np.array([1.0]), shown=shown)
    row = evaluate_gates(
        ["G0 AND NOT G1"], T, pat, healthy, genes=["G0", "G1"], not_missed=miss
    ).iloc[0]
    assert row["tumor_coverage_cells"] == pytest.approx(8 / 10)
    assert row["tumor_coverage"] == pytest.approx((8 - 2) / 10)
    assert row["patient_coverage_min"] == pytest.approx((3 - 2) / 5)
    # the veto counts only where shown: min(0.8, 1 - 0.3), not min(0.8, 1 - 0.9)
    assert row["worst_healthy_risk"] == pytest.approx(0.7)
    plain = evaluate_gates(["G0 AND NOT G1"], T, pat, HealthyPseudobulk(frac, np.ones(1)),
                           genes=["G0", "G1"]).iloc[0]  # fmt: skip
    assert plain["worst_healthy_risk"] == pytest.approx(0.1)
    assert plain["tumor_coverage"] == pytest.approx(0.8)


def test_or_risk_reports_bound_and_estimate():
    T = np.ones((4, 2), dtype=bool)
    frac = np.array([[0.5, 0.6], [0.2, 0.1]])
    w = np.array([1.0, 0.5])
    row = evaluate_gates(
        ["G0 OR G1", "G0 AND G1"], T, np.zeros(4), HealthyPseudobulk(frac, w), genes=["G0", "G1"]
    )
    or_, and_ = row.iloc[0], row.iloc[1]
    assert or_["worst_healthy_risk"] == pytest.approx(1.0)  # union bound min(1, 0.5 + 0.6)
    assert or_["worst_healthy_risk_lower"] == pytest.approx(0.6)  # max(0.5, 0.6)
    assert or_["worst_healthy_risk_estimate"] == pytest.approx(1 - 0.5 * 0.4)  # independence
    assert and_["worst_healthy_risk_estimate"] == pytest.approx(0.3)  # 0.5 × 0.6


def test_deep_nesting_is_refused_before_it_exhausts_the_stack() -> None:
    from antigenscout.tl._gates._gate import MAX_NESTING

    ok = "(" * MAX_NESTING + "A" + ")" * MAX_NESTING
    assert parse_gate(ok, ["A"]).to_string(["A"]) == "A"
    for text in ("(" * (MAX_NESTING + 1) + "A" + ")" * (MAX_NESTING + 1), "NOT " * 5000 + "A"):
        with pytest.raises(InputError, match="nested deeper than"):
            parse_gate(text, ["A"])
