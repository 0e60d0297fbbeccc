"""Ectodomains from SURFY/UniProt topology strings, checked on hand-worked proteins."""

from __future__ import annotations

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
