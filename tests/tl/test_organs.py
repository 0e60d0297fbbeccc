"""Organ systems, reserve and renewal, and the lasting consequence of an engagement."""

from __future__ import annotations

import numpy as np
import pytest


def test_organ_system_risk_by_hand() -> None:
    """At least one organ harmed, organs independent, the worst context within each; blood,
    marrow and immune cells one organ."""
    from antigenscout.tl._organs import organ_system_risk

    systems = ["nervous", "nervous", "haematopoietic", "immune (myeloid)", "skin"]
    risk = np.array(
        [
            [0.3, 0.6, 0.0, 0.0, 0.0],  # one organ: its worst context
            [0.0, 0.0, 0.5, 0.8, 0.0],  # marrow and myeloid cells: one organ
            [0.2, 0.0, 0.2, 0.0, 0.2],  # three organs: 1 - 0.8^3
            [0.0] * 5,
        ]
    )
    got = organ_system_risk(risk, systems)
    np.testing.assert_allclose(got, [0.6, 0.8, 1 - 0.8**3, 0.0])
    # brute force: enumerate which organs are harmed
    rng = np.random.default_rng(0)
    r = rng.uniform(0, 1, size=(1, 5))
    p = [r[0, :2].max(), r[0, 2:4].max(), r[0, 4]]
    none = np.prod([1 - x for x in p])
    assert organ_system_risk(r, systems)[0] == pytest.approx(1 - none)
    assert organ_system_risk(np.zeros((2, 0)), []).tolist() == [0.0, 0.0]


def test_consequence_against_an_integrated_regrowth() -> None:
    """A dosed agent's lasting loss is what first-order regrowth (time constant the renewal
    time) leaves missing when the next dose comes, integrated here with an ODE solver; beyond
    the organ's reserve it is the share of function lost; a living drug keeps its loss."""
    from scipy.integrate import solve_ivp

    from antigenscout.tl._organs import DOSING_INTERVAL_DAYS, consequence

    e, weight = np.array([[0.9, 0.9, 0.9, 0.2]]), np.array([1.0, 0.8, 1.0, 1.0])
    reserve = np.array([0.0, 0.5, 0.4, 0.0])
    renewal = np.array([5.0, 30.0, np.inf, 40.0])
    want = []
    for j in range(4):
        rate = 0.0 if np.isinf(renewal[j]) else 1.0 / renewal[j]
        sol = solve_ivp(
            lambda _t, y, r=rate: -r * y,
            (0.0, DOSING_INTERVAL_DAYS),
            [e[0, j]],
            rtol=1e-12,
            atol=1e-14,
        )
        missing = sol.y[0, -1]
        want.append(weight[j] * max(0.0, (missing - reserve[j]) / (1 - reserve[j])))
    got = consequence(e, weight, reserve, renewal, persists=False)
    np.testing.assert_allclose(got[0], want, rtol=1e-6, atol=1e-12)
    assert got[0, 1] == 0.0  # the kidney's reserve absorbs what it has not remade
    living = consequence(e, weight, reserve, renewal, persists=True)
    np.testing.assert_allclose(living[0], weight * np.clip((e[0] - reserve) / (1 - reserve), 0, 1))


def test_organ_reserve_table_covers_the_shipped_reference() -> None:
    """Every shipped context is tabulated; a context's own row beats its tissue's, which beats
    its system's."""
    from antigenscout.reference import load_reference
    from antigenscout.tl._organs import organ_reserve

    ctx = load_reference().contexts
    res = organ_reserve(ctx)
    assert not res["reserve_source"].str.startswith("not tabulated").any()
    assert res.loc["sc:Melanocytes", "renewal_days"] == np.inf  # context row
    assert res.loc["sc:Basal keratinocytes", "renewal_days"] == 40.0  # skin system row
    assert res.loc["sc:Cardiomyocytes", "reserve"] == 0.4  # heart muscle tissue row
    assert res.loc["sc:Endothelial cells", "reserve"] == 0.0  # cardiovascular system row
    assert res.loc["tissue:adrenal gland", "reserve"] == 0.9
    assert ((res["reserve"] >= 0) & (res["reserve"] < 1)).all()
    assert (res["renewal_days"] > 0).all()
