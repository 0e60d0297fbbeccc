"""Reachability and the modality profiles on small made-up cases worked by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from antigenscout.tl._targetability import (
    ECTODOMAIN_BASE_RATE,
    ECTODOMAIN_FACTOR,
    MODALITY_PROFILES,
    RESIDENCY_FACTOR,
    SOURCE_WEIGHTS,
    ectodomain_factor,
    lineage_contexts,
    modalities,
    reachability,
    residency,
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


# ---------------------------------------------------------------- organelle residency


def _locations() -> pd.DataFrame:
    """A hand-built subcellular table: one row per case of the residency rule."""
    rows = {
        # name: uniprot flag, gpi, surfy, hpa PM, hpa compartments, reliability, UniProt text
        "ER_ENZYME": (False, False, True, False, "er", "Supported", "er"),  # STT3B
        "GOLGI_CYCLER": (True, False, True, False, "golgi", "Enhanced",
                         "plasma-membrane;golgi"),  # TGOLN2
        "ER_RECEPTOR": (True, False, True, False, "er", "Approved", "er"),  # FLT3
        "FGFR_LIKE": (True, False, True, False, "er", "Supported", "plasma-membrane;er"),
        "LYSO_FLAGGED": (True, False, True, False, "vesicle", "Approved",
                         "lysosome;endosome"),  # TMEM9
        "LYSO_PM_TEXT": (True, False, True, False, "vesicle", "Supported",
                         "plasma-membrane;lysosome;endosome"),  # CD63
        "RECYCLER": (True, False, False, False, "lysosome;endosome", "Supported", None),  # TFRC
        "LAMP_LIKE": (False, False, True, False, None, None,
                      "plasma-membrane;lysosome;endosome"),  # LAMP1
        "ENDOSOME_ONLY": (False, False, True, False, None, None, "endosome"),  # TM9SF2
        "GOLGI_ENZYME": (True, False, False, False, "golgi", "Enhanced", None),  # B4GALT1
        "GOLGI_SURFY": (True, False, True, False, "golgi", "Enhanced", None),
        "GPI_VESICLE": (False, True, True, False, "vesicle", "Supported", None),  # MSLN
        "UNCERTAIN_ER": (False, False, False, False, "er", "Uncertain", None),
        "HPA_PM": (False, False, False, True, "er", "Approved", "er"),
        "UNCERTAIN_PM": (False, False, False, True, None, "Uncertain", None),  # NCKAP1L
        "NONSURFACE": (False, False, False, False, None, None, None),  # SPTLC2
        "NONSURFACE_APPROVED_PM": (False, False, False, True, None, "Approved", None),
        "NONSURFACE_SUPPORTED_PM": (False, False, False, True, None, "Supported", None),
        "NOTHING": (False, False, False, False, None, None, None),
    }  # fmt: skip
    cols = ["uniprot", "gpi_anchor", "surfy", "hpa_plasma_membrane", "hpa_compartments"]
    cols += ["hpa_reliability", "uniprot_compartments"]
    df = pd.DataFrame.from_dict(rows, orient="index", columns=cols)
    df["surfy_training"] = pd.array([None] * len(df), dtype="string")
    df.loc[df.index.str.startswith("NONSURFACE"), "surfy_training"] = "nonsurface"
    for c in ("hpa_compartments", "hpa_reliability", "uniprot_compartments"):
        df[c] = df[c].astype("string")
    return df


def test_uncertain_hpa_location_is_no_surface_witness() -> None:
    """HPA's flag counts only where its location call is not Uncertain (NCKAP1L, a cytoplasmic
    WAVE-complex protein, was offered to binders on an Uncertain plasma-membrane image); a CD
    designation folded into the flag stands (RHD)."""
    s = pd.DataFrame(
        {
            "hpa": [True, True, True],
            "hpa_plasma_membrane": [True, True, True],
            "hpa_reliability": pd.array(["Uncertain", "Approved", "Uncertain"], dtype="string"),
            "hpa_cd_marker": [False, False, True],
            "hpa_predicted_membrane": [True, True, True],
        },
        index=["UNCERTAIN", "APPROVED", "CD_UNCERTAIN"],
    )
    p = reachability(s)["surface_probability"]
    assert p["UNCERTAIN"] == pytest.approx(W["tm_prediction"], abs=1e-4)
    both = 1 - (1 - W["hpa_if"]) * (1 - W["tm_prediction"])
    assert p["APPROVED"] == pytest.approx(both, abs=1e-4)
    assert p["CD_UNCERTAIN"] == pytest.approx(both, abs=1e-4)


def test_residency_rule_on_a_hand_built_table() -> None:
    expected = {
        "ER_ENZYME": "organelle",  # HPA and UniProt say ER; nothing says plasma membrane
        "GOLGI_CYCLER": "organelle",  # validated Golgi image + UniProt Golgi beat its PM note
        "ER_RECEPTOR": "plasma-membrane",  # ER agreement (Approved) does not beat the flag
        "FGFR_LIKE": "plasma-membrane",  # nor does Supported ER with a PM note in the text
        "LYSO_FLAGGED": "organelle",  # lysosome agreement, the text names no PM
        "LYSO_PM_TEXT": "plasma-membrane",  # lysosome agreement but the text names the PM
        "RECYCLER": "plasma-membrane",  # HPA endosomes alone do not beat UniProt's flag
        "LAMP_LIKE": "organelle",  # PM only in a text that names the lysosome; no flag
        "ENDOSOME_ONLY": "organelle",  # endosomes with no PM anywhere
        "GOLGI_ENZYME": "organelle",  # validated Golgi image, SURFY left it out
        "GOLGI_SURFY": "plasma-membrane",  # same image, but SURFY calls it surface
        "GPI_VESICLE": "plasma-membrane",  # a GPI anchor puts it outside
        "UNCERTAIN_ER": "unknown",  # an Uncertain HPA location is no evidence
        "HPA_PM": "plasma-membrane",  # HPA sees it at the plasma membrane
        "UNCERTAIN_PM": "unknown",  # nor is an Uncertain plasma-membrane location
        "NONSURFACE": "organelle",  # SURFY's curated non-surface label, nothing against it
        "NONSURFACE_APPROVED_PM": "organelle",  # it outweighs one antibody's PM image
        "NONSURFACE_SUPPORTED_PM": "plasma-membrane",  # not a supported one
        "NOTHING": "unknown",
    }
    got = residency(_locations())
    assert got.to_dict() == expected


def test_organelle_residents_lose_reach_and_endocytic_credit() -> None:
    loc = _locations().loc[["ER_ENZYME", "LYSO_FLAGGED", "RECYCLER", "NOTHING"]].copy()
    loc["cspa_category"] = pd.array([1, 1, 1, None], dtype="Int8")
    loc["go"] = False
    loc["hpa"] = False
    loc["hpa_predicted_membrane"] = True
    loc["ectodomain_aa"] = pd.array([300, 300, 300, 300], dtype="Int32")
    loc["n_tm"] = pd.array([1, 1, 1, 1], dtype="Int16")
    loc["topology_source"] = pd.array(["uniprot"] * 4, dtype="string")
    loc["secreted_form"] = False
    loc["endocytic"] = [True, True, True, False]
    r = reachability(loc)
    # ER_ENZYME: CSPA high, SURFY, helix prediction; organelle factor
    p = 1 - (1 - W["cspa_high"]) * (1 - W["surfy"]) * (1 - W["tm_prediction"])
    assert r.loc["ER_ENZYME", "reach"] == pytest.approx(p * RESIDENCY_FACTOR["organelle"], abs=1e-4)
    p = 1 - (1 - W["uniprot"]) * (1 - W["cspa_high"]) * (1 - W["tm_prediction"])
    assert r.loc["RECYCLER", "reach"] == pytest.approx(p, abs=1e-4)
    ref = _reference(loc)
    mean = np.full(len(loc), 10.0)
    res = targetability(
        loc.index, ref, "adc", healthy_fraction=_fraction_for(loc.index), tumor_mean_cp10k=mean
    )
    density = 10.0 / (10.0 + MODALITY_PROFILES["adc"].density_k_cp10k)
    for g in loc.index:
        # endocytosis counts only for what is on the surface first
        credit = bool(loc.loc[g, "endocytic"]) and r.loc[g, "residency"] != "organelle"
        expect = r.loc[g, "reach"] * density * (1.0 if credit else 0.5)
        assert res.loc[g, "modality_factor"] == pytest.approx(expect, rel=1e-3), g
    flags = res["targetability_flags"]
    assert "organelle-resident" in flags["ER_ENZYME"]
    assert "internalises" not in flags["LYSO_FLAGGED"]
    assert "internalises" in flags["RECYCLER"]
    assert "organelle-resident" not in flags["NOTHING"]


def _fraction_for(genes: pd.Index) -> pd.DataFrame:
    return pd.DataFrame(0.0, index=genes, columns=["c:t", "c:t8", "c:nk", "c:hep", "t:kid"])


def test_phobius_prior_by_hand() -> None:
    # f-bar: 0.921 of curated anchored proteins have an ectodomain, the rest count 0.05
    fbar = 0.921 * 1.0 + 0.079 * 0.05  # 0.92495
    cls = np.array(["ectodomain", "short-ectodomain", "ectodomain", "short-ectodomain",
                    "ectodomain", "topology-unknown", "short-ectodomain"])  # fmt: skip
    src = np.array(["phobius", "phobius", "phobius", "phobius", "uniprot", "phobius",
                    "phobius-cspa"], dtype=object)  # fmt: skip
    sp = np.array([False, False, True, True, False, False, False])
    got = ectodomain_factor(cls, src, sp)
    expect = [
        0.63 * 1.0 + 0.37 * fbar,  # 0.97223
        0.63 * 0.05 + 0.37 * fbar,  # 0.37373
        0.93 * 1.0 + 0.07 * fbar,  # 0.99475
        0.93 * 0.05 + 0.07 * fbar,  # 0.11125
        1.0,  # UniProt's topology is taken as right
        ECTODOMAIN_FACTOR["topology-unknown"],  # nothing predicted: unchanged
        0.05,  # a Phobius string that CSPA peptides confirmed counts as curated
    ]
    assert got == pytest.approx(expect, abs=1e-6)


def test_measured_topology_decides_the_anchor() -> None:
    """HPA's helix prediction anchors a protein only when no topology was measured."""
    df = pd.DataFrame(
        {
            "uniprot": [True, True],
            "hpa_predicted_membrane": [True, True],
            "n_tm": pd.array([0, None], dtype="Int16"),  # 0: SURFY found no helix
            "ectodomain_aa": pd.array([None, None], dtype="Int32"),
        },
        index=["SOLUBLE", "UNMEASURED"],
    )
    r = reachability(df)
    assert r.loc["SOLUBLE", "ectodomain_class"] == "no-anchor"
    assert r.loc["UNMEASURED", "ectodomain_class"] == "topology-unknown"


def test_ectodomain_base_rate_is_the_measured_share() -> None:
    from antigenscout.reference import load_reference

    s = load_reference().surface
    s = s[s["protein_coding"].astype(bool)]
    curated = s["topology_source"].eq("uniprot").fillna(False)
    anchored = s["n_tm"].fillna(0).gt(0) | s["gpi_anchor"].astype(bool)
    sel = s[curated & anchored]
    has = sel["gpi_anchor"].astype(bool) | sel["ectodomain_aa"].fillna(0).ge(20)
    assert len(sel) == 3_798
    assert has.mean() == pytest.approx(ECTODOMAIN_BASE_RATE, abs=5e-4)


def test_named_proteins_on_the_shipped_reference() -> None:
    from antigenscout.reference import load_reference

    surf = load_reference().surface
    residents = ["STT3B", "TGOLN2", "TM9SF2", "LAMP1", "LAMP2", "M6PR", "RPN1", "PIGT",
                 "SCARB2", "TMEM9"]  # fmt: skip
    surface = ["TFRC", "FLT3", "EGFR", "FOLR1", "MSLN", "CXCR4", "CD19", "ERBB2", "CD3E"]
    measured = ["CD3E", "CD81", "LILRB4", "CD99", "STEAP1"]
    r = reachability(surf.loc[residents + surface + measured + ["TYROBP"]])
    assert (r.loc[residents, "residency"] == "organelle").all()
    assert (r.loc[residents, "reach"] < 0.05).all()
    assert (r.loc[surface, "residency"] == "plasma-membrane").all()
    assert (r.loc[surface, "reach"] > 0.8).all()
    assert (r.loc[measured, "ectodomain_class"] == "ectodomain").all()
    assert r.loc["STEAP1", "topology_source"] == "phobius"
    assert r.loc["TYROBP", "ectodomain_class"] == "short-ectodomain"


@pytest.mark.parametrize("code", ["BRCA", "PRAD"])
def test_adc_top_15_holds_no_organelle_resident(code: str) -> None:
    """The ADC list of a carcinoma (TCGA median, bulk) offers no ER/Golgi/lysosome resident."""
    import warnings

    import antigenscout as asc
    from antigenscout.datasets._datasets import TCGA_HPA_CANCER

    a = asc.datasets.tcga_medians()[[code]].copy()
    a.X = np.nan_to_num(np.asarray(a.X, dtype=np.float32))
    a.uns["antigenscout"] = {"kind": "bulk"}
    asc.pp.harmonise_genes(a)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        asc.tl.score_targets(
            a, modality="adc", malignant_key=None, kind="bulk", cancer=TCGA_HPA_CANCER[code]
        )
    top = asc.get.targets_df(a).head(15)
    assert (top["residency"] != "organelle").all(), top[["target", "residency"]]
    assert not set(top["target"]) & {"LAMP1", "RPN1", "SCARB2", "PIGT", "TM9SF2", "TMEM9"}


def test_ectodomain_factor_takes_missing_values() -> None:
    """A topology source or signal-peptide flag the table lacks (pd.NA) counts as curated /
    absent instead of raising."""
    import pandas as pd

    from antigenscout.tl._targetability import ECTODOMAIN_FACTOR, ectodomain_factor

    cls = np.array(["ectodomain", "short-ectodomain", "ectodomain"], dtype=object)
    src = pd.array(["phobius", pd.NA, "uniprot"], dtype="string")
    sp = pd.array([pd.NA, False, True], dtype="boolean")
    got = ectodomain_factor(cls, src, sp)
    want = ectodomain_factor(
        cls, np.array(["phobius", "uniprot", "uniprot"]), np.array([False, False, True])
    )
    np.testing.assert_allclose(got, want)
    assert got[2] == ECTODOMAIN_FACTOR["ectodomain"]
