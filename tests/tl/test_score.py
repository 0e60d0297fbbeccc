"""score_targets against a brute-force recomputation on small synthetic data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from antigenscout._errors import InputError
from antigenscout.reference import Reference
from antigenscout.tl import score_targets

N_GENES = 12  # as in conftest.py
GENES = [f"G{i}" for i in range(N_GENES)]


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


@pytest.mark.parametrize("method", ["cp10k", "detected"])
def test_backed_file_streams_to_the_same_result(
    tumour: AnnData, mini_reference: Reference, tmp_path, method: str, monkeypatch
) -> None:
    import anndata as ad

    import antigenscout.tl._score as score_mod

    monkeypatch.setattr(score_mod, "STREAM_CHUNK", 37)  # many chunks, ragged last one
    path = tmp_path / "t.h5ad"
    tumour.write_h5ad(path)
    kw = dict(
        malignant_key="status=malignant",
        patient_key="patient",
        compartment_key="compartment",
        modality=None,
        reference=mini_reference,
        positivity=method,
        threshold=2.0,
    )
    score_targets(tumour, **kw)
    backed = ad.read_h5ad(path, backed="r")
    score_targets(backed, **kw)
    a = tumour.uns["antigenscout_targets"]["targets"]
    b = backed.uns["antigenscout_targets"]["targets"]
    pd.testing.assert_frame_equal(a, b)
    backed.file.close()


def test_pathology_coverage_counts_patients_by_hand() -> None:
    """HPA tumour IHC: coverage = patients High or Medium over patients stained."""
    import pandas as pd

    from antigenscout.reference import load_reference
    from antigenscout.tl._score import pathology_coverage

    ref = load_reference()
    path = ref.pathology
    row = path[(path["symbol"] == "ERBB2") & (path["cancer"] == "breast cancer")].iloc[0]
    n = row[["high", "medium", "low", "not_detected"]].sum()
    cov = pathology_coverage(ref, "Breast cancer", pd.Index(["ERBB2", "NOTAGENE"]))
    assert cov.loc["ERBB2", "stained_fraction"] == pytest.approx((row.high + row.medium) / n)
    assert cov.loc["ERBB2", "n_patients_stained"] == n
    lo, hi = cov.loc["ERBB2", ["stained_low", "stained_high"]]
    assert lo <= cov.loc["ERBB2", "stained_fraction"] <= hi
    assert cov.loc["NOTAGENE", "n_patients_stained"] == 0
    with pytest.raises(InputError, match="not an HPA cancer type"):
        pathology_coverage(ref, "breast", pd.Index(["ERBB2"]))


def test_confident_patient_coverage_by_hand(tumour: AnnData, mini_reference: Reference) -> None:
    """A patient counts as confidently covered when its Wilson 90% lower bound reaches it."""
    from antigenscout.tl._risk import _wilson

    score_targets(
        tumour,
        malignant_key="status=malignant",
        patient_key="patient",
        modality=None,
        reference=mini_reference,
        positivity="cp10k",
        patient_threshold=0.3,
    )
    res = tumour.uns["antigenscout_targets"]
    pcov = res["patient_coverage"]
    sizes = tumour.obs.loc[tumour.obs["status"] == "malignant", "patient"].value_counts()
    sizes = sizes.reindex(pcov.columns).to_numpy(dtype=float)
    lo, _ = _wilson(pcov.to_numpy(), sizes[None, :])
    expect = (lo >= 0.3).mean(axis=1)
    got = res["targets"].loc[pcov.index, "patients_confidently_covered_fraction"].to_numpy()
    np.testing.assert_allclose(got, expect)
    assert (got <= res["targets"].loc[pcov.index, "patients_covered_fraction"] + 1e-12).all()
