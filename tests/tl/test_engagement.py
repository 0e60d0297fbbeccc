"""Engagement at a gene's own threshold, checked by hand on a small reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import special

from antigenscout.reference import Reference
from antigenscout.tl._risk import CP10K_TO_NTPM, INTERVAL_SHAPES, healthy_risk


def _with_measured(ref: Reference, f0: float, n: int) -> Reference:
    ctx = ref.contexts.copy()
    ctx.loc["sc:b", "n_cells"] = n
    measured = pd.DataFrame({"sc:b": f0}, index=ref.expression.index)
    return Reference(
        genes=ref.genes,
        contexts=ctx,
        expression=ref.expression,
        ihc=ref.ihc,
        surface=ref.surface,
        metadata={"name": "mini+measured", "measured_fraction": {"threshold_cp10k": 0.2}},
        measured_fraction=measured,
    )


@pytest.mark.parametrize("modality", ["car-t", "adc", "agonist"])
def test_threshold_is_the_agents_floor_whatever_the_tumour_level(
    tumour, mini_reference: Reference, modality: str
) -> None:
    """No therapeutic window: a healthy cell is judged at the agent's kill threshold, never
    at a share of the tumour's level (a gene on every tissue cannot look safe because the
    tumour has more of it)."""
    from antigenscout.tl import score_targets
    from antigenscout.tl._targetability import MODALITY_PROFILES

    score_targets(
        tumour,
        malignant_key="status=malignant",
        patient_key="patient",
        modality=modality,
        reference=mini_reference,
        positivity="cp10k",
    )
    t = tumour.uns["antigenscout_targets"]["targets"]
    floor = MODALITY_PROFILES[modality].engage_floor_cp10k
    want = floor if modality == "agonist" else max(floor, 0.2)
    assert (t["engagement_threshold_cp10k"] == want).all()
    assert t["tumor_mean_cp10k"].max() > 10 * want  # the tumour level varies far above it


def test_modelled_context_at_own_threshold_by_hand(mini_reference: Reference) -> None:
    t = pd.Series({"G1": 0.5, "G2": 2.0})
    hr = healthy_risk(mini_reference, threshold_cp10k=0.2, use_ihc=False, gene_threshold_cp10k=t)
    mu = float(mini_reference.expression.loc["G2", "sc:heart"])
    expect = np.exp(-2.0 * CP10K_TO_NTPM / mu)  # Gamma shape 1 = exponential
    assert hr.fraction.loc["G2", "sc:heart"] == pytest.approx(expect, rel=1e-9)
    alts = [special.gammaincc(k, k * 2.0 * CP10K_TO_NTPM / mu) for k in INTERVAL_SHAPES]
    assert hr.low.loc["G2", "sc:heart"] == pytest.approx(min(expect, *alts))
    assert hr.high.loc["G2", "sc:heart"] == pytest.approx(max(expect, *alts))
    # a gene without its own threshold keeps the base model
    base = healthy_risk(mini_reference, threshold_cp10k=0.2, use_ihc=False)
    assert hr.fraction.loc["G3"].equals(base.fraction.loc["G3"])
    assert hr.threshold_cp10k["G1"] == 0.5
    assert hr.threshold_cp10k["G3"] == 0.2


def test_measured_context_carried_up_never_down(mini_reference: Reference) -> None:
    ref = _with_measured(mini_reference, f0=0.8, n=50)
    up = healthy_risk(
        ref, threshold_cp10k=0.2, use_ihc=False, gene_threshold_cp10k=pd.Series({"G1": 0.6})
    )
    assert up.fraction.loc["G1", "sc:b"] == pytest.approx(0.8**3)
    down = healthy_risk(
        ref, threshold_cp10k=0.2, use_ihc=False, gene_threshold_cp10k=pd.Series({"G1": 0.05})
    )
    assert down.fraction.loc["G1", "sc:b"] == pytest.approx(0.8)
    # Wilson 90% interval on 40 of 50 cells, then the same power
    z, p, n = 1.645, 0.8, 50
    centre = (p + z**2 / (2 * n)) / (1 + z**2 / n)
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / (1 + z**2 / n)
    assert up.low.loc["G1", "sc:b"] == pytest.approx((centre - half) ** 3)
    assert up.high.loc["G1", "sc:b"] == pytest.approx((centre + half) ** 3)


def test_localisation_and_long_table(mini_reference: Reference) -> None:
    hr = healthy_risk(
        mini_reference,
        threshold_cp10k=0.2,
        use_ihc=False,
        gene_threshold_cp10k=pd.Series({"G1": 0.2}),
    )
    top = hr.localisation(["G1"], n=2)["G1"]
    f = hr.fraction.loc["G1"].sort_values(ascending=False)
    names = mini_reference.contexts["name"]
    assert top.startswith(f"{names[f.index[0]]} {f.iloc[0]:.2f}")
    long = hr.long(["G1"])
    assert set(long["source"]) == {"RNA model"}
    assert (long["engagement_low"] <= long["positive_fraction"] + 1e-12).all()
    assert (long["risk"] == long["positive_fraction"] * long["vital_weight"]).all()
