"""Subcellular locations (HPA immunofluorescence, UniProt) reduced to what a binder needs.

A binder reaches the non-cytoplasmic domain of a protein only when that domain faces the
outside of the cell, that is when the protein sits in the plasma membrane. The same
topology string (``NC`` = non-cytoplasmic) describes the *lumen* of the endoplasmic
reticulum, the Golgi, lysosomes or endosomes when the protein resides there, so topology
alone cannot tell a receptor from an ER enzyme. Two location sources can:

* **HPA** subcellular atlas (v21.1): immunofluorescence of cultured cell lines, a main and an
  additional location per gene (names such as ``Plasma membrane``, ``Golgi apparatus``,
  ``Vesicles``) and a reliability (``Enhanced``, ``Supported``, ``Approved``, ``Uncertain``).
* **UniProt** subcellular location text (as SURFY stored it in 2018 for the proteins of its
  surfaceome): ``;``-separated locations such as ``Lysosome membrane (Single-pass type I
  membrane protein)`` or ``Golgi apparatus, trans-Golgi network membrane``.

This module maps both vocabularies onto the same compartments (:data:`COMPARTMENTS`); the rule
that turns them into *organelle residency* lives in :mod:`antigenscout.tl._targetability`
(docs/modalities.md, "Reachability").
"""

from __future__ import annotations

import re

__all__ = [
    "COMPARTMENTS",
    "HPA_ENDOCYTIC",
    "HPA_ORGANELLE",
    "HPA_PLASMA_MEMBRANE",
    "RESIDENT_COMPARTMENTS",
    "epithelial_side",
    "hpa_compartments",
    "hpa_locations",
    "join_compartments",
    "uniprot_compartments",
    "uniprot_locations",
]

#: Compartments shared by both vocabularies. ``plasma-membrane`` is the one a binder reaches.
COMPARTMENTS = (
    "plasma-membrane",
    "er",
    "golgi",
    "lysosome",
    "endosome",
    "vesicle",
    "mitochondrion",
    "peroxisome",
    "nuclear-envelope",
    "lipid-droplet",
)
#: Compartments where a resident protein's non-cytoplasmic domain is lumenal (or, for
#: mitochondria, peroxisomes and lipid droplets, never exposed) and which a plasma-membrane
#: protein does not pass through on its way in: endosomes and vesicles are left out, since
#: every internalised receptor visits them (UniProt annotates EGFR, FOLR1 and CXCR4 there).
RESIDENT_COMPARTMENTS = frozenset(
    {"er", "golgi", "lysosome", "mitochondrion", "peroxisome", "nuclear-envelope", "lipid-droplet"}
)

#: HPA locations that place a protein at the plasma membrane.
HPA_PLASMA_MEMBRANE: dict[str, str] = {
    "Plasma membrane": "plasma-membrane",
    "Cell Junctions": "plasma-membrane",
    "Focal adhesion sites": "plasma-membrane",
}
#: HPA locations of membrane-bounded organelles. HPA's ``Vesicles`` pools endosomes,
#: lysosomes, transport and secretory vesicles.
HPA_ORGANELLE: dict[str, str] = {
    "Endoplasmic reticulum": "er",
    "Golgi apparatus": "golgi",
    "Lysosomes": "lysosome",
    "Endosomes": "endosome",
    "Vesicles": "vesicle",
    "Mitochondria": "mitochondrion",
    "Peroxisomes": "peroxisome",
    "Nuclear membrane": "nuclear-envelope",
    "Lipid droplets": "lipid-droplet",
}
#: HPA locations that witness endocytosis.
HPA_ENDOCYTIC = frozenset({"Endosomes", "Lysosomes"})

#: UniProt location (text before any ``(...)`` topology note) -> compartment, first match wins.
_UNIPROT_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(p, re.I), c)
    for p, c in (
        (r"cell membrane|^cell surface|^cell junction|^cell projection|^membrane raft"
         r"|^membrane, (caveola|coated pit|clathrin-coated pit)|^myelin membrane",
         "plasma-membrane"),
        (r"^endoplasmic reticulum-golgi intermediate compartment", "er"),
        (r"^(rough |smooth )?endoplasmic reticulum|^microsome|^sarcoplasmic reticulum", "er"),
        (r"^golgi apparatus", "golgi"),
        (r"^lysosome|^vacuole", "lysosome"),
        (r"^(early |late |recycling )?endosome", "endosome"),
        (r"^cytoplasmic vesicle", "vesicle"),
        (r"^mitochondrion", "mitochondrion"),
        (r"^peroxisome", "peroxisome"),
        (r"^nucleus (inner |outer )?membrane|^nucleus envelope", "nuclear-envelope"),
        (r"^lipid droplet", "lipid-droplet"),
    )
)  # fmt: skip


def hpa_locations(main: object, additional: object) -> list[str]:
    """HPA main and additional locations as one list, in order, without repeats.

    Examples
    --------
    >>> hpa_locations("Golgi apparatus", "Nucleoplasm;Golgi apparatus")
    ['Golgi apparatus', 'Nucleoplasm']
    >>> hpa_locations(float("nan"), None)
    []
    """
    out: list[str] = []
    for part in (main, additional):
        if not isinstance(part, str):
            continue
        for loc in part.split(";"):
            loc = loc.strip()  # noqa: PLW2901
            if loc and loc not in out:
                out.append(loc)
    return out


_HPA_COMPARTMENT = {**HPA_PLASMA_MEMBRANE, **HPA_ORGANELLE}


def hpa_compartments(locations: list[str]) -> frozenset[str]:
    """Compartments of :data:`COMPARTMENTS` named by HPA locations (others are ignored).

    Examples
    --------
    >>> sorted(hpa_compartments(["Endoplasmic reticulum", "Plasma membrane", "Cytosol"]))
    ['er', 'plasma-membrane']
    """
    return frozenset(_HPA_COMPARTMENT[loc] for loc in locations if loc in _HPA_COMPARTMENT)


def uniprot_locations(text: object) -> list[str]:
    """UniProt subcellular locations without their topology notes, in order, no repeats.

    Examples
    --------
    >>> uniprot_locations("Cell membrane (Single-pass type I membrane protein);"
    ...                   "Lysosome membrane (Single-pass type I membrane protein)")
    ['Cell membrane', 'Lysosome membrane']
    """
    if not isinstance(text, str):
        return []
    out: list[str] = []
    for part in text.split(";"):
        loc = re.sub(r"\s*\(.*$", "", part).strip()
        if loc and loc not in out:
            out.append(loc)
    return out


def uniprot_compartments(locations: list[str]) -> frozenset[str]:
    """Compartments of :data:`COMPARTMENTS` named by UniProt locations.

    ``Membrane`` (unspecified), ``Secreted``, ``Cytoplasm``, ``Nucleus`` and ``Melanosome``
    (an annotation that rests mostly on proteomics of melanosome preparations, which list ER
    proteins too) name none.

    Examples
    --------
    >>> sorted(uniprot_compartments(["Cell membrane", "Golgi apparatus, trans-Golgi network"
    ...                              " membrane", "Melanosome"]))
    ['golgi', 'plasma-membrane']
    """
    out = set()
    for loc in locations:
        for pattern, comp in _UNIPROT_RULES:
            if pattern.search(loc):
                out.add(comp)
                break
    return frozenset(out)


def join_compartments(comps: frozenset[str]) -> str | None:
    """Join compartments with ``;`` in :data:`COMPARTMENTS` order; ``None`` if there are none.

    Examples
    --------
    >>> join_compartments(frozenset({"golgi", "er"}))
    'er;golgi'
    """
    ordered = [c for c in COMPARTMENTS if c in comps]
    return ";".join(ordered) or None


#: UniProt locations on the apical (lumen-facing) side of a polarised epithelium, or at the
#: tight junction that seals it.
_APICAL = re.compile(
    r"^(Apical cell membrane|Cell junction, tight junction|Cell projection, microvillus)"
)
#: UniProt locations on the side facing the blood and interstitium.
_BASOLATERAL = re.compile(r"^(Basolateral cell membrane|Lateral cell membrane|Basal cell membrane)")


def epithelial_side(locations: list[str]) -> str | None:
    """Which surface of a polarised epithelium UniProt places a protein on.

    Returns
    -------
    ``'apical'`` (apical membrane, microvilli or tight junction, and no basolateral
    location), ``'basolateral'``, ``'both'``, or ``None`` where UniProt names neither side
    (a plain ``Cell membrane`` says nothing about polarity).

    Examples
    --------
    >>> epithelial_side(["Cell junction, tight junction", "Cell membrane"])
    'apical'
    >>> epithelial_side(["Cell junction, tight junction", "Lateral cell membrane"])
    'both'
    >>> epithelial_side(["Basolateral cell membrane"]), epithelial_side(["Cell membrane"])
    ('basolateral', None)
    """
    apical = any(_APICAL.match(loc) for loc in locations)
    basolateral = any(_BASOLATERAL.match(loc) for loc in locations)
    if apical and basolateral:
        return "both"
    if apical:
        return "apical"
    return "basolateral" if basolateral else None
