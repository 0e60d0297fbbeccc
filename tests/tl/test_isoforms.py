"""Isoforms: engagement 0 where a context's RNA is another isoform, and what the outputs say."""

from __future__ import annotations

import numpy as np
import pytest


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
    from antigenscout.tl._isoforms import ISOFORM_SOURCE

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
