"""Write the van Galen 2019 healthy marrow donors (BM1-BM3) as an .h5ad with Cell Ontology names.

The input of ``antigenscout atlas build`` in docs/atlas.md::

    python scripts/vangalen_healthy_atlas.py ../shared/data/singlecell/vangalen2019_aml \\
        vangalen_bm_cl.h5ad
"""  # noqa: D301

from __future__ import annotations

import argparse

from antigenscout.datasets import vangalen2019

#: van Galen 2019 healthy cell types -> Cell Ontology names.
VANGALEN_TO_CL = {
    "HSC": "hematopoietic stem cell",
    "Prog": "hematopoietic multipotent progenitor cell",
    "GMP": "granulocyte monocyte progenitor cell",
    "ProMono": "promonocyte",
    "Mono": "monocyte",
    "cDC": "conventional dendritic cell",
    "pDC": "plasmacytoid dendritic cell",
    "earlyEry": "erythroid progenitor cell",
    "lateEry": "erythroblast",
    "ProB": "pro-B cell",
    "B": "B cell",
    "Plasma": "plasma cell",
    "T": "T cell",
    "CTL": "CD8-positive, alpha-beta cytotoxic T cell",
    "NK": "natural killer cell",
}


def main() -> None:
    """Read BM1-BM3, rename cell types to Cell Ontology names, write the .h5ad."""
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("vangalen_dir")
    ap.add_argument("out")
    args = ap.parse_args()
    adata = vangalen2019(args.vangalen_dir, patients=["BM1", "BM2", "BM3"])
    adata = adata[adata.obs["malignant"].astype(str) == "normal"].copy()
    labels = adata.obs["cell_type"].astype(str)
    unknown = sorted(set(labels) - set(VANGALEN_TO_CL))
    if unknown:
        msg = f"no Cell Ontology name for {unknown}"
        raise SystemExit(msg)
    adata.obs["cell_type"] = labels.map(VANGALEN_TO_CL).astype("category")
    adata.obs["donor_id"] = adata.obs["patient"].astype(str).astype("category")
    adata.obs = adata.obs[["cell_type", "donor_id"]]
    adata.write_h5ad(args.out)
    print(f"wrote {args.out}: {adata.n_obs} cells x {adata.n_vars} genes")


if __name__ == "__main__":
    main()
