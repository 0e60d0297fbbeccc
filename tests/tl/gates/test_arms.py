"""Arm judgement on a planted design, checked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from antigenscout.tl._gates import HealthyCells
from antigenscout.tl._gates._arms import MIN_VETO_SHOWN, ArmData, judge_arms

GENES = ["A", "B", "C", "D", "E", "F"]


def _planted(seed: int = 0) -> ArmData:
    """Tumour: A on every cell; B on half, E on a disjoint third. Healthy: one type of 400
    cells, weight 1: A on 60% of them, B on half (independently: both real AND arms); C (a
    veto) on 2 A-positive cells; D called on 60% at a mean the model expects on 99.6% of them
    (near-ubiquitous); F called on 40% at a mean it expects on 80% (dropout)."""
    rng = np.random.default_rng(seed)
    n_t, n_h = 3000, 400
    T = np.zeros((n_t, len(GENES)), dtype=bool)
    T[:, 0] = True
    T[: n_t // 2, 1] = True
    T[n_t // 2 : n_t // 2 + n_t // 3, 4] = True
    T[:, 2] = rng.random(n_t) < 0.01
    T[:, 3] = True
    T[:, 5] = True
    H = np.zeros((n_h, len(GENES)), dtype=bool)
    H[:, 0] = rng.random(n_h) < 0.6
    H[:2, 0] = True
    H[: n_h // 2, 1] = True
    H[:2, 2] = True
    H[:, 3] = rng.random(n_h) < 0.6
    H[:, 5] = rng.random(n_h) < 0.4
    cells = HealthyCells(H, np.zeros(n_h, dtype=np.int64), np.array([1.0]), names=["t0"])
    means = np.zeros((1, len(GENES)))
    means[0, 3] = 50.0  # exp(-0.2 / 50) = 0.996 of the cells expected positive
    means[0, 5] = 0.2 / np.log(1 / 0.8)  # F: 80% expected, called on 40%
    means[0, 1] = 0.2  # B: exp(-1) = 0.37 expected
    return ArmData(
        T=T,
        patients=np.where(np.arange(n_t) % 2 == 0, "P1", "P2"),
        genes=GENES,
        cells=cells,
        bulk=None,
        cell_means=means,
        threshold=0.2,
    )


def test_a_real_arm_a_thin_veto_and_a_dropout_arm() -> None:
    data = _planted()
    table = pd.DataFrame({"gate": ["A AND B", "A AND NOT C", "A AND D", "A AND F", "B OR E", "A"]})
    got = judge_arms(table, data).set_index(table["gate"])
    # A AND B: each arm's gain is the other arm's risk alone minus the pair's, by hand
    H, w = data.cells.X, 1.0
    pair = (H[:, 0] & H[:, 1]).mean()
    row = got.loc["A AND B"]
    assert row["arms_shown"]
    assert f"B: risk {-(H[:, 0].mean() - pair) * w:+.3f}" in row["arm_gains"]
    assert f"A: risk {-(H[:, 1].mean() - pair) * w:+.3f}" in row["arm_gains"]
    assert 0 < row["arm_gain_low"] <= min(H[:, 0].mean(), H[:, 1].mean()) - pair
    # the veto C sits on 2 of 400 cells: a gain of 0.005, shown below the stated level
    row = got.loc["A AND NOT C"]
    assert not row["arms_shown"]
    assert "NOT C" in row["set_aside"]
    assert MIN_VETO_SHOWN > 2 / 400
    # D is expected on 99.6% of the cells: an arm on nearly every cell protects nothing
    row = got.loc["A AND D"]
    assert not row["arms_shown"]
    assert "nearly every cell" in row["set_aside"]
    # F is expected on 80% but called on 40%: it claims ~0.36 where at most 0.2 can lack it
    row = got.loc["A AND F"]
    assert not row["arms_shown"]
    assert "dropout" in row["set_aside"]
    # B OR E: each arm adds its own tumour cells (1/2 and 1/3 of the tumour)
    row = got.loc["B OR E"]
    assert row["arms_shown"]
    assert "B: coverage +0.500" in row["arm_gains"]
    assert "E: coverage +0.333" in row["arm_gains"]
    assert got.loc["A", "arms_shown"]  # a single antigen has no arm to judge
    assert got.loc["A", "arm_gains"] == "none"
    assert got.loc["A AND B", "set_aside"] == "none"


def test_the_interval_is_paired_and_seeded() -> None:
    """The same seed gives the same interval; the lower end is never above the point gain."""
    data = _planted()
    table = pd.DataFrame({"gate": ["A AND B", "B OR E"]})
    a = judge_arms(table, data, seed=3)
    b = judge_arms(table, data, seed=3)
    pd.testing.assert_frame_equal(a, b)
    assert (a["arm_gain_low"] <= np.array([0.5, 1 / 3]) + 1e-12).all()


def test_a_small_context_carries_its_interval() -> None:
    """A type of 10 cells where the gate holds in 4 (risk 0.4 under a 0.5 cap) may reach the
    upper end of its Wilson interval: scipy's 90% two-sided Wilson interval (95% one-sided)."""
    from scipy.stats import binomtest

    from antigenscout.tl._gates._arms import MIN_CONTEXT_CELLS

    base = _planted()
    n_small = 10
    assert n_small < MIN_CONTEXT_CELLS
    H = np.zeros((n_small, len(GENES)), dtype=bool)
    H[:4, 1] = True  # B on 4 of the 10
    X = np.vstack([base.cells.X, H])
    types = np.concatenate([base.cells.cell_types, np.ones(n_small, dtype=np.int64)])
    cells = HealthyCells(X, types, np.array([1.0, 1.0]), names=["t0", "small"])
    data = ArmData(
        T=base.T, patients=base.patients, genes=GENES, cells=cells, bulk=None,
        cell_means=np.vstack([base.cell_means, np.zeros(len(GENES))]), threshold=0.2, cap=0.5,
    )  # fmt: skip
    got = judge_arms(pd.DataFrame({"gate": ["B", "C"]}), data).set_index(pd.Index(["B", "C"]))
    want = binomtest(4, n_small).proportion_ci(confidence_level=0.90, method="wilson").high
    assert got.loc["B", "small_context_risk"] == pytest.approx(want, rel=1e-9)
    assert not got.loc["B", "arms_shown"]
    assert "small (10 cells)" in got.loc["B", "set_aside"]
    assert got.loc["C", "arms_shown"]  # C on none of the 10: its upper end stays under 0.5


def test_what_was_judged_is_said_and_a_body_wide_arm_protects_nothing() -> None:
    """Each arm's phrase carries the veto's shown share (Wilson lower bound, by hand) or the
    share the model expects the AND arm on; an AND arm the reference measures on >= 90% of
    the body's cell types is set aside whatever the protected cells' reads say."""
    data = _planted()
    table = pd.DataFrame({"gate": ["A AND B", "A AND NOT C"]})
    got = judge_arms(table, data).set_index(table["gate"])
    assert "B: risk" in got.loc["A AND B", "arm_gains"]
    assert "B: risk" in got.loc["A AND B", "arm_gains"].split(";")[1]
    assert ", on ~37%" in got.loc["A AND B", "arm_gains"]  # exp(-0.2 / 0.2)
    # Wilson lower bound of 2/400 at one-sided 95% (z = 1.6449), written out
    z, n, p = 1.6448536, 400, 2 / 400
    low = (p + z**2 / (2 * n) - z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2))) / (1 + z**2 / n)
    assert "NOT C: risk -0.005 [" in got.loc["A AND NOT C", "arm_gains"]
    assert f"shown >= {low:.1%}" in got.loc["A AND NOT C", "arm_gains"]
    data.body_wide = np.array([0.0, 0.95, 0.0, 0.0, 0.0, 0.0])
    got = judge_arms(table, data).set_index(table["gate"])
    row = got.loc["A AND B"]
    assert not row["arms_shown"]
    assert (
        "B is measured at 10 nTPM or more in 95% of the reference's HPA single-cell types"
        in (row["set_aside"])
    )
    assert "A:" not in row["set_aside"]  # A is judged as before
    # a veto as widely measured: the tumour cells read without it most likely carry it
    data.body_wide = np.array([0.0, 0.0, 0.95, 0.0, 0.0, 0.0])
    table = pd.DataFrame({"gate": ["A AND NOT C"]})
    data.cells.X[:40, 2] = True  # now a veto shown on 10% of the protected cells
    row = judge_arms(table, data).iloc[0]
    assert "NOT C: the veto is measured at 10 nTPM or more in 95%" in row["set_aside"]
