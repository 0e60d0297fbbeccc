"""Reachability and the modality profiles on small made-up cases worked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from antigenscout.tl._targetability import (
    ECTODOMAIN_FACTOR,
    MODALITY_PROFILES,
    SOURCE_WEIGHTS,
    lineage_contexts,
    modalities,
    reachability,
    targetability,
)

W = SOURCE_WEIGHTS


def _surface() -> pd.DataFrame:
    rows = {
        # symbol: uniprot, go, hpa, surfy, cspa_category, tm_pred, ecto, n_tm, gpi, secreted
        "CARLIKE": (True, True, True, True, 1, True, 250, 1, False, False),
        "ADAPTOR": (True, True, True, False, None, True, None, None, False, False),
        "LOOPY": (True, False, False, True, None, True, 8, 2, False, False),
        "KERATIN": (False, True, False, False, 1, False, None, None, False, False),
        "GPIONE": (False, False, True, True, None, True, 30, 0, True, True),
        "ONLYTM": (False, False, False, False, None, True, None, None, False, False),
    }
    cols = ["uniprot", "go", "hpa", "surfy", "cspa_category", "hpa_predicted_membrane"]
    cols += ["ectodomain_aa", "n_tm", "gpi_anchor", "secreted_form"]
    df = pd.DataFrame.from_dict(rows, orient="index", columns=cols)
    df["cspa_category"] = df["cspa_category"].astype("Int8")
    df["ectodomain_aa"] = df["ectodomain_aa"].astype("Int32")
    df["n_tm"] = df["n_tm"].astype("Int16")
    df["endocytic"] = [True, False, False, False, False, False]
    return df


def test_noisy_or_and_ectodomain_classes_by_hand() -> None:
    r = reachability(_surface())
    # CARLIKE: uniprot, go, hpa (IF), surfy, CSPA high, TM prediction
    miss = (1 - W["uniprot"]) * (1 - W["go"]) * (1 - W["hpa_if"]) * (1 - W["surfy"])
    miss *= (1 - W["cspa_high"]) * (1 - W["tm_prediction"])
    assert r.loc["CARLIKE", "surface_probability"] == pytest.approx(1 - miss, abs=1e-4)
    assert r.loc["CARLIKE", "ectodomain_class"] == "ectodomain"
    assert r.loc["CARLIKE", "reach"] == pytest.approx(1 - miss, abs=1e-4)
    # ADAPTOR: well annotated, no topology (not in SURFY): factor for unknown topology
    p = 1 - (1 - W["uniprot"]) * (1 - W["go"]) * (1 - W["hpa_if"]) * (1 - W["tm_prediction"])
    assert r.loc["ADAPTOR", "ectodomain_class"] == "topology-unknown"
    assert r.loc["ADAPTOR", "reach"] == pytest.approx(
        p * ECTODOMAIN_FACTOR["topology-unknown"], abs=1e-4
    )
    # LOOPY: topology shows only an 8-residue loop
    assert r.loc["LOOPY", "ectodomain_class"] == "short-ectodomain"
    # KERATIN: two sources call it surface, but nothing anchors it in a membrane
    assert r.loc["KERATIN", "surface_probability"] > 0.5
    assert r.loc["KERATIN", "ectodomain_class"] == "no-anchor"
    assert r.loc["KERATIN", "reach"] == 0
    # GPI anchored: the whole protein is outside
    assert r.loc["GPIONE", "ectodomain_class"] == "ectodomain"
    # a predicted helix alone: weak but not zero (STEAP1's case in the real data)
    assert r.loc["ONLYTM", "reach"] == pytest.approx(
        W["tm_prediction"] * ECTODOMAIN_FACTOR["topology-unknown"], abs=1e-4
    )


def _reference(surface: pd.DataFrame):
    from types import SimpleNamespace

    contexts = pd.DataFrame(
        {
            "name": ["T cells", "Memory CD8 T cells", "NK cells", "Hepatocytes", "Kidney"],
            "kind": ["cell_type", "cell_type", "cell_type", "cell_type", "tissue"],
        },
        index=["c:t", "c:t8", "c:nk", "c:hep", "t:kid"],
    )
    return SimpleNamespace(surface=surface, contexts=contexts)


def _fraction(genes: pd.Index) -> pd.DataFrame:
    f = pd.DataFrame(0.0, index=genes, columns=["c:t", "c:t8", "c:nk", "c:hep", "t:kid"])
    f.loc["CARLIKE", ["c:t", "c:t8"]] = [0.9, 0.7]  # on T cells (a CD7-like target)
    f.loc["GPIONE", "c:nk"] = 0.8  # on NK cells
    f.loc["GPIONE", "t:kid"] = 0.5
    return f


def test_lineage_contexts_match_names() -> None:
    ref = _reference(_surface())
    assert list(lineage_contexts(ref.contexts, "T")) == ["c:t", "c:t8"]
    assert list(lineage_contexts(ref.contexts, "NK")) == ["c:nk"]


@pytest.mark.parametrize("modality", ["car-t", "adc", "car-nk", "tcr-t", "radioligand", "any"])
def test_modality_factors_by_hand(modality: str) -> None:
    surf = _surface()
    genes = surf.index
    ref = _reference(surf)
    mean = np.array([4.0, 4.0, 4.0, 4.0, 4.0, 4.0])
    res = targetability(
        genes, ref, modality, healthy_fraction=_fraction(genes), tumor_mean_cp10k=mean
    )
    prof = MODALITY_PROFILES[modality]
    reach = reachability(surf)["reach"] if prof.binder else pd.Series(1.0, index=genes)
    density = mean[0] / (mean[0] + prof.density_k_cp10k) if prof.density_k_cp10k > 0 else 1.0
    for g in genes:
        expect = reach[g] * density
        if prof.fratricide == "T" and g == "CARLIKE":
            expect *= 1 - (0.9 + 0.7) / 2
        if prof.fratricide == "NK" and g == "GPIONE":
            expect *= 1 - 0.8
        if prof.binder and bool(surf.loc[g, "secreted_form"]):
            expect *= prof.soluble_sink
        if prof.internalisation > 0 and not bool(surf.loc[g, "endocytic"]):
            expect *= 1 - prof.internalisation
        assert res.loc[g, "modality_factor"] == pytest.approx(expect, rel=1e-3), (modality, g)
    flags = res["targetability_flags"]
    assert ("fratricide" in flags["CARLIKE"]) == (modality == "car-t")
    assert ("fratricide" in flags["GPIONE"]) == (modality == "car-nk")
    assert ("renal-salivary-exposure" in flags["GPIONE"]) == (modality == "radioligand")
    assert ("intracellular" in flags["KERATIN"]) == prof.binder


def test_density_orders_modalities() -> None:
    """An ADC needs more antigen than a CAR: the same low-density gene loses more."""
    surf = _surface()
    ref = _reference(surf)
    low = np.full(len(surf), 0.3)
    fac = {
        m: targetability(
            surf.index, ref, m, healthy_fraction=_fraction(surf.index), tumor_mean_cp10k=low
        )["density_factor"]["CARLIKE"]
        for m in ("agonist", "car-t", "bispecific", "adc")
    }
    assert fac["agonist"] > fac["car-t"] > fac["bispecific"] > fac["adc"]


def test_modalities_table_lists_every_choice() -> None:
    from antigenscout._types import MODALITIES

    table = modalities()
    assert set(table.index) == set(MODALITIES)
    assert table.loc["car-nk", "fratricide"] == "NK"
    assert not table.loc["agonist", "kills"]
