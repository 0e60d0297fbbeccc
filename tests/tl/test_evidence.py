"""Fused bulk coverage (tl/_evidence.py) against independent computations."""

from __future__ import annotations

from dataclasses import replace

import anndata as ad
import numpy as np
import pandas as pd
import pytest
from scipy import integrate, optimize, stats

from antigenscout._errors import InputError
from antigenscout.reference import Reference
from antigenscout.tl import score_targets
from antigenscout.tl._evidence import (
    CPTAC_EDGES,
    EVIDENCE_MODEL,
    IHC_CLASSES,
    PRIOR_BINS,
    RNA_EDGES,
    fit_evidence_model,
    fuse_coverage,
    fused_coverage,
)

GENES = [f"G{i}" for i in range(12)]  # the mini reference's genes (tests/tl/conftest.py)

#: A model with a uniform prior and uninformative CPTAC and RNA: only IHC speaks.
FLAT = {
    "ihc_validity": [0.9, 0.6, 0.4, 0.2],
    "cptac_carrier": [0.2] * 5,
    "cptac_non_carrier": [0.2] * 5,
    "rna_carrier": [0.25] * 4,
    "rna_non_carrier": [0.25] * 4,
    "presence_prior": [0.1] * 10,
}
#: Hand-chosen informative readings (not the fitted ones), uniform prior.
INFORMATIVE = {
    **FLAT,
    "cptac_carrier": [0.02, 0.02, 0.02, 0.04, 0.90],
    "cptac_non_carrier": [0.30, 0.20, 0.10, 0.10, 0.30],
    "rna_carrier": [0.01, 0.30, 0.40, 0.29],
    "rna_non_carrier": [0.70, 0.25, 0.04, 0.01],
}


def _product_quantile(cdf, level: float) -> float:
    return optimize.brentq(lambda t: cdf(t) - level, 1e-9, 1 - 1e-9, xtol=1e-7)


def test_ihc_only_matches_the_hand_worked_closed_form() -> None:
    """IHC alone, flat prior: the antibody's validity stays its prior, and the coverage is
    ρ · E[x] · E[q] + (1 - ρ) · 1/4 with x ~ Beta(a + 1, d + 1), q ~ Beta(h + 1, l + 1).

    Worked by hand: Supported (ρ = 0.6), High 2, Medium 1, Low 2, Not detected 6 of 11:
    a = 5, d = 6, E[x] = 6/13; h = 3, l = 2, E[q] = 4/7;
    0.6 · 6/13 · 4/7 + 0.4 · 0.25 = 0.158242 + 0.1 = 0.258242.
    """
    counts = np.array([[2, 1, 2, 6]])
    out = fuse_coverage(counts, ["Supported"], [np.nan], [np.nan], FLAT)
    assert out["ihc_prior"][0] == 0.6
    assert out["ihc_posterior"][0] == pytest.approx(0.6, abs=1e-9)
    assert out["coverage"][0] == pytest.approx(0.258242, abs=1e-3)
    assert out["present"][0] == pytest.approx(0.6 * 6 / 13 + 0.4 * 0.5, abs=1e-3)

    # the interval, from the mixture's CDF integrated independently (scipy quad):
    # valid: P(x q <= t) = ∫ Beta(6,7)(x) F_Beta(4,3)(t/x) dx; failed: x, q ~ U: t - t ln t
    def cdf(t: float) -> float:
        valid = integrate.quad(
            lambda x: stats.beta.pdf(x, 6, 7) * stats.beta.cdf(min(t / x, 1.0), 4, 3), 0, 1
        )[0]
        return 0.6 * valid + 0.4 * (t - t * np.log(t))

    assert out["coverage_low"][0] == pytest.approx(_product_quantile(cdf, 0.05), abs=0.01)
    assert out["coverage_high"][0] == pytest.approx(_product_quantile(cdf, 0.95), abs=0.01)


def _independent(rho: float, a: int, d: int, c: int, r: int, model: dict) -> dict[str, float]:  # noqa: PLR0913, PLR0917
    """The posterior of an all-Not-detected IHC reading (q Uniform in both branches), by
    quadrature over a continuous x with a uniform prior."""
    cc, cn = model["cptac_carrier"][c], model["cptac_non_carrier"][c]
    rc, rn = model["rna_carrier"][r], model["rna_non_carrier"][r]

    def other(x: float) -> float:
        return (x * cc + (1 - x) * cn) * (x * rc + (1 - x) * rn)

    def v(x: float) -> float:
        return x**a * (1 - x) ** d

    z_o = integrate.quad(other, 0, 1)[0]
    z_v = integrate.quad(lambda x: v(x) * other(x), 0, 1)[0]
    valid = rho * z_v
    failed = (1 - rho) * integrate.quad(v, 0, 1)[0] * z_o
    post = valid / (valid + failed)
    ex_v = integrate.quad(lambda x: x * v(x) * other(x), 0, 1)[0] / z_v
    ex_f = integrate.quad(lambda x: x * other(x), 0, 1)[0] / z_o

    def cdf(t: float) -> float:
        def dens(x: float) -> float:
            return post * v(x) * other(x) / z_v + (1 - post) * other(x) / z_o

        return integrate.quad(lambda x: dens(x) * min(t / x, 1.0), 0, 1, points=[t])[0]

    return {
        "posterior": post,
        "coverage": (post * ex_v + (1 - post) * ex_f) / 2,
        "low": _product_quantile(cdf, 0.05),
        "high": _product_quantile(cdf, 0.95),
    }


def test_disagreement_lowers_validity_and_widens_the_interval() -> None:
    """An Enhanced antibody stains none of 11 tumours. Where CPTAC detects the protein in
    every tumour and the RNA is >= 100, the antibody's validity falls and the interval spans
    "IHC right" and "IHC failed"; where CPTAC and RNA agree with it, it rises and the
    interval stays narrow. Both against an independent quadrature."""
    counts = np.array([[0, 0, 0, 11], [0, 0, 0, 11]])
    cptac = np.array([1.0, 0.1])  # top bin, bottom bin
    rna = np.array([150.0, 0.5])  # >= 100, < 1
    out = fuse_coverage(counts, ["Enhanced", "Enhanced"], cptac, rna, INFORMATIVE)
    disagree = _independent(0.9, 0, 11, 4, 3, INFORMATIVE)
    agree = _independent(0.9, 0, 11, 0, 0, INFORMATIVE)
    for i, ref in enumerate([disagree, agree]):
        assert out["ihc_posterior"][i] == pytest.approx(ref["posterior"], abs=2e-3)
        assert out["coverage"][i] == pytest.approx(ref["coverage"], abs=3e-3)
        assert out["coverage_low"][i] == pytest.approx(ref["low"], abs=0.01)
        assert out["coverage_high"][i] == pytest.approx(ref["high"], abs=0.01)
    assert disagree["posterior"] < 0.9 < agree["posterior"]  # falls below its prior, rises above
    width = out["coverage_high"] - out["coverage_low"]
    assert width[0] > 3 * width[1]
    # IHC alone (flat readings) lies between: disagreement widens beyond it
    alone = fuse_coverage(counts[:1], ["Enhanced"], [np.nan], [np.nan], INFORMATIVE)
    assert width[1] < alone["coverage_high"][0] - alone["coverage_low"][0] < width[0]


def test_no_evidence_is_the_prior_and_classes_weigh_differently() -> None:
    """No source: coverage = E[x]/2 under the prior; a worse antibody class moves the
    coverage less far from that prior."""
    none = fuse_coverage(np.zeros((1, 4)), [""], [np.nan], [np.nan], FLAT)
    assert none["coverage"][0] == pytest.approx(0.25, abs=1e-9)
    assert np.isnan(none["ihc_posterior"][0])
    counts = np.array([[11, 0, 0, 0]] * 4)
    out = fuse_coverage(counts, list(IHC_CLASSES), [np.nan] * 4, [np.nan] * 4, FLAT)
    assert (np.diff(out["coverage"]) < 0).all()  # Enhanced > Supported > Approved > Uncertain
    unknown = fuse_coverage(counts[:1], ["no class"], [np.nan], [np.nan], FLAT)
    assert unknown["coverage"][0] == pytest.approx(out["coverage"][3])  # no class: Uncertain


def test_fuse_coverage_refuses_bad_input() -> None:
    counts = np.zeros((2, 4))
    with pytest.raises(InputError, match="genes × 4"):
        fuse_coverage(np.zeros((2, 3)), ["Enhanced"] * 2, [np.nan] * 2, [np.nan] * 2)
    with pytest.raises(InputError, match="one row per gene"):
        fuse_coverage(counts, ["Enhanced"] * 2, [np.nan] * 3, [np.nan] * 2)
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        fuse_coverage(counts, ["Enhanced"] * 2, [1.5, np.nan], [np.nan] * 2)
    with pytest.raises(InputError, match="presence_prior"):
        fuse_coverage(
            counts, ["Enhanced"] * 2, [np.nan] * 2, [np.nan] * 2, {**FLAT, "presence_prior": [1.0]}
        )


def test_fit_recovers_a_known_model() -> None:
    """EM on pairs simulated from known reliabilities recovers them (no source is truth)."""
    rng = np.random.default_rng(7)
    n_pairs = 40000
    truth = {
        "ihc_validity": np.array([0.9, 0.8, 0.5, 0.2]),
        "cptac_carrier": np.array([0.02, 0.03, 0.05, 0.1, 0.8]),
        "cptac_non_carrier": np.array([0.35, 0.2, 0.15, 0.1, 0.2]),
        "rna_carrier": np.array([0.05, 0.35, 0.45, 0.15]),
        "rna_non_carrier": np.array([0.6, 0.3, 0.08, 0.02]),
        "presence_prior": np.array([0.4, 0.05, 0.02, 0.03, 0.05, 0.05, 0.03, 0.02, 0.05, 0.3]),
    }

    def draw_x(size: int) -> np.ndarray:
        b = rng.choice(PRIOR_BINS, size=size, p=truth["presence_prior"])
        return (b + rng.uniform(size=size)) / PRIOR_BINS

    x = draw_x(n_pairs)
    cls = rng.choice(len(IHC_CLASSES), size=n_pairs)
    valid = rng.uniform(size=n_pairs) < truth["ihc_validity"][cls]
    stained = np.where(valid, rng.binomial(11, x), rng.binomial(11, draw_x(n_pairs)))

    def reading(name: str, edges: tuple[float, ...]) -> np.ndarray:
        carrier = rng.uniform(size=n_pairs) < x
        k = len(edges) + 1
        b = np.where(
            carrier,
            rng.choice(k, size=n_pairs, p=truth[f"{name}_carrier"]),
            rng.choice(k, size=n_pairs, p=truth[f"{name}_non_carrier"]),
        )
        mids = np.r_[0.0, edges] + np.diff(np.r_[0.0, edges, edges[-1] * 2]) / 2
        return mids[b]

    pairs = pd.DataFrame(
        {
            "ihc_class": np.asarray(IHC_CLASSES, dtype=object)[cls],
            "high": stained,
            "medium": 0,
            "low": 0,
            "not_detected": 11 - stained,
            "cptac": np.where(
                rng.uniform(size=n_pairs) < 0.5, reading("cptac", CPTAC_EDGES), np.nan
            ),
            "rna": reading("rna", RNA_EDGES),
        }
    )
    fit = fit_evidence_model(pairs)
    assert fit["fit"]["converged"]
    np.testing.assert_allclose(fit["ihc_validity"], truth["ihc_validity"], atol=0.05)
    for key in ("cptac_carrier", "cptac_non_carrier", "rna_carrier", "rna_non_carrier"):
        np.testing.assert_allclose(fit[key], truth[key], atol=0.04)


def test_shipped_model_is_well_formed() -> None:
    m = EVIDENCE_MODEL
    assert m["fit"]["converged"]
    assert m["fit"]["pairs"] > 300000
    for key in ("cptac_carrier", "cptac_non_carrier", "rna_carrier", "rna_non_carrier"):
        assert sum(m[key]) == pytest.approx(1.0, abs=1e-4)
        assert min(m[key]) > 0
    assert sum(m["presence_prior"]) == pytest.approx(1.0, abs=1e-4)
    assert all(0 < r < 1 for r in m["ihc_validity"])


# --------------------------------------------------------------------------- score_targets


def _reference(mini_reference: Reference) -> Reference:
    """Tumour IHC (breast cancer) and CPTAC rows for three of the mini reference's genes."""
    cancers = ["breast cancer", "prostate cancer"]
    path = pd.DataFrame(
        {
            "symbol": pd.Categorical(["G1", "G2", "G4"]),
            "cancer": pd.Categorical(["breast cancer"] * 3, cancers),
            "high": [0, 5, 1],
            "medium": [0, 5, 0],
            "low": [0, 0, 3],
            "not_detected": [11, 0, 6],
        }
    )
    ihc = pd.DataFrame(
        {
            "symbol": ["G1", "G2", "G4"],
            "tissue": "breast",
            "cell_type": "glandular cells",
            "level": 2,
            "reliability": ["Enhanced", "Supported", "Approved"],
            "context": pd.Series([None] * 3, dtype=object),
        }
    )
    cptac = pd.DataFrame(
        {
            "symbol": pd.Categorical(["G1", "G2", "G5"]),
            "cancer": pd.Categorical(["breast cancer"] * 3),
            "cohort": pd.Categorical(["BRCA"] * 3),
            "n_patients": np.int32([121, 121, 121]),
            "n_detected": np.int32([121, 10, 60]),
        }
    )
    return replace(mini_reference, ihc=ihc, pathology=path, cptac=cptac)


def _bulk_samples() -> ad.AnnData:
    rng = np.random.default_rng(5)
    X = rng.gamma(1.0, 40.0, size=(4, len(GENES))).astype(np.float32)
    adata = ad.AnnData(
        X=X,
        obs=pd.DataFrame({"patient": ["P1", "P1", "P2", "P3"]}, index=[f"s{i}" for i in range(4)]),
        var=pd.DataFrame(index=GENES),
    )
    adata.uns["antigenscout"] = {"kind": "bulk"}
    return adata


def test_score_targets_uses_the_fused_coverage(mini_reference: Reference) -> None:
    """Bulk with cancer=: coverage is fused_coverage with one RNA level per patient (the
    mean of its samples), the score uses it for every modality, params record the rule."""
    ref = _reference(mini_reference)
    adata = _bulk_samples()
    kw = dict(malignant_key=None, patient_key="patient", threshold=1.0, cancer="breast cancer")
    score_targets(adata, reference=ref, modality="tcr-t", **kw)  # ranks on q25 without cancer=
    res = adata.uns["antigenscout_targets"]
    t = res["targets"]
    genes = pd.Index(t.index)
    X = pd.DataFrame(adata.X, index=adata.obs_names, columns=GENES)
    level = X.groupby(adata.obs["patient"].to_numpy()).mean().T.reindex(genes)
    expect = fused_coverage(ref, "breast cancer", genes, level.to_numpy())
    np.testing.assert_allclose(t["tumor_coverage"], expect["coverage"], rtol=1e-6)
    np.testing.assert_allclose(t["coverage_low"], expect["coverage_low"], atol=1e-4)
    assert (t["coverage_source"] == expect["coverage_source"]).all()
    assert t.loc["G1", "coverage_source"] == (
        "HPA IHC Enhanced (11 patients) + CPTAC BRCA (121 tumours) + RNA (mean of 3 bulk levels)"
    )
    assert "coverage_q25" not in t
    harm = np.clip(t["vital_risk"] * 1.0, 0, 1)  # tcr-t harm factor is 1
    np.testing.assert_allclose(t["score"], t["tumor_coverage"] * (1 - harm) * t["modality_factor"])
    assert res["params"]["score"].startswith("tumor_coverage")
    assert (
        res["params"]["coverage"]["ihc_validity"]["Enhanced"] == EVIDENCE_MODEL["ihc_validity"][0]
    )
    # the IHC fraction stays reported as it was
    assert t.loc["G2", "stained_fraction"] == 1.0


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"cancer": "breast"}, "not an HPA cancer type"),
        ({"cancer": "breast cancer", "kind": "single_cell"}, "bulk tumours only"),
        ({"cancer": 3}, "HPA cancer type"),
    ],
)
def test_cancer_is_checked_before_any_work(
    mini_reference: Reference, kw, match, monkeypatch
) -> None:
    import antigenscout.tl._tumor as tumour_mod

    def boom(*a, **k):
        msg = "work started before cancer= was checked"
        raise AssertionError(msg)

    monkeypatch.setattr(tumour_mod, "tumor_groups", boom)
    with pytest.raises(InputError, match=match):
        score_targets(
            _bulk_samples(), malignant_key=None, reference=_reference(mini_reference), **kw
        )


def test_rna_readings_count_once_however_many_patients() -> None:
    """The RNA bins were fitted on one reading per cancer: 20 patients at a level say what one
    reading at their mean says, not 20 independent votes (with them, an Enhanced antibody's
    0 of 11 was overturned by the number of samples alone: coverage 0.07 -> 0.47)."""
    import numpy as np

    from antigenscout.tl._evidence import fuse_coverage

    counts = np.array([[0, 0, 0, 11], [6, 3, 2, 0]])
    cls = np.array(["Enhanced", "Supported"])
    cp = np.array([np.nan, 0.9])
    one = fuse_coverage(counts, cls, cp, np.array([[5.0], [0.5]]))
    many = fuse_coverage(counts, cls, cp, np.column_stack([np.full(20, 5.0), np.full(20, 0.5)]).T)
    spread = fuse_coverage(counts, cls, cp, np.array([[2.0, 8.0], [0.0, 1.0]]))
    for key in ("coverage", "coverage_low", "coverage_high", "ihc_posterior"):
        np.testing.assert_allclose(many[key], one[key], rtol=1e-12)
        np.testing.assert_allclose(spread[key], one[key], rtol=1e-12)  # same means
