"""Fixtures shared by the tl tests: a small hand-built reference and a synthetic tumour."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from scipy import sparse

from antigenscout.reference import Reference

N_GENES = 12
GENES = [f"G{i}" for i in range(N_GENES)]


@pytest.fixture(scope="module")
def mini_reference() -> Reference:
    rng = np.random.default_rng(1)
    contexts = pd.DataFrame(
        {
            "name": ["Heart cells", "B cells", "liver"],
            "kind": ["cell_type", "cell_type", "tissue"],
            "source": ["test"] * 3,
            "tissue": ["heart", "blood", "liver"],
            "system": ["cardiovascular", "immune (lymphoid)", "hepatobiliary"],
            "vital_weight": [1.0, 0.2, 0.9],
            "immune_privileged": [False, False, False],
            "rationale": [""] * 3,
            "n_cells": [np.nan] * 3,
        },
        index=pd.Index(["sc:heart", "sc:b", "tissue:liver"], name="context"),
    )
    expression = pd.DataFrame(
        rng.gamma(0.5, 100.0, size=(N_GENES, 3)).astype(np.float32),
        index=pd.Index(GENES, name="symbol"),
        columns=contexts.index,
    )
    surface = pd.DataFrame(
        {
            "is_surface": [i % 3 != 0 for i in range(N_GENES)],
            "surface_evidence": np.linspace(0, 1, N_GENES),
        },
        index=pd.Index(GENES, name="symbol"),
    )
    genes = pd.DataFrame(
        {"ensembl_id": [f"ENSG{i:011d}" for i in range(N_GENES)], "synonyms": [""] * N_GENES},
        index=pd.Index(GENES, name="symbol"),
    )
    ihc = pd.DataFrame(columns=["symbol", "tissue", "cell_type", "level", "reliability", "context"])
    return Reference(
        genes=genes,
        contexts=contexts,
        expression=expression,
        ihc=ihc,
        surface=surface,
        metadata={"name": "mini"},
    )


@pytest.fixture
def tumour() -> AnnData:
    rng = np.random.default_rng(0)
    n = 400
    lam = rng.gamma(0.7, 2e-4, size=(1, N_GENES))
    lib = rng.integers(500, 6000, size=(n, 1))
    X = rng.poisson(lib * lam * rng.gamma(2.0, 0.5, size=(n, N_GENES))).astype(np.float32)
    obs = pd.DataFrame(
        {
            "status": rng.choice(["malignant", "normal"], n, p=[0.8, 0.2]),
            "patient": rng.choice(["P1", "P2", "P3"], n),
            "compartment": rng.choice(["stem", "bulk"], n, p=[0.3, 0.7]),
        },
        index=[f"c{i}" for i in range(n)],
    )
    return AnnData(X=sparse.csr_matrix(X), obs=obs, var=pd.DataFrame(index=GENES))


@pytest.fixture(scope="module")
def data():
    """Cells × genes positivity and a group label per cell, for the kernel tests."""
    rng = np.random.default_rng(0)
    X = rng.random((333, 9)) < rng.uniform(0.05, 0.9, 9)
    labels = rng.integers(0, 4, 333)  # groups of odd sizes: every group has padding
    return X, labels
