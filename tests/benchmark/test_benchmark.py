"""Clinical benchmark: metric formulas, rules, vocabulary and a tiny end-to-end run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from anndata import AnnData

from antigenscout._errors import InputError
from antigenscout.benchmark import (
    TissueVocabulary,
    attribution_class,
    load_indications,
    match_indication,
    parse_genes,
    parse_modalities,
    percentile_of,
    run_benchmark,
    summarise_percentiles,
    topk_hits,
)
from antigenscout.reference import Reference

#: Genes of the fake reference (conftest.py).
GENES = ["BCELL1", "SKIN1", "HEART1", "FLAT1", "TUM1", "TUM2", "NONE1", "NONE2"]

# ----------------------------------------------------------------------------- metrics


def test_percentile_perfect_and_reversed() -> None:
    rng = np.random.default_rng(0)
    truth = rng.normal(size=200)
    best = truth.max()
    perfect = [percentile_of(best, np.delete(truth, truth.argmax())) for _ in range(3)]
    reversed_ = percentile_of(truth.min(), np.delete(truth, truth.argmin()))
    s = summarise_percentiles(perfect)
    assert s["median_percentile"] == 1.0
    assert s["top1_fraction"] == 1.0
    assert s["top5_fraction"] == 1.0
    r = summarise_percentiles([reversed_])
    assert r["median_percentile"] == 0.0
    assert r["top1_fraction"] == 0.0


def test_percentile_ties_and_lexicographic() -> None:
    assert percentile_of(1.0, np.array([1.0, 1.0])) == 0.5
    keys = np.array([[0.5, 0.1], [0.5, 0.9], [0.2, 1.0]])
    # same score as two others, higher tie-break than one of them, above the third
    assert percentile_of(np.array([0.5, 0.5]), keys) == pytest.approx(2 / 3)
    assert np.isnan(percentile_of(1.0, np.array([])))
    assert summarise_percentiles([np.nan])["n_scored"] == 0


def test_topk_hits_competition_rank() -> None:
    v = pd.Series([0.9, 0.9, 0.5, 0.0], index=["a", "b", "c", "d"])
    assert topk_hits(v, ["b"])["best_rank"] == 1.0  # ties share the better rank
    hits = topk_hits(v, ["c"])
    assert (hits["hit_at_1"], hits["hit_at_3"]) == (0.0, 1.0)
    # a zero value is never flagged
    assert topk_hits(v, ["d"])["hit_at_5"] == 0.0
    # ties earn the expected hit under random tie-breaking: b shares rank 1 with a
    assert topk_hits(v, ["b"])["hit_at_1"] == pytest.approx(0.5)


def test_tying_everything_gains_nothing() -> None:
    # 10 contexts all tied: P(named one in top 3) = 3/10, not 1
    v = pd.Series(1.0, index=[f"c{i}" for i in range(10)])
    assert topk_hits(v, ["c7"])["hit_at_3"] == pytest.approx(0.3)
    # two named among 10 tied, k=1 -> 2/10
    assert topk_hits(v, ["c1", "c2"])["hit_at_1"] == pytest.approx(0.2)


# ----------------------------------------------------------------------------- rules


def test_modality_gene_and_attribution_rules() -> None:
    assert parse_modalities("CAR-T; antibody; ADC") == ["car-t", "antibody", "adc"]
    assert parse_modalities("immunotoxin (antibody fragment-toxin)") == ["antibody"]
    assert parse_modalities("bispecific (TCR-based ImmTAC)") == ["tcr-t"]
    assert parse_modalities("TCR-T") == ["tcr-t"]
    assert parse_genes("MS4A1; CD52") == ["MS4A1", "CD52"]
    assert attribution_class("none-reported (negative control)") == (
        "negative_control",
        "none_reported",
    )
    assert attribution_class("on-target/off-tumor + payload")[0] == "on_target"
    assert attribution_class("debated: on-target vs off-target")[0] == "uncertain"
    assert attribution_class("predicted on-target; none reported clinically") == (
        "uncertain",
        "conflicting",
    )


def test_packaged_indication_rules_match_by_keyword() -> None:
    rules = load_indications()
    assert match_indication("Acute myeloid leukemia", rules).dataset == "vangalen2019"
    assert match_indication("relapsed B-ALL in adults", rules).samples == ("REH",)
    assert match_indication("NSCLC (non-squamous)", rules).samples == ("LUAD",)
    assert match_indication("squamous NSCLC", rules).samples == ("LUSC",)
    assert match_indication("Classical Hodgkin lymphoma", rules).samples == ("HDLM-2",)
    assert match_indication("something unheard of", rules) is None


# ----------------------------------------------------------------------------- vocabulary


def test_vocabulary_general_phrases(fake_reference: Reference) -> None:
    vocab = TissueVocabulary.from_reference(fake_reference)
    b = vocab.map("normal B-cells")
    assert set(b.contexts) == {"sc:B-cells", "blood:naive_B_cell", "blood:memory_B_cell"}
    assert b.status == "mapped"
    bile = vocab.map("bile duct epithelium")
    assert "sc:Cholangiocytes" in bile.contexts
    assert "tissue:gallbladder" in bile.contexts
    skin = vocab.map("epidermal keratinocytes")
    assert skin.contexts == ("sc:Basal keratinocytes",)
    assert vocab.map("Salivary glands.").contexts == ("tissue:salivary gland",)
    mel = vocab.map("healthy melanocytes in skin")
    assert mel.contexts == ("sc:Melanocytes",)
    odd = vocab.map("xyzzy organ")
    assert odd.status == "unmapped"
    assert odd.unmapped_segments == ("xyzzy organ",)
    part = vocab.map("cardiomyocytes; inner ear")
    assert part.status == "partial"
    assert part.contexts == ("sc:Cardiomyocytes",)


# ----------------------------------------------------------------------------- end to end


def _write(path: Path, rows: list[dict[str, str]]) -> Path:
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    return path


_TOX_BASE = {"therapy": "x", "antigen_note": "", "evidence_type": "clinical"}
_TOX_ROWS = [
    {**_TOX_BASE, "id": "X1", "modality": "CAR-T", "target_genes": "BCELL1",
     "off_tumor_tissue_or_cell": "normal B cells", "attribution": "on-target/off-tumor"},
    {**_TOX_BASE, "id": "X2", "modality": "ADC", "target_genes": "HEART1",
     "off_tumor_tissue_or_cell": "skin", "attribution": "payload-driven"},
    {**_TOX_BASE, "id": "X3", "modality": "CAR-T", "target_genes": "FLAT1",
     "off_tumor_tissue_or_cell": "none reported",
     "attribution": "none-reported (negative control)"},
    {**_TOX_BASE, "id": "X4", "modality": "CAR-T", "target_genes": "SKIN1",
     "off_tumor_tissue_or_cell": "xyzzy organ", "attribution": "on-target"},
    {**_TOX_BASE, "id": "X5", "modality": "TCR-T", "target_genes": "BCELL1; SKIN1",
     "off_tumor_tissue_or_cell": "skin; normal B cells",
     "attribution": "on-target; off-target"},
    {**_TOX_BASE, "id": "X6", "modality": "antibody", "target_genes": "SKIN1",
     "off_tumor_tissue_or_cell": "corneal epithelium (cornea)",
     "attribution": "on-target/off-tumor"},
]  # fmt: skip


def test_end_to_end(tmp_path: Path, fake_reference: Reference) -> None:  # noqa: PLR0915
    rules = tmp_path / "ind.tsv"
    rules.write_text(
        "rule\tpattern\tdataset\tsamples\trationale\n"
        "alpha\talpha\ttcga\tT1;T2\talpha tumours\n"
        "beta\tbeta\tnone\t\tno beta samples packaged\n"
    )
    targets = _write(
        tmp_path / "targets.tsv",
        [
            {"id": "V1", "indication": "alpha cancer", "target_genes": "TUM1",
             "antigen_note": "", "modality": "CAR-T"},
            {"id": "V2", "indication": "beta cancer", "target_genes": "TUM1",
             "antigen_note": "", "modality": "antibody"},
            {"id": "V3", "indication": "alpha cancer", "target_genes": "NOTAGENE (enzyme)",
             "antigen_note": "glycolipid, not a gene product", "modality": "antibody"},
            {"id": "V4", "indication": "alpha cancer", "target_genes": "TUM1; TUM2",
             "antigen_note": "", "modality": "bispecific"},
            {"id": "V5", "indication": "gamma cancer", "target_genes": "TUM1",
             "antigen_note": "", "modality": "ADC"},
        ],
    )  # fmt: skip
    toxic = _write(tmp_path / "tox.tsv", _TOX_ROWS)
    X = np.zeros((2, len(GENES)), dtype=np.float32)
    X[:, GENES.index("TUM1")] = [400.0, 300.0]
    X[:, GENES.index("TUM2")] = [50.0, 0.0]
    X[:, GENES.index("FLAT1")] = 10.0
    tumour = AnnData(X=X, obs=pd.DataFrame(index=["T1", "T2"]), var=pd.DataFrame(index=GENES))
    tumour.uns["antigenscout"] = {"kind": "bulk"}

    res = run_benchmark(
        targets,
        toxic,
        out_dir=tmp_path / "out",
        reference=fake_reference,
        indications=rules,
        datasets={"tcga": tumour},
    )
    t = res.targets_rows.set_index("id")
    assert len(t) == 5  # nothing dropped
    assert t.loc["V1", "status"] == "scored"
    assert t.loc["V1", "antigenscout_percentile"] == 1.0  # the obvious target is ranked first
    assert t.loc["V1", "fold_change_percentile"] == 1.0
    assert t.loc["V2", "status"] == "not_scored"
    assert "no beta samples packaged" in t.loc["V2", "reason"]
    assert "not a gene product" in t.loc["V3", "reason"]
    assert t.loc["V4", "gate"] == "or"
    assert t.loc["V4", "status"] == "scored"
    assert "no indication rule" in t.loc["V5", "reason"]
    # decoys: every other candidate of the class (fewer than N_DECOYS), nearest tumour level
    from antigenscout.benchmark._evaluations import decoys

    assert t.loc["V1", "n_decoys"] == t.loc["V1", "n_candidates"] - 1
    assert 0 <= t.loc["V1", "antigenscout_decoy_percentile"] <= 1
    table = pd.DataFrame(
        {"tumor_mean_cp10k": [10.0, 9.0, 12.0, 0.0, 100.0]}, index=["G", "a", "b", "c", "d"]
    )
    assert list(decoys(table, "G")) == ["a", "b", "d", "c"]  # |log1p| distance order

    x = res.toxicity_rows.set_index("id")
    assert x.loc["X1", "antigenscout_hit_at_1"] == 1.0
    assert x.loc["X2", "class"] == "negative_control"
    assert x.loc["X2", "antigenscout_hit_at_5"] == 0.0  # HEART1 is not in skin
    assert x.loc["X3", "subclass"] == "none_reported"
    assert x.loc["X4", "status"] == "not_scored"
    assert "not mapped" in x.loc["X4", "reason"]
    assert {"X5a", "X5b"} <= set(x.index)  # pairwise split of tissue and attribution
    # a body site the reference has no context for is said, not silently dropped
    assert x.loc["X6", "status"] == "not_represented"
    assert x.loc["X6", "reason"].startswith("the reference has no context for: ")
    assert "corne" in x.loc["X6", "reason"]
    assert x.loc["X5b", "class"] == "negative_control"

    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["targets_decoy"]["n_rows"] == 1  # V1 (V4 is a gate)
    assert "mean_decoy_percentile" in metrics["targets_decoy"]["paired"]["fold_change"]
    assert metrics["toxicity_within_tissue"]["n_rows"] == 2
    for block in (metrics, *metrics["baselines"].values()):
        assert block["targets"]["n_rows"] == 5
        assert block["targets"]["n_scored"] == 2
        for k in ("median_percentile", "top5_fraction", "top1_fraction"):
            assert k in block["targets"]
        tox = block["toxicity"]
        assert tox["on_target"]["n_scored"] == 2
        assert tox["on_target"]["n_not_represented"] == 1
        for k in (1, 3, 5):
            assert f"recall_at_{k}" in tox["on_target"]
        assert "flag_rate_at_3" in tox["negative_controls"]
    # on-target rows rank contexts by engagement (localisation): X5a names skin, but its OR
    # gate engages the three B-cell contexts (BCELL1 800 nTPM: exp(-20/800), tied at rank 1)
    # more than skin (SKIN1 500 nTPM: exp(-20/500)), so skin ranks 4th
    assert x.loc["X5a", "antigenscout_best_rank"] == 4
    on = metrics["toxicity"]["on_target"]
    assert (on["recall_at_1"], on["recall_at_3"], on["recall_at_5"]) == (0.5, 0.5, 1.0)
    for name in ("targets_rows.tsv", "toxicity_rows.tsv"):
        assert (tmp_path / "out" / name).is_file()
    assert set(res.summary().index) == {"antigenscout", "fold_change", "sens_at_spec"}


def test_missing_tables_raise(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        run_benchmark(tmp_path / "nope.tsv", tmp_path / "nope2.tsv")
    with pytest.raises(InputError, match="not a folder"):
        run_benchmark(shared=tmp_path / "absent")


def test_cli_reports_missing_input(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from antigenscout.benchmark._cli import benchmark_command

    out = CliRunner().invoke(
        benchmark_command,
        ["--targets", str(tmp_path / "a.tsv"), "--toxicities", str(tmp_path / "b.tsv"),
         "--out", str(tmp_path / "o")],
    )  # fmt: skip
    assert out.exit_code != 0
    assert isinstance(out.exception, InputError)


def test_gate_combination_by_hand() -> None:
    from antigenscout.benchmark._engine import _combine

    v = np.array([[0.5, 0.2, 1.0], [0.5, 0.0, 0.3]])
    np.testing.assert_allclose(_combine(v, "and"), [0.5, 0.0, 0.3])
    np.testing.assert_allclose(_combine(v, "or"), [0.75, 0.2, 1.0])  # 1 - (1-a)(1-b)
    np.testing.assert_allclose(_combine(v[:1], "or"), v[0])


@pytest.mark.parametrize("modality", ["adc", "car-t"])  # worst context; over organ systems
def test_gate_of_one_gene_is_on_the_single_gene_scale(modality: str) -> None:
    """A one-gene gate placed among single genes gets exactly the gene's own risk and score: each
    gene's healthy fractions are judged at its engagement threshold, as the engine does."""
    import antigenscout as asc
    from antigenscout.benchmark._engine import _gate_score
    from antigenscout.reference import load_reference

    ref = load_reference()
    genes = ["ERBB2", "EGFR", "MSLN", "TACSTD2", "CD19", "PTPRC"]
    rng = np.random.default_rng(1)
    adata = AnnData(
        X=rng.uniform(1.0, 400.0, size=(3, len(genes))),
        var=pd.DataFrame(index=genes),
    )
    adata.uns["antigenscout"] = {"kind": "bulk"}
    asc.tl.score_targets(adata, malignant_key=None, reference=ref, modality=modality, kind="bulk")
    table = asc.get.targets_df(adata).set_index("target")
    for g in ("ERBB2", "MSLN"):
        score, cov, risk = _gate_score(table, [g], "and", modality, ref)
        assert risk == pytest.approx(table.loc[g, "vital_risk"], abs=1e-9)
        assert cov == pytest.approx(table.loc[g, "tumor_coverage"], abs=1e-12)
        assert score == pytest.approx(table.loc[g, "score"], rel=1e-6)


def test_score_toxicities_alone_matches_the_full_run(tmp_path: Path, fake_reference) -> None:
    """A second toxicity record scored alone gives the rows and metrics the full run gives."""
    from antigenscout.benchmark import score_toxicities

    rows = {r["id"]: r for r in _TOX_ROWS}
    toxic = _write(tmp_path / "tox.tsv", [rows["X1"], rows["X2"], rows["X6"]])
    rows, metrics = score_toxicities(toxic, reference=fake_reference, n_boot=200)
    x = rows.set_index("id")
    assert x.loc["X1", "antigenscout_hit_at_1"] == 1.0
    assert x.loc["X6", "status"] == "not_represented"
    on = metrics["antigenscout"]["on_target"]
    assert on["n_scored"] == 1
    assert on["n_not_represented"] == 1
    assert on["recall_at_1"] == 1.0
    assert len(on["ci95"]["recall_at_1"]) == 2
    assert "on_target" in metrics["paired"]


def test_cluster_bootstrap_moves_a_target_s_rows_together() -> None:
    """Target A holds three rows the engine wins, target B one tie: resampling whole targets
    can only give mean differences of 1 (A, A), 0.75 (A, B) or 0 (B, B), each of 4 rows or 2
    or 6, never the 0.25 or 0.5 a row bootstrap reaches; and one label per row is a row
    bootstrap."""
    from antigenscout.benchmark import paired_bootstrap

    engine = np.array([1.0, 1.0, 1.0, 0.0])
    base = np.zeros(4)
    values = {"e": {"x": engine}, "b": {"x": base}}
    captured: list[np.ndarray] = []

    def mean(a: np.ndarray) -> np.ndarray:
        out = a.mean(axis=1)
        if a.shape[0] == 1:
            captured.append(out.copy())
        return out

    res = paired_bootstrap(
        values, {"m": ("x", mean, True)}, engine="e", n_boot=400, seed=1,
        clusters=np.array(["A", "A", "A", "B"]),
    )  # fmt: skip
    seen = {round(float(v[0]), 6) for v in captured}
    assert seen <= {0.0, 0.75, 1.0}
    lo, hi = res["paired"]["b"]["m"]["ci95"]
    assert lo in (0.0, 0.75)
    assert hi == 1.0
    rows = paired_bootstrap(values, {"m": ("x", mean, True)}, engine="e", n_boot=400, seed=1)
    per_row = paired_bootstrap(
        values, {"m": ("x", mean, True)}, engine="e", n_boot=400, seed=1,
        clusters=np.array(["a", "b", "c", "d"]),
    )  # fmt: skip
    # the same estimate; intervals of the same kind (row resampling) though not the same draws
    assert per_row["paired"]["b"]["m"]["estimate"] == rows["paired"]["b"]["m"]["estimate"]
    assert per_row["paired"]["b"]["m"]["ci95"][0] < 0.75


@pytest.mark.slow
def test_packaged_tables_are_the_shared_ones_and_serve_without_a_shared_folder(
    tmp_path: Path, monkeypatch
) -> None:
    """After a plain install no shared folder is found: the benchmark reads the tables shipped
    in the package, byte-identical to shared/benchmark when that is at hand, and says so."""
    import hashlib

    from antigenscout.benchmark import _record, _run

    prov = json.loads((_record.PACKAGED_TABLES / "PROVENANCE.json").read_text())
    for name, meta in prov["files"].items():
        data = (_record.PACKAGED_TABLES / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == meta["sha256"]
        shared = _record.default_shared()
        if shared is not None and (shared / "benchmark" / name).is_file():
            assert (shared / "benchmark" / name).read_bytes() == data
    monkeypatch.setattr(_run, "default_shared", lambda: None)
    res = run_benchmark(out_dir=None, n_boot=100)
    assert res.metrics["inputs"]["tables"].startswith("packaged copy")
    assert res.metrics["inputs"]["targets"] == str(
        _record.PACKAGED_TABLES / "validated_targets.tsv"
    )
    reasons = res.targets_rows["reason"].astype(str)
    assert reasons.str.contains("tumour data unavailable").any()  # AML rows need --shared
