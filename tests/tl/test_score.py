"""score_targets against a brute-force recomputation on small synthetic data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from scipy import sparse

from antigenscout._errors import InputError
from antigenscout.reference import Reference
from antigenscout.tl import score_targets

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


@pytest.mark.parametrize("method", ["cp10k", "detected"])
def test_coverage_matches_brute_force(
    tumour: AnnData, mini_reference: Reference, method: str
) -> None:
    thr = 2.0
    score_targets(
        tumour,
        malignant_key="status=malignant",
        patient_key="patient",
        compartment_key="compartment",
        modality=None,
        reference=mini_reference,
        positivity=method,  # type: ignore[arg-type]
        threshold=thr,
        patient_threshold=0.3,
    )
    table = tumour.uns["antigenscout_targets"]["targets"]
    X = tumour.X.toarray()
    mal = (tumour.obs["status"] == "malignant").to_numpy()
    Xm = X[mal]
    lib = Xm.sum(axis=1, keepdims=True)
    pos = Xm > 0 if method == "detected" else (Xm * 1e4 >= thr * lib) & (lib > 0)
    pat = tumour.obs["patient"].to_numpy()[mal]
    comp = tumour.obs["compartment"].to_numpy()[mal]
    for j, g in enumerate(GENES):
        row = table.loc[g]
        assert row["tumor_coverage"] == pytest.approx(pos[:, j].mean())
        assert row["n_tumor_cells"] == mal.sum()
        per_p = np.array([pos[pat == p, j].mean() for p in ["P1", "P2", "P3"]])
        assert row["patient_coverage_median"] == pytest.approx(np.median(per_p))
        assert row["patient_coverage_min"] == pytest.approx(per_p.min())
        assert row["patients_covered_fraction"] == pytest.approx((per_p >= 0.3).mean())
        assert row["coverage__stem"] == pytest.approx(pos[comp == "stem", j].mean())
        # healthy risk: max over contexts of weight * exp(-threshold*100/mean)
        mu = mini_reference.expression.loc[g].to_numpy(dtype=float)
        w = mini_reference.contexts["vital_weight"].to_numpy()
        frac = np.where(mu > 0, np.exp(-thr * 100 / np.where(mu > 0, mu, 1)), 0)
        assert row["vital_risk"] == pytest.approx((w * frac).max(), rel=1e-5)
        ct = np.array([0, 1])
        worst = ct[np.argmax((w * frac)[ct])]
        assert row["worst_healthy_cell_type"] == mini_reference.contexts["name"].iloc[worst]
        assert row["score"] == pytest.approx(row["tumor_coverage"] * (1 - row["vital_risk"]))
    assert list(table["rank"]) == list(range(1, N_GENES + 1))
    assert table["score"].is_monotonic_decreasing


def test_surface_modality_filters_candidates(tumour: AnnData, mini_reference: Reference) -> None:
    score_targets(
        tumour,
        malignant_key="status=malignant",
        modality="car-t",
        reference=mini_reference,
        positivity="cp10k",
    )
    table = tumour.uns["antigenscout_targets"]["targets"]
    assert set(table.index) == {g for i, g in enumerate(GENES) if i % 3 != 0}


def test_bulk_coverage_is_modelled_fraction(mini_reference: Reference) -> None:
    expr = np.array([[0.0, 100.0, 1000.0] + [1.0] * (N_GENES - 3)] * 2, dtype=np.float32)
    adata = AnnData(X=expr, var=pd.DataFrame(index=GENES))
    adata.uns["antigenscout"] = {"kind": "bulk"}
    score_targets(adata, malignant_key=None, modality=None, reference=mini_reference, threshold=1.0)
    t = adata.uns["antigenscout_targets"]["targets"]
    assert t.loc["G0", "tumor_coverage"] == 0
    assert t.loc["G1", "tumor_coverage"] == pytest.approx(np.exp(-1.0))
    assert t.loc["G2", "tumor_coverage"] == pytest.approx(np.exp(-0.1))
    assert t.loc["G2", "samples_covered_fraction"] == 1.0


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"malignant_key": "status=tumour"}, "no malignant cells"),
        ({"malignant_key": "nope=malignant"}, "not in the input's obs"),
        ({"malignant_key": "status"}, "COLUMN=VALUE"),
        ({"malignant_key": "status=malignant", "patient_key": "donor"}, "donor"),
    ],
)
def test_bad_keys_raise(tumour: AnnData, mini_reference: Reference, kw: dict, match: str) -> None:
    with pytest.raises(InputError, match=match):
        score_targets(tumour, modality=None, reference=mini_reference, positivity="cp10k", **kw)
