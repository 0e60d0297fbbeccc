"""Map free-text tissue and cell descriptions to reference contexts.

The vocabulary is built from the reference itself (context names, tissue strings, systems)
plus a short list of anatomical synonyms (``tissue_synonyms.tsv``). Nothing is keyed on
benchmark rows: any phrase such as "bile duct epithelium" or "normal B cells" is mapped the
same way.

Algorithm
---------
1. Normalise: lower case, British/American spellings unified (hemato → haemato, fiber →
   fibre, oesophagus → esophagus), hyphens and other punctuation to spaces, each word made
   singular (``cells`` → ``cell``, ``glands`` → ``gland``; words ending in -ss, -us, -is
   are kept).
2. Split the phrase into segments at ``; , / ( )`` and the words *and*, *or*, *to*.
3. In each segment find terms by greedy longest match over the word sequence. Terms are

   - every suffix of a cell-type context's name (``memory b cell``, ``b cell``,
     ``keratinocyte``; ``cell`` alone excluded) → the contexts whose name ends with it;
   - every ``/``-separated part of a context's ``tissue`` and every tissue context's
     name (``liver``, ``oral mucosa``, ``pleura``) → the contexts of that tissue;
   - synonyms, whose targets are resolved as tissue parts, as word sequences contained in
     context names (``erythroid``), as ``system:<system>`` or as ``context:<id>``; a synonym
     overrides an automatic term spelled the same.

4. Within a segment, named cell types are intersected with named tissues ("melanocytes in
   skin" → skin melanocytes). When the intersection is empty (the reference has no such
   cell type in that organ: "alveolar macrophages", "marrow stromal cells") the cell type's
   contexts are kept together with the organ's *bulk tissue* contexts only, not with every
   other cell type of the organ. Words marked ``generic`` (epithelium, mucosa) only mean
   "the tissue" and add nothing.
5. Terms marked ``unmapped`` name anatomy that the reference does not have (ocular surface,
   cornea, uvea, inner ear): they are consumed (so that a shorter term such as *ocular*
   cannot claim them) and their segment is reported as unmapped.
6. Terms marked ``organ:`` are ambiguous cell types (*stem cells*, *progenitors*): their
   candidate contexts are intersected with the organ named in the same segment, else
   anywhere in the phrase ("intestinal stem cells" → crypt stem cells, "marrow stem cells"
   → HSC). With no organ named the segment is reported as unmapped (``ambiguous_terms``);
   with an organ that has none of the candidates only the organ is kept.
7. Marker annotations (``CD33+``, ``Sca-1+``) are dropped: they name antigens, not anatomy.
8. Words that are neither terms nor stop words are reported as unmatched; a segment with
   such words and no term is an *unmapped segment*.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from ..reference import Reference

__all__ = ["TissueMapping", "TissueVocabulary", "normalise"]

#: Words that carry no anatomical meaning in a toxicity description.
_STOP = """
    a an the of in on at by for from that which who with within beyond support supporting
    normal healthy presumed expected putative possible probable probably likely proposed
    mature activated early late multilineage specific reported none unclear unknown
    including incl e g ie eg other all some cell type
"""
STOP_WORDS = frozenset(_STOP.split())
_SPLIT_WORDS = frozenset({"and", "or", "to"})
_SPELLING = (
    (re.compile(r"\bhemato"), "haemato"),
    (re.compile(r"\bhema"), "haema"),
    (re.compile(r"\boesophag"), "esophag"),
    (re.compile(r"fiber"), "fibre"),
    (re.compile(r"\btumor"), "tumour"),
)
_KEEP_S = ("ss", "us", "is", "ous")


def _singular(word: str) -> str:
    if len(word) <= 3 or not word.endswith("s") or word.endswith(_KEEP_S):  # noqa: PLR2004
        return word
    if word.endswith("ies") and len(word) > 4:  # noqa: PLR2004
        return word[:-3] + "y"
    return word[:-1]


def normalise(text: str) -> str:
    """Normalise a phrase: lower case, unified spelling, no punctuation, singular words.

    Parameters
    ----------
    text
        Free text.

    Returns
    -------
    Space-separated normalised words.

    Examples
    --------
    >>> normalise("Normal B-cells (Hematopoietic)")
    'normal b cell haematopoietic'
    """
    s = str(text).lower()
    for pat, rep in _SPELLING:
        s = pat.sub(rep, s)
    s = re.sub(r"[^a-z0-9]+", " ", s)
    return " ".join(_singular(w) for w in s.split())


def _segments(text: str) -> list[str]:
    # marker annotations such as "CD33+", "Sca-1+", "IL-1RAP+" name antigens, not anatomy
    text = re.sub(r"[\w-]+\+", " ", str(text))
    parts = re.split(r"[;,/()\[\]]", text)
    out: list[str] = []
    for part in parts:
        words = normalise(part).split()
        cur: list[str] = []
        for w in words:
            if w in _SPLIT_WORDS:
                if cur:
                    out.append(" ".join(cur))
                cur = []
            else:
                cur.append(w)
        if cur:
            out.append(" ".join(cur))
    return out


@dataclass(frozen=True)
class TissueMapping:
    """Result of mapping one phrase.

    Attributes
    ----------
    phrase
        The input text.
    contexts
        Reference context ids, in reference order.
    terms
        Vocabulary terms found.
    unmapped_segments
        Segments with content words but no term.
    unmatched_words
        Content words not covered by any term.
    absent_terms
        Terms naming anatomy that the reference lacks (``unmapped`` in the synonym table).
    ambiguous_terms
        Ambiguous cell terms (``organ:``) left unresolved because no organ was named.
    """

    phrase: str
    contexts: tuple[str, ...]
    terms: tuple[str, ...] = ()
    unmapped_segments: tuple[str, ...] = ()
    unmatched_words: tuple[str, ...] = ()
    absent_terms: tuple[str, ...] = ()
    ambiguous_terms: tuple[str, ...] = ()

    @property
    def status(self) -> str:
        """``'mapped'``, ``'partial'`` (some segments unmapped) or ``'unmapped'``."""
        if not self.contexts:
            return "unmapped"
        return "partial" if self.unmapped_segments else "mapped"


@dataclass
class TissueVocabulary:
    """Phrase → reference-context vocabulary built from a :class:`Reference`.

    Parameters
    ----------
    contexts
        The reference's context table (index id; ``name``, ``kind``, ``tissue``, ``system``).
    synonyms
        Table with ``term`` and ``maps_to`` (``|``-separated); the packaged
        ``tissue_synonyms.tsv`` when ``None``.

    Examples
    --------
    >>> from antigenscout.reference import load_reference
    >>> vocab = TissueVocabulary.from_reference(load_reference())  # doctest: +SKIP
    >>> vocab.map("normal B cells").contexts[:2]  # doctest: +SKIP
    ('sc:B-cells', 'blood:memory_B_cell')
    """

    contexts: pd.DataFrame
    synonyms: pd.DataFrame | None = None
    terms: dict[str, tuple[frozenset[str], str]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:  # noqa: PLR0912
        if self.synonyms is None:
            self.synonyms = load_synonyms()
        ctx = self.contexts
        self._order = {c: i for i, c in enumerate(ctx.index.astype(str))}
        names = {c: normalise(re.sub(r"\(.*?\)", " ", str(n))) for c, n in ctx["name"].items()}
        self._names = names
        self._tissue_parts = {
            c: {normalise(p) for p in re.split(r"[/,]", re.sub(r"\(.*?\)", " ", str(t)))} - {""}
            for c, t in ctx["tissue"].items()
        }
        self._systems = {c: str(s) for c, s in ctx["system"].items()}
        terms: dict[str, tuple[set[str], str]] = {}

        def add(term: str, c: str, kind: str) -> None:
            if not term or term in STOP_WORDS:
                return
            got = terms.setdefault(term, (set(), kind))
            got[0].add(c)

        kinds = ctx["kind"].astype(str)
        self._kinds = {str(c): str(k) for c, k in kinds.items()}
        for c in ctx.index:
            if kinds[c] == "cell_type":
                words = names[c].split()
                for i in range(len(words)):
                    suffix = words[i:]
                    if suffix == ["cell"] or all(w in STOP_WORDS for w in suffix):
                        continue
                    add(" ".join(suffix), c, "cell")
            else:
                add(names[c], c, "tissue")
        for c, parts in self._tissue_parts.items():
            for p in parts:
                add(p, c, "tissue")
        # tissue terms map to every context of that tissue
        for term, (cs, kind) in list(terms.items()):
            if kind == "tissue":
                cs.update(self._tissue_contexts(term))
        final = {t: (frozenset(cs), k) for t, (cs, k) in terms.items()}
        for row in self.synonyms.itertuples(index=False):
            key = normalise(row.term)
            targets = [t.strip() for t in str(row.maps_to).split("|") if t.strip()]
            if targets == ["generic"]:
                final[key] = (frozenset(), "generic")
                continue
            if targets == ["unmapped"]:
                final[key] = (frozenset(), "absent")
                continue
            resolved: set[str] = set()
            kind = "tissue"
            if targets[0].startswith("organ:"):
                targets = [targets[0].split(":", 1)[1], *targets[1:]]
                for t in targets:
                    resolved |= self._resolve(t, final)[0]
                final[key] = (frozenset(resolved), "ambiguous")
                continue
            for t in targets:
                cs, k = self._resolve(t, final)
                resolved |= cs
                if k == "cell":
                    kind = "cell"
            final[key] = (frozenset(resolved), kind)
        self.terms = final
        self._max_len = max((len(t.split()) for t in final), default=1)

    @classmethod
    def from_reference(
        cls, reference: Reference, synonyms: pd.DataFrame | None = None
    ) -> TissueVocabulary:
        """Build the vocabulary from ``reference.contexts``."""
        return cls(contexts=reference.contexts, synonyms=synonyms)

    # ------------------------------------------------------------------ internals
    def _tissue_contexts(self, term: str) -> set[str]:
        return {c for c, parts in self._tissue_parts.items() if term in parts}

    def _resolve(
        self, target: str, terms: dict[str, tuple[frozenset[str], str]]
    ) -> tuple[set[str], str]:
        if target.startswith("system:"):
            system = target.split(":", 1)[1].strip()
            return {c for c, s in self._systems.items() if s == system}, "tissue"
        if target.startswith("context:"):
            cid = target.split(":", 1)[1].strip()
            return ({cid} if cid in self._order else set()), "tissue"
        t = normalise(target)
        tissue = self._tissue_contexts(t)
        if t in terms and terms[t][1] == "tissue":
            tissue |= set(terms[t][0])
        pat = re.compile(rf"(^| ){re.escape(t)}( |$)")
        named = {c for c, n in self._names.items() if pat.search(n)}
        named -= tissue
        if named:
            return named | tissue, "cell"
        return tissue, "tissue"

    def _sorted(self, cs: set[str] | frozenset[str]) -> tuple[str, ...]:
        return tuple(sorted(cs, key=self._order.__getitem__))

    # ------------------------------------------------------------------ public
    def map(self, phrase: str) -> TissueMapping:  # noqa: PLR0912, PLR0915
        """Map a free-text tissue or cell description to reference contexts.

        Parameters
        ----------
        phrase
            E.g. ``"bile duct epithelium"``, ``"normal plasma cells and mature B cells"``.

        Returns
        -------
        :class:`TissueMapping`.
        """
        contexts: set[str] = set()
        found: list[str] = []
        unmapped: list[str] = []
        unmatched: list[str] = []
        absent: list[str] = []
        ambiguous_left: list[str] = []
        # first pass: terms per segment
        parsed = []
        for seg in _segments(phrase):
            words = seg.split()
            cells: list[frozenset[str]] = []
            tissues: list[frozenset[str]] = []
            ambiguous: list[tuple[str, frozenset[str]]] = []
            seg_absent: list[str] = []
            seg_unmatched: list[str] = []
            seg_terms = 0
            i = 0
            while i < len(words):
                for n in range(min(self._max_len, len(words) - i), 0, -1):
                    key = " ".join(words[i : i + n])
                    if key in self.terms and not (n == 1 and key in STOP_WORDS):
                        cs, kind = self.terms[key]
                        found.append(key)
                        if kind == "absent":
                            seg_absent.append(key)
                        else:
                            seg_terms += 1
                        if kind == "cell":
                            cells.append(cs)
                        elif kind == "tissue":
                            tissues.append(cs)
                        elif kind == "ambiguous":
                            ambiguous.append((key, cs))
                        i += n
                        break
                else:
                    if words[i] not in STOP_WORDS and not words[i].isdigit():
                        seg_unmatched.append(words[i])
                    i += 1
            parsed.append((seg, cells, tissues, ambiguous, seg_absent, seg_unmatched, seg_terms))
        phrase_tissue = frozenset().union(*(t for p in parsed for t in p[2]))
        # second pass: combine within segments, resolve ambiguous terms by organ
        for seg, cells, tissues, ambiguous, seg_absent, seg_unmatched, seg_terms in parsed:
            cell_set = frozenset().union(*cells)
            tissue_set = frozenset().union(*tissues)
            resolved_any = False
            for key, cs in ambiguous:
                organ = tissue_set or phrase_tissue
                if not organ:
                    ambiguous_left.append(key)
                    continue
                resolved_any = True
                cell_set |= cs & organ
            if cell_set and tissue_set:
                both = cell_set & tissue_set
                contexts |= both if both else cell_set | self._bulk(tissue_set)
            else:
                contexts |= cell_set | tissue_set
            unmatched.extend(seg_unmatched)
            absent.extend(seg_absent)
            has_context = bool(cell_set or tissue_set or resolved_any)
            nothing = not has_context and bool(seg_unmatched or seg_absent or ambiguous)
            if nothing or (seg_terms == 0 and seg_unmatched):
                unmapped.append(seg)
        return TissueMapping(
            phrase=str(phrase),
            contexts=self._sorted(contexts),
            terms=tuple(dict.fromkeys(found)),
            unmapped_segments=tuple(dict.fromkeys(unmapped)),
            unmatched_words=tuple(dict.fromkeys(unmatched)),
            absent_terms=tuple(dict.fromkeys(absent)),
            ambiguous_terms=tuple(dict.fromkeys(ambiguous_left)),
        )

    def _bulk(self, cs: frozenset[str]) -> set[str]:
        """Return the bulk tissue (non-cell-type) contexts among ``cs``."""
        return {c for c in cs if self._kinds.get(c) != "cell_type"}


def load_synonyms() -> pd.DataFrame:
    """Load the packaged anatomical synonym table (``term``, ``maps_to``, ``note``)."""
    res = resources.files("antigenscout.benchmark").joinpath("tissue_synonyms.tsv")
    with resources.as_file(res) as p:
        return pd.read_csv(p, sep="\t", comment="#", dtype=str, keep_default_na=False)
