"""HealthyRisk's summaries: vital risk and consequence over organ systems or the worst context."""

from __future__ import annotations

import numpy as np
import pandas as pd


def test_persisting_drug_adds_harm_over_organs(mini_reference) -> None:
    """A living drug that persists (CAR-T) carries its harms in every organ system:
    ``1 - prod(1 - risk)`` over the three contexts of the mini reference (three systems); a
    dosed agent (ADC) its worst context's. ``n_systems_engaged`` counts systems at >= 0.5."""
    from antigenscout.tl import healthy_risk

    for modality, persists in (("car-t", True), ("adc", False), (None, False)):
        hr = healthy_risk(mini_reference, threshold_cp10k=0.2, modality=modality)
        assert hr.over_organs is persists
        summ = hr.summary(hr.fraction.index)
        risk = hr.risk.reindex(summ.index).to_numpy()
        want = 1 - np.prod(1 - risk, axis=1) if persists else risk.max(axis=1)
        np.testing.assert_allclose(summ["vital_risk"], want, rtol=1e-12)
        engaged = (hr.fraction >= 0.5).reindex(summ.index).sum(axis=1)
        assert (summ["n_systems_engaged"] == engaged).all()  # three distinct systems
    # the gene-specific threshold path keeps the choice
    hr = healthy_risk(
        mini_reference,
        threshold_cp10k=0.2,
        modality="car-t",
        gene_threshold_cp10k=pd.Series(0.5, index=hr.fraction.index[:3]),
    )
    assert hr.over_organs


def test_summary_and_long_carry_the_consequence(mini_reference) -> None:
    """targets' ``consequence`` is the worst context's for a dosed agent and combined over
    organ systems for a living drug, like ``vital_risk``; risk.tsv's column is the matrix."""
    from antigenscout.tl import healthy_risk
    from antigenscout.tl._organs import organ_system_risk

    for modality in ("car-t", "adc"):
        hr = healthy_risk(mini_reference, threshold_cp10k=0.2, modality=modality)
        genes = hr.fraction.index
        mat = hr.consequence(genes)
        summ = hr.summary(genes)
        want = (
            organ_system_risk(mat, hr.contexts["system"].to_numpy())
            if hr.over_organs
            else mat.max(axis=1)
        )
        np.testing.assert_allclose(summ["consequence"], want, rtol=1e-12)
        assert (summ.loc[summ["consequence"] == 0, "consequence_context"] == "none").all()
        assert (mat <= hr.risk.reindex(genes).to_numpy() + 1e-12).all()  # never above severity
        long = hr.long(list(genes[:5]))
        pos = pd.Index(genes).get_indexer(long["target"])
        col = hr.contexts.index.get_indexer(long["context"])
        np.testing.assert_allclose(long["consequence"], mat[pos, col], rtol=1e-12)
