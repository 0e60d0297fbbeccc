from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from antigenscout.tl import pareto_rank, positive_fraction_from_mean


@pytest.mark.parametrize("shape", [0.5, 1.0, 3.0])
def test_positive_fraction_is_gamma_tail(shape: float) -> None:
    mean = np.array([0.0, 1.0, 10.0, 50.0, 1000.0])
    got = positive_fraction_from_mean(mean, 50.0, shape)
    want = np.where(
        mean > 0, stats.gamma.sf(50.0, a=shape, scale=np.maximum(mean, 1e-300) / shape), 0
    )
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-300)


def test_positive_fraction_monotone_in_mean() -> None:
    mean = np.linspace(0, 1000, 200)
    f = positive_fraction_from_mean(mean, 50.0)
    assert np.all(np.diff(f) >= 0)
    assert f[0] == 0
    assert 0.9 < f[-1] <= 1


def _brute_pareto(cov: np.ndarray, risk: np.ndarray) -> np.ndarray:
    n = len(cov)
    level = np.zeros(n, dtype=int)
    left = set(range(n))
    k = 1
    while left:
        front = {
            i
            for i in left
            if not any(
                cov[j] >= cov[i] and risk[j] <= risk[i] and (cov[j] > cov[i] or risk[j] < risk[i])
                for j in left
            )
        }
        for i in front:
            level[i] = k
        left -= front
        k += 1
    return level


@pytest.mark.parametrize("seed", range(5))
def test_pareto_rank_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    cov = rng.integers(0, 10, 60) / 10  # ties on purpose
    risk = rng.integers(0, 10, 60) / 10
    np.testing.assert_array_equal(pareto_rank(cov, risk), _brute_pareto(cov, risk))


def test_measured_fraction_replaces_model_only_at_its_threshold() -> None:
    import pandas as pd

    from antigenscout.reference import Reference
    from antigenscout.tl import healthy_risk

    ctx = pd.DataFrame(
        {
            "name": ["HSC", "liver"],
            "kind": ["cell_type", "tissue"],
            "tissue": ["bone marrow", "liver"],
            "system": ["haematopoietic", "hepatobiliary"],
            "vital_weight": [1.0, 1.0],
            "immune_privileged": [False, False],
        },
        index=["marrow:HSC", "tissue:liver"],
    )
    expr = pd.DataFrame({"marrow:HSC": [100.0], "tissue:liver": [100.0]}, index=["G"])
    measured = pd.DataFrame({"marrow:HSC": [0.05]}, index=["G"])
    ref = Reference(
        genes=pd.DataFrame(index=["G"]),
        contexts=ctx,
        expression=expr,
        ihc=pd.DataFrame(columns=["symbol", "context", "level", "reliability"]),
        surface=pd.DataFrame(index=["G"]),
        metadata={"measured_fraction": {"threshold_cp10k": 0.2}},
        measured_fraction=measured,
    )
    at = healthy_risk(ref, threshold_cp10k=0.2).fraction
    assert at.loc["G", "marrow:HSC"] == pytest.approx(0.05)
    assert at.loc["G", "tissue:liver"] == pytest.approx(np.exp(-20.0 / 100.0))
    other = healthy_risk(ref, threshold_cp10k=0.5).fraction
    assert other.loc["G", "marrow:HSC"] == pytest.approx(np.exp(-50.0 / 100.0))


def _expression_reference(ctx, expr):
    """A Reference of just contexts and expression, for the admixture rules."""
    import pandas as pd

    from antigenscout.reference import Reference

    return Reference(
        genes=pd.DataFrame(index=expr.index),
        contexts=ctx,
        expression=expr,
        ihc=pd.DataFrame(),
        surface=pd.DataFrame(),
    )


def test_tissue_infiltrate_share_is_removed_by_hand() -> None:
    import pandas as pd

    from antigenscout.tl._risk import minus_infiltrate

    ctx = pd.DataFrame(
        {
            "name": ["B", "T", "gut"],
            "kind": ["cell_type", "cell_type", "tissue"],
            "system": ["immune (lymphoid)", "immune (lymphoid)", "gastrointestinal"],
        },
        index=["sc:B", "sc:T", "tissue:gut"],
    )
    # PTPRC: immune median 1000, gut 100 -> phi = 0.1
    expr = pd.DataFrame(
        {
            "sc:B": [800.0, 300.0, 0.0],
            "sc:T": [1200.0, 0.0, 5.0],
            "tissue:gut": [100.0, 40.0, 50.0],
        },
        index=["PTPRC", "CD19", "VIL1"],
    )
    ref = _expression_reference(ctx, expr)
    out = minus_infiltrate(ref)
    assert out.loc["CD19", "tissue:gut"] == pytest.approx(40.0 - 0.1 * 300.0)
    assert out.loc["VIL1", "tissue:gut"] == pytest.approx(50.0 - 0.1 * 5.0)
    assert out.loc["PTPRC", "tissue:gut"] == pytest.approx(0.0)
    assert out.loc["CD19", "sc:B"] == 300.0  # cell types untouched


def _admixture_reference(myocyte_ptprc: float):
    import pandas as pd

    ctx = pd.DataFrame(
        {
            "name": ["Macrophages", "T cells", "Myocytes", "Microglia"],
            "kind": ["cell_type"] * 4,
            "system": ["immune (myeloid)", "immune (lymphoid)", "musculoskeletal", "nervous"],
        },
        index=["sc:Macrophages", "sc:T-cells", "sc:Myocytes", "sc:Microglial cells"],
    )
    genes = ["C1QA", "C1QB", "C1QC", "CD163", "TREM2", "CD3D", "TRAT1", "IL7R"]
    genes += ["PTPRC", "HLA-DRA", "TTN"]
    expr = pd.DataFrame(
        {
            "sc:Macrophages": [1000, 1000, 500, 400, 100, 0, 0, 10, 500, 5000, 0],
            "sc:T-cells": [0, 0, 0, 0, 0, 600, 100, 1000, 1000, 100, 0],
            # macrophage markers at 2% of the profile (CD163 10%, TREM2 0%: the median
            # ignores them); T-cell markers at 1%, 1%, 3%
            "sc:Myocytes": [20, 20, 10, 40, 0, 6, 1, 30, myocyte_ptprc, 120, 5000],
            "sc:Microglial cells": [900, 900, 400, 300, 200, 0, 0, 5, 400, 3000, 0],
        },
        index=genes,
        dtype=float,
    )
    return _expression_reference(ctx, expr)


def test_cell_type_infiltrate_share_is_removed_by_hand() -> None:
    from antigenscout.tl._risk import immune_admixture, minus_infiltrate

    ref = _admixture_reference(myocyte_ptprc=25.0)
    a = immune_admixture(ref)
    assert list(a.index) == ["sc:Myocytes"]  # immune and resident myeloid cells are not touched
    assert a.loc["sc:Myocytes", "sc:Macrophages"] == pytest.approx(0.02)
    assert a.loc["sc:Myocytes", "sc:T-cells"] == pytest.approx(0.01)
    out = minus_infiltrate(ref)
    # 120 - (0.02 * 5000 + 0.01 * 100)
    assert out.loc["HLA-DRA", "sc:Myocytes"] == pytest.approx(19.0)
    # 25 - (0.02 * 500 + 0.01 * 1000)
    assert out.loc["PTPRC", "sc:Myocytes"] == pytest.approx(5.0)
    assert out.loc["C1QA", "sc:Myocytes"] == pytest.approx(0.0)  # floored at 0
    assert out.loc["TTN", "sc:Myocytes"] == 5000.0  # made by the parenchyma only: unchanged
    for c in ("sc:Macrophages", "sc:T-cells", "sc:Microglial cells"):
        assert out[c].tolist() == ref.expression[c].tolist()


def test_endothelial_share_is_removed_by_hand() -> None:
    """A myocyte cluster with the endothelial markers at 4%, 5% and 8% of the endothelial
    profile (median 5%) loses 5% of the endothelium's genes; PTPRC does not bound it (no
    leukocyte makes the markers); endothelial clusters keep their own genes."""
    import pandas as pd

    from antigenscout.tl._risk import immune_admixture, minus_infiltrate

    ctx = pd.DataFrame(
        {"kind": ["cell_type"] * 3, "system": ["cardiovascular", "musculoskeletal", "x"]},
        index=["sc:Endothelial cells", "sc:Myocytes", "sc:Lymphatic endothelial cells"],
    )
    expr = pd.DataFrame(
        {
            "sc:Endothelial cells": [200.0, 300.0, 100.0, 600.0, 0.0, 0.0],
            "sc:Myocytes": [8.0, 15.0, 8.0, 40.0, 5000.0, 0.0],
            "sc:Lymphatic endothelial cells": [50.0, 10.0, 200.0, 40.0, 0.0, 0.0],
        },
        index=["CDH5", "EMCN", "TIE1", "HLA-DRA", "TTN", "PTPRC"],
    )
    ref = _expression_reference(ctx, expr)
    a = immune_admixture(ref)
    assert a.loc["sc:Myocytes", "sc:Endothelial cells"] == pytest.approx(0.05)
    assert a.loc["sc:Lymphatic endothelial cells", "sc:Endothelial cells"] == 0.0
    out = minus_infiltrate(ref)
    assert out.loc["HLA-DRA", "sc:Myocytes"] == pytest.approx(40.0 - 0.05 * 600.0)
    assert out.loc["TTN", "sc:Myocytes"] == 5000.0
    for c in ("sc:Endothelial cells", "sc:Lymphatic endothelial cells"):
        assert out[c].tolist() == expr[c].tolist()


def test_cell_type_infiltrate_is_bounded_by_ptprc() -> None:
    from antigenscout.tl._risk import immune_admixture, minus_infiltrate

    # the markers imply 20 of PTPRC; the cluster has 10: both shares are halved
    ref = _admixture_reference(myocyte_ptprc=10.0)
    a = immune_admixture(ref)
    assert a.loc["sc:Myocytes", "sc:Macrophages"] == pytest.approx(0.01)
    assert a.loc["sc:Myocytes", "sc:T-cells"] == pytest.approx(0.005)
    assert minus_infiltrate(ref).loc["HLA-DRA", "sc:Myocytes"] == pytest.approx(120 - 50.5)


def test_embedded_parenchyma_keeps_its_own_genes_and_loses_the_infiltrate() -> None:
    import antigenscout as asc
    from antigenscout.reference import load_reference
    from antigenscout.tl._risk import immune_admixture, minus_infiltrate

    ref = load_reference()
    out = minus_infiltrate(ref)
    raw = ref.expression
    a = immune_admixture(ref)
    assert 60 <= len(a) <= 70
    assert a.to_numpy().min() >= 0
    leukocytes = a.drop(columns="sc:Endothelial cells")
    assert leukocytes.sum(axis=1).max() < 0.2
    assert a.sum(axis=1).max() <= 1.0 + 1e-12
    # HPA's "Adipocytes" cluster is mostly endothelium (docs/reference.md)
    assert a.loc["sc:Adipocytes", "sc:Endothelial cells"] > 0.9
    endothelial = ["sc:Endothelial cells", "sc:Lymphatic endothelial cells"]
    assert (a.loc[endothelial, "sc:Endothelial cells"] == 0).all()
    # genes of the parenchyma itself: within 0.1%
    for gene, ctx in [
        ("TTN", "sc:Skeletal myocytes"),
        ("MYH7", "sc:Cardiomyocytes"),
        ("ALB", "sc:Hepatocytes"),
        ("SFTPC", "sc:Alveolar cells type 2"),
        ("INS", "sc:Pancreatic endocrine cells"),
        ("KRT14", "sc:Basal keratinocytes"),
    ]:
        assert out.loc[gene, ctx] == pytest.approx(float(raw.loc[gene, ctx]), rel=1e-3)
    # immune cells, and macrophages living in tissues, keep every gene
    for ctx in ("sc:Macrophages", "sc:B-cells", "sc:Microglial cells", "sc:Hofbauer cells"):
        for gene in ("PTPRC", "HLA-DRA", "CD74"):
            assert out.loc[gene, ctx] == pytest.approx(float(raw.loc[gene, ctx]))
    # epithelial MHC class II of the small intestine is the enterocytes' own (DR >> DP)
    gut = "sc:Proximal enterocytes"
    assert out.loc["HLA-DRA", gut] > 0.99 * raw.loc["HLA-DRA", gut]
    # an MHC class II agonist no longer engages cardiomyocytes through their macrophages
    prof = asc.tl.profile_agent(
        "(HLA-DRA AND HLA-DRB1) OR (HLA-DPA1 AND HLA-DPB1)", agent="agonist"
    ).set_index("context")
    assert prof.loc["sc:Cardiomyocytes", "positive_fraction"] < 0.05
    assert prof.loc["sc:Hepatocytes", "positive_fraction"] < 0.05
    # nor skeletal myocytes through their capillaries' endothelium (was 0.97)
    assert prof.loc["sc:Skeletal myocytes", "positive_fraction"] < 0.05
    assert prof.loc["sc:Endothelial cells", "positive_fraction"] > 0.99
    assert prof.loc["sc:Macrophages", "positive_fraction"] > 0.99


def test_shown_fraction_keeps_measured_and_protein_only() -> None:
    import pandas as pd

    from antigenscout.reference import Reference
    from antigenscout.tl import healthy_risk
    from antigenscout.tl._risk import IHC_MAX_FLOOR, shown_fraction

    ctx = pd.DataFrame(
        {
            "name": ["HSC", "liver", "kidney"],
            "kind": ["cell_type", "tissue", "tissue"],
            "tissue": ["bone marrow", "liver", "kidney"],
            "system": ["haematopoietic", "hepatobiliary", "renal"],
            "vital_weight": [1.0, 1.0, 1.0],
            "immune_privileged": [False, False, False],
            "n_cells": [200.0, np.nan, np.nan],
        },
        index=["marrow:HSC", "tissue:liver", "tissue:kidney"],
    )
    expr = pd.DataFrame(
        {"marrow:HSC": [100.0], "tissue:liver": [100.0], "tissue:kidney": [100.0]}, index=["G"]
    )
    # kidney stains High with an Enhanced antibody; liver has RNA only
    ihc = pd.DataFrame(
        {
            "symbol": ["G"],
            "tissue": ["kidney"],
            "cell_type": ["cells in tubules"],
            "level": [3.0],
            "reliability": ["Enhanced"],
            "context": ["tissue:kidney"],
        }
    )
    ref = Reference(
        genes=pd.DataFrame(index=["G"]),
        contexts=ctx,
        expression=expr,
        ihc=ihc,
        surface=pd.DataFrame(index=["G"]),
        metadata={"measured_fraction": {"threshold_cp10k": 0.2}},
        measured_fraction=pd.DataFrame({"marrow:HSC": [0.4]}, index=["G"]),
    )
    hr = healthy_risk(ref, threshold_cp10k=0.2)
    shown = shown_fraction(hr, ref, ["G"]).loc["G"]
    assert shown["marrow:HSC"] == pytest.approx(0.4)  # measured cells
    assert shown["tissue:liver"] == 0.0  # RNA model alone shows nothing
    # the IHC floor, High (3/3) and Enhanced (1.0), never above the engagement
    want = min(IHC_MAX_FLOOR, hr.fraction.loc["G", "tissue:kidney"])
    assert shown["tissue:kidney"] == pytest.approx(want)
    assert hr.fraction.loc["G", "tissue:liver"] == pytest.approx(np.exp(-20.0 / 100.0))


def test_measured_protein_replaces_the_rna_model() -> None:
    import pandas as pd

    from antigenscout.reference import Reference
    from antigenscout.tl import healthy_risk
    from antigenscout.tl._risk import PROTEIN_SOURCE, _wilson, shown_fraction

    ctx = pd.DataFrame(
        {
            "name": ["mDC", "liver"],
            "kind": ["cell_type", "tissue"],
            "tissue": ["blood", "liver"],
            "system": ["immune (myeloid)", "hepatobiliary"],
            "vital_weight": [0.4, 1.0],
            "immune_privileged": [False, False],
        },
        index=["blood:myeloid_DC", "tissue:liver"],
    )
    # RNA says almost nothing in mDCs (the HLA-DR mapping problem); protein says 30 of 40
    expr = pd.DataFrame({"blood:myeloid_DC": [1.0, 1.0], "tissue:liver": [100.0, 100.0]},
                        index=["G", "H"])  # fmt: skip
    protein = pd.DataFrame(
        {"gene": ["G"], "context": ["blood:myeloid_DC"], "antibody": ["AB"],
         "n_cells": [40], "n_positive": [30]}
    )  # fmt: skip
    ref = Reference(
        genes=pd.DataFrame(index=["G", "H"]),
        contexts=ctx,
        expression=expr,
        ihc=pd.DataFrame(columns=["symbol", "context", "level", "reliability"]),
        surface=pd.DataFrame(index=["G", "H"]),
        metadata={"protein_fraction": {"measured_at_cp10k": 0.2}},
        protein=protein,
    )
    base = healthy_risk(ref, threshold_cp10k=0.2)
    assert base.fraction.loc["G", "blood:myeloid_DC"] == pytest.approx(0.75)
    assert base.fraction.loc["H", "blood:myeloid_DC"] == pytest.approx(np.exp(-20.0))  # RNA
    assert base.fraction.loc["G", "tissue:liver"] == pytest.approx(np.exp(-0.2))
    # carried to a 0.5 CP10k engagement threshold like measured cells: 0.75 ** (0.5 / 0.2)
    at = healthy_risk(
        ref, threshold_cp10k=0.2, gene_threshold_cp10k=pd.Series({"G": 0.5, "H": 0.5})
    )
    assert at.fraction.loc["G", "blood:myeloid_DC"] == pytest.approx(0.75**2.5)
    lo, hi = _wilson(np.array([0.75]), np.array([40.0]))
    assert at.low.loc["G", "blood:myeloid_DC"] == pytest.approx(lo[0] ** 2.5)
    assert at.high.loc["G", "blood:myeloid_DC"] == pytest.approx(hi[0] ** 2.5)
    long = at.long(["G", "H"]).set_index(["target", "context"])
    assert long.loc[("G", "blood:myeloid_DC"), "source"] == PROTEIN_SOURCE
    assert long.loc[("G", "blood:myeloid_DC"), "n_cells"] == 40  # the gated cells counted
    assert long.loc[("G", "tissue:liver"), "source"] == "RNA model"
    # measured protein shows the antigen present: a NOT arm on G may veto there
    shown = shown_fraction(at, ref, ["G", "H"])
    assert shown.loc["G", "blood:myeloid_DC"] == pytest.approx(lo[0] ** 2.5)
    assert shown.loc["H", "blood:myeloid_DC"] == 0.0


def _isoform_reference(isoforms: object) -> object:
    """Three contexts, genes G (an isoform row) and H (none); measured HSCs; protein on G/mono."""
    import pandas as pd

    from antigenscout.reference import Reference

    ctx = pd.DataFrame(
        {
            "name": ["Hepatocytes", "Monocytes", "Liver", "HSC"],
            "kind": ["cell_type", "cell_type", "tissue", "cell_type"],
            "tissue": ["liver", "blood", "liver", "bone marrow"],
            "system": ["hepatobiliary", "immune (myeloid)", "hepatobiliary", "haematopoietic"],
            "vital_weight": [1.0, 0.4, 1.0, 1.0],
            "immune_privileged": [False] * 4,
            "n_cells": [np.nan, np.nan, np.nan, 200.0],
        },
        index=["sc:Hepatocytes", "blood:classical_monocyte", "tissue:liver", "marrow:HSC"],
    )
    expr = pd.DataFrame(
        {
            "sc:Hepatocytes": [300.0, 300.0],
            "blood:classical_monocyte": [80.0, 80.0],
            "tissue:liver": [200.0, 200.0],
            "marrow:HSC": [50.0, 50.0],
        },
        index=["G", "H"],
    )
    protein = pd.DataFrame(
        {"gene": ["G"], "context": ["blood:classical_monocyte"], "antibody": ["AB"],
         "n_cells": [50], "n_positive": [20]}
    )  # fmt: skip
    return Reference(
        genes=pd.DataFrame({"ensembl_id": ["E1", "E2"], "synonyms": ["", ""]}, index=["G", "H"]),
        contexts=ctx,
        expression=expr,
        ihc=pd.DataFrame(columns=["symbol", "context", "level", "reliability"]),
        surface=pd.DataFrame(index=["G", "H"]),
        metadata={"measured_fraction": {"threshold_cp10k": 0.2}},
        measured_fraction=pd.DataFrame({"marrow:HSC": [0.6, 0.6]}, index=["G", "H"]),
        protein=protein,
        isoforms=isoforms,
    )


def _isoform_table(contexts: str, effect: str = "exclude") -> object:
    import pandas as pd

    return pd.DataFrame(
        {
            "gene": ["G"],
            "target_isoform": ["membrane G"],
            "other_isoform": ["soluble sG"],
            "contexts": [contexts],
            "effect": [effect],
            "note": ["liver RNA taken as soluble sG (Doe 2000)"],
            "rationale": ["hand-built"],
            "source": ["Doe J. 2000. PMID 1"],
        }
    )


@pytest.mark.parametrize("thresholds", [False, True])
def test_isoform_exclusion_zeroes_only_its_pairs(thresholds: bool) -> None:
    import pandas as pd

    from antigenscout.tl import healthy_risk
    from antigenscout.tl._risk import ISOFORM_SOURCE

    table = _isoform_table(r"sc:Hepatocytes;tissue:liv.*;marrow:HSC;blood:.*")
    plain, iso = _isoform_reference(None), _isoform_reference(table)
    kw = {"threshold_cp10k": 0.2, "modality": "car-t"}
    if thresholds:
        kw["gene_threshold_cp10k"] = pd.Series({"G": 0.5, "H": 0.5})
    want = healthy_risk(plain, **kw)  # the unmodified computation
    got = healthy_risk(iso, **kw)
    assert want.isoform is None
    excluded = ["sc:Hepatocytes", "tissue:liver", "marrow:HSC"]  # RNA model and measured cells
    for attr in ("fraction", "low", "high"):
        w, g = getattr(want, attr), getattr(got, attr)
        if w is None:
            assert g is None
            continue
        assert (g.loc["G", excluded] == 0.0).all()
        assert (w.loc["G", excluded] > 0.1).all()
        # everything else as computed without the table: H whole, G's other contexts
        pd.testing.assert_series_equal(g.loc["H"], w.loc["H"])
        others = ["blood:classical_monocyte"]  # measured surface protein is the membrane form
        pd.testing.assert_series_equal(g.loc["G", others], w.loc["G", others])
    rows = got.isoform.set_index("context")
    assert rows.loc["sc:Hepatocytes", "fraction_before"] == pytest.approx(
        want.fraction.loc["G", "sc:Hepatocytes"]
    )
    assert not rows.loc["blood:classical_monocyte", "applied"]
    summ = got.summary(["G", "H"])
    assert summ.loc["H", "isoform_note"] == "none"
    assert summ.loc["G", "worst_context"] == "Monocytes"
    assert summ.loc["G", "vital_risk"] == pytest.approx(
        0.4 * want.fraction.loc["G", "blood:classical_monocyte"]
    )
    note = summ.loc["G", "isoform_note"]
    assert note.startswith("liver RNA taken as soluble sG (Doe 2000) [excluded: ")
    f_hep = want.fraction.loc["G", "sc:Hepatocytes"]
    assert f"Hepatocytes {f_hep:.2f}" in note
    assert "[kept: Monocytes]" in note
    assert "Hepatocytes" not in got.localisation(["G"])["G"]
    long = got.long(["G", "H"]).set_index(["target", "context"])
    row = long.loc[("G", "sc:Hepatocytes")]  # stays in the table, at 0, saying why
    assert row["positive_fraction"] == 0.0
    assert row["risk"] == 0.0
    assert row["source"].startswith(f"{ISOFORM_SOURCE}: soluble sG; engagement {f_hep:.2f}")
    assert long.loc[("H", "sc:Hepatocytes"), "source"] == "RNA model"


def test_isoform_note_changes_no_number() -> None:
    from antigenscout.tl import healthy_risk

    plain = healthy_risk(_isoform_reference(None), threshold_cp10k=0.2)
    noted = healthy_risk(
        _isoform_reference(_isoform_table("sc:Hepatocytes", effect="note")), threshold_cp10k=0.2
    )
    np.testing.assert_array_equal(noted.fraction.to_numpy(), plain.fraction.to_numpy())
    assert "[noted only: Hepatocytes]" in noted.summary(["G"]).loc["G", "isoform_note"]
    long = noted.long(["G"]).set_index("context")
    assert long.loc["sc:Hepatocytes", "source"] == "RNA model; isoform note: soluble sG here, "\
        "not excluded"  # fmt: skip
    gene_level = healthy_risk(
        _isoform_reference(_isoform_table("", effect="note")), threshold_cp10k=0.2
    )
    assert gene_level.summary(["G"]).loc["G", "isoform_note"] == (
        "liver RNA taken as soluble sG (Doe 2000)"
    )


def test_profile_names_the_excluded_isoform() -> None:
    from antigenscout.tl import profile_agent

    ref = _isoform_reference(_isoform_table("sc:Hepatocytes"))
    prof = profile_agent(["G"], agent="car-t", reference=ref, kinds=("cell_type", "tissue"))
    row = prof.set_index("context").loc["sc:Hepatocytes"]
    assert row["positive_fraction"] == 0.0
    assert "G: other isoform: soluble sG; engagement" in row["source"]
    assert prof.attrs["isoform_notes"]["G"].startswith("liver RNA taken as soluble sG")
    assert "H" not in profile_agent(["H"], agent="car-t", reference=ref).attrs["isoform_notes"]
    assert prof.set_index("context").loc["tissue:liver", "positive_fraction"] > 0.5


def test_missing_rna_is_filled_not_zero(mini_reference) -> None:
    """A context where the reference has no RNA for a gene takes the gene's median level
    over the contexts that have it (not 0: absent data must not look safe); a gene with no
    RNA anywhere is engaged everywhere; the filled contexts are counted and named."""
    import numpy as np
    import pandas as pd

    from antigenscout.reference import Reference
    from antigenscout.tl._risk import (
        CP10K_TO_NTPM,
        MISSING_RNA_SOURCE,
        healthy_expression,
        healthy_risk,
    )

    ref = mini_reference
    expr = ref.expression.copy()
    expr.loc["G1", "sc:b"] = np.nan  # one context missing
    expr.loc["G2"] = np.nan  # no RNA at all
    gapped = Reference(
        genes=ref.genes,
        contexts=ref.contexts,
        expression=expr,
        ihc=ref.ihc,
        surface=ref.surface,
        metadata={"name": "mini-gapped"},
    )
    levels, filled = healthy_expression(gapped)
    known = expr.loc["G1", ["sc:heart", "tissue:liver"]].to_numpy(dtype=float)
    assert levels.loc["G1", "sc:b"] == pytest.approx(np.median(known))
    assert filled.loc["G1", "sc:b"]
    assert not filled.loc["G1", "sc:heart"]
    assert np.isinf(levels.loc["G2"]).all()
    assert filled.loc["G2"].all()
    hr = healthy_risk(gapped, threshold_cp10k=0.2, use_ihc=False)
    mu = float(np.median(known))
    assert hr.fraction.loc["G1", "sc:b"] == pytest.approx(np.exp(-0.2 * CP10K_TO_NTPM / mu))
    assert (hr.fraction.loc["G2"] == 1.0).all()
    summ = hr.summary(pd.Index(["G1", "G2", "G3"]))
    assert summ["rna_missing_contexts"].tolist() == [1, 3, 0]
    long = hr.long(["G1"]).set_index("context")
    assert long.loc["sc:b", "source"] == MISSING_RNA_SOURCE
    assert long.loc["sc:heart", "source"] == "RNA model"


def test_organ_system_risk_by_hand() -> None:
    """At least one organ harmed, organs independent, the worst context within each; blood,
    marrow and immune cells one organ."""
    from antigenscout.tl._risk import organ_system_risk

    systems = ["nervous", "nervous", "haematopoietic", "immune (myeloid)", "skin"]
    risk = np.array(
        [
            [0.3, 0.6, 0.0, 0.0, 0.0],  # one organ: its worst context
            [0.0, 0.0, 0.5, 0.8, 0.0],  # marrow and myeloid cells: one organ
            [0.2, 0.0, 0.2, 0.0, 0.2],  # three organs: 1 - 0.8^3
            [0.0] * 5,
        ]
    )
    got = organ_system_risk(risk, systems)
    np.testing.assert_allclose(got, [0.6, 0.8, 1 - 0.8**3, 0.0])
    # brute force: enumerate which organs are harmed
    rng = np.random.default_rng(0)
    r = rng.uniform(0, 1, size=(1, 5))
    p = [r[0, :2].max(), r[0, 2:4].max(), r[0, 4]]
    none = np.prod([1 - x for x in p])
    assert organ_system_risk(r, systems)[0] == pytest.approx(1 - none)
    assert organ_system_risk(np.zeros((2, 0)), []).tolist() == [0.0, 0.0]


def test_persisting_drug_adds_harm_over_organs(mini_reference) -> None:
    """A living drug that persists (CAR-T) carries its harms in every organ system:
    ``1 - prod(1 - risk)`` over the three contexts of the mini reference (three systems); a
    dosed agent (ADC) its worst context's. ``n_systems_engaged`` counts systems at >= 0.5."""
    from antigenscout.tl import healthy_risk

    for modality, persists in (("car-t", True), ("adc", False), (None, False)):
        hr = healthy_risk(mini_reference, threshold_cp10k=0.2, modality=modality)
        assert hr.over_organs is persists
        summ = hr.summary(hr.fraction.index)
        risk = hr.risk.reindex(summ.index).to_numpy()
        want = 1 - np.prod(1 - risk, axis=1) if persists else risk.max(axis=1)
        np.testing.assert_allclose(summ["vital_risk"], want, rtol=1e-12)
        engaged = (hr.fraction >= 0.5).reindex(summ.index).sum(axis=1)
        assert (summ["n_systems_engaged"] == engaged).all()  # three distinct systems
    # the gene-specific threshold path keeps the choice
    hr = healthy_risk(
        mini_reference,
        threshold_cp10k=0.2,
        modality="car-t",
        gene_threshold_cp10k=pd.Series(0.5, index=hr.fraction.index[:3]),
    )
    assert hr.over_organs


def test_exposure_barriers_and_pregnancy_on_the_shipped_reference() -> None:
    """A protein agent (ADC) engages cells behind the blood–brain, –retina and –testis barriers
    at BARRIER_EXPOSURE of what a CAR-T cell does at the same level (CAR-T cells cross them);
    pregnancy contexts are left out for both unless asked for; nothing else moves."""
    from antigenscout.reference import load_reference
    from antigenscout.tl import healthy_risk
    from antigenscout.tl._risk import BARRIER_EXPOSURE

    assert pytest.approx(0.0015 * 99 / (0.0015 * 99 + 1)) == BARRIER_EXPOSURE
    ref = load_reference()
    ctx = ref.contexts
    behind = ctx.index[ctx["barrier"].ne("none")]
    preg = ctx.index[ctx["pregnancy"]]
    assert {"sc:Excitatory neurons", "sc:Rod photoreceptor cells", "sc:Spermatocytes"} <= set(
        behind
    )
    assert "sc:Syncytiotrophoblasts" in preg
    assert "sc:Spermatogonia" not in behind
    genes = ["GFAP", "SNAP25", "RHO", "ERBB2", "KISS1", "CD19"]
    adc = healthy_risk(ref, threshold_cp10k=0.2, modality="adc").fraction.loc[genes]
    cart = healthy_risk(ref, threshold_cp10k=0.2, modality="car-t").fraction.loc[genes]
    with_preg = healthy_risk(ref, threshold_cp10k=0.2, modality="car-t", pregnancy=True)
    np.testing.assert_allclose(adc[behind], cart[behind] * BARRIER_EXPOSURE, rtol=1e-12)
    assert (adc[preg] == 0).all().all()
    assert (cart[preg] == 0).all().all()
    assert with_preg.fraction.loc["KISS1", preg].max() > 0.5  # placental KISS1
    open_ = ctx.index.difference(behind.union(preg))
    pd.testing.assert_frame_equal(adc[open_], cart[open_])
    # the risk table says why
    long = healthy_risk(ref, threshold_cp10k=0.2, modality="adc").long(["GFAP"])
    row = long.set_index("context").loc["sc:Astrocytes"]
    assert "behind the blood-brain barrier: engagement × 0.129" in row["source"]


def test_consequence_against_an_integrated_regrowth() -> None:
    """A dosed agent's lasting loss is what first-order regrowth (time constant the renewal
    time) leaves missing when the next dose comes, integrated here with an ODE solver; beyond
    the organ's reserve it is the share of function lost; a living drug keeps its loss."""
    from scipy.integrate import solve_ivp

    from antigenscout.tl._risk import DOSING_INTERVAL_DAYS, consequence

    e, weight = np.array([[0.9, 0.9, 0.9, 0.2]]), np.array([1.0, 0.8, 1.0, 1.0])
    reserve = np.array([0.0, 0.5, 0.4, 0.0])
    renewal = np.array([5.0, 30.0, np.inf, 40.0])
    want = []
    for j in range(4):
        rate = 0.0 if np.isinf(renewal[j]) else 1.0 / renewal[j]
        sol = solve_ivp(
            lambda _t, y, r=rate: -r * y,
            (0.0, DOSING_INTERVAL_DAYS),
            [e[0, j]],
            rtol=1e-12,
            atol=1e-14,
        )
        missing = sol.y[0, -1]
        want.append(weight[j] * max(0.0, (missing - reserve[j]) / (1 - reserve[j])))
    got = consequence(e, weight, reserve, renewal, persists=False)
    np.testing.assert_allclose(got[0], want, rtol=1e-6, atol=1e-12)
    assert got[0, 1] == 0.0  # the kidney's reserve absorbs what it has not remade
    living = consequence(e, weight, reserve, renewal, persists=True)
    np.testing.assert_allclose(living[0], weight * np.clip((e[0] - reserve) / (1 - reserve), 0, 1))


def test_organ_reserve_table_covers_the_shipped_reference() -> None:
    """Every shipped context is tabulated; a context's own row beats its tissue's, which beats
    its system's."""
    from antigenscout.reference import load_reference
    from antigenscout.tl._risk import organ_reserve

    ctx = load_reference().contexts
    res = organ_reserve(ctx)
    assert not res["reserve_source"].str.startswith("not tabulated").any()
    assert res.loc["sc:Melanocytes", "renewal_days"] == np.inf  # context row
    assert res.loc["sc:Basal keratinocytes", "renewal_days"] == 40.0  # skin system row
    assert res.loc["sc:Cardiomyocytes", "reserve"] == 0.4  # heart muscle tissue row
    assert res.loc["sc:Endothelial cells", "reserve"] == 0.0  # cardiovascular system row
    assert res.loc["tissue:adrenal gland", "reserve"] == 0.9
    assert ((res["reserve"] >= 0) & (res["reserve"] < 1)).all()
    assert (res["renewal_days"] > 0).all()


def test_summary_and_long_carry_the_consequence(mini_reference) -> None:
    """targets' ``consequence`` is the worst context's for a dosed agent and combined over
    organ systems for a living drug, like ``vital_risk``; risk.tsv's column is the matrix."""
    from antigenscout.tl import healthy_risk
    from antigenscout.tl._risk import organ_system_risk

    for modality in ("car-t", "adc"):
        hr = healthy_risk(mini_reference, threshold_cp10k=0.2, modality=modality)
        genes = hr.fraction.index
        mat = hr.consequence(genes)
        summ = hr.summary(genes)
        want = (
            organ_system_risk(mat, hr.contexts["system"].to_numpy())
            if hr.over_organs
            else mat.max(axis=1)
        )
        np.testing.assert_allclose(summ["consequence"], want, rtol=1e-12)
        assert (summ.loc[summ["consequence"] == 0, "consequence_context"] == "none").all()
        assert (mat <= hr.risk.reindex(genes).to_numpy() + 1e-12).all()  # never above severity
        long = hr.long(list(genes[:5]))
        pos = pd.Index(genes).get_indexer(long["target"])
        col = hr.contexts.index.get_indexer(long["context"])
        np.testing.assert_allclose(long["consequence"], mat[pos, col], rtol=1e-12)


def test_apical_antigens_are_reached_through_the_tight_junction() -> None:
    """A binder engages an apical or tight-junction antigen in a polarised epithelium at
    APICAL_EXPOSURE of what it would if UniProt named no side; elsewhere, other genes and a
    TCR-T (peptide-HLA on every surface) are unchanged; risk.tsv says why."""
    from dataclasses import replace

    from antigenscout.reference import load_reference
    from antigenscout.tl import healthy_risk
    from antigenscout.tl._risk import APICAL_EXPOSURE, BARRIER_EXPOSURE

    assert APICAL_EXPOSURE == BARRIER_EXPOSURE
    ref = load_reference()
    blind = replace(ref, surface=ref.surface.assign(epithelial_side=pd.NA))
    genes = ["CLDN18", "FOLR1", "EPCAM", "ERBB2"]
    pol = ref.contexts.index[ref.contexts["polarised"]]
    assert {"sc:Gastric mucus-secreting cells", "tissue:stomach", "sc:Hepatocytes"} <= set(pol)
    assert "sc:Basal keratinocytes" not in pol
    for modality, hidden in (("adc", True), ("car-t", True), ("tcr-t", False)):
        got = healthy_risk(ref, threshold_cp10k=0.2, modality=modality).fraction.loc[genes]
        want = healthy_risk(blind, threshold_cp10k=0.2, modality=modality).fraction.loc[genes]
        factor = APICAL_EXPOSURE if hidden else 1.0
        apical = ["CLDN18", "FOLR1"]  # EPCAM is lateral too; ERBB2: no side named
        np.testing.assert_allclose(got.loc[apical, pol], want.loc[apical, pol] * factor)
        other = got.columns.difference(pol)
        pd.testing.assert_frame_equal(got.loc[apical, other], want.loc[apical, other])
        pd.testing.assert_frame_equal(got.loc[["EPCAM", "ERBB2"]], want.loc[["EPCAM", "ERBB2"]])
    row = (
        healthy_risk(ref, threshold_cp10k=0.2, modality="car-t")
        .long(["CLDN18"])
        .set_index("context")
        .loc["sc:Gastric mucus-secreting cells"]
    )
    assert "apical or tight-junction antigen in a polarised epithelium" in row["source"]


def test_routes_on_the_shipped_reference() -> None:
    """Intrathecal: a protein agent reaches the CNS as a CAR-T cell does, the retina and testis
    still behind their barriers. Intravesical: the bladder fully (its apical antigens too), the
    rest of the body across the urothelium. An unknown route is refused."""
    from antigenscout._errors import InputError
    from antigenscout.reference import load_reference
    from antigenscout.tl import healthy_risk
    from antigenscout.tl._risk import BARRIER_EXPOSURE, apical_genes, exposure

    ref = load_reference()
    ctx = ref.contexts
    brain = ctx.index[ctx["barrier"].eq("blood-brain")]
    other_barrier = ctx.index[ctx["barrier"].isin(["blood-retina", "blood-testis"])]
    bladder = ctx.index[ctx["tissue"].eq("urinary bladder")]
    assert list(bladder) == ["tissue:urinary bladder"]
    it = exposure(ctx, "antibody", route="intrathecal")
    assert (it[brain] == 1).all()
    assert (it[other_barrier] == BARRIER_EXPOSURE).all()
    iv = exposure(ctx, "antibody", route="intravesical")
    open_ = ctx.index[ctx["barrier"].eq("none") & ~ctx["pregnancy"]].difference(bladder)
    assert (iv[bladder] == 1).all()
    assert np.allclose(iv[open_], BARRIER_EXPOSURE)
    np.testing.assert_allclose(iv[brain], BARRIER_EXPOSURE**2)
    # the agent is in the bladder's lumen: its apical antigens are not hidden there
    genes = ref.surface.index[apical_genes(ref, ref.surface.index)]
    genes = genes.intersection(ref.expression.index)
    sys_ = healthy_risk(ref, threshold_cp10k=0.2, modality="antibody").fraction
    ves = healthy_risk(ref, threshold_cp10k=0.2, modality="antibody", route="intravesical")
    b = "tissue:urinary bladder"
    assert (ves.fraction.loc[genes, b] >= sys_.loc[genes, b]).all()
    assert (ves.fraction.loc[genes, b] > sys_.loc[genes, b]).any()
    long = ves.long(list(genes[:3]))
    assert long.loc[long["context"] != b, "source"].str.contains("outside the bladder").all()
    # the bladder's own rows say nothing of an apical factor that was not applied
    assert not long.loc[long["context"] == b, "source"].str.contains("apical").any()
    # intrathecally, the choroid plexus's CSF-facing apical side is reached (FOLR1)
    cp = "tissue:choroid plexus"
    it_fr = healthy_risk(ref, threshold_cp10k=0.2, modality="antibody", route="intrathecal")
    assert it_fr.fraction.loc["FOLR1", cp] > 5 * sys_.loc["FOLR1", cp]
    row = it_fr.long(["FOLR1"]).set_index("context").loc[cp]
    assert "apical" not in row["source"]
    with pytest.raises(InputError, match="intrathecal"):
        exposure(ctx, "antibody", route="oral")
