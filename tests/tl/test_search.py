"""search_gates on AnnData against a brute-force evaluation of the same positivity calls."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from scipy import sparse
from scipy.special import gammaincc

from antigenscout._errors import InputError
from antigenscout.pp._positivity import DEFAULT_THRESHOLD
from antigenscout.tl import healthy_risk, search_gates

GENES = [f"G{i}" for i in range(12)]  # as in conftest.py


def test_pairs_match_brute_force(tumour: AnnData, mini_reference) -> None:
    thr = 2.0
    search_gates(
        tumour,
        malignant_key="status=malignant",
        patient_key="patient",
        modality=None,
        reference=mini_reference,
        positivity="cp10k",
        threshold=thr,
        max_genes=2,
        ops=("and", "not"),
        max_vital_risk=1.0,
        top_k=10_000,
        require_arms=False,  # the search's exactness, arms not judged
    )
    gates = tumour.uns["antigenscout_gates"]["gates"]
    X = tumour.X.toarray()
    mal = (tumour.obs["status"] == "malignant").to_numpy()
    Xm = X[mal]
    lib = Xm.sum(axis=1, keepdims=True)
    pos = (Xm * 1e4 >= thr * lib) & (lib > 0)
    F = healthy_risk(mini_reference, threshold_cp10k=thr).fraction.loc[GENES].to_numpy().T
    w = mini_reference.contexts["vital_weight"].to_numpy()
    # NOT arms on evidence. Healthy: the mini reference has no measured context and no IHC,
    # so no veto is shown anywhere and A AND NOT B carries A's risk. Tumour: per patient, the
    # cells called B-negative may hide B-positive ones: the Gamma bound (largest over k = 0.5,
    # 1, 2) from their own mean CP10k, times their number; they are taken off the coverage.
    patients = tumour.obs["patient"].to_numpy()[mal]
    missed = {}
    for p in np.unique(patients):
        sel = patients == p
        cp10k = Xm[sel] * 1e4 / np.maximum(lib[sel], 1)
        neg = ~pos[sel]
        n_neg = neg.sum(axis=0).astype(np.float64)
        mean = np.where(n_neg > 0, (cp10k * neg).sum(axis=0) / np.maximum(n_neg, 1), 0.0)
        upper = np.max(
            [np.where(mean > 0, gammaincc(k, k * thr / np.maximum(mean, 1e-300)), 0.0)
             for k in (0.5, 1.0, 2.0)],
            axis=0,
        )  # fmt: skip
        missed[p] = (sel, upper * n_neg)
    want = {}
    for a, b in itertools.permutations(range(len(GENES)), 2):
        cov_and = (pos[:, a] & pos[:, b]).mean()
        risk_and = (w * np.minimum(F[:, a], F[:, b])).max()
        if a < b:
            want[f"{GENES[a]} AND {GENES[b]}"] = (cov_and, risk_and)
        hit = pos[:, a] & ~pos[:, b]
        cov_not = sum(max(0.0, hit[sel].sum() - m[b]) for sel, m in missed.values()) / len(pos)
        risk_not = (w * F[:, a]).max()
        want[f"{GENES[a]} AND NOT {GENES[b]}"] = (cov_not, risk_not)
    got = gates.set_index("gate")
    pairs = got[got["n_genes"] == 2]
    assert len(pairs) > 0
    for gate, row in pairs.iterrows():
        key = gate if gate in want else " AND ".join(reversed(gate.split(" AND ")))
        cov, risk = want[key]
        assert row["tumor_coverage"] == pytest.approx(cov)
        assert row["worst_healthy_risk"] == pytest.approx(risk, abs=1e-6)
        assert row["risk_is_bound"]
    assert got["genes"].str.contains(",").sum() == 0


def test_bad_ops_raise(tumour: AnnData, mini_reference) -> None:
    with pytest.raises(InputError, match="ops"):
        search_gates(
            tumour, malignant_key="status=malignant", reference=mini_reference, ops=["xor"]
        )


# ---------------------------------------------------------------------------------------------
# healthy single cells: exact, plus the reference pseudobulk unless healthy_only
# ---------------------------------------------------------------------------------------------


def _healthy_adata(genes, seed=3, n=120):
    rng = np.random.default_rng(seed)
    Xh = rng.poisson(0.6, (n, len(genes))).astype(np.float32)
    obs = pd.DataFrame(
        {"ct": rng.choice(["B cells", "Heart cells"], n)}, index=[f"h{i}" for i in range(n)]
    )
    return AnnData(X=sparse.csr_matrix(Xh), obs=obs, var=pd.DataFrame(index=genes)), Xh


@pytest.mark.parametrize("healthy_only", [False, True])
def test_anndata_mixed_and_healthy_only(tumour, mini_reference, healthy_only):
    genes = list(tumour.var_names)
    healthy, Xh = _healthy_adata(genes)
    search_gates(
        tumour,
        malignant_key="status=malignant",
        modality=None,
        reference=mini_reference,
        healthy=healthy,
        healthy_key="ct",
        healthy_only=healthy_only,
        positivity="detected",
        max_genes=2,
        ops=("and", "not"),
        max_vital_risk=1.0,
        top_k=10_000,
        require_arms=False,
    )
    out = tumour.uns["antigenscout_gates"]
    gates = out["gates"]
    pos = Xh > 0
    ct = healthy.obs["ct"].to_numpy()
    w = {"B cells": 0.2, "Heart cells": 1.0}  # the cells' weights, matched by context name
    F = healthy_risk(mini_reference, threshold_cp10k=DEFAULT_THRESHOLD).fraction.loc[genes]
    f_liver = F["tissue:liver"].to_numpy()  # the one context the cells do not replace
    pairs = gates[gates["n_genes"] == 2]
    assert len(pairs) > 0
    for _, row in pairs.iterrows():
        a, b = (genes.index(x) for x in row["genes"].split(";"))
        if " AND NOT " in row["gate"]:
            # "X AND NOT Y": the genes column is sorted, the gate names the positive one first
            x, y = (genes.index(t) for t in row["gate"].split(" AND NOT "))
            cells = pos[:, x] & ~pos[:, y]
            # the liver context is RNA-modelled (no measured cells, no IHC): no veto is shown
            bound = f_liver[x]
        else:
            cells = pos[:, a] & pos[:, b]
            bound = min(f_liver[a], f_liver[b])
        exact = max(w[t] * cells[ct == t].mean() for t in w)
        want = exact if healthy_only else max(exact, 0.9 * bound)
        assert row["worst_healthy_risk"] == pytest.approx(want, abs=1e-9)
        assert row["risk_is_bound"] == (not healthy_only and 0.9 * bound > exact)
    hp = out["params"]["healthy_params"]
    if healthy_only:
        assert out["params"]["exposure"] is None  # the healthy cells alone: no reference
        assert not gates["risk_is_bound"].any()
        assert "contexts_replaced_by_cells" not in hp
    else:
        assert gates["risk_is_bound"].any()
        assert sorted(hp["contexts_replaced_by_cells"]) == ["sc:b", "sc:heart"]
        assert out["params"]["exposure"]["pregnancy"] is False
        assert hp["contexts"] == 1


def test_anndata_healthy_only_needs_cells(tumour, mini_reference):
    with pytest.raises(InputError, match="healthy_only"):
        search_gates(
            tumour,
            malignant_key="status=malignant",
            modality=None,
            reference=mini_reference,
            positivity="detected",
            healthy_only=True,
        )


def test_a_gate_behind_a_barrier_is_reached_once(tumour: AnnData, mini_reference) -> None:
    """With every context behind a barrier, a protein agent's OR gate risks weight × exposure
    × min(1, a + b) on what the cells carry (the exposure folded into the type's weight), not
    min(1, e·a + e·b), which is larger wherever a + b > 1 (checked to occur)."""
    from dataclasses import replace

    from antigenscout.tl._exposure import BARRIER_EXPOSURE as e

    ctx = mini_reference.contexts.copy()
    ctx["barrier"] = "blood-brain"
    ref = replace(mini_reference, contexts=ctx)
    thr = 0.2
    search_gates(
        tumour, malignant_key="status=malignant", patient_key="patient", modality="adc",
        reference=ref, positivity="cp10k", threshold=thr, max_genes=2, ops=("or",),
        max_vital_risk=1.0, top_k=10_000, require_arms=False,
    )  # fmt: skip
    gates = tumour.uns["antigenscout_gates"]["gates"].set_index("gate")
    carried = healthy_risk(ref, threshold_cp10k=thr, modality="car-t").fraction  # crosses
    w = ctx["vital_weight"].to_numpy()
    pairs = gates[gates["n_genes"] == 2]
    differs = 0
    for gate, row in pairs.iterrows():
        a, b = (carried.loc[g].to_numpy() for g in gate.split(" OR "))
        want = (w * e * np.minimum(1.0, a + b)).max()
        assert row["worst_healthy_risk"] == pytest.approx(want, abs=1e-9)
        differs += abs(want - (w * np.minimum(1.0, e * a + e * b)).max()) > 1e-6
    assert differs > 0


def test_designs_are_scored_as_found_gates(tumour: AnnData, mini_reference) -> None:
    """Given designs are evaluated on the same calls and contexts as the search: an AND and an
    OR design against brute force (the OR's risk is the Fréchet bound min(1, Fa + Fb)), a NOT
    design as the search's own row; genes cut from the candidates still evaluate, are noted,
    and do not enter the search."""
    thr = 2.0
    common = {
        "malignant_key": "status=malignant",
        "patient_key": "patient",
        "modality": None,
        "reference": mini_reference,
        "positivity": "cp10k",
        "threshold": thr,
        "max_genes": 2,
        "ops": ("and", "not"),
        "max_vital_risk": 1.0,
        "top_k": 10_000,
        "n_candidates": 6,
        "require_arms": False,
    }
    search_gates(tumour, **common)
    plain = tumour.uns["antigenscout_gates"]["gates"]
    searched = set(plain["genes"].str.split(";").explode())
    outside = [g for g in GENES if g not in searched]
    a, b = sorted(searched)[:2]
    c = outside[0]
    designs = [f"{a} AND {c}", f"{a} OR {c}", f"{a} AND NOT {b}"]
    search_gates(tumour, designs=designs, **common)
    res = tumour.uns["antigenscout_gates"]
    pd.testing.assert_frame_equal(res["gates"], plain)  # the extra gene stays out of the search
    got = res["designs"].set_index("design")
    X = tumour.X.toarray()
    mal = (tumour.obs["status"] == "malignant").to_numpy()
    Xm = X[mal]
    lib = Xm.sum(axis=1, keepdims=True)
    pos = pd.DataFrame((Xm * 1e4 >= thr * lib) & (lib > 0), columns=GENES)
    F = healthy_risk(mini_reference, threshold_cp10k=thr).fraction.loc[GENES].T
    w = mini_reference.contexts["vital_weight"].to_numpy()
    row = got.loc[f"{a} AND {c}"]
    assert row["tumor_coverage"] == pytest.approx((pos[a] & pos[c]).mean())
    assert row["worst_healthy_risk"] == pytest.approx((w * np.minimum(F[a], F[c])).max())
    row = got.loc[f"{a} OR {c}"]
    assert row["tumor_coverage"] == pytest.approx((pos[a] | pos[c]).mean())
    assert row["worst_healthy_risk"] == pytest.approx((w * np.minimum(1, F[a] + F[c])).max())
    assert c in row["design_note"]
    found = plain.set_index("gate").loc[f"{a} AND NOT {b}"]
    row = got.loc[f"{a} AND NOT {b}"]
    for col in ("tumor_coverage", "worst_healthy_risk", "patients_covered_fraction"):
        assert row[col] == pytest.approx(found[col])
    assert row["design_note"] == "none"
    assert {"arm_gains", "arms_shown", "set_aside"} <= set(got.columns)  # arms judged too
    with pytest.raises(InputError, match="does not measure"):
        search_gates(tumour, designs=["G1 AND NOPE"], **common)
    # a gene the healthy reference lacks would read as safe: refused
    extra = tumour.copy()
    extra.var_names = [*GENES[:-1], "NOT_IN_REFERENCE"]
    with pytest.raises(InputError, match="no data for"):
        search_gates(extra, designs=["G1 AND NOT_IN_REFERENCE"], **common)


def test_set_aside_gates_read_like_found_ones(tumour: AnnData, mini_reference) -> None:
    """With arms judged, the gates kept and the gates set aside partition those examined,
    name genes alike (';'), and every kept gate has every arm shown."""
    search_gates(
        tumour, malignant_key="status=malignant", patient_key="patient", modality=None,
        reference=mini_reference, positivity="cp10k", threshold=2.0, max_genes=2,
        ops=("and", "or", "not"), max_vital_risk=1.0, top_k=10,
    )  # fmt: skip
    res = tumour.uns["antigenscout_gates"]
    kept, arms = res["gates"], res["params"]["arms"]
    aside = res.get("set_aside", kept.iloc[:0])
    assert kept["arms_shown"].all()
    assert (aside["set_aside"] != "none").all()
    assert arms["set_aside"] == len(aside)
    has_hpa = (mini_reference.contexts["source"].astype(str) == "HPA single cell type").any()
    assert arms["body_wide_applied"] == bool(has_hpa)  # said whether the second witness ran
    assert len(kept) <= 10
    assert len(kept) + len(aside) <= arms["examined"]
    both = pd.concat([kept, aside])
    assert not both["genes"].str.contains(",").any()
    assert kept["rank"].tolist() == list(range(1, len(kept) + 1))


def test_a_veto_high_in_a_few_tumour_cells_costs_exactly_those(mini_reference) -> None:
    """A veto on 2% of the tumour cells at high counts and silent in the rest: the designed
    NOT gate loses exactly those cells (issue #22, item 3). One Gamma over all the cells would
    have spread their reads over every cell and left a coverage of 0.004."""
    rng = np.random.default_rng(5)
    n = 1000
    X = rng.poisson(0.02, (n, len(GENES))).astype(np.float32)
    X[:, 0] = 20.0  # G0 on every cell
    X[:, 1] = 0.0
    high = rng.choice(n, size=20, replace=False)
    X[high, 1] = 50.0  # G1, the veto, high in 2% of the cells
    X[:, 2] = 2000.0 - X.sum(axis=1)  # libraries of 2,000
    obs = pd.DataFrame(
        {"status": "malignant", "patient": np.where(np.arange(n) % 2, "P1", "P2")},
        index=[f"c{i}" for i in range(n)],
    )
    tumour = AnnData(X=sparse.csr_matrix(X), obs=obs, var=pd.DataFrame(index=GENES))
    search_gates(
        tumour, malignant_key="status=malignant", patient_key="patient", modality=None,
        reference=mini_reference, positivity="cp10k", threshold=0.2, max_genes=1,
        ops=("and",), max_vital_risk=1.0, designs=["G0 AND NOT G1"], require_arms=False,
    )  # fmt: skip
    row = tumour.uns["antigenscout_gates"]["designs"].iloc[0]
    assert row["tumor_coverage_cells"] == pytest.approx(0.98)
    assert row["tumor_coverage"] == pytest.approx(0.98, abs=1e-6)


def test_progress_names_each_step(tumour: AnnData, mini_reference) -> None:
    seen: list[str] = []
    search_gates(
        tumour,
        malignant_key="status=malignant",
        patient_key="patient",
        reference=mini_reference,
        positivity="cp10k",
        progress=lambda step, done, total: seen.append(step),
    )
    steps = list(dict.fromkeys(seen))
    assert steps == ["positivity calls", "healthy risk", "gate search", "judging arms"]
