"""The RNA levels the risk model reads: infiltrate and endothelium removed, missing RNA filled."""

from __future__ import annotations

import pytest


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

    from antigenscout.tl._healthy_expression import minus_infiltrate

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
    from antigenscout.tl._healthy_expression import immune_admixture, minus_infiltrate

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

    from antigenscout.tl._healthy_expression import immune_admixture, minus_infiltrate

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
    from antigenscout.tl._healthy_expression import immune_admixture, minus_infiltrate

    # the markers imply 20 of PTPRC; the cluster has 10: both shares are halved
    ref = _admixture_reference(myocyte_ptprc=10.0)
    a = immune_admixture(ref)
    assert a.loc["sc:Myocytes", "sc:Macrophages"] == pytest.approx(0.01)
    assert a.loc["sc:Myocytes", "sc:T-cells"] == pytest.approx(0.005)
    assert minus_infiltrate(ref).loc["HLA-DRA", "sc:Myocytes"] == pytest.approx(120 - 50.5)


def test_embedded_parenchyma_keeps_its_own_genes_and_loses_the_infiltrate() -> None:
    import antigenscout as asc
    from antigenscout.reference import load_reference
    from antigenscout.tl._healthy_expression import immune_admixture, minus_infiltrate

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


def test_missing_rna_is_filled_not_zero(mini_reference) -> None:
    """A context where the reference has no RNA for a gene takes the gene's median level
    over the contexts that have it (not 0: absent data must not look safe); a gene with no
    RNA anywhere is engaged everywhere; the filled contexts are counted and named."""
    import numpy as np
    import pandas as pd

    from antigenscout.reference import Reference
    from antigenscout.tl._healthy_expression import MISSING_RNA_SOURCE, healthy_expression
    from antigenscout.tl._risk import CP10K_TO_NTPM, healthy_risk

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
