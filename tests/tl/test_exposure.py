"""Exposure: barriers, pregnancy, routes and apical antigens."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest


def test_exposure_barriers_and_pregnancy_on_the_shipped_reference() -> None:
    """A protein agent (ADC) engages cells behind the blood–brain, –retina and –testis barriers
    at BARRIER_EXPOSURE of what a CAR-T cell does at the same level (CAR-T cells cross them);
    pregnancy contexts are left out for both unless asked for; nothing else moves."""
    from antigenscout.reference import load_reference
    from antigenscout.tl import healthy_risk
    from antigenscout.tl._exposure import BARRIER_EXPOSURE

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


def test_apical_antigens_are_reached_through_the_tight_junction() -> None:
    """A binder engages an apical or tight-junction antigen in a polarised epithelium at
    APICAL_EXPOSURE of what it would if UniProt named no side; elsewhere, other genes and a
    TCR-T (peptide-HLA on every surface) are unchanged; risk.tsv says why."""
    from dataclasses import replace

    from antigenscout.reference import load_reference
    from antigenscout.tl import healthy_risk
    from antigenscout.tl._exposure import APICAL_EXPOSURE, BARRIER_EXPOSURE

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
    from antigenscout.tl._exposure import BARRIER_EXPOSURE, apical_genes, exposure

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
