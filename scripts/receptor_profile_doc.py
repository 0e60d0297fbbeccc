"""Print the receptor table of docs/engagement.md ("Receptor logic in `profile`").

Each row is :func:`antigenscout.tl.profile_agent` on the embedded reference: the fraction of
cells of seven blood cell types (HPA blood RNA, or measured CITE-seq protein where the panel
has the gene), of HPA's single-cell "Monocytes" (RNA model) and of the van Galen marrow
monocytes (measured single cells) that the agent engages. Run::

    python scripts/receptor_profile_doc.py
"""

from __future__ import annotations

import antigenscout as asc

#: (label, receptor expression, agent, evidence in blood): the labels and the evidence column
#: are written by hand; every number is computed.
ROWS = [
    (
        "MHC class II, DR or DP heterodimer",
        "(HLA-DRA AND HLA-DRB1) OR (HLA-DPA1 AND HLA-DPB1)",
        "agonist",
        "DR: measured protein; DP: RNA model",
    ),
    ("HLA-DR alone, DRA AND DRB1", "HLA-DRA AND HLA-DRB1", "agonist", "measured protein"),
    ("IL2RB AND IL2RG", "IL2RB AND IL2RG", "agonist", "RNA model"),
    ("IFNAR1 AND IFNAR2", "IFNAR1 AND IFNAR2", "agonist", "RNA model"),
    ("CD33", "CD33", "car-t", "measured protein (monocytes on their CD11c gate)"),
    ("IL3RA / CD123", "IL3RA", "car-t", "measured protein"),
    ("CD19", "CD19", "car-t", "measured protein (B cells on their CD20 gate)"),
    ("IL1RAP", "IL1RAP", "car-t", "RNA model (not on the panel)"),
]
#: (column header, reference context)
COLUMNS = [
    ("blood myeloid DC", "blood:myeloid_DC"),
    ("blood pDC", "blood:plasmacytoid_DC"),
    ("blood classical monocytes", "blood:classical_monocyte"),
    ("naive CD4 T", "blood:naive_CD4_T_cell"),
    ("memory CD8 T", "blood:memory_CD8_T_cell"),
    ("NK cells", "blood:NK_cell"),
    ("naive B cells", "blood:naive_B_cell"),
    ("HPA single-cell monocytes (RNA model)", "sc:monocytes"),
    ("marrow monocytes (measured cells)", "marrow:Mono"),
]


def main() -> int:
    contexts = [c for _, c in COLUMNS]
    print("| receptor (agent) | " + " | ".join(h for h, _ in COLUMNS) + " | evidence in blood |")
    print("|---" * (len(COLUMNS) + 2) + "|")
    for label, receptor, agent, evidence in ROWS:
        p = asc.tl.profile_agent(receptor, agent=agent).set_index("context").loc[contexts]
        values = " | ".join(f"{f:.2f}" for f in p["positive_fraction"])
        print(f"| {label} ({agent}) | {values} | {evidence} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
