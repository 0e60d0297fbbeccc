"""score_targets against a brute-force recomputation on small synthetic data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from antigenscout._errors import InputError
from antigenscout.pp._positivity import DEFAULT_PRIOR_SHAPE
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
        # healthy risk: max over contexts of weight * exp(-threshold*100/mean) (no modality:
        # a dosed agent, judged by its worst context)
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


def test_knn_coverage_with_a_given_graph_matches_brute_force(
    tumour: AnnData, mini_reference: Reference
) -> None:
    """Default positivity on a graph in obsp, soup not discounted: each malignant cell pools
    its own and its graph neighbours' counts and libraries (binary weights; edges across
    patients are cut); positive when the Gamma posterior P(rate >= threshold) >= 0.5
    (scipy), counted per patient by hand."""
    from scipy import stats

    thr = 2.0
    nbr = _random_graph(tumour, k=4, seed=3)
    score_targets(
        tumour,
        malignant_key="status=malignant",
        patient_key="patient",
        modality=None,
        reference=mini_reference,
        positivity="knn",
        threshold=thr,
        ambient=False,
    )
    a0, lam0 = DEFAULT_PRIOR_SHAPE, thr / 1e4

    def call(y: np.ndarray, s_lib: float, patient: str) -> np.ndarray:
        return stats.gamma.sf(lam0, a0 + y, scale=1 / (a0 / lam0 + s_lib))

    _check_given_graph(tumour, nbr, call, GENES)


def test_soup_aware_coverage_with_a_given_graph_matches_brute_force(
    mini_reference: Reference,
) -> None:
    """The same with the soup discounted, on simulated droplets with a known soup: the
    posterior of y ~ Poisson(rate (1 - ρ) s + ρ a_g s), a_g each patient's pooled expression
    over all its rows and ρ from the run's ambient table, as its mixture over the native
    count summed by scipy (tests/pp/test_ambient.py checks that sum by quadrature)."""
    from soup_sim import posterior_tail_sum, simulate_soup

    a = simulate_soup(rho=(0.03, 0.1), n_cells=300, seed=2)
    genes = ["G6", "G9", "Meryth_0", "Meryth_1", "Mplasma_0", "H0"]
    a = a[:, [*genes, *[g for g in a.var_names if g not in genes]]].copy()
    nbr = _random_graph(a, k=4, seed=4)
    thr = 0.2
    score_targets(
        a,
        malignant_key="status=malignant",
        patient_key="patient",
        compartment_key="cell_type",
        modality=None,
        reference=mini_reference,
        threshold=thr,
    )
    amb = a.uns["antigenscout_targets"]["ambient"].set_index("sample")
    rho = amb["contamination"]
    assert (amb["source"] == "labelled states").all()
    X = a.X.toarray().astype(float)
    pat_all = a.obs["patient"].astype(str).to_numpy()
    soup = {q: X[pat_all == q].sum(axis=0) / X[pat_all == q].sum() for q in rho.index}
    a0, lam0 = DEFAULT_PRIOR_SHAPE, thr / 1e4

    def call(y: np.ndarray, s_lib: float, patient: str) -> np.ndarray:
        b = rho[patient] * soup[patient][: len(genes)] * s_lib
        s_nat = (1 - rho[patient]) * s_lib
        return np.array(
            [posterior_tail_sum(int(y[j]), b[j], s_nat, a0, lam0) for j in range(len(b))]
        )

    _check_given_graph(a, nbr, call, genes, same=a.obs["cell_type"].astype(str).to_numpy())


def _random_graph(adata: AnnData, k: int, seed: int) -> np.ndarray:
    """k random neighbours per cell, stored as a binary graph in obsp['connectivities']."""
    from scipy import sparse

    rng = np.random.default_rng(seed)
    n = adata.n_obs
    nbr = np.stack([rng.choice(np.delete(np.arange(n), i), k, replace=False) for i in range(n)])
    adata.obsp["connectivities"] = sparse.csr_matrix(
        (np.ones(n * k), (np.repeat(np.arange(n), k), nbr.ravel())), shape=(n, n)
    )
    return nbr


def _check_given_graph(
    adata: AnnData,
    nbr: np.ndarray,
    call: Any,
    genes: list[str],
    same: np.ndarray | None = None,
) -> None:
    """Brute force: pool each malignant cell with its graph neighbours that are malignant
    and of its patient (and of its ``same`` label), call with ``call``, count per patient."""
    res = adata.uns["antigenscout_targets"]
    table = res["targets"]
    assert res["params"]["positivity"]["graph"].startswith("obsp")
    X = adata.X.toarray().astype(float)
    lib = X.sum(axis=1)
    pat_all = adata.obs["patient"].astype(str).to_numpy()
    mal = np.flatnonzero((adata.obs["status"] == "malignant").to_numpy())
    keep = np.isin(nbr, mal) & (pat_all[nbr] == pat_all[:, None])
    if same is not None:
        keep &= same[nbr] == same[:, None]
    pos = np.zeros((mal.size, len(genes)), dtype=bool)
    for r, i in enumerate(mal):
        cells = np.concatenate([[i], nbr[i][keep[i]]])
        y, s_lib = X[cells][:, : len(genes)].sum(axis=0), lib[cells].sum()
        pos[r] = (call(y, s_lib, pat_all[i]) >= 0.5) & (lib[i] > 0)
    pat = pat_all[mal]
    assert pos.any()
    assert not pos.all()
    for j, g in enumerate(genes):
        assert table.loc[g, "tumor_coverage"] == pytest.approx(pos[:, j].mean())
        per_p = np.array([pos[pat == q, j].mean() for q in sorted(set(pat))])
        assert table.loc[g, "patient_coverage_min"] == pytest.approx(per_p.min())


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

    import antigenscout.tl._tumor as tumour_mod

    monkeypatch.setattr(tumour_mod, "STREAM_CHUNK", 37)  # many chunks, ragged last one
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
    from antigenscout.tl._evidence import pathology_coverage

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
    from antigenscout.tl._measured import _wilson

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


# --------------------------------------------------------------------------- CPTAC beside IHC


def _evidence_reference(mini_reference: Reference) -> Reference:
    """``mini_reference`` with hand-made tumour IHC (breast cancer) and CPTAC counts.

    ========  ===========================  =============  ==================================
    gene      IHC breast (H, M, L, ND)     antibody       CPTAC
    ========  ===========================  =============  ==================================
    G1        0, 0, 3, 8: 0 of 11          Enhanced       BRCA 120/121; LSCC 10/100,
                                                          LUAD 30/50 (lung 40/150)
    G2        5, 5, 0, 0: 10 of 10         Supported      BRCA 5/100; LUAD 7/50
    G4        1, 0, 0, 9: 1 of 10          Enhanced       BRCA 90/100 (both at the boundary)
    G5        0, 0, 0, 11: 0 of 11         Uncertain      BRCA 100/100 (not in the conflict rule)
    G7        1, 1, 0, 8: 2 of 10          Enhanced       BRCA 100/100 (no conflict)
    G8        none                         none           BRCA 50/100
    ========  ===========================  =============  ==================================
    """
    from dataclasses import replace

    cancers = ["breast cancer", "lung cancer", "prostate cancer"]
    path = pd.DataFrame(
        {
            "symbol": ["G1", "G2", "G4", "G5", "G7", "G1"],
            "cancer": pd.Categorical(["breast cancer"] * 5 + ["prostate cancer"], cancers),
            "high": [0, 5, 1, 0, 1, 4],
            "medium": [0, 5, 0, 0, 1, 0],
            "low": [3, 0, 0, 0, 0, 0],
            "not_detected": [8, 0, 9, 11, 8, 0],
        }
    )
    path["symbol"] = path["symbol"].astype("category")
    rel = {"G1": "Enhanced", "G2": "Supported", "G4": "Enhanced", "G5": "Uncertain"}
    rel["G7"] = "Enhanced"
    ihc = pd.DataFrame(
        {
            "symbol": list(rel),
            "tissue": "breast",
            "cell_type": "glandular cells",
            "level": 2,
            "reliability": list(rel.values()),
            "context": pd.Series([None] * len(rel), dtype=object),
        }
    )
    rows = [
        ("G1", "breast cancer", "BRCA", 121, 120),
        ("G1", "lung cancer", "LSCC", 100, 10),
        ("G1", "lung cancer", "LUAD", 50, 30),
        ("G2", "breast cancer", "BRCA", 100, 5),
        ("G2", "lung cancer", "LUAD", 50, 7),
        ("G4", "breast cancer", "BRCA", 100, 90),
        ("G5", "breast cancer", "BRCA", 100, 100),
        ("G7", "breast cancer", "BRCA", 100, 100),
        ("G8", "breast cancer", "BRCA", 100, 50),
    ]
    cptac = pd.DataFrame(rows, columns=["symbol", "cancer", "cohort", "n_patients", "n_detected"])
    for col in ("symbol", "cancer", "cohort"):
        cptac[col] = cptac[col].astype("category")
    cptac[["n_patients", "n_detected"]] = cptac[["n_patients", "n_detected"]].astype(np.int32)
    return replace(mini_reference, ihc=ihc, pathology=path, cptac=cptac)


def _bulk(n_samples: int = 3) -> AnnData:
    rng = np.random.default_rng(3)
    adata = AnnData(
        X=rng.gamma(1.0, 50.0, size=(n_samples, N_GENES)).astype(np.float32),
        var=pd.DataFrame(index=GENES),
    )
    adata.uns["antigenscout"] = {"kind": "bulk"}
    return adata


def test_cptac_detection_by_hand(mini_reference: Reference) -> None:
    """Detected / measured tumours, lung cohorts pooled, a Wilson 90% interval, NaN if none."""
    from statsmodels.stats.proportion import proportion_confint

    from antigenscout.tl import cptac_detection

    ref = _evidence_reference(mini_reference)
    genes = pd.Index(["G1", "G2", "G8", "G9"])
    d = cptac_detection(ref, " Breast Cancer", genes)
    assert d.loc["G1", "cptac_detected_fraction"] == pytest.approx(120 / 121)
    assert d.loc["G8", "cptac_detected_fraction"] == 0.5
    assert (d.loc["G1", "cptac_n_detected"], d.loc["G1", "cptac_n_patients"]) == (120, 121)
    assert d.loc["G1", "cptac_cohort"] == "BRCA"
    # Wilson 90% interval against statsmodels' independent implementation (z = 1.64485
    # there, 1.645 here: agreement to 1e-4)
    for gene, k, n in [("G1", 120, 121), ("G2", 5, 100), ("G8", 50, 100)]:
        lo, hi = proportion_confint(k, n, alpha=0.10, method="wilson")
        assert d.loc[gene, "cptac_detected_low"] == pytest.approx(lo, abs=1e-4)
        assert d.loc[gene, "cptac_detected_high"] == pytest.approx(hi, abs=1e-4)
    # hand-worked: G8, 50 of 100 -> centre 0.5, half-width
    # 1.645 * sqrt(0.0025 + 0.0000677) / 1.02706 = 1.645 * 0.050672 / 1.02706 = 0.081159
    assert d.loc["G8", "cptac_detected_high"] - 0.5 == pytest.approx(0.081159, abs=1e-5)
    assert 0.5 - d.loc["G8", "cptac_detected_low"] == pytest.approx(0.081159, abs=1e-5)
    # a gene CPTAC does not list: NaN, 0 patients
    assert np.isnan(d.loc["G9", "cptac_detected_fraction"])
    assert np.isnan(d.loc["G9", "cptac_detected_low"])
    assert d.loc["G9", "cptac_n_patients"] == 0
    assert d.loc["G9", "cptac_cohort"] == ""
    # lung cancer pools LSCC and LUAD where both list the gene
    lung = cptac_detection(ref, "lung cancer", genes)
    assert lung.loc["G1", "cptac_detected_fraction"] == pytest.approx(40 / 150)
    assert lung.loc["G1", "cptac_n_patients"] == 150
    assert lung.loc["G1", "cptac_cohort"] == "LSCC+LUAD"
    assert lung.loc["G2", "cptac_detected_fraction"] == pytest.approx(7 / 50)
    assert lung.loc["G2", "cptac_cohort"] == "LUAD"
    # an HPA cancer without a CPTAC cohort: NaN for every gene
    prostate = cptac_detection(ref, "prostate cancer", genes)
    assert prostate["cptac_detected_fraction"].isna().all()
    assert (prostate["cptac_n_patients"] == 0).all()
    with pytest.raises(InputError, match="not an HPA cancer type"):
        cptac_detection(ref, "breast", genes)
    with pytest.raises(InputError, match="no CPTAC table"):
        cptac_detection(mini_reference, "breast cancer", genes)


def test_protein_evidence_conflict_rule() -> None:
    """One source at most 10% of patients, the other at least 90%; NaN is never a conflict."""
    from antigenscout.tl import protein_evidence_conflict

    ihc = [0.0, 0.1, 0.11, 0.0, 1.0, 0.9, 0.9, np.nan, 0.5]
    cptac = [0.9, 1.0, 1.0, 0.89, 0.0, 0.1, 0.11, 1.0, 1.0]
    expect = [True, True, False, False, True, True, False, False, False]
    assert protein_evidence_conflict(ihc, cptac).tolist() == expect


def test_score_targets_reports_cptac_beside_ihc(mini_reference: Reference) -> None:
    """Bulk with cancer=: CPTAC columns and the conflict flag beside the fused coverage."""
    from dataclasses import replace

    ref = _evidence_reference(mini_reference)
    adata = _bulk()
    kw = dict(malignant_key=None, modality=None, threshold=1.0, cancer="breast cancer")
    score_targets(adata, reference=ref, **kw)
    t = adata.uns["antigenscout_targets"]["targets"]
    assert t.loc["G1", "cptac_detected_fraction"] == pytest.approx(120 / 121)
    assert t.loc["G1", "cptac_n_patients"] == 121
    assert np.isnan(t.loc["G9", "cptac_detected_fraction"])
    assert t.loc["G9", "cptac_n_patients"] == 0
    conflict = t["protein_evidence_conflict"]
    assert conflict.dtype == bool
    # G1: IHC 0 of 11, CPTAC 120 of 121; G2: IHC 10 of 10, CPTAC 5 of 100; G4: 1 of 10 and
    # 90 of 100 (both boundaries count); G5: its antibody is not reliable, so no IHC enters;
    # G7: IHC 2 of 10 is above 10%; G8: no IHC
    assert sorted(t.index[conflict]) == ["G1", "G2", "G4"]
    assert t.loc["G1", "protein_evidence_note"] == (
        "IHC High/Medium in 0 of 11 patients; CPTAC detects the protein in 120 of 121 tumours "
        "(any level, bulk tissue)"
    )
    assert t.loc["G2", "protein_evidence_note"].startswith("IHC High/Medium in 10 of 10")
    assert (t.loc[~conflict, "protein_evidence_note"] == "").all()
    # coverage is fused (tests/tl/test_evidence.py checks the numbers): an interval around
    # it, the sources named, and without the CPTAC table CPTAC no longer counts
    assert (t["coverage_low"] <= t["tumor_coverage"] + 1e-9).all()
    assert (t["tumor_coverage"] <= t["coverage_high"] + 1e-9).all()
    assert t.loc["G1", "coverage_source"] == (
        "HPA IHC Enhanced (11 patients) + CPTAC BRCA (121 tumours) + RNA (1 bulk level)"
    )
    assert t.loc["G8", "coverage_source"] == "CPTAC BRCA (100 tumours) + RNA (1 bulk level)"
    plain = _bulk()
    score_targets(plain, reference=replace(ref, cptac=None), **kw)
    p = plain.uns["antigenscout_targets"]["targets"].loc[t.index]
    assert p.loc["G1", "coverage_source"] == "HPA IHC Enhanced (11 patients) + RNA (1 bulk level)"
    assert p.loc["G1", "tumor_coverage"] != t.loc["G1", "tumor_coverage"]
    pd.testing.assert_series_equal(t["vital_risk"], p["vital_risk"])
    assert p["cptac_detected_fraction"].isna().all()
    assert not p["protein_evidence_conflict"].any()
    # a cancer CPTAC has no cohort for: NaN, 0, no conflict
    other = _bulk()
    score_targets(other, reference=ref, **{**kw, "cancer": "prostate cancer"})
    o = other.uns["antigenscout_targets"]["targets"]
    assert o["cptac_detected_fraction"].isna().all()
    assert (o["cptac_n_patients"] == 0).all()
    assert not o["protein_evidence_conflict"].any()


def test_cptac_shipped_trop2_breast() -> None:
    """The shipped table: Trop-2 (TACSTD2) detected in all 121 CPTAC breast tumours."""
    from antigenscout.reference import load_reference
    from antigenscout.tl import cptac_detection

    d = cptac_detection(load_reference(), "breast cancer", pd.Index(["TACSTD2"]))
    assert d.loc["TACSTD2", "cptac_n_detected"] == 121
    assert d.loc["TACSTD2", "cptac_n_patients"] == 121
    assert d.loc["TACSTD2", "cptac_detected_fraction"] == 1.0
    assert d.loc["TACSTD2", "cptac_cohort"] == "BRCA"


def test_candidates_are_nuclear_protein_coding_loci() -> None:
    """Pseudogenes, mitochondrially encoded genes and non-coding RNAs are candidates of no
    modality, 'any' included; antigen-receptor constant segments are, and 'any' keeps
    features the reference does not know (an antibody-panel name); None filters nothing."""
    from antigenscout.reference import load_reference
    from antigenscout.tl._tumor import candidate_genes

    ref = load_reference()
    genes = pd.Index(["HLA-H", "MT-ND2", "MT-CYB", "OR1F2P", "CD19", "IGHM", "MS4A1"])
    for modality in ("car-t", "antibody", "tcr-t"):
        got = set(candidate_genes(genes, ref, modality))
        assert not got & {"HLA-H", "MT-ND2", "MT-CYB", "OR1F2P"}
        assert {"CD19", "MS4A1"} <= got
    assert "IGHM" in set(candidate_genes(genes, ref, "tcr-t"))
    more = genes.append(pd.Index(["XIST", "SNORD79", "LINC00537", "ADT_CD45RA"]))
    got = set(candidate_genes(more, ref, "any"))
    assert got == {"CD19", "IGHM", "MS4A1", "ADT_CD45RA"}
    assert set(candidate_genes(more, ref, None)) == set(more)


def test_the_api_validates_as_the_cli_does(tumour: AnnData, mini_reference: Reference) -> None:
    """A model that does not exist, a neighbour count below 1 and log-normalised X are
    refused by the API itself (the readers' check is not the only one)."""
    from scipy import sparse

    kw: dict[str, Any] = {
        "malignant_key": "status=malignant",
        "patient_key": "patient",
        "reference": mini_reference,
        "modality": None,
    }
    with pytest.raises(InputError, match="positivity 'bogus' is not a model"):
        score_targets(tumour.copy(), positivity="bogus", **kw)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="n_neighbors must be an integer >= 1"):
        score_targets(tumour.copy(), n_neighbors=0, **kw)
    logged = tumour.copy()
    logged.X = sparse.csr_matrix(np.log1p(tumour.X.toarray()))
    with pytest.raises(InputError, match=r"non-integer values .*log1p"):
        score_targets(logged, positivity="cp10k", **kw)


@pytest.mark.parametrize("positivity", ["knn", "cp10k"])
def test_progress_names_each_step_and_counts_every_malignant_cell(
    tumour: AnnData, mini_reference: Reference, positivity: str
) -> None:
    seen: list[tuple[str, int, int | None]] = []
    score_targets(
        tumour,
        malignant_key="status=malignant",
        patient_key="patient",
        reference=mini_reference,
        positivity=positivity,  # type: ignore[arg-type]
        progress=lambda step, done, total: seen.append((step, done, total)),
    )
    steps = list(dict.fromkeys(s for s, _, _ in seen))
    n = int((tumour.obs["status"] == "malignant").sum())
    if positivity == "knn":
        assert steps == ["ambient RNA", "neighbour graph", "positivity calls", "healthy risk"]
    else:
        assert steps == ["positivity calls", "healthy risk"]
    for step in ("neighbour graph", "positivity calls"):
        counted = [(d, t) for s, d, t in seen if s == step]
        if counted:
            assert counted[-1] == (n, n)
            assert [d for d, _ in counted] == sorted(d for d, _ in counted)
