"""Print the "which cancers have which evidence" table of docs/engagement.md.

For each of HPA's 20 cancer types: how many genes have tumour IHC from a reliable antibody
(the genes whose bulk coverage comes from IHC with ``--cancer``) and the median number of
patients per gene; the CPTAC cohorts and their patients; and, among the reference's surface
genes (``is_surface``), how many have both kinds of evidence and how many of those the
conflict rule of :func:`antigenscout.tl.protein_evidence_conflict` flags, in each direction.
The counts come from the same functions ``score_targets`` uses. Run::

    python scripts/bulk_evidence_doc.py
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from antigenscout.reference import Reference, load_reference
from antigenscout.tl._evidence import (
    CONFLICT_HIGH,
    CONFLICT_LOW,
    _cptac_evidence,
    _ihc_coverage_genes,
    pathology_coverage,
)


def evidence_table(reference: Reference) -> pd.DataFrame:
    """One row per HPA cancer type: IHC and CPTAC evidence and IHC-CPTAC conflicts.

    Parameters
    ----------
    reference
        A reference with ``pathology`` and ``cptac`` tables.

    Returns
    -------
    DataFrame indexed by cancer with ``ihc_genes``, ``ihc_median_patients``,
    ``cptac_cohorts``, ``cptac_genes``, ``surface_both``, ``conflict_ihc_low`` (IHC High/Medium
    in at most 10% of patients, CPTAC detects in at least 90%), ``conflict_ihc_low_any`` (those
    of them whose IHC stains at any level, Low included, in at most 10% of patients; a
    description, not part of the rule) and ``conflict_ihc_high`` (the reverse direction).
    """
    path, cptac = reference.pathology, reference.cptac
    if path is None or cptac is None:
        msg = "the reference needs both the pathology and the CPTAC tables"
        raise SystemExit(msg)
    genes = pd.Index(sorted(set(path["symbol"].astype(str)) | set(cptac["symbol"].astype(str))))
    surface = reference.surface["is_surface"].reindex(genes).eq(True).to_numpy(dtype=bool)
    rows = {}
    for cancer in sorted(map(str, path["cancer"].cat.categories)):
        cov = pathology_coverage(reference, cancer, genes)
        used = _ihc_coverage_genes(cov)
        ev = _cptac_evidence(reference, cancer, genes, cov, used)
        sub = cptac[cptac["cancer"].astype(str) == cancer]
        cohorts = sub.groupby("cohort", observed=True)["n_patients"].max()
        ihc = cov["stained_fraction"].where(cov.index.isin(used)).to_numpy()
        cp = ev["cptac_detected_fraction"].to_numpy()
        any_stain = cov["any_stain_fraction"].where(cov.index.isin(used)).to_numpy()
        both = surface & np.isfinite(ihc) & np.isfinite(cp)
        flagged = ev["protein_evidence_conflict"].to_numpy(dtype=bool) & surface
        rows[cancer] = {
            "ihc_genes": len(used),
            "ihc_median_patients": float(cov.loc[used, "n_patients_stained"].median())
            if len(used)
            else np.nan,
            "cptac_cohorts": " + ".join(f"{c} ({n})" for c, n in cohorts.items()),
            "cptac_genes": int(sub["symbol"].nunique()),
            "surface_both": int(both.sum()),
            "conflict_ihc_low": int((flagged & (ihc <= CONFLICT_LOW)).sum()),
            "conflict_ihc_low_any": int((flagged & (any_stain <= CONFLICT_LOW)).sum()),
            "conflict_ihc_high": int((flagged & (ihc >= CONFLICT_HIGH)).sum()),
        }
    return pd.DataFrame.from_dict(rows, orient="index")


def markdown(table: pd.DataFrame, n_surface: int) -> str:
    """The table as markdown, with its totals."""
    lo, hi = f"{CONFLICT_LOW:.0%}", f"{CONFLICT_HIGH:.0%}"
    lines = [
        "| HPA cancer | IHC: genes (reliable antibody) | IHC: median patients per gene "
        "| CPTAC cohort (patients) | CPTAC: genes | surface genes with both "
        f"| conflicts: IHC High/Medium ≤ {lo}, CPTAC ≥ {hi} "
        f"| … of which IHC any level ≤ {lo} | conflicts: IHC ≥ {hi}, CPTAC ≤ {lo} |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    counts = ["conflict_ihc_low", "conflict_ihc_low_any", "conflict_ihc_high"]
    for cancer, r in table.iterrows():
        med = r["ihc_median_patients"]
        cells = [f"{r[c]:,}" for c in counts] if r["cptac_cohorts"] else ["—"] * 3
        lines.append(
            f"| {cancer} | {r['ihc_genes']:,} | {'—' if np.isnan(med) else f'{med:g}'} "
            f"| {r['cptac_cohorts'] or 'none'} | {r['cptac_genes']:,} "
            f"| {r['surface_both']:,} | " + " | ".join(cells) + " |"
        )
    total = table[["surface_both", *counts]].sum()
    lines.append(
        f"| **all** | | | | | {total['surface_both']:,} | "
        + " | ".join(f"{total[c]:,}" for c in counts)
        + " |"
    )
    lines.append("")
    lines.append(f"Surface genes: `is_surface` in the reference ({n_surface:,} genes).")
    return "\n".join(lines)


def main() -> int:
    reference = load_reference()
    table = evidence_table(reference)
    print(markdown(table, int(reference.surface["is_surface"].sum())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
