"""Measured surface-protein fractions of blood cell types (Kotliarov 2020 CITE-seq PBMC).

Read by ``scripts/build_reference.py``; writes nothing itself. Run alone to print the table::

    python scripts/blood_protein.py [--shared ../shared]

Data: 2,872 healthy PBMC × 87 antibody tags, raw counts, protein only, no labels
(``singlecell/citeseq/kotliarov2020_pbmc_adt87_2872cells.h5ad``, CC0).

Per cell and antibody, the call of ``scripts/calibrate_protein.py`` (``protein_table``):
log1p(count) minus the mean log1p count of the cell's four isotype controls, a two-component
Gaussian mixture per antibody, positive = posterior of the higher component ≥ 0.5; an
antibody is used only when the components separate (Ashman's D ≥ 2, means ≥ 2 log1p units
apart, 10 … n − 10 positive cells). Cell types are then gated on those calls, as a flow
cytometrist gates, into the HPA blood contexts the reference already has (``GATES``). A
type's own gating markers are never reported for it (CD19 in B cells is positive by
construction), nor are markers negative by construction: those are measured, where
``ALT_GATES`` has one, on a second gate of the context that does not use them (CD19 on B
cells gated on CD20). Every evaluable antibody is reported as ``n_positive`` of ``n_cells`` of
the gate that measured it (``gated_on``). HPA blood types with no gate
here keep the RNA model: neutrophils and eosinophils (not in PBMC), MAIT cells (no TCR Vα7.2
antibody), regulatory and γδ T cells (their markers do not pass the QC on this panel).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from calibrate_protein import protein_table

FILE = "singlecell/citeseq/kotliarov2020_pbmc_adt87_2872cells.h5ad"
DATASET = "Kotliarov 2020 PBMC CITE-seq"
ISOTYPES = (
    "MouseIgG1kappaisotype",
    "MouseIgG2akappaisotype",
    "Mouse IgG2bkIsotype",
    "RatIgG2bkIsotype",
)

#: Antibody → gene. Left out: glycan or lipid epitopes (CD57, AnnexinV), PTPRC isoforms
#: (CD45RA, CD45RO: used for gating only), multi-gene targets (HLA-ABC, TCRγδ, IgA), and
#: CD32 (the clone binds FCGR2A and FCGR2B). HLA-DR (clone L243) binds the DRα/DRβ
#: heterodimer: its call is reported for both HLA-DRA and HLA-DRB1.
AB_TO_GENE: dict[str, str] = {
    "BTLA": "BTLA", "CD117": "KIT", "CD123": "IL3RA", "CD13": "ANPEP", "CD133": "PROM1",
    "CD134": "TNFRSF4", "CD137": "TNFRSF9", "CD141": "THBD", "CD152": "CTLA4",
    "CD161": "KLRB1", "CD163": "CD163", "CD18": "ITGB2", "CD184": "CXCR4", "CD19": "CD19",
    "CD1c": "CD1C", "CD1d": "CD1D", "CD2": "CD2", "CD206": "MRC1", "CD21": "CR2",
    "CD223": "LAG3", "CD24": "CD24", "CD244": "CD244", "CD273": "PDCD1LG2",
    "CD294": "PTGDR2", "CD3": "CD3E", "CD303": "CLEC4C", "CD357": "TNFRSF18",
    "CD366": "HAVCR2", "CD39": "ENTPD1", "CD40": "CD40", "CD62L": "SELL", "CD64": "FCGR1A",
    "CD69": "CD69", "CD70": "CD70", "CD71": "TFRC", "HLA-DR": "HLA-DRA", "KLRG1": "KLRG1",
    "CX3CR1": "CX3CR1", "CD10": "MME", "CD11c": "ITGAX", "CD138": "SDC1", "CD14": "CD14",
    "CD16": "FCGR3A", "CD185": "CXCR5", "CD195": "CCR5", "CD196": "CCR6", "CD197": "CCR7",
    "CD25": "IL2RA", "CD27": "CD27", "CD278 ": "ICOS", "CD279": "PDCD1", "CD31": "PECAM1",
    "CD314 ": "KLRK1", "CD38": "CD38", "CD4": "CD4", "CD56": "NCAM1", "CD8": "CD8A",
    "IgD": "IGHD", "IgM": "IGHM", "CD103": "ITGAE", "CD275": "ICOSLG", "CD28": "CD28",
    "CD5": "CD5", "CD90": "THY1", "CD11b": "ITGAM", "CD127": "IL7R", "CD194": "CCR4",
    "CD274": "CD274", "CD33": "CD33", "CD7": "CD7", "CD80": "CD80", "CD86": "CD86",
    "CD183": "CXCR3", "CD34": "CD34", "CD20": "MS4A1",
}  # fmt: skip
#: Second gene reported with the same call (one antibody, one heterodimer).
ALSO: dict[str, str] = {"HLA-DRA": "HLA-DRB1"}
#: Antibodies used only to gate (no single-gene target).
GATING_ONLY = ("CD45RA", "CD45RO", "TCRgd")

#: HPA blood context → (markers that must be positive, markers that must be negative), by
#: antibody name. Chosen from immunophenotyping conventions before looking at any fraction,
#: and only from antibodies that pass the QC on this panel (CD14, CD25, CD127, CD197 and TCRγδ
#: do not separate here, so classical monocytes are gated CD33+ CD64+ CD16−, naive T cells
#: CD45RA+ CD45RO− CD62L+, and regulatory and γδ T cells are not gated).
GATES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "blood:naive_CD4_T_cell": (("CD3", "CD4", "CD45RA", "CD62L"), ("CD8", "CD45RO", "CD19")),
    "blood:memory_CD4_T_cell": (("CD3", "CD4", "CD45RO"), ("CD8", "CD45RA", "CD19")),
    "blood:naive_CD8_T_cell": (("CD3", "CD8", "CD45RA", "CD62L"), ("CD4", "CD45RO", "CD19")),
    "blood:memory_CD8_T_cell": (("CD3", "CD8", "CD45RO"), ("CD4", "CD45RA", "CD19")),
    "blood:naive_B_cell": (("CD19", "IgD"), ("CD27", "CD3")),
    "blood:memory_B_cell": (("CD19", "CD27"), ("CD3",)),
    "blood:NK_cell": (("CD56",), ("CD3", "CD19", "CD64")),
    "blood:classical_monocyte": (("CD33", "CD64"), ("CD16", "CD3", "CD19", "CD56")),
    "blood:intermediate_monocyte": (("CD33", "CD64", "CD16"), ("CD3", "CD19", "CD56")),
    "blood:non_classical_monocyte": (("CD16", "CD11c"), ("CD64", "CD3", "CD19", "CD56")),
    "blood:plasmacytoid_DC": (("CD303",), ("CD3", "CD19", "CD16", "CD56", "CD64")),
    "blood:myeloid_DC": (("CD1c",), ("CD3", "CD19", "CD16", "CD56", "CD303")),
    "blood:basophil": (("CD123",), ("HLA-DR", "CD3", "CD19", "CD16", "CD56", "CD64", "CD303")),
}


#: Second gates, each built without some of the primary gate's markers, so that those markers
#: can be measured in the context too (CD19 on B cells gated on CD20, CD3 on T cells gated on
#: CD5, CD33 on monocytes gated on CD11c, CD56 on NK cells gated on CD16). A marker is
#: reported from the first alternative that does not use it; cells that a primary gate of
#: another context takes are left out.
ALT_GATES: dict[str, tuple[tuple[tuple[str, ...], tuple[str, ...]], ...]] = {
    "blood:naive_B_cell": ((("CD20", "IgD"), ("CD27", "CD3")),),
    "blood:memory_B_cell": ((("CD20", "CD27"), ("CD3",)),),
    "blood:naive_CD4_T_cell": ((("CD5", "CD4", "CD45RA", "CD62L"), ("CD8", "CD45RO", "CD19")),),
    "blood:memory_CD4_T_cell": ((("CD5", "CD4", "CD45RO"), ("CD8", "CD45RA", "CD19")),),
    "blood:naive_CD8_T_cell": ((("CD5", "CD8", "CD45RA", "CD62L"), ("CD4", "CD45RO", "CD19")),),
    "blood:memory_CD8_T_cell": ((("CD5", "CD8", "CD45RO"), ("CD4", "CD45RA", "CD19")),),
    "blood:NK_cell": ((("CD16",), ("CD3", "CD19", "CD64", "CD11c", "CD33")),),
    "blood:classical_monocyte": ((("CD11c", "CD64"), ("CD16", "CD3", "CD19", "CD56")),),
    "blood:intermediate_monocyte": ((("CD11c", "CD64", "CD16"), ("CD3", "CD19", "CD56")),),
}

#: Contexts with fewer gated cells are not reported (a Wilson 90% interval on fewer than 20
#: cells is wider than ±0.18 at a fraction of 0.5).
MIN_CELLS = 20


def protein_calls(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-cell calls (cells × antibody, evaluable antibodies only) and the antibody QC."""
    import anndata as ad  # noqa: PLC0415

    adata = ad.read_h5ad(path)
    prot = pd.DataFrame(
        np.asarray(adata.X.toarray() if hasattr(adata.X, "toarray") else adata.X),
        index=adata.obs_names,
        columns=adata.var_names,
    )
    abs_ = {ab: ab for ab in [*AB_TO_GENE, *GATING_ONLY] if ab in prot.columns}
    calls, qc = protein_table(prot, abs_, ISOTYPES)
    return calls, qc


def _gate_mask(calls: pd.DataFrame, pos: tuple[str, ...], neg: tuple[str, ...]) -> np.ndarray:
    mask = np.ones(len(calls), dtype=bool)
    for m in pos:
        mask &= calls[m].to_numpy()
    for m in neg:
        mask &= ~calls[m].to_numpy()
    return mask


def gate_cells(calls: pd.DataFrame) -> dict[str, np.ndarray]:
    """Boolean mask of each gated blood context (a cell can fall in at most one)."""
    out: dict[str, np.ndarray] = {}
    n = len(calls)
    for ctx, (pos, neg) in GATES.items():
        if any(m not in calls.columns for m in (*pos, *neg)):
            continue  # a gating marker did not pass the antibody QC
        out[ctx] = _gate_mask(calls, pos, neg)
    taken = np.zeros(n, dtype=int)
    for mask in out.values():
        taken += mask
    for ctx in out:  # noqa: PLC0206
        out[ctx] = out[ctx] & (taken == 1)  # cells matching two gates are left out
    return out


def blood_protein_table(shared: Path) -> tuple[pd.DataFrame, dict]:
    """Tidy table ``gene, context, antibody, n_cells, n_positive, gated_on`` and parameters."""
    calls, qc = protein_calls(shared / FILE)
    gates = gate_cells(calls)
    rows = []
    for ctx, mask in gates.items():
        others = np.zeros(len(calls), dtype=bool)
        for c, m in gates.items():
            if c != ctx:
                others |= m
        options = [(GATES[ctx], mask)]
        for alt in ALT_GATES.get(ctx, ()):
            if all(m in calls.columns for m in (*alt[0], *alt[1])):
                options.append((alt, _gate_mask(calls, *alt) & ~others))
        for ab, gene in AB_TO_GENE.items():
            if ab not in calls.columns:
                continue
            for (pos, neg), m in options:  # the first gate that does not use this marker
                if ab in pos or ab in neg:
                    continue
                n_cells = int(m.sum())
                if n_cells < MIN_CELLS:
                    break
                k = int(calls[ab].to_numpy()[m].sum())
                gated = " ".join([*(f"{x}+" for x in pos), *(f"{x}-" for x in neg)])
                for g in (gene, ALSO.get(gene)):
                    if g is not None:
                        rows.append(
                            {"gene": g, "context": ctx, "antibody": ab.strip(),
                             "n_cells": n_cells, "n_positive": k, "gated_on": gated}
                        )  # fmt: skip
                break
    table = pd.DataFrame(rows).sort_values(["context", "gene"]).reset_index(drop=True)
    params = {
        "dataset": DATASET,
        "file": FILE,
        "cells": len(calls),
        "antibodies_evaluable": sorted(str(a).strip() for a in calls.columns),
        "antibodies_failing_qc": sorted(str(a).strip() for a in qc.loc[~qc["ok"], "antibody"]),
        "cells_per_context": {c: int(m.sum()) for c, m in gates.items()},
        "min_cells": MIN_CELLS,
        "rule": (
            "isotype-subtracted log1p, 2-component Gaussian mixture per antibody (Ashman D >= 2,"
            " means >= 2 log1p apart); contexts gated on the calls; gating markers not reported"
        ),
    }
    return table, params


def main(argv: list[str] | None = None) -> None:  # noqa: D103
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default = Path(__file__).resolve().parents[2] / "shared"
    parser.add_argument("--shared", type=Path, default=default)
    a = parser.parse_args(argv)
    table, params = blood_protein_table(a.shared / "data")
    print(params["cells_per_context"])
    print("failing QC:", params["antibodies_failing_qc"])
    wide = (table.assign(f=table["n_positive"] / table["n_cells"])
            .pivot(index="gene", columns="context", values="f"))  # fmt: skip
    with pd.option_context("display.width", 250, "display.max_columns", 30):
        print(wide.round(2).to_string())


if __name__ == "__main__":
    main()
