"""The embedded healthy reference: genes, contexts, expression, IHC and surface evidence.

The tables are built by ``scripts/build_reference.py`` from public data (HPA, van Galen 2019,
SURFY, CSPA; see ``docs/reference.md``) and shipped inside the package as Parquet files.
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from antigenscout._errors import InputError, ReferenceLookupError, warn

__all__ = ["ISOFORM_COLUMNS", "REFERENCE_FILES", "Reference", "load_isoforms", "load_reference"]

#: Files a reference directory must contain.
REFERENCE_FILES = (
    "genes.parquet",
    "contexts.parquet",
    "expression.parquet",
    "ihc.parquet",
    "surface.parquet",
    "metadata.json",
)
#: Optional file: measured positive fractions of single-cell-derived contexts.
MEASURED_FRACTION_FILE = "fraction.parquet"
#: Optional file: HPA tumour IHC, patients per staining level per gene and cancer.
PATHOLOGY_FILE = "pathology.parquet"
#: Optional file: measured surface-protein fractions of blood cell types (CITE-seq).
PROTEIN_FILE = "protein.parquet"
#: Optional file: CPTAC tumour proteomes, patients whose protein was detected per gene and cohort.
CPTAC_FILE = "cptac.parquet"
#: Optional file of a reference directory: curated isoform notes (else the packaged table).
ISOFORM_FILE = "isoforms.tsv"
#: Columns of the isoform table (``reference/annotations/isoforms.tsv``, docs/engagement.md).
ISOFORM_COLUMNS = (
    "gene",
    "target_isoform",
    "other_isoform",
    "contexts",
    "effect",
    "note",
    "rationale",
    "source",
)
#: ``effect`` values: drop the contexts from the gene's risk, or report them only.
ISOFORM_EFFECTS = ("exclude", "note")
_ENSEMBL_VERSION = re.compile(r"^(ENS[A-Z]*G\d+)\.\d+$")


#: Fewest cells of an atlas cell type that replaces an embedded context without a warning
#: (as the gate search's small exact contexts, ``MIN_CONTEXT_CELLS``).
ATLAS_MIN_CELLS = 50


@dataclass(frozen=True, eq=False)
class Reference:
    """Healthy-tissue reference used to judge on-target, off-tumour risk.

    Attributes
    ----------
    genes
        Index canonical (HGNC-style) symbol; columns ``ensembl_id`` ('|'-joined where the
        gene has ids of several Ensembl releases, HGNC's first) and ``synonyms``
        ('|'-joined aliases and previous symbols usable for mapping).
    contexts
        Index context id (``sc:``, ``tissue:``, ``blood:``, ``marrow:`` prefixes); columns
        ``name``, ``kind``, ``source``, ``tissue``, ``system``, ``vital_weight``,
        ``immune_privileged``, ``barrier`` (``none`` or the blood–brain, blood–retina or
        blood–testis barrier the context lies behind), ``pregnancy`` (a context of pregnancy),
        ``polarised`` (a simple or glandular epithelium whose apical surface faces a lumen),
        ``rationale``, ``n_cells`` (NA unless single-cell pseudobulk).
    expression
        float32 genes x contexts in nTPM-like units (marrow: CPM); NaN where a gene is absent
        from the source of a context.
    ihc
        Tidy HPA normal-tissue immunohistochemistry: ``symbol``, ``tissue``, ``cell_type``,
        ``level`` (0-3), ``reliability``, ``context`` (NA when no clear reference context).
    surface
        Index symbol; surface evidence flags, ``n_sources``, ``cd``, ``surface_evidence``,
        ``is_surface``, ``subcellular_main``.
    metadata
        Sources (path, version, licence, sha256), build date and command, units.
    measured_fraction
        Genes x single-cell-derived contexts (``marrow:``): fraction of the context's cells
        called positive by the default positivity model at the threshold recorded in
        ``metadata['measured_fraction']``; ``None`` when the reference has none.
    pathology
        HPA tumour immunohistochemistry: ``symbol``, ``cancer`` (20 HPA cancer types),
        ``high``, ``medium``, ``low``, ``not_detected`` (numbers of patients); ``None`` when
        the reference has none.
    protein
        Measured surface-protein fractions (CITE-seq, ``scripts/blood_protein.py``): ``gene``,
        ``context``, ``antibody``, ``n_cells``, ``n_positive``; where a (gene, context) has a
        row, engagement is measured protein, not the RNA model. ``None`` when absent.
    isoforms
        Curated isoform notes (:func:`load_isoforms`): per gene, the isoform its expression
        is read as and the contexts whose RNA is another isoform (``effect`` ``exclude``: their
        engagement is set to 0 in :func:`antigenscout.tl.healthy_risk`; ``note``: reported
        only). ``None``: none applied.
    cptac
        CPTAC tumour proteomes (oncoref 1.19.2): ``symbol``, ``cancer`` (the HPA cancer type of
        the cohort), ``cohort`` (BRCA, CCRCC, COAD, GBM, HNSCC, LSCC, LUAD, OV, PDAC, UCEC;
        lung cancer has two), ``n_patients`` (tumours measured) and ``n_detected`` (tumours
        whose protein was detected at any level, in bulk tissue); ``None`` when absent.
    atlas
        The healthy atlas merged in by :meth:`with_atlas`, whose sampled cells give exact
        gate co-positivity; ``None`` otherwise.

    Examples
    --------
    >>> from antigenscout.reference import load_reference
    >>> ref = load_reference()
    >>> symbols, unmapped = ref.map_genes(["CD19", "ENSG00000105383.14", "nonsense"])
    >>> symbols.tolist()[:2], unmapped
    (['CD19', 'CD33'], ['nonsense'])
    """

    genes: pd.DataFrame
    contexts: pd.DataFrame
    expression: pd.DataFrame
    ihc: pd.DataFrame
    surface: pd.DataFrame
    metadata: dict[str, Any] = field(default_factory=dict)
    measured_fraction: pd.DataFrame | None = None
    pathology: pd.DataFrame | None = None
    protein: pd.DataFrame | None = None
    cptac: pd.DataFrame | None = None
    isoforms: pd.DataFrame | None = None
    #: The :class:`~antigenscout.atlas.Atlas` merged in by :meth:`with_atlas` (else ``None``).
    atlas: Any = None

    # ------------------------------------------------------------------ gene mapping
    @functools.cached_property
    def _lookups(self) -> tuple[dict[str, str], dict[str, str], dict[str, str], dict[str, str]]:
        """Exact, Ensembl, synonym and upper-case dictionaries (built once per instance)."""
        symbols = self.genes.index.astype(str)
        exact = dict(zip(symbols, symbols, strict=True))
        ens = self.genes["ensembl_id"].dropna().astype(str).str.split("|").explode()
        ensembl = dict(zip(ens.to_numpy(), ens.index.astype(str), strict=True))
        syn = self.genes["synonyms"].fillna("").astype(str)
        syn = syn[syn != ""].str.split("|").explode()
        synonyms: dict[str, str] = {}
        for alias, symbol in zip(syn.to_numpy(), syn.index, strict=True):
            if alias not in exact:  # a canonical symbol always wins over an alias
                synonyms.setdefault(alias, symbol)
        upper: dict[str, str] = {}
        ambiguous: set[str] = set()
        for key, symbol in [*exact.items(), *synonyms.items()]:
            u = key.upper()
            if u in upper and upper[u] != symbol:
                # keep a canonical symbol's own upper-case form; otherwise drop the key
                if upper[u].upper() != u:
                    ambiguous.add(u)
                continue
            upper[u] = symbol
        for u in ambiguous:
            upper.pop(u, None)
        return exact, ensembl, synonyms, upper

    def map_genes(self, names: Sequence[str]) -> tuple[pd.Series, list[str]]:
        """Map gene identifiers to canonical reference symbols.

        Tries, in order: the canonical symbol, an Ensembl gene id (a version suffix such as
        ``.12`` is ignored), a synonym or previous symbol, then a case-insensitive match of
        symbols and synonyms.

        Parameters
        ----------
        names
            Gene identifiers (symbols, Ensembl ids, synonyms).

        Returns
        -------
        A Series of canonical symbols aligned to ``names`` (NA where unmapped; its index is
        ``names``) and the list of unmapped names in input order.

        Examples
        --------
        >>> from antigenscout.reference import load_reference
        >>> mapped, missing = load_reference().map_genes(["cd19", "ENSG00000105383"])
        >>> mapped.tolist(), missing
        (['CD19', 'CD33'], [])
        """
        if isinstance(names, str):
            msg = (
                "map_genes expects a sequence of gene names, got a single string "
                f"{names!r}. Wrap it in a list: map_genes([{names!r}])."
            )
            raise InputError(msg)
        exact, ensembl, synonyms, upper = self._lookups
        raw = pd.Series(list(names), dtype=object)
        keys = raw.map(lambda x: x.strip() if isinstance(x, str) else "")
        out = keys.map(exact)
        todo = out.isna()
        if todo.any():
            ens = keys[todo].str.replace(_ENSEMBL_VERSION, r"\1", regex=True)
            out[todo] = ens.map(ensembl)
            todo = out.isna()
        if todo.any():
            out[todo] = keys[todo].map(synonyms)
            todo = out.isna()
        if todo.any():
            out[todo] = keys[todo].str.upper().map(upper)
        result = pd.Series(
            pd.array(out.where(out.notna(), None), dtype="string"),
            index=pd.Index(raw.astype(str), name="query"),
            name="symbol",
        )
        unmapped = [str(n) for n, m in zip(raw, result.isna().to_numpy(), strict=True) if m]
        return result, unmapped

    # ------------------------------------------------------------------ summaries
    def systems(self) -> pd.DataFrame:
        """Per anatomical system: vital weight (max over its contexts) and context count.

        Returns
        -------
        DataFrame indexed by ``system`` with ``vital_weight`` and ``n_contexts``, sorted by
        decreasing weight.
        """
        g = self.contexts.groupby("system", observed=True)
        out = pd.DataFrame(
            {
                "vital_weight": g["vital_weight"].max().astype(np.float64),
                "n_contexts": g.size().astype(np.int64),
            }
        )
        out.index = out.index.astype(str)
        out.index.name = "system"
        return out.sort_values(["vital_weight", "n_contexts"], ascending=[False, False])

    def __repr__(self) -> str:
        built = self.metadata.get("build_date", "?")
        return (
            f"Reference({self.expression.shape[0]} genes x {self.expression.shape[1]} contexts, "
            f"{len(self.surface)} surface records, {len(self.ihc)} IHC rows, built {built})"
        )

    # ------------------------------------------------------------------ atlas
    def with_atlas(self, atlas: Any) -> Reference:
        """Return this reference with a healthy single-cell atlas's cell types as measured contexts.

        Each atlas cell type becomes a single-cell context ``atlas:<cell type>`` (kind
        ``cell_type``, ``source`` ``'atlas:<name>'``) with the atlas's pseudobulk CPM as
        expression and its measured positive fractions in :attr:`measured_fraction`, like the
        marrow contexts. An embedded context that an atlas cell type maps to (see
        :func:`antigenscout.atlas.map_cell_types`) is dropped: the atlas judges that cell type,
        the embedded reference the rest of the body. Atlas genes are mapped to the reference's
        symbols (a symbol measured twice keeps its first gene); genes the atlas lacks read 0
        in its contexts.

        Parameters
        ----------
        atlas
            An :class:`antigenscout.atlas.Atlas`.

        Returns
        -------
        A new :class:`Reference`; ``metadata['atlas']`` lists the contexts added and replaced.

        Raises
        ------
        InputError
            If the atlas was measured at another threshold than this reference's measured
            fractions.
        """
        meta_mf = dict(self.metadata.get("measured_fraction") or {})
        at = meta_mf.get("threshold_cp10k")
        if at is not None and not np.isclose(float(at), atlas.threshold_cp10k):
            msg = (
                f"the atlas was measured at {atlas.threshold_cp10k} CP10k but the reference's "
                f"measured fractions at {at}; rebuild the atlas with --threshold {at}"
            )
            raise InputError(msg)
        ct = atlas.cell_types
        source = f"atlas:{atlas.name}"
        ids = pd.Index([f"atlas:{t}" for t in ct.index.astype(str)], name=self.contexts.index.name)
        replaced = sorted({str(c) for c in ct["context"].dropna() if c in self.contexts.index})
        n_cells = pd.to_numeric(ct["n_cells"], errors="coerce")
        small = [
            f"{t} ({int(n)} cells, replacing {c})"
            for t, c, n in zip(ct.index.astype(str), ct["context"], n_cells, strict=True)
            if isinstance(c, str) and c in self.contexts.index and n < ATLAS_MIN_CELLS
        ]
        if small:
            warn(
                f"{len(small)} atlas cell types of fewer than {ATLAS_MIN_CELLS} cells replace "
                f"a reference context, so few cells judge them: {', '.join(small[:5])}"
                + (" …" if len(small) > 5 else "")  # noqa: PLR2004
                + "; rebuild the atlas with more cells of those types, or drop them"
            )
        keep = self.contexts.index.difference(pd.Index(replaced), sort=False)
        kept = self.contexts.loc[keep]
        taken = set(kept["name"].astype(str).str.lower())
        names = [
            f"{t} (atlas)" if str(t).lower() in taken else str(t) for t in ct.index.astype(str)
        ]
        new = pd.DataFrame(
            {
                "name": names,
                "kind": "cell_type",
                "source": source,
                "tissue": ct["tissue"].to_numpy(),
                "system": ct["system"].to_numpy(),
                "vital_weight": ct["vital_weight"].to_numpy(dtype=np.float64),
                "immune_privileged": ct["immune_privileged"].to_numpy(dtype=bool),
                # an atlas written before issue #21 has no exposure columns: none, adult
                "barrier": ct["barrier"].astype(str).to_numpy() if "barrier" in ct else "none",
                "pregnancy": (ct["pregnancy"].to_numpy(dtype=bool) if "pregnancy" in ct else False),
                "polarised": (ct["polarised"].to_numpy(dtype=bool) if "polarised" in ct else False),
                "rationale": [
                    f"measured in atlas {atlas.name!r}; weight of {c}"
                    if isinstance(c, str)
                    else f"measured in atlas {atlas.name!r}; unmapped cell type, weight "
                    f"{float(w):g} (conservative)"
                    for c, w in zip(
                        ct["context"].astype(object).where(ct["context"].notna(), None),
                        ct["vital_weight"],
                        strict=True,
                    )
                ],
                "n_cells": ct["n_cells"].to_numpy(),
                "mean_library": (
                    ct["mean_library"].to_numpy(dtype=np.float64)
                    if "mean_library" in ct
                    else np.full(len(ct), np.nan)
                ),
            },
            index=ids,
        )
        new = new.astype(
            {c: kept[c].dtype for c in new.columns if c in kept.columns}, errors="ignore"
        )
        contexts = pd.concat([kept, new[kept.columns.intersection(new.columns)]])
        symbols, _ = self.map_genes(list(atlas.genes["symbol"].astype(str)))
        first = ~symbols.isna().to_numpy() & ~pd.Index(symbols.to_numpy()).duplicated()
        first &= ~pd.isna(symbols.to_numpy())

        def aligned(table: pd.DataFrame) -> pd.DataFrame:
            sub = table.iloc[np.flatnonzero(first)]
            sub.index = pd.Index(symbols.to_numpy()[first].astype(str))
            sub.columns = ids
            return sub.reindex(self.expression.index)

        expression = pd.concat(
            [self.expression[keep], aligned(atlas.mean).astype(np.float32)], axis=1
        )
        frac = aligned(atlas.fraction).fillna(0.0).astype(np.float32)
        if self.measured_fraction is not None:
            old = self.measured_fraction[
                [c for c in self.measured_fraction.columns if c not in replaced]
            ]
            measured = pd.concat([old.reindex(frac.index), frac], axis=1).fillna(0.0)
        else:
            measured = frac
        measured = measured.astype(np.float32)
        measured.index.name = self.expression.index.name
        meta_mf.update(
            {
                "threshold_cp10k": atlas.threshold_cp10k,
                "contexts": [str(c) for c in measured.columns],
            }
        )
        metadata = {
            **self.metadata,
            "measured_fraction": meta_mf,
            "atlas": {
                "name": atlas.name,
                "source": source,
                "contexts_added": [str(i) for i in ids],
                "contexts_replaced": replaced,
                "small_replacements": small,
                "unmapped_cell_types": list(atlas.metadata.get("unmapped_cell_types", [])),
                "genes_mapped": int(first.sum()),
                "genes": len(atlas.genes),
                "built": atlas.metadata,
            },
        }
        return Reference(
            genes=self.genes,
            contexts=contexts,
            expression=expression[contexts.index],
            ihc=self.ihc,
            surface=self.surface,
            metadata=metadata,
            measured_fraction=measured,
            pathology=self.pathology,
            protein=None
            if self.protein is None
            else self.protein[~self.protein["context"].isin(replaced)].reset_index(drop=True),
            cptac=self.cptac,
            isoforms=self.isoforms,
            atlas=atlas,
        )

    # ------------------------------------------------------------------ IO
    @classmethod
    def from_dir(cls, path: str | os.PathLike[str]) -> Reference:
        """Read a reference directory written by ``scripts/build_reference.py``.

        Parameters
        ----------
        path
            Directory with ``genes.parquet``, ``contexts.parquet``, ``expression.parquet``,
            ``ihc.parquet``, ``surface.parquet`` and ``metadata.json``.

        Raises
        ------
        ReferenceLookupError
            If the directory or one of the files is missing.
        InputError
            If the tables are inconsistent (expression columns differ from the contexts).
        """
        root = Path(path)
        if not root.is_dir():
            msg = (
                f"Reference directory {str(root)!r} does not exist. Pass the folder written by "
                "scripts/build_reference.py, or None for the embedded reference."
            )
            raise ReferenceLookupError(msg)
        missing = [f for f in REFERENCE_FILES if not (root / f).is_file()]
        if missing:
            msg = (
                f"Reference directory {str(root)!r} lacks {missing}. Rebuild it with "
                "'python scripts/build_reference.py --out <dir>'."
            )
            raise ReferenceLookupError(msg)
        genes = pd.read_parquet(root / "genes.parquet")
        contexts = pd.read_parquet(root / "contexts.parquet")
        expression = pd.read_parquet(root / "expression.parquet")
        ihc = pd.read_parquet(root / "ihc.parquet")
        surface = pd.read_parquet(root / "surface.parquet")
        metadata = json.loads((root / "metadata.json").read_text())
        measured = (
            pd.read_parquet(root / MEASURED_FRACTION_FILE)
            if (root / MEASURED_FRACTION_FILE).is_file()
            else None
        )
        pathology = (
            pd.read_parquet(root / PATHOLOGY_FILE) if (root / PATHOLOGY_FILE).is_file() else None
        )
        protein = pd.read_parquet(root / PROTEIN_FILE) if (root / PROTEIN_FILE).is_file() else None
        cptac = pd.read_parquet(root / CPTAC_FILE) if (root / CPTAC_FILE).is_file() else None
        isoforms = load_isoforms(root / ISOFORM_FILE if (root / ISOFORM_FILE).is_file() else None)
        if list(expression.columns) != list(contexts.index):
            msg = (
                f"{root / 'expression.parquet'}: columns do not match contexts.parquet. "
                "Rebuild the reference with scripts/build_reference.py."
            )
            raise InputError(msg)
        return cls(
            genes=genes,
            contexts=contexts,
            expression=expression,
            ihc=ihc,
            surface=surface,
            metadata=metadata,
            measured_fraction=measured,
            pathology=pathology,
            protein=protein,
            cptac=cptac,
            isoforms=isoforms,
        )

    # ------------------------------------------------------------------ isoforms
    def isoform_pairs(self, contexts: Sequence[str] | None = None) -> pd.DataFrame:
        """Return the isoform table expanded to one row per (gene, matched context).

        Each ``;``-separated entry of a row's ``contexts`` is a regular expression matched in
        full against the context ids (``contexts``, default this reference's). A row with no
        contexts is a note on the gene as a whole and gives one row with ``context`` NA.

        Returns
        -------
        DataFrame with ``gene``, ``context`` and the table's other columns; empty when the
        reference has no isoform table.
        """
        table = self.isoforms
        cols = ["gene", "context", *ISOFORM_COLUMNS[1:]]
        if table is None or table.empty:
            return pd.DataFrame(columns=cols)
        ids = pd.Index(self.contexts.index if contexts is None else contexts).astype(str)
        rows = []
        for rec in table.to_dict("records"):
            entries = _isoform_entries(rec["contexts"])
            if not entries:
                rows.append({**rec, "context": pd.NA})
                continue
            hit = np.zeros(len(ids), dtype=bool)
            for e in entries:
                hit |= np.asarray(ids.str.fullmatch(e), dtype=bool)
            rows.extend({**rec, "context": c} for c in ids[hit])
        return pd.DataFrame(rows, columns=cols).reset_index(drop=True)


def _isoform_entries(text: Any) -> list[str]:
    """Return the context patterns of an isoform row (``;``-separated).

    Empty for a gene-level note.
    """
    if not isinstance(text, str):
        return []
    return [e.strip() for e in text.split(";") if e.strip()]


@functools.lru_cache(maxsize=4)
def _read_isoforms(path: str | None) -> pd.DataFrame:
    if path is None:
        with resources.as_file(
            resources.files("antigenscout.reference") / "annotations" / ISOFORM_FILE
        ) as f:
            table = pd.read_csv(f, sep="\t", dtype=str, keep_default_na=False)
    else:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    where = "the packaged isoform table" if path is None else path
    missing = [c for c in ISOFORM_COLUMNS if c not in table.columns]
    if missing:
        msg = f"{where} lacks the columns {missing}"
        raise InputError(msg)
    table = table[list(ISOFORM_COLUMNS)].apply(lambda c: c.str.strip())
    bad = table[~table["effect"].isin(ISOFORM_EFFECTS)]
    if len(bad):
        msg = f"{where}: effect must be one of {ISOFORM_EFFECTS}; got {bad['effect'].tolist()}"
        raise InputError(msg)
    for col in ("gene", "target_isoform", "other_isoform", "note", "source"):
        empty = table.loc[table[col] == "", "gene"].tolist()
        if empty:
            msg = f"{where}: rows without {col}: {empty}"
            raise InputError(msg)
    bare = table.loc[(table["effect"] == "exclude") & (table["contexts"] == ""), "gene"]
    if len(bare):
        msg = f"{where}: an 'exclude' row must name its contexts: {bare.tolist()}"
        raise InputError(msg)
    for e in table["contexts"].map(_isoform_entries).explode().dropna():
        try:
            re.compile(e)
        except re.error as err:
            msg = f"{where}: context pattern {e!r} is not a regular expression ({err})"
            raise InputError(msg) from err
    return table.reset_index(drop=True)


def load_isoforms(path: str | os.PathLike[str] | None = None) -> pd.DataFrame:
    """Curated isoform notes: which isoform a gene's healthy expression is read as.

    Parameters
    ----------
    path
        A tab-separated table with :data:`ISOFORM_COLUMNS`; ``None`` gives the packaged
        ``reference/annotations/isoforms.tsv`` (every row sourced; docs/engagement.md).

    Returns
    -------
    DataFrame with :data:`ISOFORM_COLUMNS` (strings; ``contexts`` empty for a gene-level
    note). Cached: treat as read-only.

    Raises
    ------
    InputError
        If a column is missing, an ``effect`` is not ``exclude``/``note``, a row lacks its
        note or source, an ``exclude`` row names no context, or a pattern does not compile.

    Examples
    --------
    >>> from antigenscout.reference import load_isoforms
    >>> "CLDN18" in set(load_isoforms()["gene"])
    True
    """
    return _read_isoforms(None if path is None else str(Path(path).resolve()))


@functools.lru_cache(maxsize=8)
def _load_cached(path: str | None) -> Reference:
    if path is None:
        with resources.as_file(resources.files("antigenscout.reference") / "data") as root:
            return Reference.from_dir(root)
    return Reference.from_dir(path)


def load_reference(path: str | os.PathLike[str] | None = None) -> Reference:
    """Load a healthy reference; ``None`` gives the embedded default.

    Results are cached per path, so repeated calls are free (treat the tables as read-only).

    Parameters
    ----------
    path
        A directory written by ``scripts/build_reference.py``, or ``None``.

    Returns
    -------
    The :class:`Reference`.

    Examples
    --------
    >>> from antigenscout.reference import load_reference
    >>> ref = load_reference()
    >>> float(ref.contexts.loc["marrow:HSC", "vital_weight"])
    1.0
    """
    key = None if path is None else str(Path(path).resolve())
    return _load_cached(key)
