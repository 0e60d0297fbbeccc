"""The blood protein gates (scripts/blood_protein.py) on hand-made calls."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))

import blood_protein as bp


def _calls(rows: dict[str, dict[str, bool]]) -> pd.DataFrame:
    markers = sorted({m for pos, neg in bp.GATES.values() for m in (*pos, *neg)})
    df = pd.DataFrame(False, index=list(rows), columns=markers)
    for cell, on in rows.items():
        for m, v in on.items():
            df.loc[cell, m] = v
    return df


def test_gates_are_exclusive_and_follow_the_phenotypes():
    calls = _calls(
        {
            "mdc": {"CD1c": True, "HLA-DR": True},
            "pdc": {"CD303": True, "HLA-DR": True, "CD123": True},
            "cd4n": {"CD3": True, "CD4": True, "CD45RA": True, "CD62L": True},
            "cd4m": {"CD3": True, "CD4": True, "CD45RO": True},
            "bn": {"CD19": True, "IgD": True},
            "b_and_t": {"CD19": True, "IgD": True, "CD3": True},  # a doublet: no gate
            "mono": {"CD33": True, "CD64": True},
            "baso": {"CD123": True},
        }
    )
    g = bp.gate_cells(calls)
    where = {c: [k for k, m in g.items() if m[i]] for i, c in enumerate(calls.index)}
    assert where == {
        "mdc": ["blood:myeloid_DC"],
        "pdc": ["blood:plasmacytoid_DC"],
        "cd4n": ["blood:naive_CD4_T_cell"],
        "cd4m": ["blood:memory_CD4_T_cell"],
        "bn": ["blood:naive_B_cell"],
        "b_and_t": [],
        "mono": ["blood:classical_monocyte"],
        "baso": ["blood:basophil"],
    }
    total = np.sum([m.astype(int) for m in g.values()], axis=0)
    assert total.max() <= 1


def test_gating_markers_are_known_antibodies():
    known = set(bp.AB_TO_GENE) | set(bp.GATING_ONLY) | {"HLA-DR"}
    for pos, neg in bp.GATES.values():
        assert set(pos) | set(neg) <= known


def test_embedded_table_never_reports_a_context_own_gating_marker():
    from antigenscout.reference import load_reference

    ref = load_reference()
    t = ref.protein
    assert t is not None
    assert len(t)
    assert (t["n_positive"] <= t["n_cells"]).all()
    assert (t["n_cells"] >= bp.MIN_CELLS).all()
    assert t["context"].isin(ref.contexts.index).all()
    for row in t.itertuples():
        # the gate that measured a gene never uses that gene's antibody
        used = {m.rstrip("+-") for m in row.gated_on.split()}
        assert row.antibody not in used, (row.gene, row.context, row.gated_on)
    # CD19 on B cells is measured on the CD20 gate, and vice versa
    b = t[t["context"] == "blood:naive_B_cell"].set_index("gene")
    assert b.loc["CD19", "gated_on"].startswith("CD20+")
    assert b.loc["MS4A1", "gated_on"].startswith("CD19+")
