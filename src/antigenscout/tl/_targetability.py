"""What a therapy can reach and what each kind of therapy needs (docs/modalities.md).

Two questions decide whether a gene is a *target* for a given modality, before coverage and
healthy risk are weighed:

1. **Reachability** (binder modalities only): can an antibody, a CAR or a ligand bind the
   protein on an intact cell? That needs a membrane anchor (a transmembrane helix or a GPI
   anchor), evidence that the protein sits at the plasma membrane, and an extracellular
   segment large enough to hold an epitope. Evidence is combined softly: each source that
   calls the protein surface-exposed is an independent, imperfect witness, and the chance
   that at least one is right is ``1 - prod(1 - w_s)`` (a noisy-OR with a prior weight
   ``w_s`` per source, :data:`SOURCE_WEIGHTS`). That probability is multiplied by a factor
   for what is known of the ectodomain (:data:`ECTODOMAIN_FACTOR`; a topology that Phobius
   predicted counts for less than UniProt's, :func:`ectodomain_factor`) and by one for
   where the protein resides (:data:`RESIDENCY_FACTOR`): the non-cytoplasmic domain of an
   ER, Golgi or lysosome resident is lumenal, out of a binder's reach (:func:`residency`).
   No single source's flag can put a keratin on the list or take STEAP1 off it.
2. **The modality's needs** (:data:`MODALITY_PROFILES`): CAR-T cells kill T cells that
   carry the target (fratricide); ADCs need antigen density and internalisation; a soluble
   (shed) form mops up an antibody; TCR-T and vaccines reach any protein presented on HLA;
   a receptor agonist engages at low density and kills nothing.

The weights are priors set from how each source is made (stated below), never fitted to
the clinical record; see docs/modalities.md for each modality's page.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..reference._location import RESIDENT_COMPARTMENTS

if TYPE_CHECKING:
    from ..reference import Reference

__all__ = [
    "ECTODOMAIN_BASE_RATE",
    "ECTODOMAIN_FACTOR",
    "MIN_ECTODOMAIN_AA",
    "MODALITY_PROFILES",
    "PHOBIUS_TOPOLOGY_ACCURACY",
    "PRESENTED_FLOOR_CP10K",
    "RESIDENCY_FACTOR",
    "SOURCE_WEIGHTS",
    "ModalityProfile",
    "ectodomain_factor",
    "lineage_contexts",
    "modalities",
    "reachability",
    "residency",
    "targetability",
]

#: Prior probability that a protein is surface-exposed given that one source says so.
#: CSPA high confidence: glycopeptides captured from intact cells (Bausch-Fluck 2015);
#: SURFY: a classifier on topology and domain features (Bausch-Fluck 2018); UniProt: curated
#: "Cell membrane" location; HPA: immunofluorescence at the plasma membrane or junctions;
#: GO: cell-surface / plasma-membrane terms, many inferred electronically; CSPA putative:
#: fewer or ambiguous peptides; a predicted transmembrane helix alone (HPA "Predicted
#: membrane proteins") says "some membrane", which is the plasma membrane for a minority.
SOURCE_WEIGHTS: dict[str, float] = {
    "cspa_high": 0.5,
    "surfy": 0.5,
    "uniprot": 0.5,
    "hpa_if": 0.4,
    "go": 0.3,
    "cspa_putative": 0.2,
    "tm_prediction": 0.15,
}
#: Smallest extracellular segment (residues) counted as an ectodomain a binder can hold:
#: CD52 (alemtuzumab), the smallest approved antibody target we know of, has 37 residues
#: after its signal peptide; signalling adaptors such as FcRγ have about five.
MIN_ECTODOMAIN_AA = 20
#: Factor on the surface probability by what is known of the extracellular part.
ECTODOMAIN_FACTOR: dict[str, float] = {
    "ectodomain": 1.0,  # topology shows a non-cytoplasmic segment >= MIN_ECTODOMAIN_AA, or GPI
    # anchored and called surface by some source, but no Swiss-Prot topology at all (not in
    # SURFY's 2017 master table: new or unmapped entries) and so not in SURFY's surfaceome.
    # SURFY holds 95.8% of the anchored proteins that CSPA captured on intact cells (an
    # accessible ectodomain), so absence has a likelihood ratio of about 0.042; from a prior
    # of 0.7 that leaves 0.09 (docs).
    "topology-unknown": 0.1,
    "short-ectodomain": 0.05,  # topology shows only loops < MIN_ECTODOMAIN_AA
    "no-anchor": 0.0,  # no transmembrane helix and no GPI anchor: not on the surface
}
#: Share of predicted topologies that are right, for Phobius (Nugent & Jones 2009 BMC
#: Bioinformatics 10:159, Table 2, proteins of known structure): the whole topology of 63%
#: of membrane proteins, and of 93% of those with a signal peptide (which fixes the
#: orientation of what follows). UniProt's annotated topologies are taken as right.
PHOBIUS_TOPOLOGY_ACCURACY: dict[str, float] = {"signal_peptide": 0.93, "other": 0.63}
#: What a wrong prediction leaves: the share of anchored proteins (protein-coding, a helix or
#: a GPI anchor) with a UniProt-annotated topology whose topology shows an ectodomain, 3,498
#: of 3,798 in the shipped reference (tests/tl/test_targetability.py recomputes it).
ECTODOMAIN_BASE_RATE = 0.921
#: Factor on reach by where the protein resides (:func:`residency`). An organelle resident's
#: non-cytoplasmic domain faces the lumen; 0.05 (as for a short ectodomain) says that a
#: surface pool is possible (LAMP1 on degranulating cells) but not to be expected.
RESIDENCY_FACTOR: dict[str, float] = {"plasma-membrane": 1.0, "unknown": 1.0, "organelle": 0.05}
#: HPA reliability "Enhanced": the location was validated independently (siRNA, a tagged
#: protein, a second antibody); "Supported" agrees with published data, "Approved" rests on
#: one antibody, "Uncertain" conflicts with other data (never used as evidence).
_HPA_VALIDATED = frozenset({"Enhanced"})
_HPA_SUPPORTED = frozenset({"Enhanced", "Supported"})
#: Resident compartments a plasma-membrane protein does not pass through on its way out.
_OFF_ROUTE = RESIDENT_COMPARTMENTS - {"er", "golgi"}
#: T-cell and NK-cell contexts, matched on context names (any reference).
_T_CELL = re.compile(
    r"\bT[- ]?cells?\b|\bT_cell|MAIT|regulatory T|cytotoxic T|gamma-delta|\bCTL\b", re.I
)
_NK_CELL = re.compile(r"\bNK[- ]?cells?\b|\bNK_cell", re.I)
#: Contexts where a radioligand accumulates whatever it targets (docs/modalities.md).
_RENAL_SALIVARY = re.compile(r"kidney|renal|tubul|salivary|glandular cells of the salivary", re.I)


#: Kill threshold of agents that see presented peptides (TCR-T, vaccine-primed T cells): a
#: single peptide-MHC complex triggers a T cell (Huang et al. 2013 Immunity 39:846), so any
#: cell that makes the protein at all can be engaged. Set at HPA's own detection limit,
#: 1 nTPM (0.01 CP10k), below which the reference cannot tell expression from none.
PRESENTED_FLOOR_CP10K = 0.01


@dataclass(frozen=True)
class ModalityProfile:
    """What one kind of therapy needs from a target, with the reason and a source.

    Attributes
    ----------
    name
        The ``--modality`` value.
    binder
        The agent binds an intact protein on the cell surface (needs reachability).
    kills
        Engaged cells are killed (False for receptor agonists).
    fratricide
        Lineage whose own cells would be attacked when they carry the target
        (``'T'`` for CAR-T and T-cell engagers, ``'NK'`` for CAR-NK), or ``None``.
    density_k_cp10k
        Tumour expression (mean CP10k) at which the density factor reaches 1/2: an
        order-of-magnitude prior for how much antigen the agent needs (see docs).
    internalisation
        Weight of endocytosis evidence (ADCs and radioligands act after internalisation).
    soluble_sink
        Factor applied when a shed or secreted form can mop up a soluble agent.
    patient_heterogeneity
        Rank on the lower quartile of per-patient coverage instead of the pooled coverage.
    harm_factor
        Healthy engagement's severity relative to killing (1 = engaged cells die).
    engage_floor_cp10k
        Least antigen (RNA-equivalent CP10k) on which the agent acts, its kill threshold:
        a healthy cell below it is not engaged. No therapeutic window lowers engagement
        below it: a healthy cell is not spared because the tumour carries more antigen
        unless a density difference is measured (docs/engagement.md).
    any_level
        The agent acts on any level a cell makes (signalling agonists, presented peptides):
        its floor may lie below the positivity model's detection threshold; otherwise
        healthy cells are judged from that threshold up.
    crosses_barriers
        The agent reaches cells behind the blood–brain, blood–retina and blood–testis
        barriers as it reaches blood (cell therapies and the T cells a vaccine raises do;
        CAR-T cells are found in the CSF). A protein agent does not: its engagement there is
        multiplied by :data:`~antigenscout.tl._exposure.BARRIER_EXPOSURE`.
    persists
        A living drug that expands and persists for months (CAR-T and TCR-T cells, the memory
        T cells a vaccine leaves): it keeps killing wherever it finds the antigen and cannot
        be dosed down, so its harms in different organ systems add up (``vital_risk`` over
        organ systems, :func:`~antigenscout.tl._organs.organ_system_risk`). A dosed agent
        (antibody, ADC, bispecific, radioligand, agonist; CAR-NK cells, which last weeks) is
        given at the dose its most sensitive organ tolerates, so its risk is its worst
        context's.
    notes
        What is noted but not scored (cytokine release, HLA restriction, persistence).
    source
        Where the reasoning comes from.
    """

    name: str
    binder: bool
    kills: bool
    fratricide: str | None
    density_k_cp10k: float
    internalisation: float
    soluble_sink: float
    patient_heterogeneity: bool
    harm_factor: float
    notes: str
    source: str
    engage_floor_cp10k: float = 0.2
    any_level: bool = False
    persists: bool = False
    crosses_barriers: bool = False


MODALITY_PROFILES: dict[str, ModalityProfile] = {
    p.name: p
    for p in (
        ModalityProfile(
            "car-t", True, True, "T", 0.5, 0.0, 1.0, False, 1.0,
            "persists for months to years; cytokine release and ICANS are not scored",
            "fratricide of CD5/CD7 CAR-T: Mamonkin 2015 Blood; Gomes-Silva 2017 Blood; "
            "low-density killing by CARs: Majzner 2020 Cancer Discov; persistence for a "
            "decade: Melenhorst 2022 Nature",
            engage_floor_cp10k=0.2,
            persists=True,
            crosses_barriers=True,
        ),
        ModalityProfile(
            "car-nk", True, True, "NK", 0.5, 0.0, 1.0, False, 1.0,
            "no graft-versus-host disease; short persistence (weeks) without cytokine support",
            "Liu 2020 NEJM (CD19 CAR-NK); fratricide of CD38 CAR-NK: Gurney 2022",
            engage_floor_cp10k=0.2,
            crosses_barriers=True,
        ),
        ModalityProfile(
            "antibody", True, True, None, 2.0, 0.0, 0.9, False, 1.0,
            "depleting (ADCC/CDC) antibodies need density; blocking antibodies kill nothing "
            "and are better ranked with --modality agonist",
            "ADCC scales with antigen density: Velders 1998 Br J Cancer",
            engage_floor_cp10k=0.5,
        ),
        ModalityProfile(
            "adc", True, True, None, 5.0, 0.5, 0.9, False, 1.0,
            "payload toxicities (neutropenia, ILD, ocular) are the drug's, not the target's",
            "HER2 density and T-DM1: Barok 2014 Breast Cancer Res; internalisation: "
            "Tsumura 2023",
            engage_floor_cp10k=1.0,
        ),
        ModalityProfile(
            "bispecific", True, True, "T", 1.0, 0.0, 0.9, False, 1.0,
            "a CD3 arm redirects T cells; cytokine release is noted, not scored",
            "BiTE potency vs density: Bluemel 2010 Cancer Immunol Immunother",
            engage_floor_cp10k=0.3,
        ),
        ModalityProfile(
            "radioligand", True, True, None, 2.0, 0.5, 0.9, False, 1.0,
            "kidney and salivary glands take up radioligands; crossfire reaches "
            "antigen-negative neighbours",
            "PSMA-617 xerostomia and nephrotoxicity: Sartor 2021 NEJM (VISION)",
            engage_floor_cp10k=0.5,
        ),
        ModalityProfile(
            "tcr-t", False, True, None, 0.5, 0.0, 1.0, True, 1.0,
            "HLA-restricted: each TCR serves only patients with its HLA allele",
            "cancer-testis antigens and immune privilege: Simpson 2005 Nat Rev Cancer; one "
            "peptide-MHC triggers a T cell: Huang 2013 Immunity 39:846",
            engage_floor_cp10k=PRESENTED_FLOOR_CP10K,
            any_level=True,
            persists=True,
            crosses_barriers=True,
        ),
        ModalityProfile(
            "vaccine", False, True, None, 0.5, 0.0, 1.0, True, 1.0,
            "HLA-restricted epitopes; response depends on the patient's repertoire",
            "Simpson 2005 Nat Rev Cancer; one peptide-MHC triggers a T cell: Huang 2013",
            engage_floor_cp10k=PRESENTED_FLOOR_CP10K,
            any_level=True,
            persists=True,
            crosses_barriers=True,
        ),
        ModalityProfile(
            "agonist", True, False, None, 0.1, 0.0, 1.0, False, 0.3,
            "engages at low receptor density and activates rather than kills",
            "IMP321 (LAG-3–Ig) binds MHC class II on APCs: Brignone 2007 J Immunol",
            engage_floor_cp10k=0.05,
            any_level=True,
        ),
        ModalityProfile(
            "any", False, True, None, 0.0, 0.0, 1.0, False, 1.0,
            "every protein-coding gene, any location, and features the reference does not know "
            "(antibody panels, non-human genes); no non-coding RNA or pseudogene",
            "—",
            engage_floor_cp10k=0.2,
            crosses_barriers=True,
        ),
    )
}  # fmt: skip


def modalities() -> pd.DataFrame:
    """Return the modality profiles as a table, one row per ``--modality`` value.

    Examples
    --------
    >>> import antigenscout as asc
    >>> asc.tl.modalities().loc["car-t", "fratricide"]
    'T'
    """
    rows = [vars(p) for p in MODALITY_PROFILES.values()]
    return pd.DataFrame(rows).set_index("name")


def _flag(surface: pd.DataFrame, col: str) -> pd.Series:
    if col not in surface.columns:
        return pd.Series(False, index=surface.index)
    return surface[col].astype("boolean").fillna(False).astype(bool)


def _hpa_uncertain(surface: pd.DataFrame) -> pd.Series:
    """Return True where HPA's location call (v21.1) has reliability ``Uncertain``.

    Such a call's staining conflicts with other data. Of the 95 proteins in the shipped
    reference whose only strong surface witness was such a call (no UniProt, SURFY or CSPA
    high-confidence flag), most are cytoplasmic, nuclear, sarcomeric or secreted (myosins,
    cytochromes P450, AXIN2, OLIG2, ITK, NCKAP1L); the few plasma-membrane proteins among them
    (RHD, RHCE, KCNN2, PIRT) keep their other witnesses.
    """
    if "hpa_reliability" not in surface.columns:
        return pd.Series(False, index=surface.index)
    return surface["hpa_reliability"].astype(object).eq("Uncertain")


def _compartments(surface: pd.DataFrame, col: str) -> list[frozenset[str]]:
    if col not in surface.columns:
        return [frozenset()] * len(surface)
    return [
        frozenset(v.split(";")) if isinstance(v, str) and v else frozenset()
        for v in surface[col].astype(object).where(surface[col].notna(), None)
    ]


def residency(surface: pd.DataFrame) -> pd.Series:
    """Where each protein resides: ``plasma-membrane``, ``organelle`` or ``unknown``.

    Three witnesses (docs/modalities.md, "Organelle residents"):

    * **at the plasma membrane**: a GPI anchor; an HPA location (main or additional,
      reliability other than ``Uncertain``) at the plasma membrane, cell junctions or focal
      adhesions (``hpa_plasma_membrane``); UniProt's curated "Cell membrane"/"Cell surface" location
      (the ``uniprot`` flag, or a UniProt location text that names the plasma membrane and
      no resident compartment).
    * **in an organelle**: an HPA location (reliability other than ``Uncertain``) in the ER,
      Golgi, vesicles, lysosomes, endosomes, mitochondria, peroxisomes, nuclear membrane or
      lipid droplets (``hpa_compartments``); a UniProt location in a resident compartment
      (ER, Golgi, lysosome, mitochondrion, peroxisome, nuclear envelope, lipid droplet), or
      in endosomes and vesicles when UniProt names no plasma membrane
      (``uniprot_compartments``); SURFY's curated ``nonsurface`` training label, which
      also outweighs an HPA plasma-membrane image that is neither Enhanced nor Supported
      (``surfy_training``: membrane proteins its authors placed off the cell surface, such as
      SPTLC2 in the ER; UniProt's location text is shipped only for SURFY's surfaceome, so
      this is the curated word on the rest).
    * **agreement** outweighs UniProt's "Cell membrane" flag: HPA and UniProt's location
      text name the same resident compartment (HPA ``Vesicles`` matching a UniProt
      lysosome) and either HPA's image was validated independently (``Enhanced``: TGOLN2 in
      the Golgi, STIM1 in the ER) or the compartment is off the secretory route (lysosome,
      mitochondrion, peroxisome, nuclear envelope, lipid droplet) and the text names no
      plasma membrane (TMEM9, LMBRD1). ER and Golgi agreement alone is not enough: every
      surface protein is made there and is annotated there (FLT3, FGFR3). A validated HPA
      image of an organelle also outweighs the flag for a protein that SURFY's classifier
      left out of the surfaceome (B4GALT1 in the Golgi).

    A protein is ``organelle`` when it has organelle evidence and no plasma-membrane
    evidence, ``plasma-membrane`` when it has plasma-membrane evidence, else ``unknown``
    (no location data: today's surface evidence decides alone).

    Parameters
    ----------
    surface
        Surface table with (any of) ``gpi_anchor``, ``hpa_plasma_membrane``,
        ``hpa_compartments``, ``hpa_reliability``, ``uniprot``, ``uniprot_compartments``.

    Returns
    -------
    Series of str indexed like ``surface``.

    Examples
    --------
    A Golgi protein by HPA (validated) and UniProt, which UniProt also lists at the cell
    membrane (TGOLN2), and a receptor HPA saw only in endosomes (TFRC):

    >>> import pandas as pd
    >>> s = pd.DataFrame({"uniprot": [True, True],
    ...                   "hpa_compartments": ["golgi", "lysosome;endosome"],
    ...                   "hpa_reliability": ["Enhanced", "Supported"],
    ...                   "uniprot_compartments": ["plasma-membrane;golgi", None]},
    ...                  index=["TGOLN2", "TFRC"])
    >>> residency(s).tolist()
    ['organelle', 'plasma-membrane']
    """
    n = len(surface)
    hpa = _compartments(surface, "hpa_compartments")
    up = _compartments(surface, "uniprot_compartments")
    if "hpa_reliability" in surface.columns:
        rel = surface["hpa_reliability"].astype(object).where(surface["hpa_reliability"].notna())
        rel = rel.to_numpy()
    else:
        rel = np.full(n, None, dtype=object)
    gpi = _flag(surface, "gpi_anchor").to_numpy()
    # HPA's "Uncertain" conflicts with other data: it is no witness, for the plasma membrane
    # as for an organelle
    hpa_pm = (_flag(surface, "hpa_plasma_membrane") & ~_hpa_uncertain(surface)).to_numpy()
    up_flag = _flag(surface, "uniprot").to_numpy()
    surfy = _flag(surface, "surfy").to_numpy()
    nonsurface = (
        surface["surfy_training"].astype(object).eq("nonsurface").to_numpy(dtype=bool)
        if "surfy_training" in surface.columns
        else np.zeros(n, dtype=bool)
    )
    out = np.empty(n, dtype=object)
    for i in range(n):
        up_res = up[i] & RESIDENT_COMPARTMENTS
        up_pm = "plasma-membrane" in up[i]
        hpa_org = hpa[i] - {"plasma-membrane"} if rel[i] != "Uncertain" else frozenset()
        same = hpa_org & up_res
        if "vesicle" in hpa_org and "lysosome" in up_res:
            same = same | {"lysosome"}
        # what outweighs UniProt's "Cell membrane": HPA and UniProt's text in the same
        # resident compartment with a validated image, or off the secretory route with no
        # plasma membrane in the text (every surface protein passes through the ER and
        # Golgi and is annotated there: FLT3's immature form in the ER); or a validated
        # organelle image of a protein SURFY's classifier left out (B4GALT1 in the Golgi)
        validated = rel[i] in _HPA_VALIDATED
        agree = not hpa_pm[i] and bool(
            (same and validated)
            or (same & _OFF_ROUTE and not up_pm)
            or (hpa_org and validated and not surfy[i])
        )
        # SURFY's curated "nonsurface" outweighs a plasma-membrane image on one antibody
        # (Approved: POLE, RRP12, the Golgi glycosyltransferases), not a validated one
        hpa_at_pm = hpa_pm[i] and not (nonsurface[i] and rel[i] not in _HPA_SUPPORTED)
        at_pm = gpi[i] or hpa_at_pm or ((up_flag[i] or (up_pm and not up_res)) and not agree)
        in_org = bool(
            hpa_org or up_res or (not up_pm and up[i] & {"endosome", "vesicle"}) or nonsurface[i]
        )
        out[i] = "plasma-membrane" if at_pm else ("organelle" if in_org else "unknown")
    return pd.Series(out, index=surface.index, dtype=object, name="residency")


def ectodomain_factor(
    cls: np.ndarray, topology_source: np.ndarray, signal_peptide: np.ndarray
) -> np.ndarray:
    """Factor on reach for an ectodomain class, weaker where Phobius predicted the topology.

    A UniProt topology gives :data:`ECTODOMAIN_FACTOR` of its class. A Phobius prediction
    is right with probability ``q`` (:data:`PHOBIUS_TOPOLOGY_ACCURACY`, higher with a
    signal peptide); when wrong, the protein is as likely to have an ectodomain as any
    anchored protein of curated topology (:data:`ECTODOMAIN_BASE_RATE`)::

        factor = q × ECTODOMAIN_FACTOR[class] + (1 − q) × f̄,
        f̄ = base × 1 + (1 − base) × ECTODOMAIN_FACTOR["short-ectodomain"]

    so a predicted ectodomain counts a little less than 1 and a predicted short one more
    than 0.05. GPI anchors (UniProt's), absent anchors and unknown topologies are unchanged.

    Examples
    --------
    >>> ectodomain_factor(np.array(["ectodomain", "short-ectodomain"]),
    ...                   np.array(["phobius", "phobius"]), np.array([False, False])).round(3)
    array([0.972, 0.374])
    """
    cls = np.asarray(cls, dtype=object)
    base = pd.Series(cls).map(ECTODOMAIN_FACTOR).to_numpy(dtype=float)
    short = ECTODOMAIN_FACTOR["short-ectodomain"]
    fbar = ECTODOMAIN_BASE_RATE + (1.0 - ECTODOMAIN_BASE_RATE) * short
    q = np.where(
        pd.Series(signal_peptide).astype("boolean").fillna(False).to_numpy(dtype=bool),
        PHOBIUS_TOPOLOGY_ACCURACY["signal_peptide"],
        PHOBIUS_TOPOLOGY_ACCURACY["other"],
    )
    phobius = pd.Series(topology_source, dtype=object).eq("phobius").to_numpy(dtype=bool)
    predicted = phobius & np.isin(cls, ["ectodomain", "short-ectodomain"])
    return np.where(predicted, q * base + (1.0 - q) * fbar, base)


def reachability(surface: pd.DataFrame) -> pd.DataFrame:
    """Per gene: soft surface evidence, ectodomain class, residency and binder reachability.

    Parameters
    ----------
    surface
        The reference's surface table (``reference.surface``): source flags, topology
        columns (``ectodomain_aa``, ``n_tm``, ``gpi_anchor``, ``topology_source``,
        ``signal_peptide``), HPA protein classes, locations (see :func:`residency`).

    Returns
    -------
    DataFrame indexed like ``surface`` with ``surface_probability`` (noisy-OR of the
    sources), ``membrane_anchor``, ``ectodomain_class`` (see :data:`ECTODOMAIN_FACTOR`),
    ``ectodomain_aa``, ``topology_source`` (``uniprot``/``phobius``/NA), ``residency``
    (see :func:`residency`) and ``reach`` = probability × ectodomain factor
    (:func:`ectodomain_factor`) × residency factor (:data:`RESIDENCY_FACTOR`).
    """
    if not _SOURCE_COLUMNS & set(surface.columns):
        return _reachability_from_flag(surface)
    cspa_cat = _num(surface, "cspa_category")
    witnesses = {
        "cspa_high": cspa_cat.eq(1).fillna(False).to_numpy(dtype=bool),
        "cspa_putative": cspa_cat.eq(2).fillna(False).to_numpy(dtype=bool),
        "surfy": _flag(surface, "surfy").to_numpy(),
        "uniprot": _flag(surface, "uniprot").to_numpy(),
        # HPA's own reliability of its location call vetoes its flag where it is Uncertain;
        # a CD designation (folded into the flag by the reference build) stands
        "hpa_if": (
            (_flag(surface, "hpa") | _flag(surface, "hpa_plasma_membrane"))
            & ~_hpa_uncertain(surface)
            | _flag(surface, "hpa_cd_marker")
        ).to_numpy(),
        "go": _flag(surface, "go").to_numpy(),
        "tm_prediction": _flag(surface, "hpa_predicted_membrane").to_numpy(),
    }
    miss = np.ones(len(surface))
    for name, present in witnesses.items():
        miss *= np.where(present, 1.0 - SOURCE_WEIGHTS[name], 1.0)
    prob = 1.0 - miss

    ecto = _num(surface, "ectodomain_aa")
    n_tm_raw = _num(surface, "n_tm")
    n_tm = n_tm_raw.fillna(0).to_numpy()
    # a measured topology (n_tm known: SURFY's master table analysed the entry) decides the
    # anchor; HPA's helix prediction stands in only where there is none
    measured = n_tm_raw.notna().to_numpy()
    gpi = _flag(surface, "gpi_anchor").to_numpy()
    anchor = (n_tm > 0) | gpi | witnesses["surfy"] | (witnesses["tm_prediction"] & ~measured)
    known = ecto.notna().to_numpy()
    big = ecto.fillna(0).to_numpy() >= MIN_ECTODOMAIN_AA
    cls = np.where(
        ~anchor,
        "no-anchor",
        np.where(
            gpi | (known & big),
            "ectodomain",
            np.where(known, "short-ectodomain", "topology-unknown"),
        ),
    )
    if "topology_source" in surface.columns:
        src = surface["topology_source"].astype(object).where(surface["topology_source"].notna())
    else:
        src = pd.Series(None, index=surface.index, dtype=object)
    # GPI anchors come from UniProt: a Phobius string does not weaken them
    src_eff = np.where(gpi, None, src.to_numpy(dtype=object))
    factor = ectodomain_factor(cls, src_eff, _flag(surface, "signal_peptide").to_numpy())
    where = residency(surface)
    factor = factor * where.map(RESIDENCY_FACTOR).to_numpy(dtype=float)
    return pd.DataFrame(
        {
            "surface_probability": np.round(prob, 4),
            "membrane_anchor": anchor,
            "ectodomain_class": cls,
            "ectodomain_aa": ecto.astype("Int32"),
            "topology_source": src.astype("string"),
            "residency": where.to_numpy(dtype=object),
            "reach": np.round(prob * factor, 4),
        },
        index=surface.index,
    )


#: Columns of a reference's surface table that carry per-source evidence.
_SOURCE_COLUMNS = frozenset(
    {"uniprot", "go", "hpa", "surfy", "cspa", "cspa_category", "hpa_predicted_membrane"}
)


def _num(surface: pd.DataFrame, col: str) -> pd.Series:
    if col not in surface.columns:
        return pd.Series(np.nan, index=surface.index, dtype=float)
    return pd.to_numeric(surface[col], errors="coerce").astype(float)


def _reachability_from_flag(surface: pd.DataFrame) -> pd.DataFrame:
    """Read reachability from a reference without per-source columns.

    Its ``surface_evidence`` is the probability and its ``is_surface`` flag stands for an
    anchored protein with an ectodomain.
    """
    flag = _flag(surface, "is_surface").to_numpy()
    prob = _num(surface, "surface_evidence").fillna(0.0).clip(0.0, 1.0).to_numpy()
    prob = np.where(flag & (prob == 0), 1.0, prob)
    return pd.DataFrame(
        {
            "surface_probability": np.round(prob, 4),
            "membrane_anchor": flag,
            "ectodomain_class": np.where(flag, "ectodomain", "no-anchor"),
            "ectodomain_aa": pd.array([pd.NA] * len(surface), dtype="Int32"),
            "topology_source": pd.array([pd.NA] * len(surface), dtype="string"),
            "residency": np.full(len(surface), "unknown", dtype=object),
            "reach": np.round(np.where(flag, prob, 0.0), 4),
        },
        index=surface.index,
    )


def lineage_contexts(contexts: pd.DataFrame, lineage: str) -> pd.Index:
    """Context ids of T cells (``'T'``) or NK cells (``'NK'``), matched on their names."""
    pattern = {"T": _T_CELL, "NK": _NK_CELL}[lineage]
    names = contexts["name"].astype(str)
    is_ct = contexts["kind"].astype(str).eq("cell_type")
    hit = names.map(lambda s: bool(pattern.search(s))) & is_ct
    if lineage == "T":
        hit &= ~names.map(lambda s: bool(_NK_CELL.search(s)))
    return contexts.index[hit.to_numpy()]


def targetability(  # noqa: PLR0913, PLR0915
    genes: pd.Index,
    reference: Reference,
    modality: str,
    *,
    healthy_fraction: pd.DataFrame,
    tumor_mean_cp10k: np.ndarray,
    patient_coverage: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Return what ``modality`` makes of each candidate: factors, flags and their evidence.

    Parameters
    ----------
    genes
        Candidate genes.
    reference
        The healthy reference (surface table, contexts).
    modality
        A key of :data:`MODALITY_PROFILES`.
    healthy_fraction
        Genes × contexts positive fraction (``HealthyRisk.fraction``).
    tumor_mean_cp10k
        Mean tumour expression per gene (CP10k), aligned to ``genes``.
    patient_coverage
        Genes × patients coverage; used by modalities that weigh heterogeneity.

    Returns
    -------
    DataFrame indexed by gene: ``reach``, ``surface_probability``, ``ectodomain_class``,
    ``ectodomain_aa``, ``fratricide_fraction``, ``density_factor``, ``modality_factor``
    (the product the score uses), ``coverage_q25`` where relevant and
    ``targetability_flags`` (``;``-joined).
    """
    profile = MODALITY_PROFILES[modality]
    genes = pd.Index(genes)
    n = len(genes)
    surf = reference.surface.reindex(genes)
    reach = reachability(surf)
    frac = healthy_fraction.reindex(genes).fillna(0.0)
    flags: list[list[str]] = [[] for _ in range(n)]

    def flag(mask: np.ndarray, name: str) -> None:
        for i in np.flatnonzero(mask):
            flags[i].append(name)

    out = pd.DataFrame(index=genes)
    factor = np.ones(n)
    if profile.binder:
        factor *= reach["reach"].to_numpy(dtype=float)
        cls = reach["ectodomain_class"].to_numpy()
        flag(cls == "no-anchor", "intracellular")
        flag(cls == "short-ectodomain", "short-ectodomain")
        anchored = cls != "no-anchor"
        flag(cls == "topology-unknown", "topology-unknown")
        predicted = reach["topology_source"].eq("phobius").fillna(False).to_numpy(dtype=bool)
        flag(anchored & predicted, "predicted-topology")
        flag(anchored & (reach["residency"].to_numpy() == "organelle"), "organelle-resident")
        flag(anchored & (reach["surface_probability"].to_numpy() < 0.5), "weak-surface")  # noqa: PLR2004
    out = out.join(
        reach[
            [
                "reach",
                "surface_probability",
                "ectodomain_class",
                "ectodomain_aa",
                "topology_source",
                "residency",
            ]
        ]
    )

    frat = np.zeros(n)
    if profile.fratricide is not None:
        cols = lineage_contexts(reference.contexts, profile.fratricide)
        cols = cols.intersection(frac.columns)
        if len(cols):
            frat = frac[cols].to_numpy(dtype=float).mean(axis=1)
        factor *= 1.0 - frat
        flag(frat >= 0.2, "fratricide")  # noqa: PLR2004
    out["fratricide_fraction"] = np.round(frat, 4)

    mean = np.asarray(tumor_mean_cp10k, dtype=float)
    if profile.density_k_cp10k > 0:
        density = mean / (mean + profile.density_k_cp10k)
        factor *= density
        flag(mean < profile.density_k_cp10k, "low-density")
    else:
        density = np.ones(n)
    out["density_factor"] = np.round(density, 4)

    secreted = _flag(surf, "secreted_form").to_numpy()
    # internalisation helps only what is on the surface first: an organelle resident's
    # endosome or lysosome location is where it lives, not evidence that a binder is taken in
    endocytic = _flag(surf, "endocytic").to_numpy() & (reach["residency"].to_numpy() != "organelle")
    if profile.binder:
        flag(secreted, "shed")
        factor *= np.where(secreted, profile.soluble_sink, 1.0)
    if profile.internalisation > 0:
        flag(endocytic, "internalises")
        factor *= np.where(endocytic, 1.0, 1.0 - profile.internalisation)
    if modality == "radioligand":
        ctx = reference.contexts
        rs = ctx.index[ctx["name"].astype(str).str.contains(_RENAL_SALIVARY)]
        rs = rs.intersection(frac.columns)
        if len(rs):
            flag(frac[rs].to_numpy().max(axis=1) >= 0.2, "renal-salivary-exposure")  # noqa: PLR2004
    if profile.patient_heterogeneity and patient_coverage is not None:
        q25 = patient_coverage.reindex(genes).quantile(0.25, axis=1).to_numpy(dtype=float)
        out["coverage_q25"] = np.round(q25, 4)
    out["modality_factor"] = np.round(factor, 6)
    out["targetability_flags"] = [";".join(f) or "none" for f in flags]
    return out
