"""Bulk tumours: patient-level protein evidence and its fusion into one coverage.

With ``--cancer``, a bulk ranking's coverage is the fraction of that cancer's patients whose
tumour cells carry the antigen at the level a binder needs (HPA High/Medium). Three sources
speak to it, each measuring something different:

* HPA tumour immunohistochemistry (:func:`pathology_coverage`): the level on tumour cells,
  ~11 patients, one antibody that may fail;
* CPTAC mass spectrometry (:func:`cptac_detection`): detected at any level in bulk tissue,
  ~100 tumours identified per TMT plex, no antibody;
* the input's own RNA: the mean of its per-patient bulk levels, one reading, no patient
  spread.

:func:`fuse_coverage` combines them in one Bayesian latent-class model (docs/engagement.md,
"Fused coverage") whose parameters (each antibody class's validity, the CPTAC and RNA
reading bins, the population prior) :func:`fit_evidence_model` fits by EM over all (gene,
cancer) pairs of HPA IHC, CPTAC and the TCGA medians, no source taken as truth, never from a
clinical list.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from scipy import special

from .._errors import InputError
from ._measured import IHC_RELIABILITY_WEIGHT, _wilson

if TYPE_CHECKING:
    from ..reference import Reference

__all__ = [
    "CONFLICT_HIGH",
    "CONFLICT_LOW",
    "EVIDENCE_MODEL",
    "IHC_CLASSES",
    "cptac_detection",
    "evidence_pairs",
    "fit_evidence_model",
    "fuse_coverage",
    "fused_coverage",
    "pathology_coverage",
    "protein_evidence_conflict",
]

#: HPA antibody reliability classes, best first. A gene with tumour IHC but no class in the
#: normal-tissue table counts as ``Uncertain`` (HPA 21.1 lists all 1,751 such genes found in
#: its raw file as Uncertain; the reference kept no tissue row for them).
IHC_CLASSES = ("Enhanced", "Supported", "Approved", "Uncertain")
#: Protein evidence conflict: one source finds the protein in at most ``CONFLICT_LOW`` of a
#: cancer's patients and the other in at least ``CONFLICT_HIGH`` (fixed before any gene was
#: looked at; docs/engagement.md).
CONFLICT_LOW = 0.10
CONFLICT_HIGH = 0.90
#: Grid of x, the fraction of a cancer's patients whose tumour carries the protein at any
#: level (midpoints of [0, 1]); the fit and the fusion use the same grid.
GRID = 100
#: The population prior of x is a histogram with this many equal bins (fitted).
PRIOR_BINS = 10
#: Bins of CPTAC's detected fraction (upper edges; last bin up to 1).
CPTAC_EDGES = (0.2, 0.4, 0.6, 0.8)
#: Bins of a bulk RNA level, in the input's TPM/FPKM-like units (upper edges).
RNA_EDGES = (1.0, 10.0, 100.0)
#: Grid of the coverage x q (quantiles are read from its CDF, linearly interpolated).
COVERAGE_GRID = 200
#: Fine grid of the High/Medium share q, on which its Beta CDF is tabulated.
SHARE_GRID = 400
#: Posterior quantiles of the fused coverage's interval (90%, as the Wilson intervals).
INTERVAL = (0.05, 0.95)
#: Genes fused at a time (memory: CHUNK × GRID floats, a few times).
CHUNK = 2048

#: The fitted evidence model: :func:`fit_evidence_model` over the 306,457 (gene, cancer)
#: pairs of the embedded reference with tumour IHC (HPA 21.1), their CPTAC rows and the
#: packaged TCGA medians (``python scripts/bulk_evidence_doc.py --fit`` refits and prints
#: it; docs/engagement.md). ``ihc_validity`` follows :data:`IHC_CLASSES`; the reading
#: probabilities follow the bins of :data:`CPTAC_EDGES` and :data:`RNA_EDGES`;
#: ``presence_prior`` is the histogram of x over :data:`PRIOR_BINS` equal bins.
EVIDENCE_MODEL: dict = {
    "ihc_validity": [0.862919, 0.905994, 0.561347, 0.0637793],
    "cptac_carrier": [0.00561022, 0.0143421, 0.0209997, 0.0293328, 0.929715],
    "cptac_non_carrier": [0.210845, 0.142229, 0.103869, 0.105784, 0.437273],
    "rna_carrier": [4.94868e-05, 0.523156, 0.435856, 0.0409391],
    "rna_non_carrier": [0.680345, 0.301255, 0.0181999, 0.000199833],
    "presence_prior": [
        0.372737,
        7.33522e-05,
        0.00019796,
        0.0997687,
        0.0240472,
        0.0024017,
        0.126738,
        0.017908,
        0.000224091,
        0.355904,
    ],
    "fit": {
        "pairs": 306457,
        "log_likelihood": -1680899.575,
        "iterations": 1448,
        "converged": True,
        "tol": 1e-5,
    },
}


# --------------------------------------------------------------------------- sources


def _patient_fraction(k: np.ndarray, n: np.ndarray) -> tuple[np.ndarray, ...]:
    """``k / n`` with its Wilson 90% interval; NaN where ``n`` is 0 (no evidence)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(n > 0, k / n, np.nan)
    lo, hi = _wilson(np.nan_to_num(frac), n)
    return frac, np.where(n > 0, lo, np.nan), np.where(n > 0, hi, np.nan)


def _cancer_key(cancer: str, known: set[str]) -> str:
    """``cancer`` as the tables spell it (lower case), or an error naming the choices."""
    if not isinstance(cancer, str):
        msg = f"cancer must be an HPA cancer type (a string); got {cancer!r}"
        raise InputError(msg, param="cancer")
    key = cancer.strip().lower()
    if key not in known:
        msg = (
            f"cancer {cancer!r} is not an HPA cancer type; choose one of: "
            f"{', '.join(sorted(known))}"
        )
        raise InputError(msg, param="cancer")
    return key


def _values(column: pd.Series) -> set[str]:
    """Distinct values of a (possibly categorical) column, as strings."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        return {str(v) for v in column.cat.categories[np.unique(column.cat.codes[column.notna()])]}
    return set(column.dropna().astype(str).unique())


def _equals(column: pd.Series, key: str) -> np.ndarray:
    """``column == key`` compared as strings, without converting every row of a categorical."""
    if isinstance(column.dtype, pd.CategoricalDtype):
        cats = pd.Index(column.cat.categories.astype(str))
        hit = np.flatnonzero(cats == key)
        return np.isin(column.cat.codes.to_numpy(), hit)
    return (column.astype(str) == key).to_numpy()


def _pathology(reference: Reference) -> pd.DataFrame:
    path = reference.pathology
    if path is None:
        msg = "this reference has no HPA pathology table; rebuild it with build_reference.py"
        raise InputError(msg)
    return path


def _ihc_counts(reference: Reference, cancer: str, genes: pd.Index) -> np.ndarray:
    """Patients High, Medium, Low, Not detected per gene (genes × 4; 0 where HPA has none)."""
    path = _pathology(reference)
    key = _cancer_key(cancer, _values(path["cancer"]))
    sub = path[_equals(path["cancer"], key)]
    sub = sub.set_index(sub["symbol"].astype(str)).reindex(genes)
    return sub[["high", "medium", "low", "not_detected"]].fillna(0).to_numpy(dtype=float)


def pathology_coverage(reference: Reference, cancer: str, genes: pd.Index) -> pd.DataFrame:
    """Fraction of a cancer's patients whose tumour stains for each gene (HPA IHC).

    Parameters
    ----------
    reference
        A reference with ``pathology`` (HPA 21.1 tumour IHC: patients per level).
    cancer
        HPA cancer type, e.g. ``'breast cancer'``, ``'prostate cancer'``.
    genes
        Genes to report.

    Returns
    -------
    DataFrame indexed by gene: ``stained_fraction`` (patients High or Medium / patients
    stained), ``stained_low``/``stained_high`` (Wilson 90% interval), ``any_stain_fraction``
    (High, Medium or Low), ``n_patients_stained`` (0 where HPA has no data) and
    ``ihc_reliability`` (HPA's antibody reliability, ``''`` where the normal-tissue table has
    none). :func:`fuse_coverage` weighs every class by its fitted validity
    (:func:`fit_evidence_model`).

    Raises
    ------
    InputError
        If the reference has no pathology table or does not know ``cancer``.
    """
    counts = _ihc_counts(reference, cancer, genes)
    n = counts.sum(axis=1)
    stained = counts[:, 0] + counts[:, 1]
    frac, lo, hi = _patient_fraction(stained, n)
    return pd.DataFrame(
        {
            "stained_fraction": frac,
            "stained_low": lo,
            "stained_high": hi,
            "any_stain_fraction": _patient_fraction(stained + counts[:, 2], n)[0],
            "n_patients_stained": n.astype(int),
            "ihc_reliability": _ihc_reliability(reference, genes),
        },
        index=genes,
    )


def cptac_detection(reference: Reference, cancer: str, genes: pd.Index) -> pd.DataFrame:
    """Fraction of a cancer's tumours in which CPTAC detected each gene's protein.

    CPTAC measured the proteome of about 100 tumours per cohort by mass spectrometry, without
    antibodies. A tumour counts as detected when the protein was quantified at *any* level in
    the bulk sample, which holds tumour cells, stroma and infiltrating immune cells: this is not
    the tumour-cell, level-thresholded evidence of HPA's IHC (:func:`pathology_coverage`).
    :func:`fuse_coverage` uses it as evidence of presence (strong when the protein is missed,
    weak when it is found), never as coverage itself.

    Parameters
    ----------
    reference
        A reference with ``cptac`` (patients measured and detected per gene and cohort).
    cancer
        HPA cancer type, e.g. ``'breast cancer'``. CPTAC has cohorts for breast (BRCA), renal
        (CCRCC), colorectal (COAD), glioma (GBM), head and neck (HNSCC), lung (LSCC and LUAD,
        pooled), ovarian (OV), pancreatic (PDAC) and endometrial (UCEC) cancer; other HPA
        types give NaN.
    genes
        Genes to report.

    Returns
    -------
    DataFrame indexed by gene: ``cptac_detected_fraction`` (tumours detected / tumours
    measured, summed over the cancer's cohorts that list the gene), ``cptac_detected_low`` /
    ``cptac_detected_high`` (Wilson 90% interval), ``cptac_n_patients``, ``cptac_n_detected``
    (0 where no cohort lists the gene) and ``cptac_cohort`` (the cohorts counted, ``'+'``
    -joined; ``''`` if none). NaN where CPTAC has no cohort for the cancer or no row for the
    gene: CPTAC lists only proteins detected in at least one tumour of a cohort, so a missing
    row may mean "detected in none" or "not measurable" and is not counted as 0.

    Raises
    ------
    InputError
        If the reference has no CPTAC table or ``cancer`` is not an HPA cancer type.

    Examples
    --------
    >>> import pandas as pd
    >>> from antigenscout.reference import load_reference
    >>> from antigenscout.tl import cptac_detection
    >>> d = cptac_detection(load_reference(), "breast cancer", pd.Index(["TACSTD2"]))
    >>> row = d.loc["TACSTD2"]
    >>> int(row["cptac_n_detected"]), int(row["cptac_n_patients"]), row["cptac_cohort"]
    (121, 121, 'BRCA')
    """
    sub = _cptac_rows(reference, cancer)
    by_gene = sub.groupby("symbol", sort=False)
    n = by_gene["n_patients"].sum().reindex(genes).fillna(0).to_numpy(dtype=float)
    k = by_gene["n_detected"].sum().reindex(genes).fillna(0).to_numpy(dtype=float)
    cohorts = by_gene["cohort"].agg(lambda c: "+".join(sorted(c))).reindex(genes).fillna("")
    frac, lo, hi = _patient_fraction(k, n)
    return pd.DataFrame(
        {
            "cptac_detected_fraction": frac,
            "cptac_detected_low": lo,
            "cptac_detected_high": hi,
            "cptac_n_patients": n.astype(int),
            "cptac_n_detected": k.astype(int),
            "cptac_cohort": cohorts.to_numpy(dtype=object),
        },
        index=genes,
    )


def _cptac_rows(reference: Reference, cancer: str) -> pd.DataFrame:
    """Return the CPTAC rows of ``cancer`` with string symbol and cohort."""
    table = reference.cptac
    if table is None:
        msg = "this reference has no CPTAC table; rebuild it with build_reference.py"
        raise InputError(msg)
    known = _values(table["cancer"])
    if reference.pathology is not None:
        known |= _values(reference.pathology["cancer"])
    key = _cancer_key(cancer, known)
    sub = table[_equals(table["cancer"], key)]
    return sub.assign(symbol=sub["symbol"].astype(str), cohort=sub["cohort"].astype(str))


def _ihc_reliability(reference: Reference, genes: pd.Index) -> np.ndarray:
    """HPA antibody reliability per gene (from the normal-tissue IHC table), '' if none."""
    ihc = reference.ihc
    symbol = ihc["symbol"]
    if isinstance(symbol.dtype, pd.CategoricalDtype):
        rel = ihc.groupby(symbol, observed=True)["reliability"].first()
        rel.index = rel.index.astype(str)
    else:
        rel = ihc.groupby(symbol.astype(str))["reliability"].first()
    rel = rel.astype(str)
    return rel.reindex(genes).fillna("").to_numpy(dtype=object)


def _ihc_class(reliability: np.ndarray) -> np.ndarray:
    """Reliability as one of :data:`IHC_CLASSES` (no class: ``Uncertain``)."""
    rel = np.asarray(reliability, dtype=object)
    return np.where(np.isin(rel, IHC_CLASSES), rel, "Uncertain").astype(object)


# --------------------------------------------------------------------------- conflicts


def protein_evidence_conflict(
    ihc_fraction: np.ndarray | pd.Series, cptac_fraction: np.ndarray | pd.Series
) -> np.ndarray:
    """Whether tumour IHC and CPTAC disagree strongly about a protein in a cancer's patients.

    The rule, fixed before any gene was looked at and not tuned: one source finds the protein
    in at most 10% of patients (:data:`CONFLICT_LOW`) and the other in at least 90%
    (:data:`CONFLICT_HIGH`). The IHC side is the fraction of patients whose tumour stains
    High or Medium (:func:`pathology_coverage`), the CPTAC side the fraction of tumours in
    which the protein was detected at any level (:func:`cptac_detection`). NaN on either side
    (no evidence) is never a conflict. A description beside the fused coverage, which weighs
    the two itself (:func:`fuse_coverage`).

    Parameters
    ----------
    ihc_fraction
        IHC High/Medium fraction per gene (NaN where no reliable antibody stained).
    cptac_fraction
        CPTAC detected fraction per gene (NaN where CPTAC has no row).

    Returns
    -------
    Boolean array, True where the two disagree strongly.

    Examples
    --------
    >>> protein_evidence_conflict([0.0, 0.1, 0.2, 0.95, float("nan")], [0.9, 1.0, 1.0, 0.05, 1.0])
    array([ True,  True, False,  True, False])
    """
    ihc = np.asarray(ihc_fraction, dtype=np.float64)
    cptac = np.asarray(cptac_fraction, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        ihc_absent_cptac_present = (ihc <= CONFLICT_LOW) & (cptac >= CONFLICT_HIGH)
        ihc_present_cptac_absent = (ihc >= CONFLICT_HIGH) & (cptac <= CONFLICT_LOW)
    return ihc_absent_cptac_present | ihc_present_cptac_absent


def _cptac_or_none(reference: Reference, cancer: str, genes: pd.Index) -> pd.DataFrame:
    """:func:`cptac_detection`, or its columns at NaN / 0 / ``''`` without a CPTAC table."""
    if reference.cptac is not None:
        return cptac_detection(reference, cancer, genes)
    nan = np.full(len(genes), np.nan)
    return pd.DataFrame(
        {
            "cptac_detected_fraction": nan,
            "cptac_detected_low": nan,
            "cptac_detected_high": nan,
            "cptac_n_patients": 0,
            "cptac_n_detected": 0,
            "cptac_cohort": "",
        },
        index=genes,
    )


def _cptac_evidence(
    reference: Reference,
    cancer: str,
    genes: pd.Index,
    path_cov: pd.DataFrame,
    ihc_used: pd.Index,
) -> pd.DataFrame:
    """CPTAC columns and the IHC-CPTAC conflict flag and note of ``score_targets``.

    ``ihc_used`` holds the genes stained by a reliable antibody (:func:`_ihc_coverage_genes`);
    only their IHC fraction enters the conflict rule. A reference without a CPTAC table gives
    NaN and 0 columns and no conflicts.
    """
    out = _cptac_or_none(reference, cancer, genes)
    ihc = path_cov["stained_fraction"].where(path_cov.index.isin(ihc_used))
    conflict = protein_evidence_conflict(ihc, out["cptac_detected_fraction"])
    n_ihc = path_cov["n_patients_stained"].to_numpy()
    k_ihc = np.rint(np.nan_to_num(ihc.to_numpy()) * n_ihc).astype(int)
    notes = [
        f"IHC High/Medium in {k} of {n} patients; CPTAC detects the protein in {kc} of {nc} "
        "tumours (any level, bulk tissue)"
        if c
        else ""
        for c, k, n, kc, nc in zip(
            conflict, k_ihc, n_ihc, out["cptac_n_detected"], out["cptac_n_patients"], strict=True
        )
    ]
    out["protein_evidence_conflict"] = conflict
    out["protein_evidence_note"] = pd.Series(notes, index=genes, dtype=object)
    return out


def _ihc_coverage_genes(path_cov: pd.DataFrame) -> pd.Index:
    """Return the genes stained by a reliable antibody (Enhanced or Supported).

    These are the IHC side of the conflict flag.
    """
    reliable = path_cov["ihc_reliability"].isin(list(IHC_RELIABILITY_WEIGHT))
    return path_cov.index[(path_cov["n_patients_stained"] > 0) & reliable]


# --------------------------------------------------------------------------- the model


def _grid() -> np.ndarray:
    return (np.arange(GRID) + 0.5) / GRID


def _bins(values: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """Bin index of each value (``len(edges) + 1`` bins); -1 for NaN (no reading)."""
    v = np.asarray(values, dtype=float)
    return np.where(np.isnan(v), -1, np.searchsorted(np.asarray(edges), np.nan_to_num(v), "right"))


def _log_votes(
    bins: np.ndarray, carrier: np.ndarray, non_carrier: np.ndarray, x: np.ndarray
) -> np.ndarray:
    """Σ over readings of log P(bin | x) = log(x carrier[bin] + (1 - x) non_carrier[bin]).

    ``bins`` is genes × readings (-1: none); returns genes × grid.
    """
    bins = np.asarray(bins)
    bins = bins[:, None] if bins.ndim == 1 else bins
    out = np.zeros((bins.shape[0], len(x)))
    for j in range(bins.shape[1]):
        b = bins[:, j]
        has = b >= 0
        c = np.asarray(carrier, float)[np.maximum(b, 0)][:, None]
        n = np.asarray(non_carrier, float)[np.maximum(b, 0)][:, None]
        out += np.where(has[:, None], np.log(x[None, :] * c + (1.0 - x[None, :]) * n), 0.0)
    return out


def _log_prior(model: dict) -> np.ndarray:
    """Log prior of x on the grid: each histogram bin's mass spread evenly over its points."""
    mass = np.asarray(model["presence_prior"], dtype=float)
    mass = mass / mass.sum()
    per = GRID // len(mass)
    return np.log(np.repeat(mass / per, per))


def _ihc_terms(
    counts: np.ndarray, x: np.ndarray, log_prior: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return log x^(h+m+l) (1-x)^d per gene and grid point, and the unrelated-antibody term.

    That term is the probability of the same reading from an antibody unrelated to the antigen:
    the reading of a gene drawn from the population prior of x (its predictive), on the same
    scale.
    """
    a = counts[:, 0] + counts[:, 1] + counts[:, 2]
    log_v = a[:, None] * np.log(x)[None, :] + counts[:, 3][:, None] * np.log1p(-x)[None, :]
    return log_v, special.logsumexp(log_v + log_prior[None, :], axis=1)


def _check_model(model: dict) -> dict:
    need = {
        "ihc_validity": len(IHC_CLASSES),
        "cptac_carrier": len(CPTAC_EDGES) + 1,
        "cptac_non_carrier": len(CPTAC_EDGES) + 1,
        "rna_carrier": len(RNA_EDGES) + 1,
        "rna_non_carrier": len(RNA_EDGES) + 1,
        "presence_prior": PRIOR_BINS,
    }
    for key, size in need.items():
        if key not in model or len(model[key]) != size:
            msg = f"evidence model needs {key!r} with {size} values"
            raise InputError(msg)
    return model


def fuse_coverage(  # noqa: PLR0915
    ihc_counts: np.ndarray,
    ihc_class: np.ndarray,
    cptac_fraction: np.ndarray,
    rna_level: np.ndarray,
    model: dict | None = None,
) -> dict[str, np.ndarray]:
    """Posterior of the fraction of a cancer's patients covered, from IHC, CPTAC and RNA.

    The model (docs/engagement.md, "Fused coverage"): coverage = x q, where x is the
    fraction of patients whose tumour carries the protein at any level and q the share of
    those at High/Medium.

    * x has the fitted population prior (``model['presence_prior']``, a histogram).
    * IHC (High+Medium h, Low l, Not detected d of n patients): with probability
      ``model['ihc_validity'][class]`` the antibody reads the antigen, h + l ~ Binomial(n, x)
      and q ~ Beta(h + 1, l + 1); otherwise its reading is unrelated to the antigen (its
      probability is the uniform-prior predictive, so it says nothing about x) and q is
      Uniform(0, 1). Without IHC, q is Uniform(0, 1).
    * CPTAC's detected fraction and the RNA level are binned readings with
      P(bin | x) = x carrier[bin] + (1 - x) non_carrier[bin] (fitted). Several RNA readings
      of one gene (patients, cohorts) are averaged into one first: the model was fitted on
      one reading per cancer (the mean of its cohorts), and counting patients as independent
      readings would let the number of samples decide the answer.

    Parameters
    ----------
    ihc_counts
        Genes × 4: patients High, Medium, Low, Not detected (all 0: no IHC).
    ihc_class
        Antibody class per gene (one of :data:`IHC_CLASSES`; anything else is Uncertain).
    cptac_fraction
        CPTAC's detected fraction per gene; NaN: no CPTAC row.
    rna_level
        Genes × readings (or genes) of bulk RNA levels (TPM/FPKM-like), averaged per gene;
        NaN: no reading.
    model
        The evidence model; :data:`EVIDENCE_MODEL` when ``None``.

    Returns
    -------
    Dict of arrays per gene: ``coverage`` (posterior mean of x q), ``coverage_low`` /
    ``coverage_high`` (5% / 95% posterior quantiles), ``present`` (posterior mean of x),
    ``ihc_prior`` and ``ihc_posterior`` (probability that the antibody reads the antigen,
    before and after the other sources; NaN without IHC).
    """
    model = _check_model(EVIDENCE_MODEL if model is None else model)
    counts = np.asarray(ihc_counts, dtype=float)
    if counts.ndim != 2 or counts.shape[1] != 4 or (counts < 0).any():  # noqa: PLR2004
        msg = (
            "ihc_counts must be genes × 4 counts >= 0 (high, medium, low, not detected); "
            f"got shape {counts.shape}"
        )
        raise InputError(msg)
    g = counts.shape[0]
    cls = _ihc_class(np.broadcast_to(np.asarray(ihc_class, dtype=object), (g,)))
    validity = dict(zip(IHC_CLASSES, model["ihc_validity"], strict=True))
    has_ihc = counts.sum(axis=1) > 0
    rho = np.where(has_ihc, [validity[c] for c in cls], np.nan)
    cp = np.asarray(cptac_fraction, dtype=float).reshape(-1)
    rna = np.asarray(rna_level, dtype=float)
    rna = rna[:, None] if rna.ndim == 1 else rna
    if len(cp) != g or rna.ndim != 2 or rna.shape[0] != g:  # noqa: PLR2004
        msg = f"cptac_fraction and rna_level need one row per gene ({g})"
        raise InputError(msg)
    if ((cp < 0) | (cp > 1)).any() or (rna < 0).any():
        msg = "cptac_fraction must lie in [0, 1] and rna_level be >= 0 (NaN: none)"
        raise InputError(msg)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: no reading
        rna = np.nanmean(rna, axis=1, keepdims=True)

    x = _grid()
    log_prior = _log_prior(model)
    cb = _bins(cp, CPTAC_EDGES)
    rb = _bins(rna, RNA_EDGES)
    t = np.linspace(0.0, 1.0, COVERAGE_GRID + 1)
    edges = np.linspace(0.0, 1.0, SHARE_GRID + 1)
    # where each ratio t / x falls on the share grid: the same for every gene
    u = np.clip(t[None, :] / x[:, None], 0.0, 1.0) * SHARE_GRID  # GRID × T
    j0 = np.minimum(np.floor(u).astype(int), SHARE_GRID - 1)
    w = u - j0
    uniform_cdf = u / SHARE_GRID  # a Uniform share: CDF(t / x) exactly

    out = {k: np.empty(g) for k in ("coverage", "coverage_low", "coverage_high", "present")}
    out["ihc_prior"] = rho
    out["ihc_posterior"] = np.full(g, np.nan)
    for s in range(0, g, CHUNK):
        sl = slice(s, min(s + CHUNK, g))
        c = counts[sl]
        hm, low = c[:, 0] + c[:, 1], c[:, 2]
        ihc = has_ihc[sl]
        log_other = (
            log_prior[None, :]
            + _log_votes(cb[sl], model["cptac_carrier"], model["cptac_non_carrier"], x)
            + _log_votes(rb[sl], model["rna_carrier"], model["rna_non_carrier"], x)
        )
        log_v, log_f = _ihc_terms(c, x, log_prior)
        r = np.clip(np.nan_to_num(rho[sl], nan=0.5), 1e-12, 1 - 1e-12)
        valid = np.log(r) + special.logsumexp(log_v + log_other, axis=1)
        failed = np.log1p(-r) + log_f + special.logsumexp(log_other, axis=1)
        rho_post = np.where(ihc, special.expit(valid - failed), 0.0)
        p_fail = special.softmax(log_other, axis=1)
        p_valid = special.softmax(log_v + log_other, axis=1)
        share = (hm + 1.0) / (hm + low + 2.0)
        x_v, x_f = p_valid @ x, p_fail @ x
        out["coverage"][sl] = rho_post * x_v * share + (1 - rho_post) * x_f / 2
        out["present"][sl] = rho_post * x_v + (1 - rho_post) * x_f
        out["ihc_posterior"][sl] = np.where(ihc, rho_post, np.nan)
        # CDF of x q on t: Σ_i p(x_i) F_q(t / x_i); F_q of Beta(h+1, l+1) tabulated on edges,
        # one GRID × T table per distinct (h, l)
        cdf = (1 - rho_post)[:, None] * (p_fail @ uniform_cdf)
        split = np.column_stack([hm, low])
        for key in np.unique(split[ihc], axis=0):
            rows = np.flatnonzero(ihc & (split == key).all(axis=1))
            share_cdf = special.betainc(key[0] + 1.0, key[1] + 1.0, edges)
            table = share_cdf[j0] * (1 - w) + share_cdf[np.minimum(j0 + 1, SHARE_GRID)] * w
            cdf[rows] += rho_post[rows, None] * (p_valid[rows] @ table)
        cdf[:, -1] = 1.0
        for name, level in zip(("coverage_low", "coverage_high"), INTERVAL, strict=True):
            out[name][sl] = _quantile(cdf, t, level)
    return out


def _quantile(cdf: np.ndarray, t: np.ndarray, level: float) -> np.ndarray:
    """Return the ``level`` quantile of each row's CDF tabulated on ``t`` (linear in between)."""
    cdf = np.maximum.accumulate(cdf, axis=1)
    idx = np.argmax(cdf >= level, axis=1)  # first point at or above the level
    rows = np.arange(len(cdf))
    prev = np.maximum(idx - 1, 0)
    hi_c, lo_c = cdf[rows, idx], cdf[rows, prev]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(hi_c > lo_c, (level - lo_c) / (hi_c - lo_c), 1.0)
    return np.where(idx == 0, t[0], t[prev] + frac * (t[idx] - t[prev]))


# --------------------------------------------------------------------------- the fit


def evidence_pairs(
    reference: Reference, rna_by_cancer: dict[str, pd.DataFrame] | None = None
) -> pd.DataFrame:
    """Every (gene, cancer) pair with tumour IHC, with its readings, for :func:`fit_evidence_model`.

    Parameters
    ----------
    reference
        A reference with ``pathology`` (and ``cptac``).
    rna_by_cancer
        ``{HPA cancer: genes × cohorts DataFrame of bulk RNA levels}`` (e.g. the TCGA
        medians of the cohorts of each cancer). A cancer's reading is the mean over its
        cohorts (one bulk level per pair: cohorts of one cancer are not independent votes).

    Returns
    -------
    DataFrame: ``cancer``, ``gene``, ``ihc_class``, ``high``, ``medium``, ``low``,
    ``not_detected``, ``cptac`` (detected fraction, NaN: none) and ``rna`` (level, NaN:
    none).
    """
    path = _pathology(reference)
    genes = pd.Index(sorted(set(path["symbol"].astype(str))))
    cls = _ihc_class(_ihc_reliability(reference, genes))
    cancers_cptac = set() if reference.cptac is None else set(reference.cptac["cancer"].astype(str))
    parts = []
    for cancer in sorted(set(path["cancer"].astype(str))):
        counts = _ihc_counts(reference, cancer, genes)
        cp = (
            cptac_detection(reference, cancer, genes)["cptac_detected_fraction"].to_numpy()
            if cancer in cancers_cptac
            else np.full(len(genes), np.nan)
        )
        rna = np.full(len(genes), np.nan)
        table = (rna_by_cancer or {}).get(cancer)
        if table is not None and table.shape[1]:
            rna = table.loc[~table.index.duplicated()].reindex(genes).mean(axis=1).to_numpy()
        keep = counts.sum(axis=1) > 0
        df = pd.DataFrame(
            {
                "cancer": cancer,
                "gene": genes,
                "ihc_class": cls,
                "high": counts[:, 0],
                "medium": counts[:, 1],
                "low": counts[:, 2],
                "not_detected": counts[:, 3],
                "cptac": cp,
                "rna": rna,
            }
        )
        parts.append(df[keep])
    return pd.concat([p for p in parts if len(p)], ignore_index=True)


def fit_evidence_model(pairs: pd.DataFrame, *, max_iter: int = 5000, tol: float = 1e-5) -> dict:  # noqa: PLR0915
    """Fit the evidence model's reliabilities by maximum marginal likelihood (EM).

    Over all (gene, cancer) pairs: the probability that an antibody of each class reads the
    antigen, the probability of each CPTAC and RNA reading bin in tumours that carry the
    protein and in tumours that do not, and the population prior of x (a histogram). No
    source is taken as the truth: each is judged by how well the others predict it (a latent
    class model; identifiable with three sources). Dirichlet(1) pseudo-counts keep every bin
    probability and every histogram bin above 0.

    Parameters
    ----------
    pairs
        As returned by :func:`evidence_pairs`.
    max_iter, tol
        Stop after ``max_iter`` EM steps or when no parameter moves by more than ``tol``.

    Returns
    -------
    The model dict :func:`fuse_coverage` takes, with ``'fit'`` (pairs, log-likelihood,
    iterations, converged).
    """
    df = pairs.assign(
        ihc_class=_ihc_class(pairs["ihc_class"].to_numpy(dtype=object)),
        cb=_bins(pairs["cptac"].to_numpy(), CPTAC_EDGES),
        rb=_bins(pairs["rna"].to_numpy(), RNA_EDGES),
    )
    # the likelihood depends on (class, any-level, not detected, bins) only
    df["a"] = df["high"] + df["medium"] + df["low"]
    cells = df.groupby(["ihc_class", "a", "not_detected", "cb", "rb"]).size()
    cells = cells.rename("w").reset_index()
    w = cells["w"].to_numpy(dtype=float)
    ci = cells["ihc_class"].map({c: i for i, c in enumerate(IHC_CLASSES)}).to_numpy()
    x = _grid()
    counts = np.column_stack(
        [cells["a"], np.zeros(len(cells)), np.zeros(len(cells)), cells["not_detected"]]
    ).astype(float)
    cb = cells["cb"].to_numpy()
    rbs = cells[["rb"]].to_numpy()
    n_c, n_r = len(CPTAC_EDGES) + 1, len(RNA_EDGES) + 1
    rho = np.full(len(IHC_CLASSES), 0.5)
    # start: carriers read high, non-carriers low
    cc = np.linspace(0.5, 1.5, n_c) / np.linspace(0.5, 1.5, n_c).sum()
    rc = np.linspace(0.5, 1.5, n_r) / np.linspace(0.5, 1.5, n_r).sum()
    params = {
        "cptac_carrier": cc,
        "cptac_non_carrier": cc[::-1].copy(),
        "rna_carrier": rc,
        "rna_non_carrier": rc[::-1].copy(),
        "presence_prior": np.full(PRIOR_BINS, 1.0 / PRIOR_BINS),
    }
    per = GRID // PRIOR_BINS
    ll = -np.inf
    converged = False
    steps = 0
    for _ in range(max_iter):
        steps += 1
        log_prior = _log_prior(params)
        # a failed antibody reads like a gene drawn from the current population prior
        log_v, log_f = _ihc_terms(counts, x, log_prior)
        log_other = (
            log_prior[None, :]
            + _log_votes(cb, params["cptac_carrier"], params["cptac_non_carrier"], x)
            + _log_votes(rbs, params["rna_carrier"], params["rna_non_carrier"], x)
        )
        lv = np.log(rho[ci])[:, None] + log_v + log_other
        lf = (np.log1p(-rho[ci]) + log_f)[:, None] + log_other
        lz = np.logaddexp(special.logsumexp(lv, axis=1), special.logsumexp(lf, axis=1))
        ll = float((w * lz).sum())
        pv = np.exp(lv - lz[:, None])
        post = pv + np.exp(lf - lz[:, None])  # posterior of x per cell
        new = {
            "presence_prior": (w[:, None] * post).sum(axis=0).reshape(PRIOR_BINS, per).sum(axis=1)
            + 1.0
        }
        new["presence_prior"] /= new["presence_prior"].sum()
        for name, bins, k in (("cptac", cb[:, None], n_c), ("rna", rbs, n_r)):
            car, non = np.ones(k), np.ones(k)  # Dirichlet(1) pseudo-counts
            for j in range(bins.shape[1]):
                b = bins[:, j]
                m = b >= 0
                pc = params[f"{name}_carrier"][b[m]][:, None] * x[None, :]
                pn = params[f"{name}_non_carrier"][b[m]][:, None] * (1.0 - x[None, :])
                u1 = w[m] * (post[m] * pc / (pc + pn)).sum(axis=1)
                u0 = w[m] * post[m].sum(axis=1) - u1
                car += np.bincount(b[m], u1, k)
                non += np.bincount(b[m], u0, k)
            new[f"{name}_carrier"] = car / car.sum()
            new[f"{name}_non_carrier"] = non / non.sum()
        new_rho = np.bincount(ci, w * pv.sum(axis=1), len(IHC_CLASSES)) / np.maximum(
            np.bincount(ci, w, len(IHC_CLASSES)), 1e-300
        )
        new_rho = np.where(np.bincount(ci, w, len(IHC_CLASSES)) > 0, new_rho, 0.5)
        move = max(np.abs(new_rho - rho).max(), *(np.abs(new[k] - params[k]).max() for k in new))
        rho, params = new_rho, new
        if move < tol:
            converged = True
            break
    model = {k: [float(f"{v:.6g}") for v in params[k]] for k in params}
    model["ihc_validity"] = [float(f"{v:.6g}") for v in rho]
    model["fit"] = {
        "pairs": int(w.sum()),
        "log_likelihood": round(ll, 3),
        "iterations": steps,
        "converged": converged,
        "tol": tol,
    }
    return model


# --------------------------------------------------------------------------- per cancer


def fused_coverage(
    reference: Reference,
    cancer: str,
    genes: pd.Index,
    rna_level: np.ndarray | pd.DataFrame | None = None,
    model: dict | None = None,
) -> pd.DataFrame:
    """Fused tumour coverage of a cancer's patients from IHC, CPTAC and RNA.

    Parameters
    ----------
    reference
        A reference with ``pathology`` (and, optionally, ``cptac``).
    cancer
        HPA cancer type, e.g. ``'breast cancer'``.
    genes
        Genes to report.
    rna_level
        Genes × patient groups (or one value per gene) of bulk RNA levels (TPM/FPKM-like);
        the patients' levels are averaged into one reading (:func:`fuse_coverage`); NaN or
        ``None``: no RNA.
    model
        The evidence model; :data:`EVIDENCE_MODEL` when ``None``.

    Returns
    -------
    DataFrame indexed by gene: ``coverage`` (posterior mean), ``coverage_low`` /
    ``coverage_high`` (90% posterior interval), ``protein_present_fraction`` (posterior mean
    fraction of patients carrying the protein at any level), ``ihc_validity_prior`` and
    ``ihc_validity_posterior`` (probability that the antibody reads the antigen before and
    after the other sources; NaN without IHC) and ``coverage_source`` (the sources used).

    Raises
    ------
    InputError
        If the reference has no pathology table, ``cancer`` is unknown or ``rna_level`` does
        not fit ``genes`` or is negative.

    Examples
    --------
    >>> import pandas as pd
    >>> from antigenscout.reference import load_reference
    >>> from antigenscout.tl import fused_coverage
    >>> c = fused_coverage(load_reference(), "breast cancer", pd.Index(["ERBB2"]))
    >>> bool(0 <= c.loc["ERBB2", "coverage_low"] <= c.loc["ERBB2", "coverage_high"] <= 1)
    True
    """
    genes = pd.Index(genes).astype(str)
    counts = _ihc_counts(reference, cancer, genes)
    if rna_level is None:
        rna = np.full((len(genes), 1), np.nan)
    else:
        if isinstance(rna_level, pd.DataFrame | pd.Series):
            rna_level = rna_level.reindex(genes)
        rna = np.asarray(rna_level, dtype=float)
        rna = rna[:, None] if rna.ndim == 1 else rna
        if rna.ndim != 2 or rna.shape[0] != len(genes):  # noqa: PLR2004
            msg = f"rna_level must have one row per gene ({len(genes)}); got shape {rna.shape}"
            raise InputError(msg)
    cls = _ihc_class(_ihc_reliability(reference, genes))
    cp = _cptac_or_none(reference, cancer, genes)
    fused = fuse_coverage(counts, cls, cp["cptac_detected_fraction"].to_numpy(), rna, model)
    has_ihc = counts.sum(axis=1) > 0
    n_rna = np.isfinite(rna).sum(axis=1)
    sources = []
    for i in range(len(genes)):
        parts = []
        if has_ihc[i]:
            parts.append(f"HPA IHC {cls[i]} ({int(counts[i].sum())} patients)")
        if cp["cptac_n_patients"].iloc[i] > 0:
            n_cp = int(cp["cptac_n_patients"].iloc[i])
            parts.append(f"CPTAC {cp['cptac_cohort'].iloc[i]} ({n_cp} tumours)")
        if n_rna[i]:
            parts.append(
                "RNA (1 bulk level)" if n_rna[i] == 1 else f"RNA (mean of {n_rna[i]} bulk levels)"
            )
        sources.append(" + ".join(parts) or "none (population prior)")
    return pd.DataFrame(
        {
            "coverage": fused["coverage"],
            "coverage_low": fused["coverage_low"],
            "coverage_high": fused["coverage_high"],
            "protein_present_fraction": fused["present"],
            "ihc_validity_prior": fused["ihc_prior"],
            "ihc_validity_posterior": fused["ihc_posterior"],
            "coverage_source": pd.Series(sources, index=genes, dtype=object),
        },
        index=genes,
    )
