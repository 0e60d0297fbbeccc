"""Clinical benchmark trust: intervals, ties, indication rules, vocabulary fixes, modality
mapping and the extended (agent-list) evaluation set."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from antigenscout._types import MODALITIES
from antigenscout.benchmark import (
    TissueVocabulary,
    load_indications,
    match_indication,
    parse_modalities,
    run_benchmark,
    summarise_percentiles,
    topk_hits,
)
from antigenscout.benchmark._extended import build_extended_targets, evaluation_key
from antigenscout.benchmark._metrics import expected_top_hit, paired_bootstrap, percentile_parts
from antigenscout.benchmark._record import default_shared
from antigenscout.benchmark._rules import MODALITY_RULES
from antigenscout.reference import Reference

#: Genes of the fake reference (conftest.py).
GENES = ["BCELL1", "SKIN1", "HEART1", "FLAT1", "TUM1", "TUM2", "NONE1", "NONE2"]


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    return path


# ----------------------------------------------------------------------------- intervals


def _stats() -> dict:
    return {
        "mean": ("x", lambda a: a.mean(axis=1), True),
        "median": ("x", lambda a: np.median(a, axis=1), True),
    }


def test_paired_bootstrap_is_seeded_and_paired() -> None:
    rng = np.random.default_rng(1)
    base = rng.uniform(size=40)
    values = {"eng": {"x": base + 0.05}, "bl": {"x": base}}
    a = paired_bootstrap(values, _stats(), engine="eng", n_boot=500, seed=7)
    b = paired_bootstrap(values, _stats(), engine="eng", n_boot=500, seed=7)
    assert a == b  # reproducible
    d = a["paired"]["bl"]["mean"]
    # every row differs by exactly 0.05: a paired resample gives a degenerate interval
    assert d["estimate"] == pytest.approx(0.05)
    assert d["ci95"] == pytest.approx([0.05, 0.05])
    assert d["verdict"] == "better"
    lo, hi = a["ci95"]["bl"]["mean"]
    assert lo <= base.mean() <= hi
    # an unpaired comparison of these would overlap; the per-method intervals do
    assert a["ci95"]["eng"]["mean"][0] < a["ci95"]["bl"]["mean"][1]


def test_paired_bootstrap_lower_is_better_and_empty() -> None:
    values = {"eng": {"x": np.zeros(30)}, "bl": {"x": np.ones(30)}}
    st = {"rate": ("x", lambda a: a.mean(axis=1), False)}
    res = paired_bootstrap(values, st, engine="eng", n_boot=200)
    assert res["paired"]["bl"]["rate"]["verdict"] == "better"
    same = paired_bootstrap({"eng": {"x": np.ones(30)}, "bl": {"x": np.ones(30)}}, st,
                            engine="eng", n_boot=200)  # fmt: skip
    assert same["paired"]["bl"]["rate"]["verdict"] == "not distinguishable"
    empty = paired_bootstrap({"eng": {"x": np.array([])}, "bl": {"x": np.array([])}}, st,
                             engine="eng", n_boot=200)  # fmt: skip
    assert empty["ci95"]["eng"]["rate"] is None
    assert empty["paired"]["bl"]["rate"]["estimate"] is None


# ----------------------------------------------------------------------------- ties


def test_ties_counted_and_top_hits_expected() -> None:
    assert percentile_parts(2.0, np.array([1.0, 2.0, 2.0, 3.0])) == (1, 2, 4)
    # strictly best among 100: top 1%
    assert expected_top_hit(100, 0, 100, 0.01) == 1.0
    # tied with everyone: the chance of landing in the top 10 of 101 ~ 10%
    assert expected_top_hit(0, 100, 100, 0.10) == pytest.approx(11 / 101)
    s = summarise_percentiles([1.0, 0.92, 0.5])
    assert s["top10_fraction"] == pytest.approx(2 / 3)
    assert s["top5_fraction"] == pytest.approx(1 / 3)
    # expected hits override the threshold rule when given
    s2 = summarise_percentiles([0.95, 0.95], {"top5_fraction": [0.5, 0.5]})
    assert s2["top5_fraction"] == 0.5
    v = pd.Series([1.0, 1.0, 1.0, 0.2], index=list("abcd"))
    assert topk_hits(v, ["a"])["ties"] == 2
    assert np.isnan(topk_hits(v, ["zzz"])["ties"])


# ----------------------------------------------------------------------------- indications


@pytest.mark.parametrize(
    ("text", "rule"),
    [
        ("Small cell lung cancer", "sclc"),
        ("small-cell lung cancer (extensive stage)", "sclc"),
        ("ES-SCLC", "sclc"),
        ("non-small cell lung cancer", "nsclc"),
        ("NSCLC (nonsquamous)", "nsclc"),
        ("NSCLC (non squamous)", "nsclc"),
        ("squamous NSCLC", "nsclc_squamous"),
        ("lung cancer", "lung_unspecified"),
        ("B-cell non Hodgkin lymphoma", "dlbcl"),
        ("Hodgkin lymphoma", "hodgkin"),
        ("gallbladder cancer", "biliary"),
        ("bladder cancer", "urothelial"),
        ("anorectal melanoma", "melanoma"),
        ("CLL-1 positive AML", "aml"),
        ("chronic lymphocytic leukaemia", "cll"),
        ("malignant pleural effusion of breast cancer", "breast"),
        ("Malignant pleural disease / mesothelioma", "mesothelioma"),
        ("Malignant ascites (EpCAM+ carcinomas)", "ascites"),
        ("pancreatic neuroendocrine tumour", "neuroendocrine"),
        ("gastric GIST", "gist"),
        ("Wilms tumour of the kidney", "wilms"),
        ("papillary renal cell carcinoma", "renal_papillary"),
        ("glioblastoma", "glioblastoma"),
        ("uterine carcinosarcoma", "carcinosarcoma"),
        ("Ewing sarcoma", "ewing"),
        ("metastatic castration-resistant prostate cancer (mCRPC)", "prostate"),
        ("T-cell malignancies (T-ALL; mature TCL)", "t_all"),
        ("peripheral T-cell lymphoma", "t_lymphoma"),
    ],
)
def test_indication_rules_do_not_swallow_neighbours(text: str, rule: str) -> None:
    got = match_indication(text, load_indications())
    assert got is not None
    assert got.rule == rule


def test_sclc_uses_the_packaged_sclc_line_and_every_sample_exists() -> None:
    import antigenscout as asc

    rules = load_indications()
    sclc = match_indication("small cell lung cancer", rules)
    assert sclc.dataset == "cell_lines"
    assert sclc.samples == ("SCLC-21H",)
    lines = set(asc.datasets.hpa_cell_lines().obs_names)
    cohorts = set(asc.datasets.tcga_medians().obs_names)
    for r in rules:
        have = {"cell_lines": lines, "tcga": cohorts}.get(r.dataset)
        if have is not None:
            assert set(r.samples) <= have, r.rule


# ----------------------------------------------------------------------------- vocabulary

VOCAB_CONTEXTS = [
    ("sc:Rod photoreceptor cells", "Rod photoreceptor cells", "cell_type", "retina", "eye"),
    ("tissue:retina", "Retina", "tissue", "retina", "eye"),
    ("marrow:HSC", "Haematopoietic stem cells", "cell_type", "bone marrow", "haematopoietic"),
    ("tissue:bone marrow", "Bone marrow", "tissue", "bone marrow", "haematopoietic"),
    ("sc:Undifferentiated cells", "Intestinal crypt stem/progenitor cells", "cell_type",
     "small intestine/colon", "gastrointestinal"),
    ("tissue:colon", "Colon", "tissue", "colon", "gastrointestinal"),
    ("sc:Spermatogonia", "Spermatogonia", "cell_type", "testis", "reproductive (male)"),
    ("tissue:testis", "Testis", "tissue", "testis", "reproductive (male)"),
    ("sc:Skin fibro", "Fibroblasts", "cell_type", "connective tissue (all organs)", "adipose"),
    ("sc:Basal keratinocytes", "Basal keratinocytes", "cell_type", "skin", "skin"),
    ("tissue:skin", "Skin", "tissue", "skin", "skin"),
    ("sc:Astrocytes", "Astrocytes", "cell_type", "brain", "nervous"),
    ("tissue:spinal cord", "Spinal cord", "tissue", "spinal cord", "nervous"),
    ("sc:Schwann cells", "Schwann cells", "cell_type", "peripheral nerve", "nervous"),
    ("sc:Proximal tubular cells", "Proximal tubular cells", "cell_type", "kidney", "renal"),
    ("tissue:kidney", "Kidney", "tissue", "kidney", "renal"),
    ("sc:Hepatocytes", "Hepatocytes", "cell_type", "liver", "hepatobiliary"),
    ("sc:Cholangiocytes", "Cholangiocytes", "cell_type", "liver/bile ducts", "hepatobiliary"),
    ("tissue:liver", "Liver", "tissue", "liver", "hepatobiliary"),
    ("sc:Skeletal myocytes", "Skeletal myocytes", "cell_type", "skeletal muscle", "musculo"),
]  # fmt: skip


@pytest.fixture(scope="module")
def vocab() -> TissueVocabulary:
    ctx = pd.DataFrame(
        VOCAB_CONTEXTS, columns=["context", "name", "kind", "tissue", "system"]
    ).set_index("context")
    return TissueVocabulary(contexts=ctx)


def test_ocular_surface_is_not_retina(vocab: TissueVocabulary) -> None:
    for text in ("ocular surface", "ocular surface/cornea", "conjunctiva", "eye (uvea)"):
        m = vocab.map(text)
        assert m.contexts == (), text
        assert m.status == "unmapped"
        assert m.absent_terms
    assert "tissue:retina" in vocab.map("retina").contexts
    assert "tissue:retina" in vocab.map("retinal pigment").contexts
    both = vocab.map("oral mucosa; ocular surface")
    assert "ocular surface" in both.unmapped_segments


def test_stem_cells_resolved_by_organ(vocab: TissueVocabulary) -> None:
    assert vocab.map("intestinal stem cells").contexts == ("sc:Undifferentiated cells",)
    assert vocab.map("bone marrow stem cells").contexts == ("marrow:HSC",)
    assert vocab.map("haematopoietic stem cells").contexts == ("marrow:HSC",)
    assert vocab.map("testis (stem cells)").contexts == ("sc:Spermatogonia", "tissue:testis")
    alone = vocab.map("stem cells")
    assert alone.contexts == ()
    assert alone.ambiguous_terms == ("stem cell",)
    assert alone.status == "unmapped"
    # an organ without a stem-cell context keeps the organ only, never marrow HSC
    hair = vocab.map("hair follicle stem cells")
    assert "marrow:HSC" not in hair.contexts
    assert "tissue:skin" in hair.contexts


def test_vocabulary_review_fixes(vocab: TissueVocabulary) -> None:
    # bile ducts are cholangiocytes, not hepatocytes
    bile = vocab.map("bile duct epithelium").contexts
    assert "sc:Cholangiocytes" in bile
    assert "sc:Hepatocytes" not in bile
    # CNS excludes peripheral-nerve Schwann cells
    cns = vocab.map("CNS").contexts
    assert "sc:Astrocytes" in cns
    assert "tissue:spinal cord" in cns
    assert "sc:Schwann cells" not in cns
    # the glomerulus is only in the bulk kidney sample
    assert vocab.map("glomerulus").contexts == ("tissue:kidney",)
    # muscle fibres are not nerve fibres
    assert "sc:Schwann cells" not in vocab.map("muscle fibres").contexts
    # a cell type absent from the named organ keeps the organ's bulk sample only
    stroma = vocab.map("bone marrow stromal cells").contexts
    assert set(stroma) == {"sc:Skin fibro", "tissue:bone marrow"}


# ----------------------------------------------------------------------------- modalities


def test_modality_names_are_engine_modalities() -> None:
    assert {m for _p, m in MODALITY_RULES} <= set(MODALITIES)
    cases = {
        "CAR-T": "car-t",
        "ADC": "adc",
        "BiTE": "bispecific",
        "T-cell engager": "bispecific",
        "bispecific (T-cell engager)": "bispecific",
        "antibody": "antibody",
        "TCR-T": "tcr-t",
        "bispecific (TCR-based)": "tcr-t",
        "radioligand": "radioligand",
        "177Lu-PSMA-617": "radioligand",
        "90Y-ibritumomab tiuxetan (radioimmunoconjugate)": "radioligand",
        "CAR-NK": "car-nk",
        "agonist antibody": "agonist",
    }
    for text, mod in cases.items():
        assert parse_modalities(text)[0] == mod, text


# ----------------------------------------------------------------------------- extended set


def _lists(folder: Path) -> Path:
    folder.mkdir()
    pd.DataFrame(
        [
            {"Drug_Name": "cel-1", "Commercial_Name": "", "Company": "",
             "Tumor_Target_Symbol": "TUM1", "Tumor_Target_Alias": "",
             "Ensembl_Gene_ID": "ENSG00000000004",
             "Cell_Origin": "", "Disease_Area": "alpha;beta", "Approvals": "FDA"},
        ]
    ).to_csv(folder / "CAR-T-approved.csv", index=False)  # fmt: skip
    pd.DataFrame(
        [
            {"Target_Label": "T2", "Symbol": "TUM2", "Ensembl_Gene_ID": "ENSG00000000005",
             "Status_Bucket": "Clinical_trials", "notes": "alpha_prostate"},
            {"Target_Label": "T1", "Symbol": "TUM1", "Ensembl_Gene_ID": "ENSG00000000004",
             "Status_Bucket": "Preclinical", "notes": "prostate"},
            {"Target_Label": "S", "Symbol": "SKIN1", "Ensembl_Gene_ID": "ENSG00000000001",
             "Status_Bucket": "Clinical_trials", "notes": "stopped_kidney_toxicity"},
        ]
    ).to_csv(folder / "radioligand-targets.csv", index=False)  # fmt: skip
    return folder


def test_extended_builder_dedups_and_excludes(tmp_path: Path, fake_reference: Reference) -> None:
    from antigenscout.benchmark._rules import IndicationRule

    rules = [
        IndicationRule("alpha", "alpha", "tcga", ("T1", "T2"), "alpha"),
        IndicationRule("prostate", "prostat", "tcga", ("T1",), "p"),
    ]
    visible = pd.DataFrame(
        [{"id": "V1", "indication": "alpha cancer", "target_genes": "TUM1", "modality": "ADC"}]
    )
    folder = _lists(tmp_path / "lists")
    ext = build_extended_targets(folder, visible=visible, reference=fake_reference, rules=rules)
    rows = ext.rows.set_index("id")
    # TUM1 in alpha is a visible pair (whatever the modality): not repeated
    assert not ((rows["target_genes"] == "TUM1") & (rows["indication"] == "alpha")).any()
    assert ext.excluded["reason"].str.startswith("seen").sum() == 1
    # TUM1 in beta (no rule) stays, as does the TUM2 radioligand for prostate
    assert set(zip(rows["target_genes"], rows["indication"], strict=True)) == {
        ("TUM1", "beta"),
        ("TUM2", "prostate cancer"),
    }
    assert rows.loc[rows["target_genes"] == "TUM2", "modality"].iloc[0] == "radioligand"
    reasons = " ".join(ext.excluded["reason"])
    assert "preclinical" in reasons
    assert "names no indication" in reasons  # a toxicity note is not an indication
    assert evaluation_key(["B", "A"], rules[0], "x") == "A;B|tcga:T1+T2"


def test_extended_run_reports_apart_with_intervals(
    tmp_path: Path, fake_reference: Reference
) -> None:
    rules = tmp_path / "ind.tsv"
    rules.write_text(
        "rule\tpattern\tdataset\tsamples\trationale\n"
        "alpha\talpha\ttcga\tT1;T2\talpha tumours\n"
        "prostate\tprostat\ttcga\tT1\tp\n"
    )
    targets = _write(
        tmp_path / "targets.tsv",
        [
            {"id": "V1", "indication": "alpha cancer", "target_genes": "TUM1",
             "antigen_note": "", "modality": "CAR-T"},
            {"id": "V2", "indication": "alpha cancer", "target_genes": "TUM2",
             "antigen_note": "", "modality": "radioligand"},
        ],
    )  # fmt: skip
    toxic = _write(
        tmp_path / "tox.tsv",
        [{"id": "X1", "therapy": "x", "modality": "CAR-T", "target_genes": "BCELL1",
          "antigen_note": "", "off_tumor_tissue_or_cell": "normal B cells",
          "evidence_type": "clinical", "attribution": "on-target/off-tumor"}],
    )  # fmt: skip
    X = np.zeros((2, len(GENES)), dtype=np.float32)
    X[:, GENES.index("TUM1")] = [400.0, 300.0]
    X[:, GENES.index("TUM2")] = [50.0, 0.0]
    X[:, GENES.index("FLAT1")] = 10.0
    tumour = AnnData(X=X, obs=pd.DataFrame(index=["T1", "T2"]), var=pd.DataFrame(index=GENES))
    tumour.uns["antigenscout"] = {"kind": "bulk"}
    res = run_benchmark(
        targets, toxic, out_dir=tmp_path / "out", reference=fake_reference,
        indications=rules, datasets={"tcga": tumour}, extended=True,
        lists_dir=_lists(tmp_path / "lists"), n_boot=200,
    )  # fmt: skip
    t = res.targets_rows.set_index("id")
    assert t.loc["V2", "modality"] == "radioligand"
    for m in ("antigenscout", "fold_change", "sens_at_spec"):
        assert f"{m}_ties" in t
        assert f"{m}_top10" in t
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    # old keys kept, intervals and paired differences added
    for k in ("median_percentile", "top1_fraction", "top5_fraction", "top10_fraction"):
        assert k in m["targets"]
        assert len(m["targets"]["ci95"][k]) == 2
    assert m["toxicity"]["on_target"]["recall_at_3"] is not None
    assert set(m["toxicity"]["on_target"]["ci95"]) == {"recall_at_1", "recall_at_3", "recall_at_5"}
    assert "flag_rate_at_3" in m["toxicity"]["negative_controls"]["ci95"]
    assert "ci95" in m["baselines"]["fold_change"]["targets"]
    pd_ = m["paired_differences"]["fold_change"]
    assert set(pd_["targets"]["median_percentile"]) == {
        "estimate", "ci95", "higher_is_better", "verdict"
    }  # fmt: skip
    assert pd_["toxicity"]["negative_controls"]["flag_rate_at_3"]["higher_is_better"] is False
    assert m["bootstrap"]["n_resamples"] == 200
    # the extended set is reported apart and never mixed into the visible numbers
    ext = m["extended"]
    assert ext["counts"]["excluded_seen"] == 1
    assert ext["targets"]["n_rows"] == 2
    assert "ci95" in ext["targets"]
    assert "targets" in ext["paired_differences"]["sens_at_spec"]
    assert m["targets"]["n_rows"] == 2
    assert (tmp_path / "out" / "extended_targets_rows.tsv").is_file()
    assert (tmp_path / "out" / "extended_excluded.tsv").is_file()


@pytest.mark.skipif(default_shared() is None, reason="shared/ not available")
def test_extended_set_from_the_real_lists() -> None:
    from antigenscout.reference import load_reference

    shared = default_shared()
    assert shared is not None
    lists = shared / "data" / "reference_lists"
    if not lists.is_dir():
        pytest.skip("no reference_lists")
    ref = load_reference()
    rules = load_indications()
    visible = pd.read_csv(
        shared / "benchmark" / "validated_targets.tsv", sep="\t", dtype=str,
        keep_default_na=False,
    )  # fmt: skip
    ext = build_extended_targets(lists, visible=visible, reference=ref, rules=rules)
    rows = ext.rows
    assert len(rows) > 100
    assert rows["id"].is_unique
    # every row's modality is an engine modality
    assert all(parse_modalities(t)[0] in MODALITIES for t in rows["modality"])
    # no row repeats a visible (genes, tumour data) pair
    seen = set()
    for _, r in visible.iterrows():
        g, _ = ref.map_genes([s.strip() for s in r["target_genes"].split(";")])
        seen.add(evaluation_key(g.dropna(), match_indication(r["indication"], rules), ""))
    for _, r in rows.iterrows():
        key = evaluation_key(
            r["target_genes"].split("; "), match_indication(r["indication"], rules), ""
        )
        assert key not in seen or key.endswith("|text:"), r["id"]
    reasons = " ".join(ext.excluded["reason"])
    assert "viral antigen" in reasons
    assert "mutation-specific" in reasons
    # tarlatamab (DLL3, ES-SCLC) goes to the SCLC line, not to lung adenocarcinoma
    dll3 = rows[(rows["target_genes"] == "DLL3") & rows["indication"].str.contains("SCLC")]
    assert len(dll3)
    assert all(match_indication(x, rules).rule == "sclc" for x in dll3["indication"])


def test_cli_has_extended_and_bootstrap_options() -> None:
    from click.testing import CliRunner

    from antigenscout.benchmark._cli import benchmark_command

    out = CliRunner().invoke(benchmark_command, ["--help"])
    assert out.exit_code == 0
    for opt in ("--extended", "--n-boot", "--seed"):
        assert opt in out.output
