"""Print the receptor table of docs/engagement.md ("Receptor logic in `profile`").

Each row is :func:`antigenscout.tl.profile_agent` on the embedded reference: the fraction of
cells of blood cell types (HPA blood RNA, or measured CITE-seq protein where the panel has the
gene), of HPA's single-cell "Monocytes", cardiomyocytes and skeletal myocytes (RNA model, after
the clusters' immune infiltrate is removed) and of the van Galen marrow monocytes and pro-B cells
(measured single cells, with their interval) that the agent engages, and how many of the 111
cell types it engages (at least half of their cells). Each number is tagged, by the code, with
the source that gave it: ``P`` measured protein (``P+R``: protein for some of the receptor's
genes, the RNA model for the others), ``M`` measured single cells, ``M*`` measured single cells
whose interval reaches what the context's mean allows (too shallow to call a cell at the agent's
level, or a level below the one the cells were called at), ``R`` RNA model. The evidence column
(what the literature says the profile should show) is written by hand. Run::

    python scripts/receptor_profile_doc.py
"""

from __future__ import annotations

import pandas as pd

import antigenscout as asc
from antigenscout.tl._measured import PROTEIN_SOURCE

#: (label, receptor expression, agent, published evidence): labels and evidence are written by
#: hand; every number is computed.
ROWS = [
    (
        "MHC class II, DR or DP heterodimer",
        "(HLA-DRA AND HLA-DRB1) OR (HLA-DPA1 AND HLA-DPB1)",
        "agonist",
        "APCs (DCs, B cells, monocytes), not resting T cells; IMP321 (LAG-3-Ig) binds MHC II on "
        "APCs: Brignone 2007 J Immunol 179:4202",
    ),
    (
        "HLA-DR alone, DRA AND DRB1",
        "HLA-DRA AND HLA-DRB1",
        "agonist",
        "as above (HLA-DR is the APC marker of flow cytometry)",
    ),
    (
        "TLR9",
        "TLR9",
        "agonist",
        "pDCs and B cells are the direct CpG targets in blood, not monocytes, NK or T cells: "
        "Hornung 2002 J Immunol 168:4531; memory B cells express TLR9, naive B cells after BCR "
        "triggering: Bernasconi 2003 Blood 101:4500",
    ),
    (
        "CD19",
        "CD19",
        "car-t",
        "every B-lineage cell from the pro-B stage to the mature B cell, lost on most plasma "
        "cells: LeBien & Tedder 2008 Blood 112:1570; CD19 CAR-T leaves B-cell aplasia",
    ),
    (
        "CD47",
        "CD47",
        "car-t",
        "on virtually every cell, red cells included ('marker of self'): Oldenborg 2000 Science "
        "288:2051; anti-CD47 magrolimab causes anaemia: Sikic 2019 J Clin Oncol 37:946",
    ),
    (
        "CD47",
        "CD47",
        "antibody",
        "as above",
    ),
    (
        "IFNAR1 AND IFNAR2",
        "IFNAR1 AND IFNAR2",
        "agonist",
        "type I IFN receptor on virtually every nucleated cell: de Weerd & Nguyen 2012 Immunol "
        "Cell Biol 90:483",
    ),
    (
        "IL-2R high affinity, IL2RA AND IL2RB AND IL2RG",
        "IL2RA AND IL2RB AND IL2RG",
        "agonist",
        "Tregs carry the high-affinity receptor constitutively and answer low-dose IL-2 first: "
        "Klatzmann & Abbas 2015 Nat Rev Immunol 15:283",
    ),
    (
        "IL-2R intermediate, IL2RB AND IL2RG",
        "IL2RB AND IL2RG",
        "agonist",
        "CD122 (IL2RB) high on NK cells and memory CD8 T cells: Boyman & Sprent 2012 Nat Rev "
        "Immunol 12:180",
    ),
    ("CD33", "CD33", "car-t", "myeloid cells: monocytes, myeloid DCs"),
    ("IL3RA / CD123", "IL3RA", "car-t", "pDCs (CD123 bright), basophils, some myeloid DCs"),
    ("IL1RAP", "IL1RAP", "car-t", "monocytes (the IL1RAP CAR-T's known off-tumour target)"),
]
#: (column header, reference context)
COLUMNS = [
    ("blood myeloid DC", "blood:myeloid_DC"),
    ("blood pDC", "blood:plasmacytoid_DC"),
    ("blood classical monocytes", "blood:classical_monocyte"),
    ("naive CD4 T", "blood:naive_CD4_T_cell"),
    ("Treg", "blood:T_reg"),
    ("memory CD8 T", "blood:memory_CD8_T_cell"),
    ("NK cells", "blood:NK_cell"),
    ("naive B", "blood:naive_B_cell"),
    ("memory B", "blood:memory_B_cell"),
    ("HPA single-cell monocytes", "sc:monocytes"),
    ("cardio-myocytes", "sc:Cardiomyocytes"),
    ("skeletal myocytes", "sc:Skeletal myocytes"),
    ("marrow monocytes", "marrow:Mono"),
    ("marrow pro-B", "marrow:ProB"),
]
#: Contexts whose interval is shown beside the estimate.
WITH_INTERVAL = {"marrow:Mono", "marrow:ProB"}


def _code(source: str) -> str:
    if source.startswith(PROTEIN_SOURCE):
        return "P" if "RNA model" not in source else "P+R"
    if source.startswith("measured single cells"):
        return "M*" if "upper end from the mean" in source else "M"
    return "R"


def _cell(row: pd.Series, context: str) -> str:
    f = f"{row['positive_fraction']:.2f}"
    if context in WITH_INTERVAL:
        f += f" ({row['fraction_low']:.2f}–{row['fraction_high']:.2f})"
    return f"{f} {_code(str(row['source']))}"


def main() -> int:  # noqa: D103
    contexts = [c for _, c in COLUMNS]
    head = " | ".join(h for h, _ in COLUMNS)
    print(f"| receptor (agent) | {head} | cell types engaged (of 111) | evidence |")
    print("|---" * (len(COLUMNS) + 3) + "|")
    for label, receptor, agent, evidence in ROWS:
        full = asc.tl.profile_agent(receptor, agent=agent)
        p = full.set_index("context").loc[contexts]
        values = " | ".join(_cell(p.loc[c], c) for c in contexts)
        n = int(full["engaged"].sum())
        print(f"| {label} ({agent}) | {values} | {n} | {evidence} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
