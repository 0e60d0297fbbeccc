"""Documented rules that read the clinical tables.

Rules for modality, genes, gates, attribution, and indication → tumour data.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from .._errors import InputError

__all__ = [
    "ATTRIBUTION_CLASSES",
    "IndicationRule",
    "attribution_class",
    "gate_op",
    "is_clinical",
    "load_indications",
    "match_indication",
    "parse_genes",
    "parse_modalities",
    "split_top_level",
]

# --------------------------------------------------------------------------- modality

#: (pattern, antigenscout modality), tried in order on each ';'-separated part of the text.
MODALITY_RULES: tuple[tuple[str, str], ...] = (
    # TCR-T and TCR-based bispecifics (ImmTAC, TCR-Fc engagers) bind peptide-HLA
    (r"\btcr|immtac", "tcr-t"),
    (r"\bcar[- ]?nk\b|\bnk[- ]?car\b", "car-nk"),
    (r"\bcar[- ]?t\b|\bcar\b", "car-t"),
    # radiolabelled ligands and antibodies: before ADC/antibody ("radioimmunoconjugate")
    (
        r"radioligand|radiopharm|radionuclide|radioimmun|radioconjugate|radiolabel"
        r"|\b(?:177)?lu-?177\b|\b177lu|\b225ac|\bac-?225\b|\b90y\b|\by-?90\b|\b131i\b"
        r"|\bi-?131\b",
        "radioligand",
    ),
    (r"\badc\b|drug conjugate|antibody-drug", "adc"),
    (
        r"bispecific|trispecific|multispecific|trifunctional|\bbite\b|engager|\btce\b",
        "bispecific",
    ),
    (r"agonis", "agonist"),
    (r"immunotoxin|toxin|fusion", "antibody"),  # protein binders without a T-cell arm
    (r"antibod|\bmab\b", "antibody"),
    (r"vaccin", "vaccine"),
)


def parse_modalities(text: str) -> list[str]:
    """Map a modality description to antigenscout modalities, in the order written.

    Examples
    --------
    >>> parse_modalities("CAR-T; bispecific")
    ['car-t', 'bispecific']
    >>> parse_modalities("bispecific (TCR-based ImmTAC)")
    ['tcr-t']
    >>> parse_modalities("IL-3-diphtheria toxin fusion")
    ['antibody']
    >>> parse_modalities("radioligand (177Lu-PSMA-617)")
    ['radioligand']
    """
    out: list[str] = []
    for part in str(text).split(";"):
        low = part.strip().lower()
        for pat, mod in MODALITY_RULES:
            if re.search(pat, low):
                if mod not in out:
                    out.append(mod)
                break
    return out


# --------------------------------------------------------------------------- genes and gates

_SYMBOL = re.compile(r"^[A-Za-z][A-Za-z0-9-]*$")
#: Words in ``target_genes`` or ``antigen_note`` saying the antigen is not a gene product.
NON_GENE_PRODUCT = re.compile(
    r"not a gene product|glycolipid|ganglioside|carbohydrate|biosynthe", re.IGNORECASE
)
#: Words saying that a multi-antigen agent needs every antigen on the same cell (AND gate).
AND_WORDS = re.compile(r"\band[- ]gate|dual[- ]positive|both antigens|requires both", re.I)


def parse_genes(text: str) -> list[str]:
    """Gene symbols of a ``target_genes`` cell: ';'-separated, trailing remarks dropped.

    Examples
    --------
    >>> parse_genes("B4GALNT1; ST8SIA1 (GD2 biosynthesis)")
    ['B4GALNT1', 'ST8SIA1']
    """
    out = []
    for part in str(text).split(";"):
        tok = part.strip().split(" ")[0].strip()
        if tok and _SYMBOL.match(tok):
            out.append(tok)
    return out


def gate_op(*texts: str) -> str:
    """``'and'`` when the text says every antigen must be present, else ``'or'``.

    A multi-antigen row (a bispecific binding either arm, a peptide shared by a gene family,
    or several agents given for the same indication) reaches any cell carrying any of its
    antigens, so the default is OR.
    """
    return "and" if any(AND_WORDS.search(str(t)) for t in texts) else "or"


def not_gene_product(*texts: str) -> str | None:
    """Return the text explaining that the antigen is not a gene product, or ``None``."""
    for t in texts:
        if t and NON_GENE_PRODUCT.search(str(t)):
            return str(t).strip()
    return None


# --------------------------------------------------------------------------- attribution

ATTRIBUTION_CLASSES = ("on_target", "negative_control", "uncertain")
_ATTR_PATTERNS: tuple[tuple[str, str, str], ...] = (
    (r"\bnone\b|none[- ]reported|not reported", "negative_control", "none_reported"),
    (r"payload|off[- ]target|target[- ]independent", "negative_control", "payload_or_off_target"),
    (r"on[- ]target", "on_target", "on_target"),
    (r"uncertain|debated|unclear|unknown|hypothes", "uncertain", "uncertain"),
)


def attribution_class(text: str) -> tuple[str, str]:
    """Classify an ``attribution`` text as on-target, negative control or uncertain.

    The keyword that occurs *first* decides (``"on-target + payload"`` is on-target,
    ``"payload/target-independent (debated)"`` a negative control, ``"debated: on-target
    ... vs off-target"`` uncertain). An on-target text that also says nothing was reported
    clinically (``"predicted on-target; none reported clinically"``) is uncertain.

    Returns
    -------
    ``(class, subclass)``: class in :data:`ATTRIBUTION_CLASSES`; subclass ``on_target``,
    ``none_reported``, ``payload_or_off_target``, ``uncertain`` or ``conflicting``.

    Examples
    --------
    >>> attribution_class("on-target/off-tumor (probable)")
    ('on_target', 'on_target')
    >>> attribution_class("payload-driven (no target-expression link in source)")
    ('negative_control', 'payload_or_off_target')
    """
    low = str(text).lower()
    best: tuple[int, str, str] | None = None
    for pat, cls, sub in _ATTR_PATTERNS:
        m = re.search(pat, low)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), cls, sub)
    if best is None:
        return "uncertain", "uncertain"
    _, cls, sub = best
    if cls == "on_target" and re.search(r"none[- ]reported|not reported", low):
        return "uncertain", "conflicting"
    return cls, sub


def is_clinical(evidence: str) -> bool:
    """Whether an ``evidence_type`` includes clinical (not only preclinical) evidence."""
    return bool(re.search(r"(?<!pre)clinical", str(evidence).lower()))


def split_top_level(text: str, sep: str = ";") -> list[str]:
    """Split at ``sep`` outside parentheses.

    Examples
    --------
    >>> split_top_level("intestinal tract (diarrhea; cramps); liver")
    ['intestinal tract (diarrhea; cramps)', 'liver']
    """
    parts, depth, cur = [], 0, []
    for ch in str(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth = max(0, depth - 1)
        if ch == sep and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur).strip())
    return [p for p in parts if p]


# --------------------------------------------------------------------------- indications

DATASETS = ("vangalen2019", "tcga", "cell_lines", "none")


@dataclass(frozen=True)
class IndicationRule:
    """One row of ``indications.tsv``."""

    rule: str
    pattern: str
    dataset: str
    samples: tuple[str, ...]
    rationale: str


def load_indications(path: str | Path | None = None) -> list[IndicationRule]:
    """Read indication rules (the packaged ``indications.tsv`` when ``path`` is ``None``)."""
    if path is None:
        res = resources.files("antigenscout.benchmark").joinpath("indications.tsv")
        with resources.as_file(res) as p:
            df = pd.read_csv(p, sep="\t", comment="#", dtype=str, keep_default_na=False)
    else:
        p = Path(path)
        if not p.is_file():
            msg = f"indication table {str(p)!r} does not exist; pass a TSV like indications.tsv"
            raise InputError(msg)
        df = pd.read_csv(p, sep="\t", comment="#", dtype=str, keep_default_na=False)
    need = {"rule", "pattern", "dataset", "samples", "rationale"}
    if not need <= set(df.columns):
        missing = sorted(need - set(df.columns))
        msg = f"indication table lacks columns {missing}; see the packaged indications.tsv"
        raise InputError(msg)
    rules = []
    for r in df.itertuples(index=False):
        if r.dataset not in DATASETS:
            msg = (
                f"indication rule {r.rule!r}: dataset must be one of {DATASETS}; got {r.dataset!r}"
            )
            raise InputError(msg)
        try:
            re.compile(r.pattern)
        except re.error as e:
            msg = f"indication rule {r.rule!r}: invalid regular expression ({e}); fix the pattern"
            raise InputError(msg) from None
        samples = tuple(s.strip() for s in r.samples.split(";") if s.strip())
        rules.append(IndicationRule(r.rule, r.pattern, r.dataset, samples, r.rationale))
    return rules


def match_indication(text: str, rules: list[IndicationRule]) -> IndicationRule | None:
    """Return the first rule whose pattern matches ``text`` (case-insensitive), or ``None``."""
    for rule in rules:
        if re.search(rule.pattern, str(text), flags=re.IGNORECASE):
            return rule
    return None
