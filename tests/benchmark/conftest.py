"""Fixtures of the clinical-benchmark tests: a tiny fake reference."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from antigenscout.reference import Reference

# ----------------------------------------------------------------------------- fixtures

CONTEXTS = [
    # id, name, kind, tissue, system, vital weight
    ("sc:B-cells", "B cells", "cell_type", "blood/lymphoid tissue", "immune (lymphoid)", 0.2),
    ("blood:naive_B_cell", "Naive B cells", "cell_type", "blood", "immune (lymphoid)", 0.2),
    ("blood:memory_B_cell", "Memory B cells", "cell_type", "blood", "immune (lymphoid)", 0.2),
    ("sc:T-cells", "T cells", "cell_type", "blood/lymphoid tissue", "immune (lymphoid)", 0.7),
    ("sc:Cholangiocytes", "Cholangiocytes", "cell_type", "liver/bile ducts", "hepatobiliary", 1.0),
    ("sc:Hepatocytes", "Hepatocytes", "cell_type", "liver", "hepatobiliary", 1.0),
    ("tissue:liver", "Liver", "tissue", "liver", "hepatobiliary", 1.0),
    ("tissue:gallbladder", "Gallbladder", "tissue", "gallbladder", "hepatobiliary", 0.5),
    ("sc:Basal keratinocytes", "Basal keratinocytes", "cell_type", "skin", "skin", 0.5),
    ("sc:Melanocytes", "Melanocytes", "cell_type", "skin", "skin", 0.2),
    ("tissue:skin", "Skin", "tissue", "skin", "skin", 0.5),
    ("sc:Cardiomyocytes", "Cardiomyocytes", "cell_type", "heart muscle", "cardiovascular", 1.0),
    ("tissue:salivary gland", "Salivary gland", "tissue", "salivary gland", "gi", 0.4),
]
GENES = ["BCELL1", "SKIN1", "HEART1", "FLAT1", "TUM1", "TUM2", "NONE1", "NONE2"]


def _contexts() -> pd.DataFrame:
    df = pd.DataFrame(
        CONTEXTS, columns=["context", "name", "kind", "tissue", "system", "vital_weight"]
    ).set_index("context")
    df["source"] = "test"
    df["immune_privileged"] = False
    df["rationale"] = ""
    df["n_cells"] = np.nan
    return df


@pytest.fixture(scope="module")
def fake_reference() -> Reference:
    contexts = _contexts()
    expr = pd.DataFrame(0.0, index=pd.Index(GENES, name="symbol"), columns=contexts.index)
    b_ctx = ["sc:B-cells", "blood:naive_B_cell", "blood:memory_B_cell"]
    expr.loc["BCELL1", b_ctx] = 800.0
    expr.loc["SKIN1", ["sc:Basal keratinocytes", "tissue:skin"]] = 500.0
    expr.loc["SKIN1", "sc:Hepatocytes"] = 5.0
    expr.loc["HEART1", "sc:Cardiomyocytes"] = 900.0
    expr.loc["FLAT1"] = 30.0
    expr.loc["TUM1"] = 0.5
    expr.loc["TUM2", "sc:T-cells"] = 2.0
    expr = expr.astype(np.float32)
    surface = pd.DataFrame(
        {"is_surface": True, "surface_evidence": 1.0}, index=pd.Index(GENES, name="symbol")
    )
    genes = pd.DataFrame(
        {"ensembl_id": [f"ENSG{i:011d}" for i in range(len(GENES))], "synonyms": ""},
        index=pd.Index(GENES, name="symbol"),
    )
    ihc = pd.DataFrame(columns=["symbol", "tissue", "cell_type", "level", "reliability", "context"])
    return Reference(
        genes=genes,
        contexts=contexts,
        expression=expr,
        ihc=ihc,
        surface=surface,
        metadata={"name": "fake"},
    )
