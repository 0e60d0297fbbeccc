"""Membrane topology strings (SURFY / UniProt) and what a binder can reach.

SURFY (Bausch-Fluck et al. 2018, PNAS 115:E10988) writes each surface protein's topology as
``;``-separated segments ``KIND:START-END`` with 1-based inclusive residue ranges, e.g. CD19
``SP:1-20;NC:21-292;TM:293-315;CY:316-556``:

=====  ==========================================================
kind   meaning
=====  ==========================================================
SP     signal peptide (cleaved; not part of the mature protein)
NC     non-cytoplasmic: extracellular (or luminal) segment
TM     transmembrane helix
TB     transmembrane beta strand (of a beta barrel: VDAC1, VDAC2)
IM     intramembrane segment (a re-entrant loop that does not cross the membrane)
CY     cytoplasmic segment
=====  ==========================================================

An antibody, CAR or ligand binds the *non-cytoplasmic* segments of a plasma-membrane
protein. What matters for a binder is the largest contiguous one (an epitope needs a folded
stretch; a 5-residue loop between two helices rarely holds one): CD20 (MS4A1) has loops of
5 and 44 residues, DAP12-like adaptors have a dozen.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Ectodomain", "Segment", "ectodomain", "parse_topology"]

_SEGMENT = re.compile(r"^\s*(SP|NC|TM|TB|IM|CY)\s*:\s*(\d+)\s*-\s*(\d+)\s*$")


@dataclass(frozen=True)
class Segment:
    """One topology segment, residues ``start``..``end`` inclusive."""

    kind: str
    start: int
    end: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1


@dataclass(frozen=True)
class Ectodomain:
    """What lies outside the cell: the largest and the summed non-cytoplasmic segments."""

    largest_aa: int  #: longest contiguous non-cytoplasmic segment (residues)
    total_aa: int  #: all non-cytoplasmic residues
    n_tm: int  #: transmembrane helices (beta strands ``TB`` are not counted)
    n_segments: int  #: non-cytoplasmic segments


def parse_topology(text: str) -> list[Segment]:
    """Parse a SURFY/UniProt topology string into segments.

    Parameters
    ----------
    text
        E.g. ``"SP:1-20;NC:21-292;TM:293-315;CY:316-556"``.

    Returns
    -------
    The segments in order.

    Raises
    ------
    ValueError
        If a segment is malformed, ends before it starts, or overlaps the previous one.

    Examples
    --------
    >>> [s.kind for s in parse_topology("SP:1-20;NC:21-292;TM:293-315;CY:316-556")]
    ['SP', 'NC', 'TM', 'CY']
    """
    out: list[Segment] = []
    for part in str(text).split(";"):
        if not part.strip():
            continue
        m = _SEGMENT.match(part)
        if m is None:
            msg = f"malformed topology segment {part!r} in {text!r}"
            raise ValueError(msg)
        seg = Segment(m.group(1), int(m.group(2)), int(m.group(3)))
        if seg.end < seg.start or (out and seg.start <= out[-1].end):
            msg = f"topology segment {part!r} in {text!r} is empty or overlaps the previous one"
            raise ValueError(msg)
        out.append(seg)
    return out


def ectodomain(text: str) -> Ectodomain:
    """Extracellular extent of a protein from its topology string.

    Signal peptides are cleaved off and do not count.

    Examples
    --------
    CD19, a single-pass type I protein:

    >>> ectodomain("SP:1-20;NC:21-292;TM:293-315;CY:316-556")
    Ectodomain(largest_aa=272, total_aa=272, n_tm=1, n_segments=1)

    CD20 (MS4A1), four helices, two extracellular loops of 5 and 44 residues:

    >>> e = ectodomain("CY:1-54;TM:55-78;NC:79-83;TM:84-103;CY:104-122;TM:123-143;"
    ...                "NC:144-187;TM:188-212;CY:213-297")
    >>> e.largest_aa, e.total_aa, e.n_tm
    (44, 49, 4)
    """
    segs = parse_topology(text)
    nc = [s.length for s in segs if s.kind == "NC"]
    return Ectodomain(
        largest_aa=max(nc, default=0),
        total_aa=sum(nc),
        n_tm=sum(s.kind == "TM" for s in segs),
        n_segments=len(nc),
    )
