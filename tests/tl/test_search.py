"""search_gates on AnnData against a brute-force evaluation of the same positivity calls."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData
from scipy import sparse

from antigenscout._errors import InputError
from antigenscout.tl import healthy_risk, search_gates

GENES = [f"G{i}" for i in range(12)]  # as in conftest.py


def test_pairs_match_brute_force(tumour: AnnData, mini_reference) -> None:
    thr = 2.0
    search_gates(
        tumour,
        malignant_key="status=malignant",
        patient_key="patient",
        modality=None,
        reference=mini_reference,
        positivity="cp10k",
        threshold=thr,
        max_genes=2,
        ops=("and", "not"),
        max_vital_risk=1.0,
        top_k=10_000,
    )
    gates = tumour.uns["antigenscout_gates"]["gates"]
    X = tumour.X.toarray()
    mal = (tumour.obs["status"] == "malignant").to_numpy()
    Xm = X[mal]
    lib = Xm.sum(axis=1, keepdims=True)
    pos = (Xm * 1e4 >= thr * lib) & (lib > 0)
    F = healthy_risk(mini_reference, threshold_cp10k=thr).fraction.loc[GENES].to_numpy().T
    w = mini_reference.contexts["vital_weight"].to_numpy()
    want = {}
    for a, b in itertools.permutations(range(len(GENES)), 2):
        cov_and = (pos[:, a] & pos[:, b]).mean()
        risk_and = (w * np.minimum(F[:, a], F[:, b])).max()
        if a < b:
            want[f"{GENES[a]} AND {GENES[b]}"] = (cov_and, risk_and)
        cov_not = (pos[:, a] & ~pos[:, b]).mean()
        risk_not = (w * np.minimum(F[:, a], 1 - F[:, b])).max()
        want[f"{GENES[a]} AND NOT {GENES[b]}"] = (cov_not, risk_not)
    got = gates.set_index("gate")
    pairs = got[got["n_genes"] == 2]
    assert len(pairs) > 0
    for gate, row in pairs.iterrows():
        key = gate if gate in want else " AND ".join(reversed(gate.split(" AND ")))
        cov, risk = want[key]
        assert row["tumor_coverage"] == pytest.approx(cov)
        assert row["worst_healthy_risk"] == pytest.approx(risk, abs=1e-6)
        assert row["risk_is_bound"]
    assert got["genes"].str.contains(",").sum() == 0


def test_exact_healthy_cells_give_exact_risk(tumour: AnnData, mini_reference) -> None:
    rng = np.random.default_rng(3)
    Xh = rng.poisson(1.0, (120, len(GENES))).astype(np.float32)
    healthy = AnnData(
        X=sparse.csr_matrix(Xh),
        obs=pd.DataFrame(
            {"ct": rng.choice(["B cells", "Heart cells"], 120)}, index=[f"h{i}" for i in range(120)]
        ),
        var=pd.DataFrame(index=GENES),
    )
    search_gates(
        tumour,
        malignant_key="status=malignant",
        modality=None,
        reference=mini_reference,
        healthy=healthy,
        healthy_key="ct",
        healthy_only=True,
        positivity="detected",
        max_genes=2,
        ops=("and",),
        max_vital_risk=1.0,
        top_k=5,
    )
    gates = tumour.uns["antigenscout_gates"]["gates"]
    assert not gates["risk_is_bound"].any()
    row = gates.iloc[0]
    a, b = row["genes"].split(";") if ";" in row["genes"] else (row["genes"], row["genes"])
    ia, ib = GENES.index(a), GENES.index(b)
    both = (Xh[:, ia] > 0) & (Xh[:, ib] > 0)
    ct = healthy.obs["ct"].to_numpy()
    w = {"B cells": 0.2, "Heart cells": 1.0}
    want = max(w[t] * both[ct == t].mean() for t in w)
    assert row["worst_healthy_risk"] == pytest.approx(want)


def test_bad_ops_raise(tumour: AnnData, mini_reference) -> None:
    with pytest.raises(InputError, match="ops"):
        search_gates(
            tumour, malignant_key="status=malignant", reference=mini_reference, ops=["xor"]
        )
