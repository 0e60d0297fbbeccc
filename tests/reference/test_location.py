"""HPA and UniProt locations mapped to compartments, checked on strings worked by hand."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from antigenscout.reference._location import (
    COMPARTMENTS,
    epithelial_side,
    hpa_compartments,
    hpa_locations,
    join_compartments,
    uniprot_compartments,
    uniprot_locations,
)


def test_hpa_locations_merge_main_and_additional() -> None:
    # TGOLN2 in HPA 21.1: main "Golgi apparatus", additional "Nucleoplasm"
    assert hpa_locations("Golgi apparatus", "Nucleoplasm") == ["Golgi apparatus", "Nucleoplasm"]
    # CD3E: main "Endoplasmic reticulum;Plasma membrane", additional "Golgi apparatus"
    locs = hpa_locations("Endoplasmic reticulum;Plasma membrane", "Golgi apparatus")
    assert sorted(hpa_compartments(locs)) == ["er", "golgi", "plasma-membrane"]
    assert hpa_locations(None, float("nan")) == []


@pytest.mark.parametrize(
    ("location", "compartment"),
    [
        ("Plasma membrane", "plasma-membrane"),
        ("Cell Junctions", "plasma-membrane"),
        ("Focal adhesion sites", "plasma-membrane"),
        ("Endoplasmic reticulum", "er"),
        ("Golgi apparatus", "golgi"),
        ("Vesicles", "vesicle"),
        ("Lysosomes", "lysosome"),
        ("Endosomes", "endosome"),
        ("Mitochondria", "mitochondrion"),
        ("Peroxisomes", "peroxisome"),
        ("Nuclear membrane", "nuclear-envelope"),
        ("Lipid droplets", "lipid-droplet"),
    ],
)
def test_hpa_compartment_of_each_location(location: str, compartment: str) -> None:
    assert hpa_compartments([location]) == {compartment}


@pytest.mark.parametrize("location", ["Cytosol", "Nucleoplasm", "Centrosome", "Actin filaments"])
def test_hpa_locations_outside_membranes_name_no_compartment(location: str) -> None:
    assert hpa_compartments([location]) == frozenset()


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        # the UniProt texts below are SURFY's (surfy_in_silico_surfaceome.tsv), verbatim
        (
            "LAMP1",
            "Cell membrane (Single-pass type I membrane protein);Endosome membrane "
            "(Single-pass type I membrane protein);Late endosome;Lysosome membrane "
            "(Single-pass type I membrane protein)",
            {"plasma-membrane", "endosome", "lysosome"},
        ),
        (
            "TGOLN2",
            "Cell membrane (Single-pass type I membrane protein);Golgi apparatus, trans-Golgi "
            "network membrane (Single- pass type I membrane protein)",
            {"plasma-membrane", "golgi"},
        ),
        ("FLT3", "Endoplasmic reticulum lumen;Membrane (Single-pass type I membrane protein)",
         {"er"}),
        ("STT3B", "Endoplasmic reticulum membrane (Multi-pass membrane protein)", {"er"}),
        ("RPN1", "Endoplasmic reticulum membrane (Single-pass type I membrane protein);"
         "Melanosome", {"er"}),
        (
            "FOLR1",
            "Apical cell membrane;Cell membrane (Lipid-anchor, GPI-anchor);Cytoplasmic vesicle;"
            "Cytoplasmic vesicle, clathrin-coated vesicle;Endosome;Secreted",
            {"plasma-membrane", "vesicle", "endosome"},
        ),
        (
            "CLSTN1",
            "Cell junction, synapse, postsynaptic cell membrane (Single-pass type I membrane "
            "protein);Cell projection;Endoplasmic reticulum membrane (Single-pass type I "
            "membrane protein);Golgi apparatus membrane;Nucleus",
            {"plasma-membrane", "er", "golgi"},
        ),
        ("SLC29A2", "Basolateral cell membrane;Nucleus membrane", {"plasma-membrane",
                                                                 "nuclear-envelope"}),
        ("SLC8B1", "Cell membrane;Mitochondrion inner membrane", {"plasma-membrane",
                                                                "mitochondrion"}),
        ("NCSTN", "Melanosome;Membrane (Single-pass type I membrane protein)", set()),
    ],
)  # fmt: skip
def test_uniprot_compartments_of_named_proteins(name: str, text: str, expected: set) -> None:
    assert uniprot_compartments(uniprot_locations(text)) == expected, name


def test_uniprot_locations_drop_topology_notes_and_repeats() -> None:
    text = "Cell membrane;Cell membrane (Multi-pass membrane protein);Secreted;Secreted"
    assert uniprot_locations(text) == ["Cell membrane", "Secreted"]
    assert uniprot_locations(None) == []


def test_join_compartments_orders_and_empties() -> None:
    assert join_compartments(frozenset({"lysosome", "plasma-membrane", "er"})) == (
        "plasma-membrane;er;lysosome"
    )
    assert join_compartments(frozenset()) is None
    assert set(COMPARTMENTS) >= {"er", "golgi", "lysosome"}


def test_embedded_reference_locations_match_the_raw_rows(shared_data: Path) -> None:
    """Shipped HPA columns against HPA 21.1 rows read by hand; UniProt against SURFY text."""
    from antigenscout.reference import load_reference

    surf = load_reference().surface
    # TGOLN2: Golgi apparatus / Nucleoplasm, Enhanced; TFRC: Endosomes;Lysosomes, Supported
    assert surf.loc["TGOLN2", "hpa_compartments"] == "golgi"
    assert surf.loc["TGOLN2", "hpa_reliability"] == "Enhanced"
    assert surf.loc["TFRC", "hpa_compartments"] == "lysosome;endosome"
    assert not surf.loc["TFRC", "hpa_plasma_membrane"]
    assert bool(surf.loc["TFRC", "endocytic"])  # HPA Endosomes: internalisation evidence
    # CD81: Plasma membrane / Cytosol
    assert bool(surf.loc["CD81", "hpa_plasma_membrane"])
    assert pd.isna(surf.loc["CD81", "hpa_compartments"])
    assert surf.loc["LAMP1", "uniprot_compartments"] == "plasma-membrane;lysosome;endosome"
    assert surf.loc["STT3B", "uniprot_compartments"] == "er"
    # every gene: the plasma-membrane flag is a plain substring test on the raw row
    sub = pd.read_csv(shared_data / "hpa/subcellular_location_v21.1.tsv.gz", sep="\t")
    sub = sub.drop_duplicates("Gene.name", keep=False).set_index("Gene.name")
    both = sub.index.intersection(surf.index)
    raw = sub.loc[both, ["Main.location", "Additional.location"]].fillna("")
    text = raw["Main.location"] + ";" + raw["Additional.location"]
    expect = text.str.contains("Plasma membrane|Cell Junctions|Focal adhesion sites")
    got = surf.loc[both, "hpa_plasma_membrane"].astype(bool)
    assert len(both) > 12_000
    assert (got == expect).mean() > 0.999  # symbols renamed since HPA 21.1 may differ


@pytest.mark.parametrize(
    ("text", "side"),
    [
        # CLDN18 (UniProt via SURFY): a claudin at the tight junction, plain cell membrane
        ("Cell junction, tight junction;Cell membrane (Multi-pass membrane protein)", "apical"),
        # CLDN7: the tight junction and the lateral membrane
        (
            "Cell junction, tight junction;Cell membrane (Multi-pass membrane protein);"
            "Lateral cell membrane",
            "both",
        ),
        # LCT: brush-border lactase
        ("Apical cell membrane (Single-pass type I membrane protein)", "apical"),
        # CXADR: basolateral and junctional
        (
            "Basolateral cell membrane (Single-pass type I membrane protein);"
            "Cell junction, tight junction",
            "both",
        ),
        ("Basolateral cell membrane (Multi-pass membrane protein)", "basolateral"),
        ("Cell membrane (Single-pass type I membrane protein)", None),
        ("", None),
    ],
)
def test_epithelial_side_of_named_proteins(text: str, side: str | None) -> None:
    assert epithelial_side(uniprot_locations(text)) == side


def test_embedded_epithelial_side_matches_surfy_text(shared_data: Path) -> None:
    """``surface.parquet`` ``epithelial_side`` against SURFY's UniProt text, row by row."""
    from antigenscout.reference import load_reference

    surf = load_reference().surface
    sf = pd.read_csv(shared_data / "surfaceome/surfy_in_silico_surfaceome.tsv", sep="\t")
    sf = sf.drop_duplicates("UniProt gene", keep=False).set_index("UniProt gene")
    text = sf["UniProt subcellular"].fillna("")
    apical = text.str.contains("Apical cell membrane|tight junction|microvillus", regex=True)
    baso = text.str.contains("Basolateral cell membrane|Lateral cell membrane|Basal cell membrane")
    want = pd.Series(None, index=sf.index, dtype=object)
    want[apical & ~baso] = "apical"
    want[~apical & baso] = "basolateral"
    want[apical & baso] = "both"
    both = want.index.intersection(surf.index)
    got = (
        surf.loc[both, "epithelial_side"]
        .astype(object)
        .where(surf.loc[both, "epithelial_side"].notna(), None)
    )
    assert (got.fillna("-") == want[both].fillna("-")).mean() > 0.995
    assert surf.loc["CLDN18", "epithelial_side"] == "apical"
    assert surf.loc["EPCAM", "epithelial_side"] == "both"
