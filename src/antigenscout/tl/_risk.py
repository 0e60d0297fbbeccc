"""Healthy-tissue risk model.

The embedded reference gives, per gene and healthy context (a cell type or a tissue), a
mean expression ``mu`` in nTPM-like units (HPA nTPM, or CPM for the marrow pseudobulk).
What matters for on-target, off-tumour toxicity is the *fraction of cells* that carry
enough antigen to be engaged. We use the same threshold ``lambda0`` as the single-cell
positivity model (CP10k, times 100 to reach nTPM/CPM units) and assume that, within a
context, per-cell expression rates follow a Gamma distribution with shape ``k`` and
mean ``mu``. The positive fraction is then

    f(mu) = P(lambda >= lambda0) = Q(k, k * lambda0 / mu)

(``Q`` the regularised upper incomplete gamma function); with ``k = 1`` this is
``exp(-lambda0 / mu)``. Where HPA immunohistochemistry with a reliable antibody (reliability
*Enhanced* or *Supported*) detects the protein in a tissue, the tissue's fraction is raised
to at least ``IHC_MAX_FLOOR * level / 3`` times the reliability weight: protein seen in a
tissue is reachable whatever the RNA says, but a staining intensity says nothing about
what fraction of the tissue's cells carry it, hence the cap. Approved/Uncertain calls
(single antibodies, unconfirmed by RNA) are reported as evidence only.

Whole-tissue RNA mixes a tissue's own cells with its immune infiltrate (CD19 in the small
intestine comes from Peyer's patches, not enterocytes), and the infiltrate is already
represented, at its own vital weight, by the immune cell-type contexts. Each tissue's immune
fraction ``phi`` is estimated from PTPRC (CD45): tissue PTPRC over the median PTPRC of the
immune cell types. For every gene the most the infiltrate could contribute,
``phi * max(immune cell-type expression)``, is subtracted before the fraction is computed,
and IHC calls on immune cell types (germinal centres, lymphoid and haematopoietic cells,
macrophages, Langerhans cells) do not raise a tissue's floor.

HPA's single-cell clusters of parenchymal cells carry the same infiltrate (macrophage
transcripts in the hepatocyte and myocyte clusters, Langerhans cells' in the keratinocyte and
melanocyte clusters) and capillary endothelium (in the myocyte and adipocyte clusters). For each
such cluster the share ``a_k`` of each immune cell type ``k`` (:data:`INFILTRATE_MARKERS`: HPA's
own immune single-cell profiles) and of the endothelium (:data:`ENDOTHELIUM_MARKERS`) is the
median, over ``k``'s marker genes (made by that cell type and by no parenchymal cell), of the
cluster's level over ``k``'s level; ``sum_k a_k * profile_k(g)`` is subtracted from every gene
(floored at 0), before the fraction is computed (:func:`immune_admixture`,
:func:`minus_infiltrate`).

For single-cell-derived contexts (the healthy marrow), the reference stores the
*measured* fraction of cells called positive by the same positivity model; it replaces
the mean-based model whenever the run's threshold is the one it was measured at.

Where the reference's curated isoform table (``reference/annotations/isoforms.tsv``) says a
context's RNA is another isoform of the gene than the one an agent binds (soluble sIL-1RAcP in
the liver, CLDN18.1 in the lung), that (gene, context) is engaged at 0, its ``source`` says so
and ``HealthyRisk.isoform`` keeps the engagement it had (docs/engagement.md, "Isoforms").

Risk in a context is ``vital_weight * f``; a tissue's or system's risk is the maximum
over its contexts. For TCR-T and vaccines (peptide presented on HLA) immune-privileged
contexts are discounted by ``IMMUNE_PRIVILEGE_DISCOUNT``.

An agent reaches a context only if it is exposed to it (:func:`exposure`): contexts of pregnancy
(placenta, trophoblasts) are not part of the default adult body (``pregnancy=True`` adds them),
and a protein agent (antibody, ADC, bispecific, radioligand, agonist) reaches cells behind the
blood–brain, blood–retina and blood–testis barriers at a fraction of its plasma level, so their
engagement is multiplied by :data:`BARRIER_EXPOSURE`; cell therapies cross
(``ModalityProfile.crosses_barriers``).

A gene's ``vital_risk`` is its worst context's risk for a dosed agent (given at the dose its
most sensitive organ tolerates). For a living drug that persists (``ModalityProfile.persists``:
CAR-T, TCR-T, vaccines) it weighs breadth as well: each organ system (:data:`ORGAN_SYSTEMS`: the
reference's systems, with blood, marrow and the immune cells taken as one) is harmed with the
probability of its worst context's risk, independently of the others, and ``vital_risk`` is the
probability that at least one is, ``1 - prod_s (1 - max_{c in s} risk_c)``
(:func:`organ_system_risk`): a gene engaged in every organ is not safer than one engaged in a
single organ because no single context is fully engaged.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import special

from .._errors import InputError
from .._types import ROUTES as _ROUTES
from ._gamma import INTERVAL_SHAPES, MIN_READS_AT_THRESHOLD
from ._targetability import MODALITY_PROFILES

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ..reference import Reference

__all__ = [
    "BARRIER_EXPOSURE",
    "DOSING_INTERVAL_DAYS",
    "IHC_MAX_FLOOR",
    "IHC_RELIABILITY_WEIGHT",
    "IMMUNE_PRIVILEGE_DISCOUNT",
    "INTERVAL_SHAPES",
    "ISOFORM_SOURCE",
    "ORGAN_SYSTEMS",
    "HealthyRisk",
    "consequence",
    "context_source",
    "exposure",
    "healthy_risk",
    "organ_reserve",
    "organ_system_risk",
    "positive_fraction_from_mean",
    "shallow_upper",
    "shown_fraction",
]

#: Weight of an HPA IHC call by its reliability class.
IHC_RELIABILITY_WEIGHT: dict[str, float] = {"Enhanced": 1.0, "Supported": 0.8}
#: Largest positive fraction an IHC call alone can imply (High, Enhanced).
IHC_MAX_FLOOR = 0.5
#: Factor applied to the vital weight of immune-privileged contexts for HLA-presented targets.
IMMUNE_PRIVILEGE_DISCOUNT = 0.1
#: Share of a protein agent's plasma level found behind the blood–brain barrier at steady
#: state: the CSF-to-serum ratio of five humanised IgGs, 0.1–0.2% in rats and monkeys (Wang et
#: al. 2018 Fluids Barriers CNS 15:10); brain-to-plasma AUC ratio of an IgG1, 0.22% (Garg &
#: Balthasar 2009 AAPS J 11:553). The blood–retina and blood–testis barriers are taken alike.
BARRIER_PERMEABILITY = 0.0015
#: Plasma level over the binder's K_d at trough for an agent dosed to hold 99% of its target in
#: blood and open tissue, occupancy ``C / (C + K_d) = 0.99``: a design assumption, set before
#: scoring (a higher dose or affinity raises it).
TROUGH_OVER_KD = 99.0
#: Engagement factor behind a barrier for a protein agent: its occupancy at the barrier-limited
#: level, ``r·m / (r·m + 1)`` = 0.129 (``r`` :data:`BARRIER_PERMEABILITY`, ``m``
#: :data:`TROUGH_OVER_KD`).
BARRIER_EXPOSURE = (BARRIER_PERMEABILITY * TROUGH_OVER_KD) / (
    BARRIER_PERMEABILITY * TROUGH_OVER_KD + 1.0
)
#: Systems whose cell types form the immune infiltrate of whole tissues.
IMMUNE_SYSTEMS = frozenset({"immune (lymphoid)", "immune (myeloid)"})
#: The organ systems whose harms ``vital_risk`` combines, where they differ from the
#: reference's ``system``: blood, marrow and the immune cells are one organ, made by the same
#: stem cells, and their loss is one clinical consequence (cytopenia, infection) treated in one
#: way (transfusion, growth factors, immunoglobulin, transplant). Every other system is its own.
ORGAN_SYSTEMS: dict[str, str] = {
    "haematopoietic": "blood and immune",
    "immune (lymphoid)": "blood and immune",
    "immune (myeloid)": "blood and immune",
}
#: HPA IHC cell types that belong to the immune infiltrate, not the tissue itself.
IHC_IMMUNE_CELL_TYPES = frozenset(
    {
        "germinal center cells",
        "non-germinal center cells",
        "mucosal lymphoid cells",
        "lymphoid tissue",
        "cells in red pulp",
        "cells in white pulp",
        "hematopoietic cells",
        "macrophages",
        "Langerhans",
    }
)
#: nTPM / CPM per CP10k.
CP10K_TO_NTPM = 100.0
#: The infiltrate of HPA's single-cell clusters of parenchymal cells: HPA's immune single-cell
#: profiles, each with leukocyte-lineage marker genes that reach 100 nTPM in it, at least 4 times
#: their level in every other profile here, and a median of at most 1 nTPM over the parenchymal
#: clusters. Fixed from the immune profiles before any receptor was looked at (docs/reference.md,
#: "Immune admixture of single-cell clusters"). Kupffer cells share the macrophage markers and
#: are represented by "Macrophages".
INFILTRATE_MARKERS: dict[str, tuple[str, ...]] = {
    "sc:Macrophages": ("C1QA", "C1QB", "C1QC", "CD163", "TREM2"),
    "sc:monocytes": ("LILRA5", "LILRB2", "FPR1"),
    "sc:dendritic cells": ("LILRA4", "PTCRA", "PLD4"),  # HPA's blood DCs: plasmacytoid
    "sc:Langerhans cells": ("CD1C", "CD1E", "CLEC10A", "CD1A"),  # the CD1c+ DC profile
    "sc:T-cells": ("CD3D", "TRAT1", "IL7R"),
    "sc:NK-cells": ("KLRF1", "SH2D1B", "GNLY", "NKG7"),
    "sc:B-cells": ("MS4A1", "PAX5", "VPREB3", "FCER2"),
    "sc:Plasma cells": ("MZB1", "JCHAIN", "IGKC"),
    "sc:granulocytes": ("TPSAB1", "CPA3", "MS4A2", "HPGDS"),  # HPA's cluster: mast/basophils
}
#: Capillary endothelium in HPA's single-cell clusters of parenchymal cells (the skeletal myocyte
#: cluster holds VWF, CDH5 and CLDN5 at 4–6% of the endothelial cluster, and with them the
#: endothelium's MHC class II), by the same marker rule as the leukocytes: CDH5, EMCN and TIE1
#: reach 100 nTPM in HPA's endothelial profile and have a median of at most 1 nTPM over the
#: parenchymal clusters (PECAM1, VWF, CLDN5 and ESAM do not: 1.3–2.9 nTPM).
ENDOTHELIUM_MARKERS: dict[str, tuple[str, ...]] = {"sc:Endothelial cells": ("CDH5", "EMCN", "TIE1")}
#: Clusters whose own cells are endothelium: not cleaned of it.
ENDOTHELIAL_CLUSTERS = frozenset({"sc:Endothelial cells", "sc:Lymphatic endothelial cells"})
#: Made by every leukocyte: bounds the infiltrate's total share of a cluster.
PAN_LEUKOCYTE = "PTPRC"
#: HPA single-cell types outside the immune systems whose own cells are leukocytes (tissue
#: macrophages): they make the infiltrate's genes themselves and keep them.
RESIDENT_LEUKOCYTES = frozenset({"sc:Microglial cells", "sc:Hofbauer cells"})


def organ_systems(systems: Sequence[str]) -> np.ndarray:
    """The organ system of each reference ``system`` (:data:`ORGAN_SYSTEMS`, else itself).

    Examples
    --------
    >>> organ_systems(["haematopoietic", "skin"]).tolist()
    ['blood and immune', 'skin']
    """  # noqa: D401
    return np.array([ORGAN_SYSTEMS.get(str(s), str(s)) for s in systems], dtype=object)


def organ_system_risk(risk: np.ndarray, systems: Sequence[str]) -> np.ndarray:
    """The probability that at least one organ system is harmed.

    Each organ system (the reference's ``system`` mapped through :data:`ORGAN_SYSTEMS`) is
    harmed with the probability of its worst context's vital-weighted risk, independently of
    the others: ``1 - prod_s (1 - max_{c in s} risk_c)``. Within a system the maximum is
    kept, because its contexts overlap (a tissue and its cell types, one cell type in two
    datasets).

    Parameters
    ----------
    risk
        ``(n_genes, n_contexts)`` vital-weighted risk in [0, 1].
    systems
        ``(n_contexts,)`` the reference system of each context.

    Returns
    -------
    ``(n_genes,)`` risk in [0, 1]; 0 for a gene engaged nowhere.

    Examples
    --------
    Half of one organ, or a quarter of each of two (liver; kidney), or a quarter of marrow
    and a quarter of lymphoid cells (one organ):

    >>> import numpy as np
    >>> systems = ["hepatobiliary", "renal/urinary", "haematopoietic", "immune (lymphoid)"]
    >>> organ_system_risk(
    ...     np.array([[0.5, 0, 0, 0], [0.25, 0.25, 0, 0], [0, 0, 0.25, 0.25]]), systems
    ... ).round(4)
    array([0.5   , 0.4375, 0.25  ])
    """  # noqa: D401
    risk = np.asarray(risk, dtype=np.float64)
    codes, uniques = pd.factorize(organ_systems(systems))
    spared = np.ones(risk.shape[0])
    for k in range(len(uniques)):
        spared *= 1.0 - np.clip(risk[:, codes == k].max(axis=1, initial=0.0), 0.0, 1.0)
    return 1.0 - spared


#: Days between two doses of a dosed agent: the three-weekly schedule of most antibodies and
#: ADCs, set before scoring. What an organ renews within it is not a lasting loss.
DOSING_INTERVAL_DAYS = 21.0
#: The reserve and renewal table (``reference/annotations/organ_reserve.tsv``, docs/engagement.md).
ORGAN_RESERVE_FILE = "organ_reserve.tsv"
#: Precedence of the table's levels: a context's own row, then its tissue's, then its system's.
_RESERVE_LEVELS = (("context", None), ("tissue", "tissue"), ("system", "system"))


@lru_cache(maxsize=1)
def _organ_reserve_table() -> pd.DataFrame:
    path = resources.files("antigenscout.reference") / "annotations" / ORGAN_RESERVE_FILE
    with path.open("r", encoding="utf-8") as fh:
        table = pd.read_csv(fh, sep="\t", dtype={"level": str, "key": str, "source": str})
    return table.astype({"reserve": np.float64, "renewal_days": np.float64})


def organ_reserve(contexts: pd.DataFrame) -> pd.DataFrame:
    """Each context's organ reserve and renewal time (``organ_reserve.tsv``).

    A context takes its own row of the table, else its tissue's, else its organ system's; a
    context none of them names has no reserve and no renewal (0, infinite), the cautious
    reading.

    Returns
    -------
    DataFrame indexed like ``contexts`` with ``reserve`` (the fraction of the organ's cells
    it can lose without failing), ``renewal_days`` (time to remake lost cells; ``inf``: not
    remade on a therapy's time scale) and ``reserve_source``.

    Examples
    --------
    >>> import pandas as pd
    >>> ctx = pd.DataFrame({"tissue": ["heart muscle", "liver", "moon"],
    ...                     "system": ["cardiovascular", "hepatobiliary", "none"]},
    ...                    index=["sc:Cardiomyocytes", "tissue:liver", "x"])
    >>> organ_reserve(ctx)[["reserve", "renewal_days"]].to_numpy().tolist()
    [[0.4, inf], [0.7, 30.0], [0.0, inf]]
    """
    table = _organ_reserve_table()
    reserve = np.zeros(len(contexts))
    renewal = np.full(len(contexts), np.inf)
    source = np.full(len(contexts), "not tabulated: no reserve, no renewal", dtype=object)
    found = np.zeros(len(contexts), dtype=bool)
    for level, column in _RESERVE_LEVELS:
        if column is not None and column not in contexts:
            continue
        keys = contexts.index if column is None else contexts[column]
        rows = table[table["level"] == level]
        pos = pd.Index(rows["key"]).get_indexer(pd.Index(keys.astype(str)))
        take = (pos >= 0) & ~found
        reserve[take] = rows["reserve"].to_numpy()[pos[take]]
        renewal[take] = rows["renewal_days"].to_numpy()[pos[take]]
        source[take] = rows["source"].to_numpy()[pos[take]]
        found |= take
    return pd.DataFrame(
        {"reserve": reserve, "renewal_days": renewal, "reserve_source": source},
        index=contexts.index,
    )


def consequence(
    fraction: np.ndarray,
    weight: np.ndarray,
    reserve: np.ndarray,
    renewal_days: np.ndarray,
    *,
    persists: bool,
) -> np.ndarray:
    """The lasting loss of function an engagement causes, weighted by how vital it is.

    A dosed agent kills the engaged share ``e`` of a context's cells, and the organ remakes
    them between doses: what is still missing when the next dose comes is
    ``e * exp(-DOSING_INTERVAL_DAYS / renewal_days)``. A living drug (CAR-T, TCR-T, vaccine)
    keeps killing the cells as they are made, so its loss is ``e``. An organ fails only once
    the loss exceeds its ``reserve``; the share of its function lost beyond it is
    ``clip((loss - reserve) / (1 - reserve), 0, 1)``, times the context's vital weight.

    Parameters
    ----------
    fraction
        ``(n_genes, n_contexts)`` engagement (exposed).
    weight, reserve, renewal_days
        ``(n_contexts,)`` vital weight, reserve and renewal time (:func:`organ_reserve`).
    persists
        A living drug that persists (``ModalityProfile.persists``).

    Examples
    --------
    Half of the liver's cells (reserve 0.7), half of the gut's (renewed in 5 days) and half
    of the heart's (reserve 0.4, no renewal), by an ADC and by a CAR-T cell:

    >>> import numpy as np
    >>> f, w = np.array([[0.5, 0.5, 0.5]]), np.ones(3)
    >>> r, t = np.array([0.7, 0.0, 0.4]), np.array([30.0, 5.0, np.inf])
    >>> consequence(f, w, r, t, persists=False).round(3)
    array([[0.   , 0.007, 0.167]])
    >>> consequence(f, w, r, t, persists=True).round(3)
    array([[0.   , 0.5  , 0.167]])
    """  # noqa: D401
    fraction = np.asarray(fraction, dtype=np.float64)
    reserve = np.asarray(reserve, dtype=np.float64)
    if persists:
        lasting = np.ones_like(reserve)
    else:
        lasting = np.exp(-DOSING_INTERVAL_DAYS / np.asarray(renewal_days, dtype=np.float64))
    excess = (fraction * lasting[None, :] - reserve[None, :]) / (1.0 - reserve[None, :])
    return np.asarray(weight, dtype=np.float64)[None, :] * np.clip(excess, 0.0, 1.0)


def positive_fraction_from_mean(
    mean: np.ndarray, threshold_ntpm: float, shape: float = 1.0
) -> np.ndarray:
    """Fraction of cells above ``threshold_ntpm`` given a context's mean expression.

    Parameters
    ----------
    mean
        Mean expression per context (nTPM-like units); any shape.
    threshold_ntpm
        Positivity threshold in the same units.
    shape
        Shape ``k`` of the Gamma distribution of per-cell rates (1 = exponential).

    Returns
    -------
    Array of fractions in [0, 1] with the shape of ``mean``; 0 where ``mean <= 0``.

    Examples
    --------
    >>> positive_fraction_from_mean(np.array([0.0, 50.0, 500.0]), 50.0).round(3)
    array([0.   , 0.368, 0.905])
    """
    mean = np.asarray(mean, dtype=np.float64)
    out = np.zeros_like(mean)
    pos = mean > 0
    out[pos] = special.gammaincc(shape, shape * threshold_ntpm / mean[pos])
    return out


@dataclass(frozen=True)
class HealthyRisk:
    """Per-gene healthy risk over all reference contexts.

    Attributes
    ----------
    fraction
        Genes × contexts positive fraction in [0, 1] (RNA model, IHC floor applied).
    weight
        Vital weight per context after the modality's immune-privilege discount.
    contexts
        The reference's context table (index context id).
    """

    fraction: pd.DataFrame
    weight: pd.Series
    contexts: pd.DataFrame
    low: pd.DataFrame | None = None
    high: pd.DataFrame | None = None
    threshold_cp10k: pd.Series | None = None
    #: Genes × contexts: the cells of the protein measurement (CITE-seq) where engagement is
    #: measured surface protein, NaN elsewhere.
    protein: pd.DataFrame | None = None
    #: The reference's isoform notes that apply, one row per (gene, context) (context NA for a
    #: note on the whole gene): ``gene``, ``context``, ``effect``, ``target_isoform``,
    #: ``other_isoform``, ``note``, ``source``, ``fraction_before`` (engagement before) and
    #: ``applied`` (engagement set to 0). ``None`` when none apply.
    isoform: pd.DataFrame | None = None
    #: Genes × contexts: True where the reference has no RNA for the gene in that RNA-model
    #: context and its level was filled in (:func:`healthy_expression`).
    rna_missing: pd.DataFrame | None = None
    #: Genes × contexts: reads the measured single-cell context's cells hold at the gene's
    #: engagement level (NaN elsewhere); below 10 its interval reaches what the mean allows
    #: (:func:`shallow_upper`). Only for genes given their own threshold.
    reads_at_threshold: pd.DataFrame | None = None
    #: ``vital_risk`` over organ systems (:func:`organ_system_risk`, a living drug that
    #: persists) instead of the worst context (a dosed agent).
    over_organs: bool = False
    #: Per context: the share of its engaged cells the agent reaches (:func:`exposure`);
    #: ``fraction``, ``low`` and ``high`` are already multiplied by it. ``None``: all 1.
    exposure: pd.Series | None = None
    #: Per context: why its exposure is below 1 (``source``), empty where it is 1.
    exposure_why: pd.Series | None = None
    #: Genes whose engagement of polarised epithelia was multiplied by
    #: :data:`APICAL_EXPOSURE` (:func:`apply_apical`); ``None``: none.
    apical: pd.Index | None = None
    #: The contexts where it was (polarised, and not a lumen the route puts the agent in).
    apical_contexts: pd.Index | None = None

    def reach(self, columns: pd.Index | None = None) -> np.ndarray:
        """Per context (``columns``, default the fraction's): the exposure factor, 1 if none."""
        cols = self.fraction.columns if columns is None else columns
        if self.exposure is None:
            return np.ones(len(cols))
        return self.exposure.reindex(cols).fillna(1.0).to_numpy(dtype=np.float64)

    def unexposed(self, df: pd.DataFrame) -> pd.DataFrame:
        """``df`` (genes × contexts, exposed like ``fraction``) before the per-context
        exposure: what each context's cells carry, as far as each antigen is reached (an apical
        antigen keeps its factor, which belongs to the gene: :func:`apply_apical`). Combine
        genes on these (a gate: the agent reaches the context once, not once per gene), then
        multiply by :meth:`reach`; 0 where nothing is reached.
        """  # noqa: D205
        r = self.reach(df.columns)
        return df * np.divide(1.0, r, out=np.zeros_like(r), where=r > 0)[None, :]

    def protein_measured(self, genes: pd.Index | list[str]) -> np.ndarray:
        """Genes × contexts boolean: engagement measured as surface protein."""
        if self.protein is None:
            return np.zeros((len(genes), len(self.contexts)), dtype=bool)
        return self.protein.reindex(index=genes, columns=self.contexts.index).notna().to_numpy()

    @property
    def risk(self) -> pd.DataFrame:
        """Genes × contexts vital-weighted risk, ``weight * fraction``."""
        return self.fraction * self.weight.to_numpy()[None, :]

    @property
    def reserve(self) -> pd.DataFrame:
        """Per context: organ reserve and renewal time (:func:`organ_reserve`)."""
        return organ_reserve(self.contexts)

    def consequence(self, genes: pd.Index | list[str]) -> np.ndarray:
        """Genes × contexts: the lasting, vital-weighted loss of function (:func:`consequence`),
        for a living drug (:attr:`over_organs`) or a dosed agent.
        """  # noqa: D205
        frac = np.nan_to_num(
            self.fraction.reindex(pd.Index(genes)).to_numpy(dtype=np.float64), nan=0.0
        )
        res = self.reserve
        return consequence(
            frac,
            self.weight.to_numpy(dtype=np.float64),
            res["reserve"].to_numpy(),
            res["renewal_days"].to_numpy(),
            persists=self.over_organs,
        )

    def summary(self, genes: pd.Index | list[str]) -> pd.DataFrame:
        """Worst cell type, tissue and system for each gene.

        Returns
        -------
        DataFrame indexed by gene with ``worst_healthy_cell_type``, ``worst_healthy_risk``
        (weighted), ``worst_healthy_fraction``, ``vital_risk`` (the worst context's weighted
        risk, or with :attr:`over_organs` the probability that at least one organ system is
        harmed: :func:`organ_system_risk`), ``worst_context``
        (the context of greatest weighted risk), ``worst_tissue``, ``worst_system``,
        ``n_contexts_engaged`` (contexts with fraction >= 0.5), ``n_systems_engaged``
        (organ systems with a context at fraction >= 0.5), ``consequence`` (the lasting,
        vital-weighted loss of function beyond the organ's reserve, :meth:`consequence`,
        combined as ``vital_risk`` is), ``consequence_context`` (the context of the largest;
        ``'none'`` where no organ loses function beyond its reserve), ``rna_missing_contexts``
        (RNA-model contexts where the reference has no RNA for the gene and its level was
        filled in: :func:`healthy_expression`) and ``isoform_note`` (:meth:`isoform_note`).
        """
        genes = pd.Index(genes)
        frac = self.fraction.reindex(genes).to_numpy(dtype=np.float64)
        frac = np.nan_to_num(frac, nan=0.0)
        w = self.weight.to_numpy()
        risk = frac * w[None, :]
        ctx = self.contexts
        names = ctx["name"].to_numpy()
        is_ct = (ctx["kind"] == "cell_type").to_numpy()
        ct_risk = np.where(is_ct[None, :], risk, -1.0)
        worst_ct = ct_risk.argmax(axis=1)
        worst_any = risk.argmax(axis=1)
        rows = np.arange(len(genes))
        systems = ctx["system"].astype(str).to_numpy()
        organs, _ = pd.factorize(organ_systems(systems))
        engaged = frac >= 0.5  # noqa: PLR2004
        n_organs = np.zeros(len(genes), dtype=np.int64)
        for k in np.unique(organs):
            n_organs += engaged[:, organs == k].any(axis=1)
        lasting = self.consequence(genes)
        worst_lasting = lasting.argmax(axis=1)
        return pd.DataFrame(
            {
                "worst_healthy_cell_type": names[worst_ct],
                "worst_healthy_risk": risk[rows, worst_ct],
                "worst_healthy_fraction": frac[rows, worst_ct],
                "vital_risk": (
                    organ_system_risk(risk, systems) if self.over_organs else risk[rows, worst_any]
                ),
                "worst_context": names[worst_any],
                "worst_tissue": ctx["tissue"].to_numpy()[worst_any],
                "worst_system": systems[worst_any],
                "n_contexts_engaged": engaged.sum(axis=1),
                "n_systems_engaged": n_organs,
                "consequence": (
                    organ_system_risk(lasting, systems)
                    if self.over_organs
                    else lasting[rows, worst_lasting]
                ),
                "consequence_context": np.where(
                    lasting[rows, worst_lasting] > 0, names[worst_lasting], "none"
                ),
                "rna_missing_contexts": self.missing(genes).sum(axis=1),
                "isoform_note": self.isoform_note(genes).to_numpy(),
            },
            index=genes,
        )

    def missing(self, genes: pd.Index | list[str]) -> np.ndarray:
        """Genes × contexts boolean: RNA-model contexts whose level was filled in."""
        if self.rna_missing is None:
            return np.zeros((len(genes), len(self.contexts)), dtype=bool)
        rows = self.rna_missing.index.get_indexer(pd.Index(genes))
        cols = self.rna_missing.columns.get_indexer(self.contexts.index)
        m = self.rna_missing.to_numpy(dtype=bool)[np.maximum(rows, 0)][:, cols]
        m[rows < 0] = False  # genes the reference does not hold
        return m

    def isoform_note(self, genes: pd.Index | list[str]) -> pd.Series:
        """Which isoform each gene's expression is read as, and what that changed.

        Returns
        -------
        Series indexed by gene: the isoform table's note, then the contexts excluded with the
        engagement they had, most engaged first (``excluded: Hepatocytes 0.94, Liver 0.90``),
        or, for a note, the contexts it concerns; ``'none'`` for genes without an isoform note
        (as ``binds_most`` and ``targetability_flags``, so a written table reads back alike).
        """
        genes = pd.Index(genes)
        out = pd.Series("none", index=genes, name="isoform_note", dtype=object)
        table = self.isoform
        if table is None or table.empty:
            return out
        names = self.contexts["name"].astype(str)
        for gene, rows in table[table["gene"].isin(genes)].groupby("gene", sort=False):
            text = str(rows["note"].iloc[0])
            has = rows["context"].notna()
            done = rows[has & rows["applied"]]
            kept = rows[has & ~rows["applied"]]
            if len(done):
                done = done.sort_values("fraction_before", ascending=False, kind="stable")
                shown = done["fraction_before"].to_numpy() >= 0.005  # noqa: PLR2004
                parts = [
                    f"{names[c]} {f:.2f}"
                    for c, f in zip(
                        done["context"][shown], done["fraction_before"][shown], strict=True
                    )
                ]
                if (~shown).any():
                    parts.append(f"{int((~shown).sum())} more at 0.00")
                text += f" [excluded: {', '.join(parts)}]"
            if len(kept):
                what = "noted only" if (kept["effect"] == "note").all() else "kept"
                text += f" [{what}: {', '.join(names[c] for c in kept['context'])}]"
            out[gene] = text
        return out

    def long(self, genes: list[str]) -> pd.DataFrame:  # noqa: PLR0915
        """Tidy table, one row per target and context it engages (zero rows dropped).

        Columns ``target, context, name, kind, tissue, system``, ``positive_fraction``
        (engagement: the fraction of the context's cells carrying enough antigen),
        ``engagement_low``/``engagement_high`` (its interval), ``source`` (what judged it,
        :func:`context_source`),
        ``threshold_cp10k`` (the antigen level a cell needs to be engaged), ``n_cells``,
        ``vital_weight``, ``risk`` (severity = engagement × vital weight), ``reserve`` and
        ``renewal_days`` (:func:`organ_reserve`) and ``consequence`` (:func:`consequence`).
        """
        frac = self.fraction.reindex(genes).fillna(0.0)
        out = frac.stack().rename("positive_fraction").reset_index()
        out.columns = ["target", "context", "positive_fraction"]
        for name, df in (("engagement_low", self.low), ("engagement_high", self.high)):
            src = df if df is not None else self.fraction
            out[name] = src.reindex(genes).fillna(0.0).to_numpy().ravel()
        if self.protein is not None:
            out["protein_cells"] = (
                self.protein.reindex(index=genes, columns=self.contexts.index)
                .to_numpy(dtype=np.float64)
                .ravel()
            )
        iso = self.isoform_sources()
        keep = out["positive_fraction"] > 0
        if iso is not None:  # an excluded context stays in the table, at 0, saying why
            keep |= pd.MultiIndex.from_frame(out[["target", "context"]]).isin(
                iso.index[iso.str.startswith(ISOFORM_SOURCE)]
            )
        out = out[keep]
        out["source"] = context_source(self.contexts).reindex(out["context"]).to_numpy()
        if self.rna_missing is not None:
            gap = pd.DataFrame(
                self.missing(genes), index=pd.Index(genes), columns=self.contexts.index
            ).stack()
            hit = gap.reindex(pd.MultiIndex.from_frame(out[["target", "context"]])).to_numpy()
            out.loc[hit.astype(bool), "source"] = MISSING_RNA_SOURCE
        meta = self.contexts[["name", "kind", "tissue", "system"]]
        out = out.join(meta, on="context")
        thr = self.threshold_cp10k
        out["threshold_cp10k"] = (
            thr.reindex(out["target"]).to_numpy(dtype=float) if thr is not None else np.nan
        )
        n_cells = self.contexts.get("n_cells")
        out["n_cells"] = (
            n_cells.reindex(out["context"]).to_numpy() if n_cells is not None else pd.NA
        )
        if "protein_cells" in out:  # measured protein: its source and the cells it counted
            pc = out.pop("protein_cells").to_numpy()
            hit = ~np.isnan(pc)
            out.loc[hit, "source"] = PROTEIN_SOURCE
            out["n_cells"] = out["n_cells"].astype("Float64")
            out.loc[hit, "n_cells"] = pc[hit]
        if iso is not None:
            text = iso.reindex(pd.MultiIndex.from_frame(out[["target", "context"]])).to_numpy()
            hit = pd.notna(text)
            noted = np.array(
                [isinstance(t, str) and not t.startswith(ISOFORM_SOURCE) for t in text]
            )
            out.loc[hit & ~noted, "source"] = text[hit & ~noted]
            out.loc[noted, "source"] = out.loc[noted, "source"] + "; " + text[noted]
        if self.apical is not None and self.apical_contexts is not None:  # lumen-facing antigen
            hit = (
                out["target"].isin(self.apical).to_numpy()
                & out["context"].isin(self.apical_contexts).to_numpy()
            )
            out.loc[hit, "source"] = out.loc[hit, "source"] + "; " + APICAL_NOTE
        if self.exposure_why is not None:  # reached in part: say why beside the source
            why = self.exposure_why.reindex(out["context"]).fillna("").to_numpy(dtype=object)
            part = why != ""
            out.loc[part, "source"] = out.loc[part, "source"] + "; " + why[part]
        out["vital_weight"] = self.weight.reindex(out["context"]).to_numpy()
        out["risk"] = out["positive_fraction"] * out["vital_weight"]
        res = self.reserve.reindex(out["context"])
        out["reserve"] = res["reserve"].to_numpy()
        out["renewal_days"] = res["renewal_days"].to_numpy()
        out["consequence"] = consequence(  # one row: each table row is its own context
            out["positive_fraction"].to_numpy(dtype=np.float64)[None, :],
            out["vital_weight"].to_numpy(dtype=np.float64),
            out["reserve"].to_numpy(),
            out["renewal_days"].to_numpy(),
            persists=self.over_organs,
        )[0]
        order = ["target", "context", "name", "kind", "tissue", "system"]
        order += ["positive_fraction", "engagement_low", "engagement_high", "source"]
        order += ["threshold_cp10k", "n_cells", "vital_weight", "risk"]
        order += ["reserve", "renewal_days", "consequence"]
        return out[order].sort_values(["target", "risk"], ascending=[True, False])

    def isoform_sources(self) -> pd.Series | None:
        """Per (gene, context) with an isoform note: the ``source`` text it gives."""
        table = self.isoform
        if table is None or table.empty or table["context"].isna().all():
            return None
        t = table[table["context"].notna()]
        text = [
            f"{ISOFORM_SOURCE}: {o}; engagement {f:.2f} excluded"
            if a
            else f"isoform note: {o} here, not excluded"
            for o, f, a in zip(t["other_isoform"], t["fraction_before"], t["applied"], strict=True)
        ]
        return pd.Series(text, index=pd.MultiIndex.from_frame(t[["gene", "context"]]))

    def localisation(self, genes: pd.Index | list[str], n: int = 3) -> pd.Series:
        """Where each gene binds: its ``n`` most engaged contexts, by engagement alone.

        Returns
        -------
        Series indexed by gene: ``'name 0.93; name 0.88; name 0.71'``.
        """
        frac = self.fraction.reindex(pd.Index(genes)).fillna(0.0)
        names = self.contexts["name"].astype(str).to_numpy()
        vals = frac.to_numpy(dtype=float)
        top = np.argsort(-vals, axis=1, kind="stable")[:, :n]
        rows = [
            "; ".join(f"{names[j]} {vals[i, j]:.2f}" for j in top[i] if vals[i, j] > 0) or "none"
            for i in range(len(frac))
        ]
        return pd.Series(rows, index=frac.index, name="binds_most")

    def rollup(self, genes: list[str], level: str) -> pd.DataFrame:
        """Genes × ``level`` ('tissue' or 'system') maximum weighted risk."""
        risk = self.risk.reindex(genes).fillna(0.0)
        return risk.T.groupby(self.contexts[level].to_numpy()).max().T


def healthy_risk(  # noqa: PLR0913
    reference: Reference,
    *,
    threshold_cp10k: float,
    modality: str | None = None,
    shape: float = 1.0,
    use_ihc: bool = True,
    gene_threshold_cp10k: pd.Series | None = None,
    pregnancy: bool = False,
    route: str = "systemic",
) -> HealthyRisk:
    """Positive fraction and vital weight of every reference context for every gene.

    Parameters
    ----------
    reference
        The healthy reference (see :func:`antigenscout.reference.load_reference`).
    threshold_cp10k
        Positivity threshold in CP10k (the single-cell model's ``lambda0``).
    modality
        Therapy modality; ``'tcr-t'`` and ``'vaccine'`` discount immune-privileged contexts.
    shape
        Shape of the within-context Gamma distribution of expression.
    use_ihc
        Raise tissue fractions to the IHC protein level where HPA detects the protein.
    gene_threshold_cp10k
        Per-gene antigen level a cell needs to be engaged (the agent's kill threshold);
        those genes' fractions are recomputed at their own
        thresholds, with intervals (``HealthyRisk.low``/``high``).
    pregnancy
        Keep the contexts of pregnancy (placenta, trophoblasts); out of the default adult body.
    route
        How the agent is given (:data:`ROUTES`): ``'systemic'``, ``'intrathecal'`` or
        ``'intravesical'`` (:func:`exposure`).

    Returns
    -------
    :class:`HealthyRisk`, with every engagement multiplied by the agent's :func:`exposure`.
    """
    if gene_threshold_cp10k is None:
        hr = _healthy_risk_isoforms(reference, threshold_cp10k, modality, shape, use_ihc)
    else:
        base = _healthy_risk_cached(reference, threshold_cp10k, modality, shape, use_ihc)
        hr = apply_isoforms(
            _rethreshold(base, reference, gene_threshold_cp10k, threshold_cp10k, shape, use_ihc),
            reference,
        )
    hr = apply_apical(hr, reference, modality, route)
    return _exposed(hr, _exposure_table(reference.contexts, modality, pregnancy, route))


#: Share of an apical or tight-junction antigen a binder arriving from the blood reaches in a
#: polarised epithelium: the tight junctions that seal the lumen are the barrier's, so the
#: occupancy is the barrier's (:data:`BARRIER_EXPOSURE`), taken alike.
APICAL_EXPOSURE = BARRIER_EXPOSURE
#: What ``source`` says of an apical antigen in a polarised epithelium.
APICAL_NOTE = (
    f"apical or tight-junction antigen in a polarised epithelium: engagement × "
    f"{APICAL_EXPOSURE:.3g}"
)
#: ``surface.parquet`` ``epithelial_side`` values an agent from the blood does not face.
APICAL_SIDES = frozenset({"apical"})


def apical_genes(reference: Reference, genes: pd.Index) -> np.ndarray:
    """``genes`` UniProt places on the apical side of an epithelium (or its tight junction)
    and on no basolateral surface (``surface.parquet`` ``epithelial_side``).
    """  # noqa: D205
    side = reference.surface.get("epithelial_side")
    if side is None:  # a reference built before issue #21
        return np.zeros(len(genes), dtype=bool)
    return side.reindex(genes).astype(object).isin(APICAL_SIDES).to_numpy(dtype=bool)


def apply_apical(
    hr: HealthyRisk, reference: Reference, modality: str | None, route: str = "systemic"
) -> HealthyRisk:
    """Engagement × :data:`APICAL_EXPOSURE` for apical antigens in polarised epithelia.

    A binder (any agent but TCR-T and vaccines, whose peptide-HLA is presented on every
    surface; a modality the profiles do not know is taken as a binder) comes from the
    blood and meets an epithelium's basolateral side: an antigen UniProt places only on the
    apical membrane or at the tight junction (:func:`apical_genes`) faces the lumen there, in
    the contexts the reference marks ``polarised`` (simple and glandular epithelia, and the
    tissues made of them). An agent put into a lumen faces the apical side there
    (:data:`ROUTE_LUMENS`: the bladder for an intravesical agent, the choroid plexus, whose
    apical side faces the CSF, for an intrathecal one). ``HealthyRisk.apical`` keeps the genes
    and ``HealthyRisk.apical_contexts`` the contexts the factor was applied in, for ``source``.
    """
    profile = MODALITY_PROFILES.get(str(modality))
    if profile is not None and not profile.binder:
        return hr
    if "polarised" not in hr.contexts:
        return hr
    rows = apical_genes(reference, hr.fraction.index)
    cols = hr.contexts["polarised"].astype("boolean").fillna(False).to_numpy(bool)
    cols &= ~_in_lumen(hr.contexts, route)
    cols = cols[hr.contexts.index.get_indexer(hr.fraction.columns)]
    if not rows.any() or not cols.any():
        return hr
    factor = np.where(rows[:, None] & cols[None, :], APICAL_EXPOSURE, 1.0)

    def times(df: pd.DataFrame | None) -> pd.DataFrame | None:
        if df is None:
            return None
        f = factor[hr.fraction.index.get_indexer(df.index)][
            :, hr.fraction.columns.get_indexer(df.columns)
        ]
        return df * f

    return replace(
        hr,
        fraction=times(hr.fraction),
        low=times(hr.low),
        high=times(hr.high),
        apical=hr.fraction.index[rows],
        apical_contexts=hr.fraction.columns[cols],
    )


#: Routes of administration (docs/engagement.md, "Exposure"): ``systemic`` (intravenous or
#: subcutaneous, the default), ``intrathecal`` (into the CSF: the blood–brain barrier no longer
#: stands between a protein agent and the CNS) and ``intravesical`` (into the bladder: the
#: urothelium is reached fully, the rest of the body only across it).
ROUTES = _ROUTES
#: The ``tissue`` of the contexts an intravesical agent is instilled into.
BLADDER_TISSUE = "urinary bladder"

#: Per route, the contexts whose apical side the agent faces because it is put into their
#: lumen: ``(contexts column, value)``, the index when the column is ``None``.
ROUTE_LUMENS: dict[str, tuple[str | None, str]] = {
    "intravesical": ("tissue", BLADDER_TISSUE),
    "intrathecal": (None, "tissue:choroid plexus"),
}


def _in_lumen(contexts: pd.DataFrame, route: str) -> np.ndarray:
    """Per context: does an agent given by ``route`` sit in its lumen?"""  # noqa: D400
    where = ROUTE_LUMENS.get(route)
    if where is None:
        return np.zeros(len(contexts), dtype=bool)
    column, value = where
    if column is None:
        return np.asarray(contexts.index == value, dtype=bool)
    if column not in contexts:
        return np.zeros(len(contexts), dtype=bool)
    return contexts[column].astype(object).eq(value).to_numpy(dtype=bool)


def check_route(route: str) -> str:
    """``route`` if it is one of :data:`ROUTES`, else an error naming them."""
    if route not in ROUTES:
        msg = f"route {route!r} is not one of {', '.join(ROUTES)} (docs/engagement.md, Exposure)"
        raise InputError(msg)
    return route


def _exposure_table(
    contexts: pd.DataFrame, modality: str | None, pregnancy: bool, route: str
) -> pd.DataFrame:
    """Per context: ``factor`` (the share of its engaged cells reached) and ``why`` (the
    ``source`` note; empty where the factor is 1).
    """  # noqa: D205
    check_route(route)
    n = len(contexts)
    factor = np.ones(n)
    why = [[] for _ in range(n)]
    profile = MODALITY_PROFILES.get(str(modality))
    if route == "intravesical":
        outside = ~_in_lumen(contexts, route)
        factor[outside] *= BARRIER_EXPOSURE
        for k in np.flatnonzero(outside):
            why[k].append("outside the bladder (intravesical route)")
    if "barrier" in contexts and not (profile is not None and profile.crosses_barriers):
        barrier = contexts["barrier"].astype(object).fillna("none").to_numpy()
        behind = barrier != "none"
        if route == "intrathecal":  # given into the CSF, on the brain's side of the barrier
            behind &= barrier != "blood-brain"
        factor[behind] *= BARRIER_EXPOSURE
        for k in np.flatnonzero(behind):
            why[k].append(f"behind the {barrier[k]} barrier")
    text = [
        f"{' and '.join(w)}: engagement × {f:.3g}" if w else ""
        for w, f in zip(why, factor, strict=True)
    ]
    if "pregnancy" in contexts and not pregnancy:
        preg = contexts["pregnancy"].astype("boolean").fillna(False).to_numpy(bool)
        factor[preg] = 0.0
        for k in np.flatnonzero(preg):
            text[k] = "pregnancy only: left out (pregnancy=True keeps it)"
    return pd.DataFrame({"factor": factor, "why": text}, index=contexts.index)


def exposure(
    contexts: pd.DataFrame,
    modality: str | None,
    *,
    pregnancy: bool = False,
    route: str = "systemic",
) -> pd.Series:
    """The share of each context's engaged cells an agent reaches.

    0 for the contexts of pregnancy (``pregnancy`` column) unless ``pregnancy``;
    :data:`BARRIER_EXPOSURE` behind a barrier (``barrier`` column other than ``'none'``) for
    an agent that does not cross it (``ModalityProfile.crosses_barriers``; a modality the
    profiles do not know, or ``None``, is taken as a protein agent), except the blood–brain
    barrier for an intrathecal agent; for an intravesical agent, :data:`BARRIER_EXPOSURE` (the
    urothelium crossed) times the above outside the bladder; 1 elsewhere. A reference without
    the columns (built before issue #21) exposes everything.

    Examples
    --------
    >>> import pandas as pd
    >>> ctx = pd.DataFrame({"barrier": ["none", "blood-brain", "none", "none"],
    ...                     "pregnancy": [False, False, True, False],
    ...                     "tissue": ["liver", "brain", "placenta", "urinary bladder"]},
    ...                    index=["liver", "neurons", "placenta", "bladder"])
    >>> exposure(ctx, "adc").round(3).tolist(), exposure(ctx, "car-t").tolist()
    ([1.0, 0.129, 0.0, 1.0], [1.0, 1.0, 0.0, 1.0])
    >>> exposure(ctx, "car-t", pregnancy=True).tolist()
    [1.0, 1.0, 1.0, 1.0]
    >>> exposure(ctx, "antibody", route="intrathecal").round(3).tolist()
    [1.0, 1.0, 0.0, 1.0]
    >>> exposure(ctx, "antibody", route="intravesical").round(4).tolist()
    [0.1293, 0.0167, 0.0, 1.0]
    """  # noqa: D401
    return _exposure_table(contexts, modality, pregnancy, route)["factor"].rename("exposure")


def exposure_summary(
    factor: pd.Series | None, pregnancy: bool, route: str = "systemic"
) -> dict[str, Any]:
    """What an agent was taken to reach, for ``params``/``run.json``: the route, the contexts
    left out, those reached in part (behind a barrier, or outside the bladder for an
    intravesical agent) and their smallest factor (``factor``: :attr:`HealthyRisk.exposure`
    over the contexts reported; ``None``: all reached).
    """  # noqa: D205, D401
    f = np.array([]) if factor is None else factor.to_numpy(dtype=np.float64)
    behind = (f > 0) & (f < 1)
    return {
        "route": route,
        "pregnancy": bool(pregnancy),
        "contexts_left_out": int((f == 0).sum()),
        "contexts_behind_barrier": int(behind.sum()),
        "barrier_exposure": round(float(f[behind].max()), 4) if behind.any() else None,
    }


def _exposed(hr: HealthyRisk, table: pd.DataFrame) -> HealthyRisk:
    """``hr`` with every engagement multiplied by the exposure factor of its context
    (``table``: :func:`_exposure_table`), the reasons kept for ``source``.
    """  # noqa: D205
    factor = table["factor"].reindex(hr.fraction.columns).fillna(1.0)
    if (factor == 1.0).all():
        return replace(hr, exposure=None, exposure_why=None)
    f = factor.to_numpy(dtype=np.float64)[None, :]

    def times(df: pd.DataFrame | None) -> pd.DataFrame | None:
        return None if df is None else df * f

    return replace(
        hr,
        fraction=hr.fraction * f,
        low=times(hr.low),
        high=times(hr.high),
        exposure=factor,
        exposure_why=table["why"].reindex(hr.fraction.columns).fillna(""),
    )


def _rethreshold(  # noqa: PLR0913, PLR0915, PLR0917
    base: HealthyRisk,
    reference: Reference,
    thresholds: pd.Series,
    measured_at: float,
    shape: float,
    use_ihc: bool,
) -> HealthyRisk:
    """Engagement of ``thresholds.index`` genes at their own antigen thresholds (CP10k).

    Modelled contexts: the Gamma model at the gene's threshold, with an interval spanning
    shapes :data:`INTERVAL_SHAPES`. Measured single-cell contexts: the fraction ``f0``
    measured at ``measured_at`` carried to threshold ``t`` by the exponential model through
    the same data, ``f0 ** (t / measured_at)``, with a Wilson 90% interval on ``f0``; where
    the context's cells are too shallow to call a cell at ``t``, or ``t`` lies below
    ``measured_at`` (``f0`` then stands, as a lower bound), the interval's upper end is what
    the context's mean allows (:func:`shallow_upper`).
    """
    genes = pd.Index(thresholds.index).intersection(base.fraction.index)
    t = thresholds.reindex(genes).to_numpy(dtype=np.float64)[:, None] * CP10K_TO_NTPM
    reads_at = None
    expr = healthy_expression(reference)[0].reindex(genes)[base.contexts.index]
    mu = np.nan_to_num(expr.to_numpy(dtype=np.float64), posinf=np.inf)
    est = np.zeros_like(mu)
    pos = mu > 0
    tt = np.broadcast_to(t, mu.shape)
    est[pos] = special.gammaincc(shape, shape * tt[pos] / mu[pos])
    lo, hi = est.copy(), est.copy()
    for k in INTERVAL_SHAPES:
        alt = np.zeros_like(mu)
        alt[pos] = special.gammaincc(k, k * tt[pos] / mu[pos])
        lo, hi = np.minimum(lo, alt), np.maximum(hi, alt)
    measured = measured_fraction(reference, measured_at)
    if measured is not None:
        cols = [c for c in measured.columns if c in base.contexts.index]
        idx = base.contexts.index.get_indexer(cols)
        f0 = measured[cols].reindex(genes).fillna(0.0).to_numpy(dtype=np.float64)
        n = base.contexts["n_cells"].reindex(cols).astype(float).fillna(0).to_numpy()
        f_lo, f_hi = _wilson(f0, n[None, :])
        # carried only upwards: below the level it was measured at, pooled single-cell
        # data cannot tell more positives apart, so the measured fraction stands
        power = np.maximum(t / (measured_at * CP10K_TO_NTPM), 1.0)
        est[:, idx] = np.power(np.clip(f0, 0.0, 1.0), power)
        lo[:, idx] = np.power(f_lo, power)
        hi[:, idx] = np.power(f_hi, power)
        lib = (
            base.contexts["mean_library"].reindex(cols).astype(float).to_numpy()
            if "mean_library" in base.contexts
            else np.full(len(cols), np.nan)
        )
        bound, reads = shallow_upper(
            np.nan_to_num(
                reference.expression.reindex(index=genes, columns=cols).to_numpy(dtype=np.float64)
            ),
            np.broadcast_to(t, (len(genes), len(cols))),
            n,
            lib,
            measured_at_cpm=measured_at * CP10K_TO_NTPM,
        )
        hi[:, idx] = np.fmax(hi[:, idx], bound)
        reads_at = pd.DataFrame(np.nan, index=genes, columns=base.contexts.index)
        reads_at[cols] = reads
    prot = protein_fraction(reference)
    mask = None
    if prot is not None:
        f0_p, n_p, at = prot
        like = pd.DataFrame(index=genes, columns=base.contexts.index)
        mask = n_p.reindex_like(like).astype(np.float64)
        m = mask.notna().to_numpy()
        f0 = f0_p.reindex_like(like).to_numpy(dtype=np.float64)
        n = n_p.reindex_like(like).to_numpy(dtype=np.float64)
        f_lo, f_hi = _wilson(np.nan_to_num(f0), np.nan_to_num(n))
        power = np.broadcast_to(np.maximum(t / (at * CP10K_TO_NTPM), 1.0), mu.shape)
        est[m] = np.power(f0[m], power[m])
        lo[m] = np.power(f_lo[m], power[m])
        hi[m] = np.power(f_hi[m], power[m])
    frames = [pd.DataFrame(a, index=genes, columns=base.contexts.index) for a in (est, lo, hi)]
    if use_ihc and len(reference.ihc):
        floor = _ihc_floor(reference.ihc, genes, base.contexts.index)
        frames = [f.where(f >= floor, floor) for f in frames]
    fraction = base.fraction.copy()
    low = base.fraction.copy()
    high = base.fraction.copy()
    fraction.loc[genes] = frames[0]
    low.loc[genes] = frames[1]
    high.loc[genes] = frames[2]
    thr = pd.Series(measured_at, index=base.fraction.index, dtype=float)
    thr.loc[genes] = thresholds.reindex(genes).to_numpy(dtype=float)
    protein = base.protein
    if mask is not None:
        protein = (
            base.protein.copy()
            if base.protein is not None
            else pd.DataFrame(np.nan, index=fraction.index, columns=fraction.columns)
        )
        protein.loc[genes] = mask.to_numpy()
    return HealthyRisk(
        fraction=fraction,
        weight=base.weight,
        contexts=base.contexts,
        low=low,
        high=high,
        threshold_cp10k=thr,
        protein=protein,
        rna_missing=base.rna_missing,
        reads_at_threshold=reads_at,
        over_organs=base.over_organs,
    )


def shallow_upper(
    mean_cpm: np.ndarray,
    t_cpm: np.ndarray,
    n_cells: np.ndarray,
    mean_library: np.ndarray,
    measured_at_cpm: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Upper end of a measured context's engagement where the measured fraction cannot set it.

    Two cases. (1) Too shallow: the context's cells hold ``R_t = n_cells * mean_library * t /
    1e6`` expected reads at the engagement level ``t`` (CPM); below ``MIN_READS_AT_THRESHOLD``
    (10, the rate model's rule for a call, docs/engagement.md) an antigen at ``t`` in every
    cell would show a handful of reads, so the measured fraction cannot rule it out. (2) Below
    the level the fraction was measured at (``t < measured_at_cpm``): it counts cells at that
    level, a lower bound for cells at ``t``. What bounds the fraction from above is the mean: a
    fraction ``f`` of cells at ``t`` or more makes the mean at least ``f * t``, so ``f <= mean
    / t``, with the mean at its Garwood 95% upper limit from the pooled reads (at its value
    where the depth is unknown).

    Parameters
    ----------
    mean_cpm, t_cpm
        Genes × contexts pseudobulk mean and engagement level (CPM).
    n_cells, mean_library
        Per context: cells and UMIs per cell (NaN where unknown).
    measured_at_cpm
        The level the measured fractions were called at (CPM), if known.

    Returns
    -------
    ``(bound, reads_at_t)``: genes × contexts upper end (NaN where neither case holds) and
    expected reads at ``t`` (NaN where the depth is unknown).

    Examples
    --------
    CD19 in 27 marrow pro-B cells of ~2,240 UMIs (one read; 16.5 CPM) at a CAR's 20 CPM:

    >>> b, r = shallow_upper(np.array([[16.5]]), np.array([[20.0]]), np.array([27.0]),
    ...                      np.array([2241.0]))
    >>> round(float(r[0, 0]), 1), float(b[0, 0])
    (1.2, 1.0)
    """
    from scipy.stats import chi2  # noqa: PLC0415

    t = np.asarray(t_cpm, dtype=np.float64)
    mean = np.maximum(np.asarray(mean_cpm, dtype=np.float64), 0.0)
    umis = np.asarray(n_cells, dtype=np.float64) * np.asarray(mean_library, dtype=np.float64)
    reads_at_t = umis[None, :] * t / 1e6
    reads = mean * umis[None, :] / 1e6
    known = np.isfinite(reads_at_t) & (reads_at_t > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_hi = np.where(
            known, chi2.ppf(0.95, 2 * np.nan_to_num(reads) + 2) / 2 / reads_at_t * t, mean
        )
        bound = np.clip(mean_hi / t, 0.0, 1.0)
    applies = known & (reads_at_t < MIN_READS_AT_THRESHOLD)
    if measured_at_cpm is not None:
        applies |= t < measured_at_cpm
    return np.where(applies, bound, np.nan), reads_at_t


def _wilson(p: np.ndarray, n: np.ndarray, z: float = 1.645) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval (90% for ``z = 1.645``) of proportions ``p`` out of ``n``."""
    n = np.where(n > 0, n, np.nan)
    denom = 1 + z**2 / n
    centre = (p + z**2 / (2 * n)) / denom
    half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denom
    lo = np.nan_to_num(centre - half, nan=0.0)
    hi = np.nan_to_num(centre + half, nan=1.0)
    return np.clip(lo, 0.0, 1.0), np.clip(hi, 0.0, 1.0)


@lru_cache(maxsize=8)
def _healthy_risk_cached(
    reference: Reference,  # hashed by identity (Reference is eq=False)
    threshold_cp10k: float,
    modality: str | None,
    shape: float,
    use_ihc: bool,
) -> HealthyRisk:
    contexts = reference.contexts
    expr, filled = healthy_expression(reference)
    frac = positive_fraction_from_mean(
        expr.to_numpy(dtype=np.float64), threshold_cp10k * CP10K_TO_NTPM, shape
    )
    fraction = pd.DataFrame(frac, index=expr.index, columns=contexts.index)
    measured = measured_fraction(reference, threshold_cp10k)
    if measured is not None:
        cols = [c for c in measured.columns if c in fraction.columns]
        m = measured[cols].reindex(fraction.index).fillna(0.0)
        fraction[cols] = m.to_numpy(dtype=np.float64)
    mask = None
    prot = protein_fraction(reference)
    if prot is not None:
        f0, n_p, at = prot
        mask = n_p.reindex_like(fraction).astype(np.float64)
        power = max(threshold_cp10k / at, 1.0)
        fraction = fraction.where(mask.isna(), np.power(f0.reindex_like(fraction), power))
    if use_ihc and len(reference.ihc):
        floor = _ihc_floor(reference.ihc, fraction.index, contexts.index)
        fraction = fraction.where(fraction >= floor, floor)
    weight = contexts["vital_weight"].astype(float).copy()
    if modality in {"tcr-t", "vaccine"}:
        privileged = contexts["immune_privileged"].astype(bool)
        weight[privileged] *= IMMUNE_PRIVILEGE_DISCOUNT
    profile = MODALITY_PROFILES.get(str(modality))
    return HealthyRisk(
        fraction=fraction,
        weight=weight,
        contexts=contexts,
        protein=mask,
        rna_missing=filled,
        over_organs=bool(profile is not None and profile.persists),
    )


@lru_cache(maxsize=8)
def _healthy_risk_isoforms(
    reference: Reference,
    threshold_cp10k: float,
    modality: str | None,
    shape: float,
    use_ihc: bool,
) -> HealthyRisk:
    raw = _healthy_risk_cached(reference, threshold_cp10k, modality, shape, use_ihc)
    return apply_isoforms(raw, reference)


#: ``source`` of a context whose RNA the isoform table reads as another isoform of the gene.
ISOFORM_SOURCE = "other isoform"


def apply_isoforms(hr: HealthyRisk, reference: Reference) -> HealthyRisk:
    """Engagement 0 where the reference's isoform table reads a context's RNA as another isoform.

    Rows with ``effect`` ``exclude`` set the (gene, context) engagement, and its interval, to 0
    unless surface protein was measured there (a measured surface protein is the membrane
    isoform); ``note`` rows change nothing. Every row that applies to ``hr``'s genes, with the
    engagement it had (``fraction_before``) and whether it was applied, is kept in
    ``HealthyRisk.isoform`` for the outputs (:meth:`HealthyRisk.isoform_note`, ``source``).
    """
    if reference.isoforms is None:
        return hr
    pairs = reference.isoform_pairs(hr.contexts.index)
    pairs = pairs[pairs["gene"].isin(hr.fraction.index)].reset_index(drop=True)
    if pairs.empty:
        return hr
    r = hr.fraction.index.get_indexer(pairs["gene"])
    c = hr.contexts.index.get_indexer(pairs["context"].fillna("").astype(str))
    at = c >= 0
    before = np.full(len(pairs), np.nan)
    before[at] = hr.fraction.to_numpy(dtype=np.float64)[r[at], c[at]]
    applied = at & (pairs["effect"] == "exclude").to_numpy()
    if applied.any() and hr.protein is not None:
        prot = hr.protein.reindex(index=hr.fraction.index, columns=hr.contexts.index)
        applied[applied] = np.isnan(prot.to_numpy(dtype=np.float64)[r[applied], c[applied]])
    pairs["fraction_before"] = before
    pairs["applied"] = applied

    def zeroed(df: pd.DataFrame | None) -> pd.DataFrame | None:
        if df is None or not applied.any():
            return df
        a = df.to_numpy(dtype=np.float64, copy=True)
        a[r[applied], c[applied]] = 0.0
        return pd.DataFrame(a, index=df.index, columns=df.columns)

    cols = ["gene", "context", "effect", "target_isoform", "other_isoform", "note", "source"]
    return replace(
        hr,
        fraction=zeroed(hr.fraction),
        low=zeroed(hr.low),
        high=zeroed(hr.high),
        isoform=pairs[[*cols, "fraction_before", "applied"]],
    )


#: ``source`` of an engagement measured as surface protein.
PROTEIN_SOURCE = "measured protein (CITE-seq)"


def protein_fraction(reference: Reference) -> tuple[pd.DataFrame, pd.DataFrame, float] | None:
    """Measured protein fractions as wide tables: ``(fraction, n_cells, measured_at_cp10k)``.

    Genes × contexts, NaN where not measured. ``measured_at_cp10k``: the RNA level protein
    positivity stands for (the reference's measured-fraction threshold; the default 0.2
    CP10k), from which it is carried to higher engagement thresholds as the measured
    single-cell fractions are.
    """
    table = getattr(reference, "protein", None)
    if table is None or len(table) == 0:
        return None
    table = table[table["context"].isin(reference.contexts.index)]
    frac = (table["n_positive"] / table["n_cells"]).to_numpy(dtype=np.float64)
    f0 = pd.DataFrame({"gene": table["gene"], "context": table["context"], "v": frac})
    f0 = f0.pivot_table(index="gene", columns="context", values="v", aggfunc="max")
    n = table.pivot_table(index="gene", columns="context", values="n_cells", aggfunc="max")
    meta = reference.metadata.get("protein_fraction", {})
    at = meta.get("measured_at_cp10k") or measured_threshold(reference) or 0.2
    return f0, n.reindex_like(f0), float(at)


def context_source(contexts: pd.DataFrame) -> pd.Series:
    """What judges each context's engagement: ``atlas:<name>`` for a user's atlas,
    ``measured single cells`` for other single-cell contexts, else ``RNA model``.
    """  # noqa: D205, D401
    declared = contexts["source"].astype(str) if "source" in contexts else None
    measured = (
        contexts["n_cells"].notna().to_numpy()
        if "n_cells" in contexts
        else np.zeros(len(contexts), dtype=bool)
    )
    out = np.where(measured, "measured single cells", "RNA model").astype(object)
    if declared is not None:
        atlas = declared.str.startswith("atlas").to_numpy()
        out[atlas] = declared.to_numpy()[atlas]
    return pd.Series(out, index=contexts.index, name="source")


def shown_fraction(risk: HealthyRisk, reference: Reference, genes: Sequence[str]) -> pd.DataFrame:
    """Genes × contexts: the fraction of each context's cells *shown* to carry the antigen.

    Measured contexts (single cells, an atlas) and measured protein keep their engagement (its lower
    interval end where there is one); contexts judged by the RNA model only keep what HPA
    immunohistochemistry shows (the IHC floor), else 0. Never above the engagement. A NOT arm
    of a gate vetoes only these cells (:class:`antigenscout.tl.HealthyPseudobulk`). Fractions of
    what the cells carry, before the agent's per-context exposure (:meth:`HealthyRisk.unexposed`;
    an apical antigen keeps its factor).
    """
    genes = pd.Index(genes)
    est = risk.unexposed(risk.fraction.reindex(genes).fillna(0.0))
    low = risk.low if risk.low is not None else risk.fraction
    base = risk.unexposed(low.reindex(genes).fillna(0.0))
    measured = np.broadcast_to(
        (context_source(risk.contexts) != "RNA model").to_numpy()[None, :], base.shape
    )
    measured = measured | risk.protein_measured(genes)
    out = pd.DataFrame(
        np.where(measured, base.to_numpy(dtype=np.float64), 0.0),
        index=genes,
        columns=risk.contexts.index,
    )
    if len(reference.ihc):
        floor = _ihc_floor(reference.ihc, genes, risk.contexts.index)
        out = out.where(out >= floor, floor)
    return out.clip(lower=0.0, upper=est.to_numpy(dtype=np.float64), axis=None)


def parenchymal_cell_types(contexts: pd.DataFrame) -> pd.Index:
    """HPA single-cell types (``sc:``) of non-immune cells: those whose infiltrate is removed."""
    sc = contexts.index.astype(str).str.startswith("sc:")
    if "kind" in contexts:
        sc &= (contexts["kind"] == "cell_type").to_numpy()
    if "system" in contexts:
        sc &= ~contexts["system"].isin(IMMUNE_SYSTEMS).to_numpy()
    sc &= ~contexts.index.isin(list(RESIDENT_LEUKOCYTES))
    return contexts.index[sc]


@lru_cache(maxsize=8)
def immune_admixture(reference: Reference) -> pd.DataFrame:
    """Share of each HPA immune cell type, and of the endothelium, in each parenchymal cluster.

    For parenchymal cluster ``c`` and profile ``k`` of :data:`INFILTRATE_MARKERS` or
    :data:`ENDOTHELIUM_MARKERS`, ``a_ck = median over k's markers g of expr(g, c) /
    expr(g, k)`` (markers the reference lacks, or that profile ``k`` does not express, are
    skipped). PTPRC, made by every leukocyte, bounds the leukocyte shares: where
    ``sum_k a_ck * PTPRC(k)`` exceeds the cluster's own PTPRC, they are scaled down to match
    (markers can be ambient RNA; PTPRC counts the cells). Endothelial clusters
    (:data:`ENDOTHELIAL_CLUSTERS`) have no endothelial share. The shares of a cluster sum to at
    most 1.

    Returns
    -------
    Parenchymal clusters (:func:`parenchymal_cell_types`) × profiles present in the
    reference; empty when there are none. Cached per reference (hashed by identity).

    Examples
    --------
    A cluster carrying 2% of a macrophage profile:

    >>> import pandas as pd
    >>> from antigenscout.reference import Reference
    >>> ctx = pd.DataFrame({"kind": ["cell_type"] * 2, "system": ["immune (myeloid)", "x"]},
    ...                    index=["sc:Macrophages", "sc:Myocytes"])
    >>> expr = pd.DataFrame({"sc:Macrophages": [100.0, 200.0, 400.0],
    ...                      "sc:Myocytes": [2.0, 4.0, 8.0]}, index=["C1QA", "C1QB", "CD163"])
    >>> ref = Reference(genes=pd.DataFrame(index=expr.index), contexts=ctx, expression=expr,
    ...                 ihc=pd.DataFrame(), surface=pd.DataFrame())
    >>> float(immune_admixture(ref).loc["sc:Myocytes", "sc:Macrophages"])
    0.02
    """
    ctx = reference.contexts
    expr = reference.expression
    parenchyma = parenchymal_cell_types(ctx).intersection(expr.columns, sort=False)
    marker_sets = {**INFILTRATE_MARKERS, **ENDOTHELIUM_MARKERS}
    profiles = [k for k in marker_sets if k in expr.columns and k in ctx.index]
    out = pd.DataFrame(0.0, index=parenchyma, columns=pd.Index(profiles, dtype=object))
    if len(parenchyma) == 0:
        return out
    for k in profiles:
        markers = [g for g in marker_sets[k] if g in expr.index]
        level = np.nan_to_num(expr.loc[markers, k].to_numpy(dtype=np.float64))
        markers = [g for g, v in zip(markers, level, strict=True) if v > 0]
        if not markers:
            continue
        level = expr.loc[markers, k].to_numpy(dtype=np.float64)
        seen = np.nan_to_num(expr.loc[markers, parenchyma].to_numpy(dtype=np.float64))
        out[k] = np.median(seen / level[:, None], axis=0)
        if k in ENDOTHELIUM_MARKERS:
            out.loc[out.index.isin(list(ENDOTHELIAL_CLUSTERS)), k] = 0.0
    leukocytes = [k for k in profiles if k in INFILTRATE_MARKERS]
    if PAN_LEUKOCYTE in expr.index and leukocytes:
        # every leukocyte makes PTPRC: the shares may not imply more of it than the cluster has
        implied = out[leukocytes].to_numpy() @ np.nan_to_num(
            expr.loc[PAN_LEUKOCYTE, leukocytes].to_numpy(dtype=np.float64)
        )
        seen = np.nan_to_num(expr.loc[PAN_LEUKOCYTE, parenchyma].to_numpy(dtype=np.float64))
        scale = np.where(implied > seen, seen / np.where(implied > 0, implied, 1.0), 1.0)
        out[leukocytes] = out[leukocytes].mul(scale, axis=0)
    total = out.sum(axis=1).to_numpy()
    return out.div(np.maximum(total, 1.0), axis=0)


@lru_cache(maxsize=8)
def minus_infiltrate(reference: Reference) -> pd.DataFrame:
    """Expression with the immune infiltrate's share removed from tissues and parenchymal cells.

    Returns
    -------
    Genes × contexts expression: tissue contexts reduced by ``phi_t * max_immune(g)``
    (``phi_t`` = tissue PTPRC / median immune PTPRC); HPA single-cell clusters of parenchymal
    cells reduced by ``sum_k a_ck * expr(g, k)`` (:func:`immune_admixture`); both floored at
    0; other contexts unchanged. Cached per reference (hashed by identity): callers must not
    modify it.
    """
    ctx = reference.contexts
    expr = reference.expression[ctx.index]
    out = expr.astype(np.float64)
    admix = immune_admixture(reference)
    if admix.shape[0] and admix.shape[1]:
        prof = np.nan_to_num(expr[admix.columns].to_numpy(dtype=np.float64))
        share = prof @ admix.to_numpy(dtype=np.float64).T
        cols = list(admix.index)
        out[cols] = np.maximum(0.0, out[cols].to_numpy() - share)
    immune = ctx.index[
        (ctx["kind"] == "cell_type")
        & ctx["system"].isin(IMMUNE_SYSTEMS)
        & ~ctx.index.str.startswith("marrow:")
    ]
    tissues = ctx.index[ctx["kind"] == "tissue"]
    if len(immune) == 0 or len(tissues) == 0 or "PTPRC" not in expr.index:
        return out
    ptprc_ref = float(np.nanmedian(expr.loc["PTPRC", immune].to_numpy(dtype=float)))
    phi = np.clip(expr.loc["PTPRC", tissues].to_numpy(dtype=float) / ptprc_ref, 0.0, 1.0)
    phi = np.nan_to_num(phi, nan=0.0)
    immune_max = np.nan_to_num(expr[immune].to_numpy(dtype=float)).max(axis=1)
    tissue_vals = out[tissues].to_numpy()
    out[tissues] = np.maximum(0.0, tissue_vals - immune_max[:, None] * phi[None, :])
    return out


#: ``source`` of an RNA-model context whose RNA the reference lacks for the gene.
MISSING_RNA_SOURCE = "RNA model, no RNA for the gene here: its median level elsewhere"


@lru_cache(maxsize=4)
def healthy_expression(reference: Reference) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The RNA levels the risk model reads, and where they were filled in.

    :func:`minus_infiltrate`, then every RNA-model context in which the reference has
    no RNA for a gene (an HPA table that lacks it: multi-copy families, ids of another
    Ensembl release) takes the gene's median level over the RNA-model contexts that have it,
    and a gene with none at all is put at +inf (engaged everywhere): a gene the reference
    cannot see must not look safe. Measured single-cell contexts (``n_cells`` set) are left
    as they are. Cached per reference.

    Returns
    -------
    ``(levels, filled)``: genes × contexts levels and the boolean mask of filled entries.
    """  # noqa: D401
    expr = minus_infiltrate(reference)
    ctx = reference.contexts
    rna = ctx.index[ctx["n_cells"].isna().to_numpy()] if "n_cells" in ctx else ctx.index
    vals = expr[rna].to_numpy(dtype=np.float64)
    gap = np.isnan(vals)
    has = ~gap.all(axis=1)
    fill = np.full(len(expr), np.inf)
    if has.any():
        with np.errstate(all="ignore"):
            fill[has] = np.nanmedian(vals[has], axis=1)
    vals = np.where(gap, fill[:, None], vals)
    out = expr.copy()
    out[rna] = vals
    filled = pd.DataFrame(False, index=expr.index, columns=expr.columns)
    filled[rna] = gap
    return out, filled


def measured_threshold(reference: Reference) -> float | None:
    """The threshold (CP10k) the reference's single-cell fractions were called at, if any."""  # noqa: D401
    at = (reference.metadata or {}).get("measured_fraction", {}).get("threshold_cp10k")
    return None if at is None else float(at)


def measured_fraction(reference: Reference, threshold_cp10k: float) -> pd.DataFrame | None:
    """The reference's measured single-cell fractions, if taken at ``threshold_cp10k``."""  # noqa: D401
    measured = getattr(reference, "measured_fraction", None)
    if measured is None:
        return None
    at = measured_threshold(reference)
    if at is None or not np.isclose(at, threshold_cp10k):
        return None
    return measured


def _ihc_floor(ihc: pd.DataFrame, genes: pd.Index, contexts: pd.Index) -> pd.DataFrame:
    """Genes × contexts lower bound on the positive fraction from IHC detection."""
    ihc = ihc.dropna(subset=["context"])
    ihc = ihc[ihc["symbol"].isin(genes) & ihc["context"].isin(contexts)]
    ihc = ihc[~ihc["cell_type"].astype(str).isin(IHC_IMMUNE_CELL_TYPES)]
    rel = ihc["reliability"].astype(str).map(IHC_RELIABILITY_WEIGHT).fillna(0.0)
    value = IHC_MAX_FLOOR * ihc["level"].to_numpy(dtype=float) / 3.0 * rel.to_numpy()
    floor = (
        pd.DataFrame(
            {"symbol": ihc["symbol"].astype(str), "context": ihc["context"].astype(str), "v": value}
        )
        .groupby(["symbol", "context"])["v"]
        .max()
        .unstack(fill_value=0.0)
    )
    return floor.reindex(index=genes, columns=contexts, fill_value=0.0)
