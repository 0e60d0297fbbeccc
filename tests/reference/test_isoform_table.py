"""The curated isoform table: it loads, its patterns name reference contexts, its rows a source."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from antigenscout._errors import InputError
from antigenscout.reference import ISOFORM_COLUMNS, load_isoforms, load_reference

TABLE = (
    Path(__file__).resolve().parents[2]
    / "src"
    / "antigenscout"
    / "reference"
    / "annotations"
    / "isoforms.tsv"
)
#: A source names a paper by a PubMed id, a DOI or the address of the record it was checked at.
IDENTIFIER = re.compile(r"PMID \d+|doi:10\.\d+/\S+|https?://\S+")


def test_table_loads_with_the_reference() -> None:
    table = load_isoforms()
    assert list(table.columns) == list(ISOFORM_COLUMNS)
    assert table["gene"].is_unique
    assert set(table["effect"]) <= {"exclude", "note"}
    ref = load_reference()
    pd.testing.assert_frame_equal(ref.isoforms, table)
    assert set(table["gene"]) <= set(ref.expression.index)


def test_every_row_has_a_source_with_an_identifier() -> None:
    table = load_isoforms()
    for rec in table.itertuples():
        assert rec.source.strip(), rec.gene
        for paper in rec.source.split("; "):
            assert IDENTIFIER.search(paper), (rec.gene, paper)
        assert rec.rationale.strip(), rec.gene
        assert re.search(r"\(\w.* \d{4}\)", rec.note), rec.gene  # the note names its citation


def test_every_context_pattern_matches_a_reference_context() -> None:
    table = load_isoforms()
    ids = load_reference().contexts.index.astype(str)
    for rec in table.itertuples():
        entries = [e for e in rec.contexts.split(";") if e.strip()]
        if rec.effect == "exclude":
            assert entries, rec.gene
        for e in entries:
            assert ids.str.fullmatch(e.strip()).any(), (rec.gene, e)


def test_pairs_expand_patterns_to_contexts() -> None:
    pairs = load_reference().isoform_pairs()
    il1rap = set(pairs.loc[pairs["gene"] == "IL1RAP", "context"])
    assert il1rap == {"sc:Hepatocytes", "tissue:liver"}
    cldn18 = set(pairs.loc[pairs["gene"] == "CLDN18", "context"])
    assert cldn18 == {"sc:Alveolar cells type 1", "sc:Alveolar cells type 2", "tissue:lung"}
    assert not any("stomach" in c.lower() or "gastric" in c.lower() for c in cldn18)
    egfr = pairs[pairs["gene"] == "EGFR"]
    assert len(egfr) == 1
    assert pd.isna(egfr["context"].iloc[0])  # a gene-level note


def test_bad_tables_are_refused(tmp_path: Path) -> None:
    good = pd.read_csv(TABLE, sep="\t", dtype=str, keep_default_na=False)

    def write(df: pd.DataFrame, name: str) -> Path:
        path = tmp_path / name
        df.to_csv(path, sep="\t", index=False)
        return path

    with pytest.raises(InputError, match="effect"):
        load_isoforms(write(good.assign(effect="drop"), "effect.tsv"))
    with pytest.raises(InputError, match="source"):
        load_isoforms(write(good.assign(source=""), "source.tsv"))
    with pytest.raises(InputError, match="name its contexts"):
        load_isoforms(write(good.assign(contexts="", effect="exclude"), "bare.tsv"))
    with pytest.raises(InputError, match="regular expression"):
        load_isoforms(write(good.assign(contexts="sc:(Hepato"), "regex.tsv"))
    with pytest.raises(InputError, match="columns"):
        load_isoforms(write(good.drop(columns="note"), "cols.tsv"))
