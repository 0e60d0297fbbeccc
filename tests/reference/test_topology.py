"""Ectodomains from SURFY/UniProt topology strings, checked on hand-worked proteins."""

from __future__ import annotations

import pandas as pd
import pytest

from antigenscout.reference._topology import ectodomain, parse_topology


@pytest.mark.parametrize(
    ("name", "topology", "largest", "total", "n_tm"),
    [
        # CD19 as SURFY writes it: signal 1-20, outside 21-292, one helix: 292 - 21 + 1 = 272
        ("CD19", "SP:1-20;NC:21-292;TM:293-315;CY:316-556", 272, 272, 1),
        # CD20 (MS4A1, P11836): loops 79-83 (5) and 144-187 (44) between four helices
        (
            "MS4A1",
            "CY:1-54;TM:55-78;NC:79-83;TM:84-103;CY:104-122;TM:123-143;NC:144-187;TM:188-212;"
            "CY:213-297",
            44,
            49,
            4,
        ),
        # CD52 (P31358): GPI-anchored peptide, 25-61 after the signal: 37 residues
        ("CD52", "SP:1-24;NC:25-61", 37, 37, 0),
        # a re-entrant (IM) segment is neither outside nor a helix
        ("AQP-like", "CY:1-7;TM:8-36;NC:37-48;TM:49-66;CY:67-70;IM:71-76;CY:77-94", 12, 12, 2),
        # a type II protein (N-terminus inside, C-type lectin-like): 66..265 is 200 residues
        ("type II", "CY:1-44;TM:45-65;NC:66-265", 200, 200, 1),
    ],
)
def test_ectodomain_of_known_proteins(
    name: str, topology: str, largest: int, total: int, n_tm: int
) -> None:
    e = ectodomain(topology)
    assert (e.largest_aa, e.total_aa, e.n_tm) == (largest, total, n_tm), name


def test_signal_peptide_is_not_extracellular() -> None:
    assert ectodomain("SP:1-30;TM:31-50;CY:51-90").largest_aa == 0


@pytest.mark.parametrize(
    "bad", ["NC:10-5", "XX:1-4", "NC:1-10;TM:8-20", "NC 1-10", "SP:1-20;;NC:a-b"]
)
def test_malformed_topology_is_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="topology"):
        parse_topology(bad)


def test_embedded_reference_topology_matches_the_strings() -> None:
    """The shipped surface table holds what the parser gives for SURFY's strings."""
    from antigenscout.reference import load_reference

    surf = load_reference().surface
    assert surf.loc["CD19", "ectodomain_aa"] == 272
    assert surf.loc["MS4A1", "ectodomain_aa"] == 44
    assert surf.loc["MS4A1", "n_tm"] == 4
    assert bool(surf.loc["CD52", "gpi_anchor"])


def test_beta_strands_cross_the_membrane_but_are_not_helices() -> None:
    # a beta barrel (VDAC-like): strands TB alternate with short loops
    e = ectodomain("NC:1-25;TB:26-35;NC:36-38;TB:39-47;CY:48-53;TB:54-64;NC:65-68")
    assert (e.largest_aa, e.total_aa, e.n_tm, e.n_segments) == (25, 32, 0, 3)


@pytest.mark.parametrize(
    ("gene", "largest", "total", "n_tm", "source"),
    [
        # SURFY master strings (surfy_master_all_swissprot.tsv.gz), parsed by hand:
        # CD3E P07766 SP:1-21;NC:22-129;TM:130-151;CY:152-207 -> 129 - 22 + 1 = 108
        ("CD3E", 108, 108, 1, "uniprot"),
        # CD81 P60033 CY:1-11;TM:12-35;NC:36-58;TM:59-82;CY:83-89;TM:90-114;NC:115-201;...
        # loops 36-58 (23) and 115-201 (87)
        ("CD81", 87, 110, 4, "uniprot"),
        # LILRB4 Q8NHJ6 SP:1-23;NC:24-259;TM:260-280;CY:281-448 -> 236
        ("LILRB4", 236, 236, 1, "uniprot"),
        # CD99 P14209 SP:1-20;NC:21-125;TM:126-148;CY:149-185 -> 105
        ("CD99", 105, 105, 1, "uniprot"),
        # STEAP1 Q9UHE8 (Phobius): loops 92-117 (26), 184-217 (34), 278-289 (12)
        ("STEAP1", 34, 72, 6, "phobius"),
        # TYROBP O43914 SP:1-24;NC:25-40;TM:41-64;CY:65-113 -> 16: stays a short ectodomain
        ("TYROBP", 16, 16, 1, "uniprot"),
        # TFRC P02786, Phobius constrained by CSPA peptides: CY:1-19;TM:20-37;NC:38-760
        ("TFRC", 723, 723, 1, "phobius-cspa"),
    ],
)
def test_embedded_reference_topology_from_the_whole_proteome(
    gene: str, largest: int, total: int, n_tm: int, source: str
) -> None:
    """Genes outside SURFY's surfaceome get the master table's topology."""
    from antigenscout.reference import load_reference

    surf = load_reference().surface
    row = surf.loc[gene]
    assert (row["ectodomain_aa"], row["ectodomain_total_aa"], row["n_tm"]) == (
        largest,
        total,
        n_tm,
    ), gene
    assert row["topology_source"] == source, gene


def test_embedded_reference_entry_choice_and_soluble_proteins() -> None:
    from antigenscout.reference import load_reference

    surf = load_reference().surface
    # GAPDH: a Swiss-Prot entry without helix or signal peptide -> no topology, 0 helices
    assert surf.loc["GAPDH", "n_tm"] == 0
    assert pd.isna(surf.loc["GAPDH", "ectodomain_aa"])
    # NRXN1 has two entries; HGNC lists P58400 (neurexin-1-beta, NC:33-366 -> 334)
    assert surf.loc["NRXN1", "uniprot_accession"] == "P58400"
    assert surf.loc["NRXN1", "ectodomain_aa"] == 334
    # ADORA3: HGNC's accession (P0DMS8) is not in the 2017 table; of P33765 (UniProt
    # topology, 318 aa) and Q6P2N6 (Phobius, 266 aa) the UniProt one is kept: 7 helices
    assert surf.loc["ADORA3", "uniprot_accession"] == "P33765"
    assert surf.loc["ADORA3", "n_tm"] == 7
    assert surf.loc["ADORA3", "topology_source"] == "uniprot"
