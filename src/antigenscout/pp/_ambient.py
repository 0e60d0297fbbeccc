"""Ambient RNA: each sample's soup and how much of it its droplets carry.

Every droplet of a single-cell run holds, beside its cell's own molecules, some of the
cell-free RNA of the sample (the *soup*, dominated by the sample's most abundant and most
fragile cells: haemoglobin from red cells, immunoglobulin from plasma cells). A call that
counts any read as antigen calls that soup positive on every cell. This module estimates,
per sample, the soup profile and the contamination ``ρ`` (the share of a droplet's UMIs
that come from the soup), in the spirit of SoupX (Young & Behjati 2020 *GigaScience*
9:giaa151) when no empty droplets are at hand:

* **Soup profile** ``a_g`` of a sample: its summed counts over all its barcodes divided by
  their summed library sizes (a filtered matrix has no empty droplets; the soup is then
  best approximated by the sample's pooled expression, which is what lysed cells release).
* **Marker genes** of a sample: genes concentrated in some cell states — one state of at
  least :data:`MIN_GROUP_CELLS` cells carries the gene at :data:`MIN_CONCENTRATION` times
  its soup level or more (so at most a fifth of the sample's UMIs can come from cells that
  make it at that level) — and common in the soup (top :data:`SOUP_QUANTILE` of the
  sample's genes, SoupX's ``soupQuantile``), so the soup carries enough of them to be seen.
* **Pairs**: every (marker, state) whose rate is below the soup's (``O < E``, ``E = L_c
  a_g`` the counts pure soup would give the state) estimates ``ρ`` by ``O / E``, plus
  whatever little of the marker the state makes itself.
* **Contamination**: the pooled ratio ``ΣO / ΣE`` over the pairs consistent with it, a
  fixed point (:func:`_robust_ratio`: states that make a marker themselves sit
  significantly above ``ρ E`` and are dropped; pairs below are kept, so Poisson noise does
  not pull it down). Its 90% interval resamples the marker genes (:data:`N_BOOT`).
  On simulated droplets with ρ = 0.01, 0.05, 0.20 it recovers 0.010, 0.050, 0.198–0.204
  (``tests/pp/test_ambient.py``).

The states are the user's labels (malignant flag and compartment); a sample whose labels
give fewer than :data:`MIN_MARKERS` markers (genes off in some state, :data:`MIN_ON_OFF`),
an interval wider than a factor :data:`MAX_INTERVAL_RATIO` or an impossible contamination
(:data:`MAX_CONTAMINATION`) is clustered instead (k-means of a subsample); failing that it
borrows the median of the samples estimated in the same run, and with none estimated
nothing is subtracted. The knn positivity then calls
a cell positive only where its pooled counts exceed what the soup explains
(:mod:`antigenscout.pp._positivity`): ``b = ρ a_g s`` expected soup reads in a pool of
library ``s``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from numba import njit

from antigenscout._errors import InputError

__all__ = [
    "MIN_GROUP_CELLS",
    "MIN_MARKERS",
    "MIN_PAIRS",
    "SOUP_QUANTILE",
    "Ambient",
    "GroupSums",
    "estimate_ambient",
]

#: A state needs this many cells for its own contamination estimate (and to define markers).
MIN_GROUP_CELLS = 10
#: Marker genes: soup fraction at least this quantile of the sample's non-zero soup
#: (SoupX autoEstCont ``soupQuantile``).
SOUP_QUANTILE = 0.9
#: A marker is off somewhere: its lowest state carries it at most 1/20 of its highest (an
#: exclusive gene at a contamination of 5% is about 100-fold apart; a gene that a continuum
#: of states makes more or less of, as the clusters of one leukaemia do, is 2- to 10-fold).
MIN_ON_OFF = 20.0
#: Fewest marker genes for a sample's own estimate (else clusters, else borrowed).
MIN_MARKERS = 10
#: Fewest non-expressing (marker, state) pairs for an estimate.
MIN_PAIRS = 5
#: A marker is concentrated: some state carries it at this many times its soup level (so at
#: most 1/5 of the sample's UMIs can come from cells expressing it at that level).
MIN_CONCENTRATION = 5.0
#: A pair whose count exceeds ``μ + z√μ + 2`` (``μ = ρ E``; at least the 0.995 quantile of
#: Poisson(μ)) is a state making the marker itself.
EXCESS_Z = 2.576
#: Largest contamination taken as an estimate: a droplet holding as much soup as its own
#: RNA could not have been called a cell, let alone labelled (an estimate this high says the
#: markers were not exclusive, as in k-means clusters of duplicated, bootstrapped cells).
MAX_CONTAMINATION = 0.5
#: A sample's own estimate is used when its 90% interval spans at most this factor.
MAX_INTERVAL_RATIO = 3.0
#: Iterations of the robust pooled ratio.
N_ITER = 50
#: Bootstrap resamples of the marker genes for the 90% interval.
N_BOOT = 200
#: Decimals a contamination is kept to (the table, and every soup discounted from it).
RHO_DECIMALS = 5
#: Most cells of one sample clustered when it has no labelled states to compare.
CLUSTER_MAX_CELLS = 3000


@njit(cache=True, nogil=True)
def _add_group_sums(  # noqa: PLR0913, PLR0917
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    codes: np.ndarray,
    lib: np.ndarray,
    counts: np.ndarray,
    library: np.ndarray,
    cells: np.ndarray,
) -> None:
    """Add each CSR row's counts, library and 1 to its group (in place).

    Rows with a negative code are skipped.
    """
    for r in range(indptr.size - 1):
        c = codes[r]
        if c < 0:
            continue
        library[c] += lib[r]
        cells[c] += 1
        for j in range(indptr[r], indptr[r + 1]):
            counts[c, indices[j]] += data[j]


@dataclass(frozen=True)
class Soup:
    """Soup reads expected per UMI of a droplet, for the knn call (:func:`estimate_ambient`).

    Attributes
    ----------
    background
        ``(samples, genes)`` ``ρ_s a_{s,g}`` for the genes (columns) being called.
    code
        Sample (row of ``background``) of each cell; -1 = no soup subtracted.
    contamination
        ``ρ_s`` per sample: the share of a droplet's UMIs that are soup, so the native
        library of a pool is ``(1 - ρ) s``.
    """

    background: np.ndarray
    code: np.ndarray
    contamination: np.ndarray

    @classmethod
    def none(cls, n: int) -> Soup:
        """No soup: every call as without the ambient model."""
        return cls(np.zeros((1, 1)), np.full(n, -1, dtype=np.int64), np.zeros(1))


@dataclass
class GroupSums:
    """Summed counts, library sizes and cell numbers per (sample, state) group.

    Counts are summed for every gene; the sums are what the contamination estimate needs.
    """

    counts: np.ndarray  #: (groups, genes) float64 summed counts
    library: np.ndarray  #: (groups,) summed library sizes
    cells: np.ndarray  #: (groups,) cells

    @classmethod
    def zeros(cls, n_groups: int, n_genes: int) -> GroupSums:
        """Empty sums."""
        return cls(
            np.zeros((n_groups, n_genes)),
            np.zeros(n_groups),
            np.zeros(n_groups, dtype=np.int64),
        )

    def add(self, block: Any, codes: np.ndarray, library: np.ndarray) -> None:
        """Add the rows of ``block`` (cells × all genes, CSR or dense) to their groups.

        The groups are ``codes`` (-1 = not counted), the library sizes ``library``.
        """
        blk = sp.csr_matrix(block)
        _add_group_sums(
            blk.indptr,
            blk.indices,
            blk.data,
            np.asarray(codes, dtype=np.int64),
            np.asarray(library, dtype=np.float64),
            self.counts,
            self.library,
            self.cells,
        )


@dataclass
class Ambient:
    """Soup profile and contamination of every sample.

    Attributes
    ----------
    table
        One row per sample: ``sample``, ``n_cells``, ``median_library``, ``contamination``
        with its 90% interval (``contamination_low``, ``contamination_high``), the
        ``n_states``, ``n_marker_genes`` and ``n_pairs`` behind it, ``source``
        (``'labelled states'``, ``'clusters'`` or ``'not estimable'``: nothing subtracted)
        and ``top_soup_genes`` (``gene:CP10k`` of its ten most abundant soup genes).
    profile
        ``(samples, genes)`` soup fraction of every gene (each row sums to 1).
    """

    table: pd.DataFrame
    profile: np.ndarray

    @property
    def contamination(self) -> np.ndarray:
        """ρ per sample (0 where not estimable)."""
        return np.nan_to_num(self.table["contamination"].to_numpy(dtype=np.float64))

    def soup(self, genes: np.ndarray, codes: np.ndarray) -> Soup:
        """Return what the knn call discounts for ``genes`` in cells of samples ``codes``.

        The codes are rows of :attr:`table`; -1 = none.
        """
        return Soup(self.background(genes), np.asarray(codes, np.int64), self.contamination)

    def background(self, genes: np.ndarray) -> np.ndarray:
        """Return ``(samples, len(genes))`` soup reads per UMI of a droplet: ``ρ_s a_{s,g}``."""
        prof = self.profile[:, np.asarray(genes, dtype=np.int64)].astype(np.float64)
        return np.ascontiguousarray(self.contamination[:, None] * prof)

    def summary(self) -> dict[str, Any]:
        """Return what run.json records: the model and each sample's contamination."""
        t = self.table
        return {
            "model": "soup = each sample's pooled expression; contamination = robust pooled "
            "observed/expected ratio over genes made by some cell states only (SoupX-like; "
            "docs/positivity.md)",
            "contamination": {
                str(k): (None if not np.isfinite(v) else round(float(v), 4))
                for k, v in zip(t["sample"], t["contamination"], strict=True)
            },
            "not_estimable": [str(x) for x in t.loc[t["source"] == "not estimable", "sample"]],
        }


def _robust_ratio(obs: np.ndarray, exp_: np.ndarray, w: np.ndarray | None = None) -> np.ndarray:
    """Pooled ``ΣwO / ΣwE`` over the pairs consistent with it (a fixed point).

    Start from the ``E``-weighted lower quartile of ``O / E``; then, :data:`N_ITER` times,
    keep the pairs whose count is not significantly above ``ρ E`` (``O ≤ μ + z√μ + 2`` with
    ``μ = ρ E`` and ``z`` = :data:`EXCESS_Z`, at least the 0.995 quantile of Poisson(``μ``):
    states that make some of a marker themselves are dropped) and pool them. A pair below
    ``ρ E`` is never dropped, so Poisson noise does not bias the estimate down. ``w``
    (resamples × pairs) multiplies both sums, giving one estimate per resample.
    """
    W = np.ones((1, obs.size)) if w is None else np.asarray(w, dtype=np.float64)
    order = np.argsort(obs / exp_, kind="stable")
    wE = W[:, order] * exp_[order][None, :]
    cum = np.cumsum(wE, axis=1)
    first = np.argmax(cum >= 0.25 * cum[:, -1:], axis=1)
    rho = (obs / exp_)[order][first]
    for _ in range(N_ITER):
        mu = rho[:, None] * exp_[None, :]
        keep = obs[None, :] <= mu + EXCESS_Z * np.sqrt(mu) + 2.0
        num = (W * obs[None, :] * keep).sum(axis=1)
        den = (W * exp_[None, :] * keep).sum(axis=1)
        new = np.divide(num, den, out=np.full(num.shape, np.nan), where=den > 0)
        if np.allclose(new, rho, rtol=1e-6, equal_nan=True):
            return new
        rho = new
    return rho


@dataclass
class _SampleFit:
    """One sample's contamination estimate from its states' sums."""

    rho: float = np.nan
    low: float = np.nan
    high: float = np.nan
    n_states: int = 0
    n_markers: int = 0
    n_pairs: int = 0


def _fit_sample(
    counts: np.ndarray,
    library: np.ndarray,
    cells: np.ndarray,
    a: np.ndarray,
    rng: np.random.Generator,
) -> _SampleFit:
    """Contamination of one sample from its states (rows of the sums) and soup ``a``."""
    big = np.flatnonzero(cells >= MIN_GROUP_CELLS)
    fit = _SampleFit(n_states=big.size)
    if big.size < 2 or not (a > 0).any():  # noqa: PLR2004
        return fit
    rate = counts[big] / library[big, None]
    top, bottom = rate.max(axis=0), rate.min(axis=0)
    conc = top >= MIN_CONCENTRATION * a
    off = top >= MIN_ON_OFF * bottom  # some state does not make it at all
    common = a >= np.quantile(a[a > 0], SOUP_QUANTILE)
    mk = np.flatnonzero(common & conc & off)
    fit.n_markers = mk.size
    if mk.size == 0:
        return fit
    exp_ = library[big, None] * a[None, mk]
    obs = counts[big][:, mk]
    ok = (obs < exp_) & (exp_ > 0)
    gi, ci = np.nonzero(ok.T)  # (marker, state) pairs, by marker
    fit.n_pairs = gi.size
    if gi.size < MIN_PAIRS:
        return fit
    fit.rho = float(_robust_ratio(obs[ci, gi], exp_[ci, gi])[0])
    boot = rng.multinomial(mk.size, np.full(mk.size, 1.0 / mk.size), size=N_BOOT)
    fit.low, fit.high = _interval(_robust_ratio(obs[ci, gi], exp_[ci, gi], boot[:, gi] * 1.0))
    return fit


def contamination_from_states(
    counts: np.ndarray, library: np.ndarray, cells: np.ndarray, random_state: int = 0
) -> float:
    """Return one sample's contamination from its labelled states' sums.

    Rows are states, in the order the states first appear. The estimate is the one
    :func:`estimate_ambient` makes from labelled states; NaN where the estimate is not usable;
    kept to :data:`RHO_DECIMALS` as the table keeps it. For a caller that already holds the
    sums.

    >>> contamination_from_states(np.ones((2, 3)), np.full(2, 3.0), np.array([20, 20]))
    nan
    """
    counts = np.asarray(counts, dtype=np.float64)
    library = np.asarray(library, dtype=np.float64)
    profile = counts.sum(axis=0) / max(float(library.sum()), 1e-300)
    fit = _fit_sample(
        counts, library, np.asarray(cells), profile, np.random.default_rng(random_state)
    )
    return round(fit.rho, RHO_DECIMALS) if _usable(fit) else np.nan


def _usable(fit: _SampleFit) -> bool:
    """Enough markers, a precise enough estimate, and a possible one, to stand on its own."""
    return (
        fit.n_markers >= MIN_MARKERS
        and np.isfinite(fit.rho)
        and 0 < fit.rho < MAX_CONTAMINATION
        and fit.high <= MAX_INTERVAL_RATIO * max(fit.low, 1e-12)
    )


def _interval(values: np.ndarray) -> tuple[float, float]:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return np.nan, np.nan
    lo, hi = np.quantile(v, [0.05, 0.95])
    return float(lo), float(hi)


def _cluster_sums(
    X: Any, rows: np.ndarray, library: np.ndarray, random_state: int
) -> GroupSums | None:
    """Return sums per k-means cluster (k = clip(n/100, 2, 10)) of a sample of ``rows``.

    The sample is at most :data:`CLUSTER_MAX_CELLS` of ``rows``, taken as 20 evenly spaced
    contiguous windows (a backed file is read in 20 short pieces, once), clustered on a PCA of
    those cells; ``None`` when there are too few cells.
    """
    from sklearn.cluster import KMeans  # noqa: PLC0415

    from ._graph import _read_rows, fit_embedding, spread_windows  # noqa: PLC0415

    if rows.size < 2 * MIN_GROUP_CELLS:
        return None
    pick = spread_windows(rows.size, CLUSTER_MAX_CELLS)
    counts = _read_rows(X, rows[pick])
    lib = library[pick]
    emb = fit_embedding(counts, lib, random_state=random_state)
    Y = emb.transform(counts, lib)
    k = int(np.clip(round(pick.size / 100), 2, 10))
    codes = KMeans(n_clusters=k, n_init=4, random_state=random_state).fit(Y).labels_
    sums = GroupSums.zeros(k, X.shape[1])
    sums.add(counts, codes, lib)
    return sums


def estimate_ambient(  # noqa: PLR0913, PLR0915
    X: Any,
    sample: np.ndarray,
    state: np.ndarray | None = None,
    *,
    library: np.ndarray | None = None,
    gene_names: pd.Index | None = None,
    random_state: int = 0,
    clusters: bool = True,
) -> tuple[Ambient, np.ndarray]:
    """Estimate the soup and the contamination of every sample.

    Each sample's contamination is estimated from its labelled ``state``s; where they give
    fewer than :data:`MIN_MARKERS` marker genes (or no states are given), from k-means
    clusters of a subsample of its cells; where that fails too, the sample borrows the
    median of the samples estimated in this run (contamination is a property of the
    protocol the samples share; ``source`` says ``'borrowed'``). With no sample estimated,
    nothing is subtracted (``'not estimable'``).

    Parameters
    ----------
    X
        Cells × genes raw counts of *all* barcodes (tumour and normal cells alike), in
        memory or backed; read in row chunks.
    sample
        Sample (e.g. patient) of each row; rows with a missing sample (NA or blank) are
        left out.
    state
        Labelled cell state of each row (e.g. ``'malignant:HSC-like'``, ``'normal:T'``).
    library
        Library size of each row (default: row sums).
    gene_names
        For the table's top soup genes.
    random_state
        Seed of the clustering and the bootstrap.
    clusters
        Whether a sample its labelled states cannot estimate is tried on k-means clusters
        (``False``: it borrows, or is not estimated; the clustering costs a PCA per sample).

    Returns
    -------
    ``(ambient, codes)``: the model and each row's sample (row of ``ambient.table``; -1
    where the sample is missing).
    """
    from ._graph import iter_row_chunks  # noqa: PLC0415

    n = X.shape[0]
    sample = pd.Series(np.asarray(sample, dtype=object))
    if len(sample) != n:
        msg = f"sample has {len(sample)} entries but the counts have {n} rows"
        raise InputError(msg)
    missing = sample.isna().to_numpy() | (sample.astype(str).str.strip() == "").to_numpy()
    s_codes, names = pd.factorize(sample.astype(str).where(~missing, None), sort=True)
    s_codes = np.asarray(s_codes, dtype=np.int64)
    samples = [str(x) for x in names]
    n_s = len(samples)
    rng = np.random.default_rng(random_state)
    lib = np.zeros(n) if library is None else np.asarray(library, dtype=np.float64)
    # one pass: sums per (sample, labelled state); a sample's soup is the sum of its states
    st_codes = (
        np.zeros(n, dtype=np.int64)
        if state is None
        else pd.factorize(pd.Series(np.asarray(state, dtype=object)).astype(str))[0]
    )
    n_st = int(st_codes.max()) + 1 if n else 1
    pair = s_codes * n_st + st_codes
    ok = s_codes >= 0
    g_pairs, inverse = np.unique(pair[ok], return_inverse=True)
    g_codes = np.full(n, -1, dtype=np.int64)
    g_codes[ok] = inverse
    g_sample = (g_pairs // n_st).astype(np.int64)
    sums = GroupSums.zeros(len(g_pairs), X.shape[1])
    for sl, blk in iter_row_chunks(X, np.arange(n)):
        if library is None:
            lib[sl] = np.asarray(blk.sum(axis=1)).ravel()
        sums.add(blk, g_codes[sl], lib[sl])
    soup_counts = np.zeros((n_s, X.shape[1]))
    np.add.at(soup_counts, g_sample, sums.counts)
    soup_lib = np.bincount(g_sample, weights=sums.library, minlength=n_s)
    n_cells = np.bincount(g_sample, weights=sums.cells, minlength=n_s).astype(np.int64)
    profile = soup_counts / np.maximum(soup_lib, 1e-300)[:, None]
    fits = [_SampleFit() for _ in range(n_s)]
    source = np.array(["not estimable"] * n_s, dtype=object)
    if state is not None:  # labelled states
        for s in range(n_s):
            i = g_sample == s
            fits[s] = _fit_sample(sums.counts[i], sums.library[i], sums.cells[i], profile[s], rng)
            if _usable(fits[s]):
                source[s] = "labelled states"
    del sums
    for s in np.flatnonzero(source == "not estimable") if clusters else ():  # clusters
        rows = np.flatnonzero(s_codes == s)
        sums = _cluster_sums(X, rows, lib[rows], random_state)
        if sums is None:
            continue
        fit = _fit_sample(sums.counts, sums.library, sums.cells, profile[s], rng)
        if _usable(fit):
            fits[s], source[s] = fit, "clusters"
        elif fit.n_markers > fits[s].n_markers:  # report the attempt that came closest
            fits[s] = fit
    est = np.flatnonzero(source != "not estimable")
    rho = np.array([f.rho for f in fits])
    low = np.array([f.low for f in fits])
    high = np.array([f.high for f in fits])
    borrowed = np.flatnonzero(source == "not estimable")
    if est.size and borrowed.size:
        rho[borrowed] = np.median(rho[est])
        low[borrowed], high[borrowed] = np.quantile(rho[est], [0.05, 0.95])
        source[borrowed] = f"borrowed (median of {est.size} samples)"
    none = source == "not estimable"
    rho[none], low[none], high[none] = np.nan, np.nan, np.nan
    table = pd.DataFrame(
        {
            "sample": samples,
            "n_cells": n_cells,
            "median_library": pd.Series(lib[s_codes >= 0])
            .groupby(s_codes[s_codes >= 0])
            .median()
            .reindex(range(n_s))
            .to_numpy(),
            "contamination": np.round(rho, RHO_DECIMALS),
            "contamination_low": np.round(low, RHO_DECIMALS),
            "contamination_high": np.round(high, RHO_DECIMALS),
            "n_states": [f.n_states for f in fits],
            "n_marker_genes": [f.n_markers for f in fits],
            "n_pairs": [f.n_pairs for f in fits],
            "source": source,
            "top_soup_genes": [
                ""
                if gene_names is None
                else ",".join(
                    f"{gene_names[g]}:{profile[s, g] * 1e4:.0f}"
                    for g in np.argsort(-profile[s], kind="stable")[:10]
                    if profile[s, g] > 0
                )
                for s in range(n_s)
            ],
        }
    )
    return Ambient(table=table, profile=profile.astype(np.float32)), s_codes
