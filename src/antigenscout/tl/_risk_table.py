"""The healthy-risk result, :class:`HealthyRisk`, and the tables it reports.

Genes × contexts engagement with its interval, the vital weights and what judged each entry,
and the per-gene summaries (worst context, ``vital_risk``, ``consequence``), the tidy per-context
table (``risk.tsv``) and the tissue or system roll-ups built from them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ._exposure import APICAL_NOTE
from ._healthy_expression import MISSING_RNA_SOURCE
from ._isoforms import ISOFORM_SOURCE
from ._measured import PROTEIN_SOURCE, context_source
from ._organs import consequence, organ_reserve, organ_system_risk, organ_systems

__all__ = ["HealthyRisk"]


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
        """Return ``df`` (genes × contexts) before the per-context exposure.

        ``df`` is exposed like ``fraction``: what each context's cells carry, as far as each
        antigen is reached (an apical antigen keeps its factor, which belongs to the gene:
        :func:`apply_apical`). Combine genes on these (a gate: the agent reaches the context
        once, not once per gene), then multiply by :meth:`reach`; 0 where nothing is reached.
        """
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
        """Return the lasting, vital-weighted loss of function, genes × contexts.

        As :func:`consequence` computes it, for a living drug (:attr:`over_organs`) or a dosed
        agent.
        """
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
