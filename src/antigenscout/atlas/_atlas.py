"""The atlas reference: per cell type × gene measured tables, a bit-packed cell sample, I/O."""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse

from .._errors import InputError
from ..io._write import OUTPUT_FILES

__all__ = ["ATLAS_FILES", "Atlas", "cell_ontology_map", "map_cell_types"]

#: Files of an atlas directory (the atlas family of the outputs ``staged_run`` knows).
ATLAS_FILES = tuple(sorted(OUTPUT_FILES["atlas"]))
#: Vital weight given to a cell type that maps to nothing (conservative: as vital as any).
UNMAPPED_VITAL_WEIGHT = 1.0


@functools.lru_cache(maxsize=1)
def cell_ontology_map() -> pd.DataFrame:
    """Return the packaged Cell Ontology → reference context table (``cell_ontology.tsv``).

    Returns
    -------
    DataFrame with ``cl_name``, ``cl_id`` and ``context`` (an embedded context id whose
    system, tissue, vital weight and immune privilege the cell type inherits).
    """
    res = resources.files("antigenscout.atlas").joinpath("cell_ontology.tsv")
    with res.open("r") as fh:
        return pd.read_csv(fh, sep="\t", comment="#", dtype=str)


def map_cell_types(
    cell_types: pd.DataFrame, mapping: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, list[str]]:
    """Attach system, tissue, vital weight and immune privilege to atlas cell types.

    A label is matched, in order, to a Cell Ontology name or id of ``mapping``
    (case-insensitive), then to an embedded context ``marrow:<label>`` or a context whose
    name is the label (``HSC`` → ``marrow:HSC``). Unmatched types get vital weight
    :data:`UNMAPPED_VITAL_WEIGHT` and system ``'unmapped'``.

    Parameters
    ----------
    cell_types
        Indexed by the atlas's cell-type labels.
    mapping
        Table with ``cl_name``, ``cl_id``, ``context``; the packaged one when ``None``.

    Returns
    -------
    The table with ``context``, ``mapped_by``, ``system``, ``tissue``, ``vital_weight``,
    ``immune_privileged``, ``barrier``, ``pregnancy`` and ``polarised`` added, and the list of
    unmapped labels.
    """
    from ..reference import load_reference  # noqa: PLC0415

    mapping = cell_ontology_map() if mapping is None else mapping
    need = {"cl_name", "cl_id", "context"} - set(mapping.columns)
    if need:
        msg = f"the cell-type mapping table lacks columns {sorted(need)}"
        raise InputError(msg)
    ctx = load_reference().contexts
    by_name = {
        str(k).strip().lower(): v
        for k, v in zip(mapping["cl_name"], mapping["context"], strict=False)
    }
    by_id = {
        str(k).strip(): v
        for k, v in zip(mapping["cl_id"], mapping["context"], strict=False)
        if not pd.isna(k)
    }
    ctx_names = {str(n).lower(): i for i, n in zip(ctx.index, ctx["name"], strict=False)}
    out = cell_types.copy()
    hits, how = [], []
    for label in out.index.astype(str):
        key = label.strip()
        c, by = by_name.get(key.lower()), "cell ontology"
        if c is None:
            c = by_id.get(key)
        if c is None:
            by = "context name"
            c = f"marrow:{key}" if f"marrow:{key}" in ctx.index else None
            for alias in (key, f"{key} cells", f"{key}-cells"):
                c = c or ctx_names.get(alias.lower())
        if c is not None and c not in ctx.index:
            c = None
        hits.append(c)
        how.append(by if c is not None else "unmapped")
    out["context"] = pd.array(hits, dtype="string")
    out["mapped_by"] = how
    known = out["context"].notna().to_numpy()
    ids = out["context"].fillna("").to_numpy(dtype=object)
    for col, default in (
        ("system", "unmapped"),
        ("tissue", pd.NA),
        ("vital_weight", UNMAPPED_VITAL_WEIGHT),
        ("immune_privileged", False),
        ("barrier", "none"),
        ("pregnancy", False),
        ("polarised", False),
    ):
        if col not in ctx:  # a reference built before issue #21
            out[col] = default
            continue
        vals = ctx[col].reindex(ids).to_numpy(dtype=object)
        vals[~known] = default
        out[col] = vals
    out["vital_weight"] = out["vital_weight"].astype(np.float64)
    out["immune_privileged"] = out["immune_privileged"].astype(bool)
    out["barrier"] = out["barrier"].astype(str)
    out["pregnancy"] = out["pregnancy"].astype(bool)
    out["polarised"] = out["polarised"].astype(bool)
    out["system"] = out["system"].astype(str)
    out["tissue"] = out["tissue"].astype("string")
    unmapped = [str(t) for t, k in zip(out.index, known, strict=False) if not k]
    return out, unmapped


@dataclass(frozen=True, eq=False)
class Atlas:
    """A healthy single-cell atlas measured per cell type.

    Attributes
    ----------
    cell_types
        Index cell-type label; ``n_cells``, ``n_donors``, ``mean_library`` (UMIs per cell:
        the detection depth), ``context`` (embedded context the type maps to), ``mapped_by``,
        ``system``, ``tissue``, ``vital_weight``, ``immune_privileged``.
    genes
        Index gene id (as in the source); ``symbol``.
    fraction
        Genes × cell types: fraction of cells positive (knn model, threshold in metadata).
    mean
        Genes × cell types: pseudobulk CPM (summed counts / summed library × 1e6).
    detected
        Genes × cell types: fraction of cells with a count > 0.
    sample_types
        ``(s,)`` position in ``cell_types`` of each sampled cell.
    sample_genes
        ``(k,)`` gene positions stored in ``sample_bits`` (genes positive in a sampled cell).
    sample_bits
        ``(k, ceil(s / 8))`` uint8: positivity of the sampled cells, bit-packed per gene.
    metadata
        Build parameters, source, unmapped cell types, timings.
    """

    cell_types: pd.DataFrame
    genes: pd.DataFrame
    fraction: pd.DataFrame
    mean: pd.DataFrame
    detected: pd.DataFrame
    sample_types: np.ndarray
    sample_genes: np.ndarray
    sample_bits: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The atlas's name (its rows' source is ``atlas:<name>``)."""
        return str(self.metadata.get("name", "atlas"))

    @property
    def threshold_cp10k(self) -> float:
        """Positivity threshold the fractions were measured at."""
        return float(self.metadata["measured_fraction"]["threshold_cp10k"])

    def __repr__(self) -> str:
        return (
            f"Atlas({self.name!r}: {self.metadata.get('n_cells', '?'):,} cells, "
            f"{len(self.cell_types)} cell types x {len(self.genes)} genes, "
            f"{len(self.sample_types)} sampled cells)"
        )

    # ------------------------------------------------------------------ samples
    def sample_positive(self, genes: np.ndarray) -> np.ndarray:
        """Dense bool sampled cells × ``genes`` (gene positions; -1 = absent → False)."""
        s = len(self.sample_types)
        genes = np.asarray(genes, dtype=np.int64)
        out = np.zeros((s, genes.size), dtype=bool)
        at = pd.Index(self.sample_genes).get_indexer(genes)
        have = np.flatnonzero((genes >= 0) & (at >= 0))
        if have.size:
            bits = np.unpackbits(self.sample_bits[at[have]], axis=1, count=s)
            out[:, have] = bits.T.astype(bool)
        return out

    # ------------------------------------------------------------------ I/O
    @classmethod
    def from_arrays(  # noqa: PLR0913
        cls,
        *,
        cell_types: pd.DataFrame,
        genes: pd.DataFrame,
        fraction: pd.DataFrame,
        mean: pd.DataFrame,
        detected: pd.DataFrame,
        sample_types: np.ndarray,
        sample_positive: sparse.csr_matrix,
        type_names: np.ndarray,
        metadata: dict[str, Any],
    ) -> Atlas:
        """Assemble an atlas, bit-packing the sampled cells' positivity per gene."""
        pos = sparse.csc_matrix(sample_positive, dtype=bool)
        s = pos.shape[0]
        gidx = np.flatnonzero(np.diff(pos.indptr) > 0)
        bits = np.zeros((gidx.size, -(-s // 8)), dtype=np.uint8)
        for start in range(0, gidx.size, 4096):
            cols = gidx[start : start + 4096]
            bits[start : start + cols.size] = np.packbits(pos[:, cols].toarray().T, axis=1)
        pos_of = pd.Index(cell_types.index).get_indexer(np.asarray(type_names)[sample_types])
        return cls(
            cell_types=cell_types,
            genes=genes,
            fraction=fraction,
            mean=mean,
            detected=detected,
            sample_types=pos_of.astype(np.int64),
            sample_genes=gidx.astype(np.int64),
            sample_bits=bits,
            metadata=metadata,
        )

    def write(self, out: str | os.PathLike[str]) -> Path:
        """Write the atlas into directory ``out`` (see :data:`ATLAS_FILES`)."""
        root = Path(out)
        root.mkdir(parents=True, exist_ok=True)
        (root / "atlas.json").write_text(json.dumps(self.metadata, indent=1, default=str))
        self.cell_types.to_parquet(root / "cell_types.parquet")
        self.genes.to_parquet(root / "genes.parquet")
        for nm in ("fraction", "mean", "detected"):
            getattr(self, nm).to_parquet(root / f"{nm}.parquet")
        np.savez_compressed(
            root / "samples.npz",
            types=self.sample_types,
            genes=self.sample_genes,
            bits=self.sample_bits,
        )
        return root

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Atlas:
        """Read an atlas directory written by ``antigenscout atlas build``."""
        root = Path(path)
        if not root.is_dir():
            msg = (
                f"atlas {str(root)!r} is not a directory; give the --out folder of "
                "'antigenscout atlas build' or an .h5ad"
            )
            raise InputError(msg)
        missing = [f for f in ATLAS_FILES if not (root / f).is_file()]
        if missing:
            msg = (
                f"atlas {str(root)!r} lacks {', '.join(missing)}; "
                "rebuild it with 'antigenscout atlas build'"
            )
            raise InputError(msg)
        try:
            meta = json.loads((root / "atlas.json").read_text())
            tables = {
                nm: pd.read_parquet(root / f"{nm}.parquet")
                for nm in ("cell_types", "genes", "fraction", "mean", "detected")
            }
            with np.load(root / "samples.npz") as z:
                types, genes, bits = z["types"], z["genes"], z["bits"]
        except (OSError, ValueError, KeyError) as e:
            msg = f"atlas {str(root)!r} is damaged ({type(e).__name__}: {e}); rebuild it"
            raise InputError(msg) from e
        ct = tables["cell_types"]
        for nm in ("fraction", "mean", "detected"):
            if list(tables[nm].columns) != list(ct.index) or len(tables[nm]) != len(
                tables["genes"]
            ):
                msg = (
                    f"atlas {str(root)!r}: {nm}.parquet does not match cell_types/genes; rebuild it"
                )
                raise InputError(msg)
        return cls(
            cell_types=ct,
            genes=tables["genes"],
            fraction=tables["fraction"],
            mean=tables["mean"],
            detected=tables["detected"],
            sample_types=types,
            sample_genes=genes,
            sample_bits=bits,
            metadata=meta,
        )
