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
   for what is known of the ectodomain (:data:`ECTODOMAIN_FACTOR`). No single source's flag
   can put a keratin on the list or take STEAP1 off it.
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

if TYPE_CHECKING:
    from ..reference import Reference

__all__ = [
    "ECTODOMAIN_FACTOR",
    "MIN_ECTODOMAIN_AA",
    "MODALITY_PROFILES",
    "SOURCE_WEIGHTS",
    "ModalityProfile",
    "lineage_contexts",
    "modalities",
    "reachability",
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
    # anchored and called surface by some source, yet SURFY's classifier, which sees the
    # topology, left it out of the surfaceome. SURFY holds 95.8% of the anchored proteins
    # that CSPA captured on intact cells (an accessible ectodomain), so its absence has a
    # likelihood ratio of about 0.042; from a prior of 0.7 that leaves 0.09 (docs).
    "topology-unknown": 0.1,
    "short-ectodomain": 0.05,  # topology shows only loops < MIN_ECTODOMAIN_AA
    "no-anchor": 0.0,  # no transmembrane helix and no GPI anchor: not on the surface
}
#: T-cell and NK-cell contexts, matched on context names (any reference).
_T_CELL = re.compile(
    r"\bT[- ]?cells?\b|\bT_cell|MAIT|regulatory T|cytotoxic T|gamma-delta|\bCTL\b", re.I
)
_NK_CELL = re.compile(r"\bNK[- ]?cells?\b|\bNK_cell", re.I)
#: Contexts where a radioligand accumulates whatever it targets (docs/modalities.md).
_RENAL_SALIVARY = re.compile(r"kidney|renal|tubul|salivary|glandular cells of the salivary", re.I)


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
        Least antigen (RNA-equivalent CP10k) on which the agent acts: a healthy cell below
        it is not engaged.
    window
        Share of the tumour's antigen level below which a healthy cell is spared (the
        therapeutic window); the engagement threshold is ``max(floor, window × tumour)``.
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
    window: float = 0.0


MODALITY_PROFILES: dict[str, ModalityProfile] = {
    p.name: p
    for p in (
        ModalityProfile(
            "car-t", True, True, "T", 0.5, 0.0, 1.0, False, 1.0,
            "persists for months to years; cytokine release and ICANS are not scored",
            "fratricide of CD5/CD7 CAR-T: Mamonkin 2015 Blood; Gomes-Silva 2017 Blood; "
            "low-density killing by CARs: Majzner 2020 Cancer Discov",
            engage_floor_cp10k=0.2,
            window=0.05,
        ),
        ModalityProfile(
            "car-nk", True, True, "NK", 0.5, 0.0, 1.0, False, 1.0,
            "no graft-versus-host disease; short persistence (weeks) without cytokine support",
            "Liu 2020 NEJM (CD19 CAR-NK); fratricide of CD38 CAR-NK: Gurney 2022",
            engage_floor_cp10k=0.2,
            window=0.05,
        ),
        ModalityProfile(
            "antibody", True, True, None, 2.0, 0.0, 0.9, False, 1.0,
            "depleting (ADCC/CDC) antibodies need density; blocking antibodies kill nothing "
            "and are better ranked with --modality agonist",
            "ADCC scales with antigen density: Velders 1998 Br J Cancer",
            engage_floor_cp10k=0.5,
            window=0.2,
        ),
        ModalityProfile(
            "adc", True, True, None, 5.0, 0.5, 0.9, False, 1.0,
            "payload toxicities (neutropenia, ILD, ocular) are the drug's, not the target's",
            "HER2 density and T-DM1: Barok 2014 Breast Cancer Res; internalisation: "
            "Tsumura 2023",
            engage_floor_cp10k=1.0,
            window=0.3,
        ),
        ModalityProfile(
            "bispecific", True, True, "T", 1.0, 0.0, 0.9, False, 1.0,
            "a CD3 arm redirects T cells; cytokine release is noted, not scored",
            "BiTE potency vs density: Bluemel 2010 Cancer Immunol Immunother",
            engage_floor_cp10k=0.3,
            window=0.1,
        ),
        ModalityProfile(
            "radioligand", True, True, None, 2.0, 0.5, 0.9, False, 1.0,
            "kidney and salivary glands take up radioligands; crossfire reaches "
            "antigen-negative neighbours",
            "PSMA-617 xerostomia and nephrotoxicity: Sartor 2021 NEJM (VISION)",
            engage_floor_cp10k=0.5,
            window=0.3,
        ),
        ModalityProfile(
            "tcr-t", False, True, None, 0.5, 0.0, 1.0, True, 1.0,
            "HLA-restricted: each TCR serves only patients with its HLA allele",
            "cancer-testis antigens and immune privilege: Simpson 2005 Nat Rev Cancer",
            engage_floor_cp10k=0.2,
            window=0.05,
        ),
        ModalityProfile(
            "vaccine", False, True, None, 0.5, 0.0, 1.0, True, 1.0,
            "HLA-restricted epitopes; response depends on the patient's repertoire",
            "Simpson 2005 Nat Rev Cancer",
            engage_floor_cp10k=0.2,
            window=0.05,
        ),
        ModalityProfile(
            "agonist", True, False, None, 0.1, 0.0, 1.0, False, 0.3,
            "engages at low receptor density and activates rather than kills",
            "IMP321 (LAG-3–Ig) binds MHC class II on APCs: Brignone 2007 J Immunol",
            engage_floor_cp10k=0.05,
            window=0.0,
        ),
        ModalityProfile(
            "any", False, True, None, 0.0, 0.0, 1.0, False, 1.0,
            "no candidate filter: for antibody panels, non-human or non-HPA features",
            "—",
            engage_floor_cp10k=0.2,
            window=0.0,
        ),
    )
}  # fmt: skip


def modalities() -> pd.DataFrame:
    """The modality profiles as a table, one row per ``--modality`` value.

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


def reachability(surface: pd.DataFrame) -> pd.DataFrame:
    """Per gene: soft surface evidence, ectodomain class and binder reachability.

    Parameters
    ----------
    surface
        The reference's surface table (``reference.surface``): source flags, topology
        columns (``ectodomain_aa``, ``n_tm``, ``gpi_anchor``), HPA protein classes.

    Returns
    -------
    DataFrame indexed like ``surface`` with ``surface_probability`` (noisy-OR of the
    sources), ``membrane_anchor``, ``ectodomain_class`` (see :data:`ECTODOMAIN_FACTOR`),
    ``ectodomain_aa`` and ``reach`` = probability × ectodomain factor.
    """
    if not _SOURCE_COLUMNS & set(surface.columns):
        return _reachability_from_flag(surface)
    cspa_cat = _num(surface, "cspa_category")
    witnesses = {
        "cspa_high": cspa_cat.eq(1).fillna(False).to_numpy(dtype=bool),
        "cspa_putative": cspa_cat.eq(2).fillna(False).to_numpy(dtype=bool),
        "surfy": _flag(surface, "surfy").to_numpy(),
        "uniprot": _flag(surface, "uniprot").to_numpy(),
        "hpa_if": (_flag(surface, "hpa") | _flag(surface, "hpa_plasma_membrane")).to_numpy(),
        "go": _flag(surface, "go").to_numpy(),
        "tm_prediction": _flag(surface, "hpa_predicted_membrane").to_numpy(),
    }
    miss = np.ones(len(surface))
    for name, present in witnesses.items():
        miss *= np.where(present, 1.0 - SOURCE_WEIGHTS[name], 1.0)
    prob = 1.0 - miss

    ecto = _num(surface, "ectodomain_aa")
    n_tm = _num(surface, "n_tm").fillna(0).to_numpy()
    gpi = _flag(surface, "gpi_anchor").to_numpy()
    anchor = (n_tm > 0) | gpi | witnesses["tm_prediction"] | witnesses["surfy"]
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
    factor = pd.Series(cls).map(ECTODOMAIN_FACTOR).to_numpy(dtype=float)
    return pd.DataFrame(
        {
            "surface_probability": np.round(prob, 4),
            "membrane_anchor": anchor,
            "ectodomain_class": cls,
            "ectodomain_aa": ecto.astype("Int32"),
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
    """A reference without per-source columns: its ``surface_evidence`` is the probability
    and its ``is_surface`` flag stands for an anchored protein with an ectodomain."""
    flag = _flag(surface, "is_surface").to_numpy()
    prob = _num(surface, "surface_evidence").fillna(0.0).clip(0.0, 1.0).to_numpy()
    prob = np.where(flag & (prob == 0), 1.0, prob)
    return pd.DataFrame(
        {
            "surface_probability": np.round(prob, 4),
            "membrane_anchor": flag,
            "ectodomain_class": np.where(flag, "ectodomain", "no-anchor"),
            "ectodomain_aa": pd.array([pd.NA] * len(surface), dtype="Int32"),
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


def targetability(
    genes: pd.Index,
    reference: Reference,
    modality: str,
    *,
    healthy_fraction: pd.DataFrame,
    tumor_mean_cp10k: np.ndarray,
    patient_coverage: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """What ``modality`` makes of each candidate: factors, flags and their evidence.

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
        flag(cls == "topology-unknown", "topology-unknown")
        flag((cls != "no-anchor") & (reach["surface_probability"].to_numpy() < 0.5), "weak-surface")
    out = out.join(reach[["reach", "surface_probability", "ectodomain_class", "ectodomain_aa"]])

    frat = np.zeros(n)
    if profile.fratricide is not None:
        cols = lineage_contexts(reference.contexts, profile.fratricide)
        cols = cols.intersection(frac.columns)
        if len(cols):
            frat = frac[cols].to_numpy(dtype=float).mean(axis=1)
        factor *= 1.0 - frat
        flag(frat >= 0.2, "fratricide")
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
    endocytic = _flag(surf, "endocytic").to_numpy()
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
            flag(frac[rs].to_numpy().max(axis=1) >= 0.2, "renal-salivary-exposure")
    if profile.patient_heterogeneity and patient_coverage is not None:
        q25 = patient_coverage.reindex(genes).quantile(0.25, axis=1).to_numpy(dtype=float)
        out["coverage_q25"] = np.round(q25, 4)
    out["modality_factor"] = np.round(factor, 6)
    out["targetability_flags"] = [";".join(f) or "none" for f in flags]
    return out
