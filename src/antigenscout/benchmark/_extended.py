"""A larger evaluation set built from the agent lists in ``shared/data/reference_lists``.

The lists of approved and trialled agents (CAR-T, ADC, bispecific and multispecific T-cell
engagers, TCR-T, radioligands) are an *answer key*: :func:`build_extended_targets` turns
them into rows of the ``validated_targets.tsv`` schema so that the benchmark can score the
engine on targets it was never shown. Nothing here feeds the engine: the rows are only
evaluated, and they are reported apart from the visible rows of ``shared/benchmark``.

Rules (all read from the lists' own columns, none chosen by looking at a score):

- One row per (agent, indication) pair; an indication cell listing several diseases
  (``"B-ALL;DLBCL;FL"``, ``"Cancer (breast, stomach)"``) gives one row per disease, with the
  list's abbreviations spelled out (:data:`ABBREVIATIONS`) so that the packaged indication
  rules can read them.
- Genes come from the lists' Ensembl ids when present (else their symbols and aliases) and
  are mapped to reference symbols; several tumour targets of one agent form an OR gate.
- Modality: the list's kind (CAR-T → ``CAR-T``, ADC → ``ADC``, TCR-T → ``TCR-T``,
  radioligand → ``radioligand``); a bispecific with a CD3 arm is a ``bispecific`` (T-cell
  engager), one whose binder is a TCR (ImmTAC, TCR-Fc) is ``bispecific (TCR-based)`` →
  tcr-t, one without a T-cell arm is an ``antibody``.
- Excluded, with the reason: agents outside oncology, checkpoint bispecifics (no
  tumour-cell antigen), viral or mutation-specific antigens (the wild-type gene's
  expression does not define the target), genes missing from the reference, preclinical
  entries, entries whose list names no indication.
- Deduplicated: rows are evaluated as (genes, tumour data, modality); a row whose
  (genes, tumour data) pair is already a visible row's is dropped ("seen"), and repeated
  extended rows are merged (their agents and sources are joined).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from .._errors import InputError
from ._rules import IndicationRule, match_indication, parse_genes, parse_modalities

if TYPE_CHECKING:
    from ..reference import Reference

__all__ = ["ABBREVIATIONS", "ExtendedSet", "build_extended_targets", "evaluation_key"]

LISTS_SUBDIR = Path("data") / "reference_lists"
#: The agent lists read (each optional; at least one must be present).
LIST_FILES = (
    "CAR-T-approved.csv",
    "ADC-approved.csv",
    "ADC-withdrawn.csv",
    "ADC-trials.csv",
    "bispecific-antibodies-approved.csv",
    "multispecific-tcell-engager-trials.csv",
    "TCR-T-approved.csv",
    "TCR-T-trials.csv",
    "radioligand-targets.csv",
)

#: Abbreviations used in the lists' disease columns → words the indication rules read.
ABBREVIATIONS: dict[str, str] = {
    "R/R": "",
    "HL": "Hodgkin lymphoma",
    "sALCL": "systemic anaplastic large cell lymphoma",
    "pcALCL": "primary cutaneous anaplastic large cell lymphoma",
    "MF": "mycosis fungoides",
    "mBC": "breast cancer",
    "eBC": "breast cancer",
    "BC": "breast cancer",
    "HERlow BC": "HER2-low breast cancer",
    "TNBC": "triple-negative breast cancer",
    "GC": "gastric cancer",
    "GEJC": "gastro-oesophageal junction cancer",
    "UC": "urothelial carcinoma",
    "MM": "multiple myeloma",
    "FL": "follicular lymphoma",
    "FL3B": "follicular lymphoma grade 3B",
    "HGBL": "high-grade B-cell lymphoma",
    "PMBCL": "primary mediastinal large B-cell lymphoma",
    "MCL": "mantle cell lymphoma",
    "MRCLS": "myxoid round cell liposarcoma",
    "GI": "gastrointestinal cancer",
    "AMD": "age-related macular degeneration",
    "DME": "diabetic macular oedema",
}
#: ADC-trials ``Tumor_Site`` values → indication text.
SITES: dict[str, str] = {
    "Multiple_solid": "multiple solid tumours",
    "Multiple_solid/Blood": "multiple solid tumours and haematologic malignancies",
    "Colon/Rectum": "colorectal cancer",
    "Urothelium": "urothelial carcinoma",
    "Head_and_neck": "head and neck cancer",
    "Biliary_tract": "biliary tract cancer",
    "Uterus": "uterine cancer",
    "Endometrium": "endometrial cancer",
    "Soft_tissue": "soft tissue sarcoma",
    "Ovary": "ovarian cancer",
    "Testis": "testicular cancer",
    "Pleura": "pleural cancer",
    "Salivary_gland": "salivary gland cancer",
    "Brain": "brain tumour",
    "Lymphoma": "lymphoma",
    "Melanoma": "melanoma",
    "Sarcoma": "sarcoma",
}
#: ADC-trials ``Disease_Setting`` values that name the histology.
SETTINGS: dict[str, str] = {"Relapsed_SCLC": "small cell lung cancer", "1L_NSCLC": "NSCLC"}
#: radioligand-targets ``notes`` → indications (the list has no disease column; a note that
#: names no disease gives none; "stopped_kidney_toxicity" names a toxicity, not a disease).
RADIOLIGAND_NOTES: tuple[tuple[str, str], ...] = (
    (r"mCRPC|prostate", "prostate cancer"),
    (r"GEP-NET", "gastroenteropancreatic neuroendocrine tumours"),
    (r"renal_cell", "renal cell carcinoma"),
    (r"small_cell_lung", "small cell lung cancer"),
    (r"breast", "breast cancer"),
    (r"melanoma", "melanoma"),
    (r"hepatocellular", "hepatocellular carcinoma"),
    (r"\bAML|_AML", "acute myeloid leukaemia"),
    (r"pancreatic", "pancreatic cancer"),
    (r"CRC", "colorectal cancer"),
    (r"solid_tumo", "multiple solid tumours"),
)
#: Immune-cell arms of bispecifics: CD3 makes a T-cell engager; checkpoints are not
#: tumour antigens.
CD3_GENES = frozenset({"CD3E", "CD3D", "CD3G"})
CHECKPOINTS = frozenset({"PDCD1", "CD274", "CTLA4", "LAG3", "HAVCR2", "TIGIT"})
_MUTATION = re.compile(r"\b[A-Z]\d{1,4}[A-Z]\b|vIII\b")
_VIRAL = re.compile(r"\bHPV\b|\bHBV\b|\bEBV\b|\bHIV\b|viral", re.IGNORECASE)


@dataclass
class ExtendedSet:
    """Output of :func:`build_extended_targets`.

    Attributes
    ----------
    rows
        Evaluation rows in the ``validated_targets.tsv`` schema (``id``, ``indication``,
        ``target_genes``, ``antigen_note``, ``drugs``, ``modality``, ``status``,
        ``approval_or_trial_detail``, ``source``, ``notes``) plus ``n_sources``.
    excluded
        Entries not turned into rows, with ``reason`` (incl. duplicates of visible rows).
    """

    rows: pd.DataFrame
    excluded: pd.DataFrame
    counts: dict[str, int] = field(default_factory=dict)


def _split(text: object, seps: str = ";,，/") -> list[str]:
    s = "" if text is None or (isinstance(text, float) and pd.isna(text)) else str(text)
    s = re.sub(r"^\s*Cancer\s*\((.*)\)\s*$", r"\1", s.strip())
    s = re.sub(r"(?<![\w/])R/R(?![\w/])", " ", s)  # relapsed/refractory, not two diseases
    parts = re.split("[" + re.escape(seps) + "]", s)
    return [p.strip() for p in parts if p.strip()]


def _expand(text: str) -> str:
    out = text
    for abbr in sorted(ABBREVIATIONS, key=len, reverse=True):
        out = re.sub(rf"(?<![\w-]){re.escape(abbr)}(?![\w-])", ABBREVIATIONS[abbr], out)
    return re.sub(r"\s+", " ", out).strip()


def _cell(v: object) -> str:
    return "" if v is None or (isinstance(v, float) and pd.isna(v)) else str(v).strip()


def _read(path: Path) -> pd.DataFrame:
    """Read a list as strings; an absent list is empty (the builder uses the lists present)."""
    if not path.is_file():
        return pd.DataFrame()
    return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")


def _entries(folder: Path) -> list[dict[str, object]]:  # noqa: PLR0912, PLR0915
    """Raw (agent, genes, indications, modality) entries from every list."""
    out: list[dict[str, object]] = []

    def add(src: str, drug: str, ids: Iterable[str], names: Iterable[str], dis: list[str],  # noqa: PLR0913, PLR0917
            modality: str, status: str, note: str = "", exclude: str = "") -> None:  # fmt: skip
        out.append(
            {
                "source": src,
                "drug": drug,
                "ids": [i for i in ids if i],
                "names": [n for n in names if n],
                "indications": dis,
                "modality": modality,
                "status": status,
                "antigen_note": note,
                "exclude": exclude,
                "needs_id": not src.startswith("ADC-withdrawn"),
            }
        )

    f = folder / "CAR-T-approved.csv"
    for i, r in _read(f).iterrows():
        add(f"{f.name}:{i + 2}", r["Drug_Name"], [r["Ensembl_Gene_ID"]],
            [r["Tumor_Target_Symbol"], r["Tumor_Target_Alias"]], _split(r["Disease_Area"]),
            "CAR-T", f"approved ({r['Approvals']})")  # fmt: skip
    f = folder / "ADC-approved.csv"
    for i, r in _read(f).iterrows():
        add(f"{f.name}:{i + 2}", r["Drug_Name"], [r["Tumor_Target_Ensembl_Gene_ID"]],
            [r["Tumor_Target_Symbol"]], _split(r["Disease_Area"]), "ADC",
            f"approved ({r['Approvals']})")  # fmt: skip
    f = folder / "ADC-withdrawn.csv"
    for i, r in _read(f).iterrows():
        add(f"{f.name}:{i + 2}", r["Drug_Name"], [], [r["Target_Target_Symbol"]],
            _split(r["Disease_Area"]), "ADC",
            f"approved then withdrawn ({r['Current_Status']})")  # fmt: skip
    f = folder / "ADC-trials.csv"
    for i, r in _read(f).iterrows():
        site = _cell(r["Tumor_Site"])
        setting = _cell(r["Disease_Setting"])
        dis = SETTINGS.get(setting) or SITES.get(site) or f"{site.replace('_', ' ')} cancer"
        add(f"{f.name}:{i + 2}", r["Drug"], _split(r["Ensembl_Gene_IDs"]),
            _split(r["Symbols"]), [dis], "ADC",
            f"clinical trial (phase {_cell(r['Phase']).removesuffix('.0')}; {r['NCT_Number']})",
            "bispecific ADC" if _cell(r["bispecific"]) == "1" else "")  # fmt: skip
    f = folder / "bispecific-antibodies-approved.csv"
    for i, r in _read(f).iterrows():
        area = _cell(r["Disease_Area"])
        tumour = _split(r["Tumor_Target_Symbols"])
        tumor_ids = _split(r["Tumor_Target_Ensembl_Gene_IDs"])
        arm = _split(r["Tcell_Target_Symols"])
        arm_ids = _split(r["Tcell_Target_Ensembl_Gene_IDs"])
        exclude = ""
        if not area.lower().startswith("cancer"):
            exclude = f"not an oncology agent ({area})"
        elif set(arm) & CHECKPOINTS:
            exclude = f"checkpoint bispecific ({' x '.join(tumour + arm)}): no tumour-cell antigen"
        if arm and not set(arm) & CD3_GENES and not set(arm) & CHECKPOINTS:
            # a second tumour arm listed in the T-cell column (amivantamab: EGFR x MET)
            tumour, tumor_ids = tumour + arm, tumor_ids + arm_ids
        fmt = _cell(r["Format"])
        if re.search(r"TCR|ImmTAC", fmt):
            modality = "bispecific (TCR-based)"
        elif set(arm) & CD3_GENES:
            modality = "bispecific (T-cell engager)"
        else:
            modality = "antibody (bispecific, no T-cell arm)"
        add(f"{f.name}:{i + 2}", r["Drug_Name"], tumor_ids, tumour, _split(area), modality,
            f"approved ({r['Approvals']})", exclude=exclude)  # fmt: skip
    f = folder / "multispecific-tcell-engager-trials.csv"
    for i, r in _read(f).iterrows():
        fmt = _cell(r["Format"])
        modality = "bispecific (TCR-based)" if re.search(r"TCR|ImmTAC", fmt) else "bispecific"
        target = _cell(r["Target"])
        exclude = (
            f"mutation- or variant-specific binder ({target})" if _MUTATION.search(target) else ""
        )
        note = (
            "isoform-specific binder" if _cell(r["Tumor_Target_Is_Specific_Isoform"]) == "1" else ""
        )
        add(f"{f.name}:{i + 2}", r["Drug_Name"], _split(r["Tumor_Target_Gene_IDs"]),
            _split(r["Tumor_Target_Symbols"]), _split(r["Disease_Area"]), modality,
            f"clinical trial (phase {_cell(r['Clinical_Developmental_Phase'])})", note,
            exclude)  # fmt: skip
    f = folder / "TCR-T-approved.csv"
    for i, r in _read(f).iterrows():
        add(f"{f.name}:{i + 2}", r["Drug_Name"], [r["Ensembl_Gene_ID"]],
            [r["Tumor_Target_Symbol"], r["Tumor_Target_Alias"]], _split(r["Disease_Area"]),
            "TCR-T", f"approved ({r['Approvals']})")  # fmt: skip
    f = folder / "TCR-T-trials.csv"
    for i, r in _read(f).iterrows():
        sym = _cell(r["Tumor_Target_Symbols"])
        exclude = ""
        if _cell(r["Mutation"]):
            exclude = f"mutation-specific neoantigen ({sym} {r['Mutation']})"
        elif _VIRAL.search(sym) or _VIRAL.search(_cell(r["Antigen_Category"])):
            exclude = f"viral antigen ({sym}): not a human gene product"
        add(f"{f.name}:{i + 2}", _cell(r["Product"]) or sym,
            _split(r["Tumor_Target_Ensembl_Gene_IDs"]),
            _split(r["Tumor_Target_Aliases"]) + _split(sym), _split(r["Disease"]),
            "TCR-T", f"clinical trial ({_cell(r['Trial'])})", exclude=exclude)  # fmt: skip
    f = folder / "radioligand-targets.csv"
    for i, r in _read(f).iterrows():
        bucket = _cell(r["Status_Bucket"])
        notes = _cell(r["notes"])
        dis = [d for pat, d in RADIOLIGAND_NOTES if re.search(pat, notes)]
        exclude = "preclinical entry" if bucket.lower().startswith("preclinical") else ""
        add(f"{f.name}:{i + 2}", notes or r["Target_Label"], [r["Ensembl_Gene_ID"]],
            [r["Symbol"]], dis, "radioligand", bucket, exclude=exclude)  # fmt: skip
    return out


def _resolve(entry: dict[str, object], reference: Reference) -> tuple[list[str], str]:
    """Return the reference symbols of an entry's targets (Ensembl ids first), or the failure."""
    ids = [str(i) for i in entry["ids"]]  # type: ignore[union-attr]
    names = [str(n) for n in entry["names"]]  # type: ignore[union-attr]
    if entry.get("needs_id") and not ids:
        # the list has an Ensembl column but this entry has no id: an alias alone (MART-2)
        # can name another gene
        return [], f"no Ensembl id in the list for {names}; an alias alone is ambiguous"
    if ids:
        mapped, missing = reference.map_genes(ids)
        if not missing:
            return sorted(dict.fromkeys(str(s) for s in mapped)), ""
    genes: list[str] = []
    for n in names:
        for tok in parse_genes(n) or [n]:
            m, miss = reference.map_genes([tok])
            if not miss:
                genes.append(str(m.iloc[0]))
                break
    if genes:
        return sorted(dict.fromkeys(genes)), ""
    return [], f"targets not in the reference: {ids or names}"


def evaluation_key(genes: Iterable[str], rule: IndicationRule | None, text: str) -> str:
    """Return what a row evaluates, without the modality: sorted genes and tumour data.

    The tumour data are the rule's dataset and samples; the rule's name for rules without data;
    the indication text when no rule matches.
    """
    g = ";".join(sorted(genes))
    if rule is None:
        where = "text:" + re.sub(r"\W+", " ", text.lower()).strip()
    elif rule.dataset == "none":
        where = f"none:{rule.rule}"
    else:
        where = f"{rule.dataset}:{'+'.join(rule.samples)}"
    return f"{g}|{where}"


def build_extended_targets(
    lists_dir: str | Path,
    *,
    visible: pd.DataFrame | None,
    reference: Reference,
    rules: list[IndicationRule],
) -> ExtendedSet:
    """Build evaluation rows from the agent lists, deduplicated against the visible rows.

    Parameters
    ----------
    lists_dir
        ``shared/data/reference_lists`` (the CSVs named in this module's docstring).
    visible
        The visible ``validated_targets.tsv`` rows; their (genes, tumour data) pairs are not
        repeated. ``None`` keeps everything.
    reference
        Used only to map gene identifiers to reference symbols.
    rules
        Indication rules (:func:`antigenscout.benchmark.load_indications`).

    Returns
    -------
    :class:`ExtendedSet`.
    """
    folder = Path(lists_dir)
    if not folder.is_dir():
        msg = (
            f"agent lists folder {str(folder)!r} not found; pass --shared DIR with "
            f"{LISTS_SUBDIR}/ inside"
        )
        raise InputError(msg)
    if not any((folder / f).is_file() for f in LIST_FILES):
        msg = f"no agent list ({', '.join(LIST_FILES)}) in {str(folder)!r}"
        raise InputError(msg)
    seen: dict[str, str] = {}
    if visible is not None:
        for _, r in visible.iterrows():
            genes, _miss = reference.map_genes(parse_genes(r["target_genes"]))
            key = evaluation_key(
                [str(g) for g in genes.dropna()],
                match_indication(r["indication"], rules),
                r["indication"],
            )
            seen.setdefault(key, str(r["id"]))
    rows: dict[str, dict[str, object]] = {}
    excluded: list[dict[str, str]] = []
    entries = _entries(folder)
    for e in entries:
        base = {"source": str(e["source"]), "drug": str(e["drug"])}
        if e["exclude"]:
            excluded.append({**base, "indication": "", "reason": str(e["exclude"])})
            continue
        genes, why = _resolve(e, reference)
        if not genes:
            excluded.append({**base, "indication": "", "reason": why})
            continue
        dis = [_expand(str(d)) for d in e["indications"]]  # type: ignore[union-attr]
        dis = [d for d in dis if d]
        if not dis:
            excluded.append({**base, "indication": "", "reason": "the list names no indication"})
            continue
        mods = parse_modalities(str(e["modality"]))
        for d in dis:
            rule = match_indication(d, rules)
            key = evaluation_key(genes, rule, d)
            if key in seen:
                excluded.append(
                    {**base, "indication": d, "reason": f"seen: same genes and tumour data "
                     f"as visible row {seen[key]}"}
                )  # fmt: skip
                continue
            full = f"{key}|{mods[0] if mods else e['modality']}"
            if full in rows:
                row = rows[full]
                row["drugs"] = "; ".join(dict.fromkeys([*str(row["drugs"]).split("; "),
                                                        str(e["drug"])]))  # fmt: skip
                row["source"] = f"{row['source']} ; {e['source']}"
                row["n_sources"] = int(row["n_sources"]) + 1  # type: ignore[call-overload]
                continue
            rows[full] = {
                "indication": d,
                "target_genes": "; ".join(genes),
                "antigen_note": str(e["antigen_note"]),
                "drugs": str(e["drug"]),
                "modality": str(e["modality"]),
                "status": str(e["status"]),
                "approval_or_trial_detail": "",
                "source": str(e["source"]),
                "notes": "extended set (built from shared/data/reference_lists)",
                "n_sources": 1,
            }
    df = pd.DataFrame(list(rows.values()))
    if len(df):
        df.insert(0, "id", [f"X{i + 1:03d}" for i in range(len(df))])
    exc = pd.DataFrame(excluded, columns=["source", "drug", "indication", "reason"])
    counts = {
        "entries": len(entries),
        "rows": len(df),
        "excluded_seen": int(exc["reason"].str.startswith("seen").sum()),
        "excluded_other": int((~exc["reason"].str.startswith("seen")).sum()),
    }
    return ExtendedSet(df, exc, counts)
