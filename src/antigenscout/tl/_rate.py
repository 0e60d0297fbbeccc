"""Per-patient coverage from a Gamma–Poisson rate model, with an interval and a depth check.

Per-cell calls say whether *one* cell shows its antigen; at the engagement threshold
(0.2 CP10k) a cell of 2,000 UMIs carries 0.04 expected reads, so a single cell cannot be
called and the default positivity borrows its neighbours. This model asks the patient-level
question directly. Within one patient (and compartment, when given) each malignant cell
``i`` has an expression rate ``λ_i`` (CP10k) drawn from ``Gamma(k, k/μ)`` and shows
``x_i ~ Poisson(λ_i s_i)`` reads, ``s_i`` = library size / 10⁴: the negative binomial of
scRNA-seq. Method of moments over the group's cells (sufficient statistics Σx, Σx², Σxs,
Σs, Σs², one streamed pass):

* ``μ̂ = Σx / Σs`` (the group's mean rate, CP10k);
* ``1/k̂ = (Σ(x − μ̂s)² − μ̂Σs) / (μ̂² Σs²)``, clipped to ``k ∈ [K_MIN, K_MAX]`` (no
  overdispersion left: ``K_MAX``, a near-homogeneous group);
* coverage = ``P(λ ≥ λ0) = Q(k̂, k̂ λ0 / μ̂)``, the regularised upper incomplete gamma.

Interval (90%): the coverage at the corners of a box in (``μ``, ``k``), widened by a
jackknife. ``μ`` spans Garwood's exact Poisson interval on the group's total reads, after
dividing them by the negative-binomial variance inflation ``φ = 1 + μ̂Σs²/(k̂Σs)`` (an
effective count), scaled back: it holds when reads are few (with none at all, its upper end
is what 3 reads would give). ``k`` spans ``k̂ exp(±1.645 SE)``, SE the delete-one-block
jackknife's (over ``JACKKNIFE_BLOCKS`` random blocks of cells) of ``log k̂``; where ``k̂``
sits at a clip bound (the reads cannot tell the shape) it spans the engagement model's
smallest shape (0.5) to ``K_MAX``. The coverage's own jackknife interval is kept where wider.

Depth: ``reads_at_threshold`` = λ0 × the group's median ``s``, the reads a median cell at the
threshold shows. A call needs the group's total expected reads at the threshold,
``λ0 Σs``, to be at least ``MIN_READS_AT_THRESHOLD`` (10: an antigen at the threshold in every
cell would then show ≥ 4 reads with probability 0.99); otherwise ``callable`` is False and the
interval is wide by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from numba import njit
from scipy import sparse, special
from scipy.stats import chi2 as stats_chi2

from ._gamma import INTERVAL_SHAPES, MIN_READS_AT_THRESHOLD
from ._groups import _group_codes, counts_matrix, tumor_groups

__all__ = [
    "K_MAX",
    "K_MIN",
    "MIN_READS_AT_THRESHOLD",
    "RateModel",
    "RateSums",
    "group_rate_stats",
    "patient_rate_coverage",
    "rate_model",
]

#: Bounds of the Gamma shape (overdispersion) estimate.
K_MIN, K_MAX = 0.05, 50.0
#: Random blocks of cells for the delete-one-block jackknife of the interval.
JACKKNIFE_BLOCKS = 20
_Z90 = 1.6448536269514722


@dataclass(frozen=True)
class RateModel:
    """Per (group, gene) Gamma–Poisson fit and the coverage it implies.

    All arrays are ``(n_groups, n_genes)`` except ``n_cells``, ``sum_s`` and ``median_s``
    (``(n_groups,)``).
    """

    mean_cp10k: np.ndarray
    shape: np.ndarray
    coverage: np.ndarray
    low: np.ndarray
    high: np.ndarray
    n_cells: np.ndarray
    sum_s: np.ndarray
    median_s: np.ndarray
    threshold_cp10k: float

    @property
    def callable(self) -> np.ndarray:
        """``(n_groups,)``: enough depth for a call (see the module docstring)."""
        return self.threshold_cp10k * self.sum_s >= MIN_READS_AT_THRESHOLD


@njit(cache=True, nogil=True)
def _rate_sums(  # noqa: PLR0913, PLR0917
    indptr: np.ndarray,
    indices: np.ndarray,
    data: np.ndarray,
    key: np.ndarray,
    colmap: np.ndarray,
    lib: np.ndarray,
    lib_given: bool,
    x: np.ndarray,
    x2: np.ndarray,
    xs: np.ndarray,
) -> None:
    """Add one CSR chunk's ``x``, ``x²`` and ``x·s`` to row ``key[r]`` of the sums.

    Only for the columns ``colmap`` keeps (``-1``: not modelled); ``s`` = library / 10⁴. ``lib``
    is filled with the row sums over all columns unless ``lib_given``.
    """
    for r in range(indptr.size - 1):
        if not lib_given:
            t = 0.0
            for j in range(indptr[r], indptr[r + 1]):
                t += data[j]
            lib[r] = t
        s = lib[r] / 1e4
        k = key[r]
        for j in range(indptr[r], indptr[r + 1]):
            c = colmap[indices[j]]
            if c >= 0:
                v = np.float64(data[j])
                x[k, c] += v
                x2[k, c] += v * v
                xs[k, c] += v * s


class RateSums:
    """The rate model's sufficient statistics, added chunk by chunk in one pass.

    Parameters
    ----------
    codes
        Group (patient[, compartment]) of each modelled cell, in row order.
    n_groups
        Number of groups.
    genes
        Column indices of the chunks to model (a gene asked for twice gets the same sums).
    n_cols
        Columns of the chunks.
    n_blocks, seed
        Random jackknife blocks of cells (seeded).
    """

    def __init__(  # noqa: PLR0913
        self,
        codes: np.ndarray,
        n_groups: int,
        genes: np.ndarray,
        n_cols: int,
        *,
        n_blocks: int = JACKKNIFE_BLOCKS,
        seed: int = 0,
    ) -> None:
        uniq, self._inv = np.unique(np.asarray(genes, dtype=np.int64), return_inverse=True)
        self._colmap = np.full(n_cols, -1, dtype=np.int64)
        self._colmap[uniq] = np.arange(uniq.size)
        self._codes = np.asarray(codes)
        self._n_groups = int(n_groups)
        self._J = max(int(n_blocks), 1)
        block_of = np.random.default_rng(seed).integers(0, self._J, len(codes))
        self._key = block_of * n_groups + self._codes
        shape = (self._J * n_groups, uniq.size)
        self._sums = {k: np.zeros(shape) for k in ("x", "x2", "xs")}
        self._s = np.zeros(len(codes))

    def add(
        self,
        sl: slice,
        block: Any,
        library: np.ndarray | None = None,
        *,
        duplicates: bool | None = None,
    ) -> None:
        """Add the cells ``sl`` (positions in ``codes``) held by the rows of ``block``.

        ``library`` is their library sizes (default: the block's row sums). ``duplicates``:
        whether a row may hold a column twice (``None``: checked here; x² needs them merged
        first).
        """
        B = sparse.csr_matrix(block)
        if duplicates is None:
            duplicates = not B.has_canonical_format
        if duplicates:
            B = B.copy()
            B.sum_duplicates()
        given = library is not None
        lib = np.asarray(library, dtype=np.float64) if given else np.zeros(B.shape[0])
        out = self._sums
        _rate_sums(
            B.indptr, B.indices, B.data, self._key[sl], self._colmap, lib, given,
            out["x"], out["x2"], out["xs"],
        )  # fmt: skip
        self._s[sl] = lib / 1e4

    def stats(self) -> dict[str, np.ndarray]:
        """Arrays ``(n_blocks, n_groups[, n_genes])`` for :func:`rate_model`."""
        J, G, key, s, codes = self._J, self._n_groups, self._key, self._s, self._codes
        res = {k: v.reshape(J, G, -1)[..., self._inv] for k, v in self._sums.items()}
        m = J * G
        res["n"] = np.bincount(key, minlength=m).astype(np.float64).reshape(J, G)
        res["s"] = np.bincount(key, weights=s, minlength=m).reshape(J, G, 1)
        res["s2"] = np.bincount(key, weights=s**2, minlength=m).reshape(J, G, 1)
        res["median_s"] = np.array(
            [np.median(s[codes == k]) if np.any(codes == k) else 0.0 for k in range(G)]
        )
        return res


def group_rate_stats(  # noqa: PLR0913
    chunks: Any,
    codes: np.ndarray,
    n_groups: int,
    genes: np.ndarray,
    library: np.ndarray | None = None,
    *,
    n_blocks: int = JACKKNIFE_BLOCKS,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Sufficient statistics per jackknife block and group from ``(row slice, block)`` pairs.

    ``codes`` gives each row's group; ``library`` each row's library size (UMIs; default:
    the block's row sums over all its columns); ``genes`` the block columns to model. Each
    row falls in one of ``n_blocks`` random blocks (seeded); arrays are
    ``(n_blocks, n_groups[, n_genes])`` (:class:`RateSums` over the chunks).
    """
    genes = np.asarray(genes, dtype=np.int64)
    acc: RateSums | None = None
    for sl, block in chunks:
        if acc is None:
            acc = RateSums(codes, n_groups, genes, block.shape[1], n_blocks=n_blocks, seed=seed)
        acc.add(sl, block, None if library is None else library[sl])
    if acc is None:  # no cells
        width = int(genes.max()) + 1 if genes.size else 0
        acc = RateSums(codes, n_groups, genes, width, n_blocks=n_blocks, seed=seed)
    return acc.stats()


def patient_rate_coverage(  # noqa: PLR0913
    adata: Any,
    genes: list[str] | pd.Index,
    *,
    malignant_key: str | None,
    patient_key: str | None = None,
    compartment_key: str | None = None,
    threshold: float | None = None,
    layer: str | None = None,
    observed: pd.DataFrame | None = None,
    stats: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Per-patient (× compartment) coverage of ``genes`` by the Gamma–Poisson rate model.

    Parameters
    ----------
    adata
        Tumour cells × genes with raw counts (in memory or backed).
    genes
        Targets to model (names in ``adata.var_names``).
    malignant_key, patient_key, compartment_key
        As in :func:`antigenscout.tl.score_targets`.
    threshold
        Engagement level in CP10k (default: the positivity threshold, 0.2).
    layer
        Counts layer (default ``X``).
    observed
        Optional targets × patients coverage from per-cell calls (``patient_coverage.tsv``),
        put beside the model as ``coverage_cells``.
    stats
        The sums :func:`antigenscout.tl.score_targets` gathered in its positivity pass
        (its ``rate_stats`` for the same cells and groups): used instead of reading the
        matrix again when they hold every gene.

    Returns
    -------
    DataFrame, one row per (target, patient[, compartment]): ``n_cells``, ``mean_cp10k``,
    ``shape_k``, ``coverage_model`` with its 90% interval ``coverage_low``/``coverage_high``,
    ``reads_at_threshold_median_cell`` and ``callable`` (enough depth, see the module).
    """
    from ..pp._graph import iter_row_chunks  # noqa: PLC0415
    from ..pp._positivity import DEFAULT_THRESHOLD  # noqa: PLC0415

    thr = DEFAULT_THRESHOLD if threshold is None else float(threshold)
    groups = tumor_groups(
        adata, malignant_key=malignant_key, patient_key=patient_key, compartment_key=compartment_key
    )
    var = pd.Index(adata.var_names.astype(str))
    genes = pd.Index([str(g) for g in genes])
    idx = var.get_indexer(genes)
    if (idx < 0).any():
        missing = ", ".join(genes[idx < 0][:5])
        msg = f"genes not in the input: {missing}"
        raise KeyError(msg)
    codes, names = _group_codes(groups)
    have = pd.Index(stats["genes"]).get_indexer(genes) if stats else np.array([-1])
    if (have >= 0).all():  # from the positivity pass: no second read
        per_gene = ("x", "x2", "xs")
        sums = {k: v[..., have] if k in per_gene else v for k, v in stats["stats"].items()}
    else:
        X, lib_obs = counts_matrix(adata, layer)
        lib = lib_obs[groups.rows] if lib_obs is not None else None
        sums = group_rate_stats(iter_row_chunks(X, groups.rows), codes, len(names), idx, lib)
    model = rate_model(sums, thr)
    table = rate_table(model, genes, names)
    if "\t" in "".join(names):
        parts = table["group"].str.split("\t", n=1, expand=True)
        table.insert(1, "patient", parts[0])
        table.insert(2, "compartment", parts[1])
    else:
        table.insert(1, "patient", table["group"])
    table = table.drop(columns="group")
    if observed is not None and groups.compartment is None:
        obs = observed.reindex(index=genes, columns=names).to_numpy(dtype=float)
        table.insert(3, "coverage_cells", obs.T.ravel())
    empty = table["n_cells"].to_numpy() == 0  # a patient without cells in a compartment
    return table.loc[~empty].reset_index(drop=True)


def fit_rates(stats: dict[str, np.ndarray], thr: float) -> tuple[np.ndarray, ...]:
    """Fit ``(μ̂, k̂, coverage)`` per (group, gene) by the method of moments.

    The fit reads the sums ``x``, ``x2``, ``xs`` (groups × genes) and ``s``, ``s2`` (groups × 1)
    of one fit.
    """
    S, S2 = stats["s"], stats["s2"]
    with np.errstate(divide="ignore", invalid="ignore"):
        mu = np.where(S > 0, stats["x"] / S, 0.0)
        resid = stats["x2"] - 2 * mu * stats["xs"] + mu**2 * S2
        inv_k = (resid - mu * S) / (mu**2 * S2)
    inv_k = np.where(np.isfinite(inv_k), inv_k, 1.0 / K_MAX)
    k = 1.0 / np.clip(inv_k, 1.0 / K_MAX, 1.0 / K_MIN)
    return mu, k, _cover(mu, k, thr)


#: The shape used where the reads cannot tell a group's: the engine's RNA model's
#: (``tl._risk.positive_fraction_from_mean``, exponential rates).
FALLBACK_SHAPE = 1.0


def rate_fraction(stats: dict[str, np.ndarray], thr: float) -> tuple[np.ndarray, np.ndarray]:
    """Return a population's positive fraction ``P(λ ≥ thr)`` per (group, gene).

    Also where the fitted shape was used (``False``: :data:`FALLBACK_SHAPE`).

    The method-of-moments shape ``k̂`` (:func:`fit_rates`) where the group is callable (at
    least :data:`MIN_READS_AT_THRESHOLD` expected reads at ``thr`` over its cells) and ``k̂``
    lies inside its clip bounds; elsewhere :data:`FALLBACK_SHAPE`, since a clipped or
    unsupported ``k̂`` says the reads cannot tell the shape (a few reads make any gene look
    homogeneous, which would call a whole group positive from its mean alone).

    ``stats["soup"]`` (optional, groups × genes): the ambient reads the group's droplets are
    expected to carry. They are taken off the mean rate, and the cells' rate variance is
    kept (soup reads add Poisson noise, not spread between cells), so the shape scales by
    ``(μ' / μ̂)²``: a transcript every droplet shows only as soup is positive in no cell.

    >>> s = {"x": np.array([[2.0]]), "x2": np.array([[2.0]]), "xs": np.array([[0.4]]),
    ...      "s": np.array([[4.0]]), "s2": np.array([[0.8]])}  # 2 reads: not callable
    >>> frac, fitted = rate_fraction(s, 0.2)
    >>> bool(fitted[0, 0]), round(float(frac[0, 0]), 3)  # shape 1: exp(-0.2 / 0.5)
    (False, 0.67)
    >>> frac, _ = rate_fraction({**s, "soup": np.array([[1.6]])}, 0.2)  # 80 % of reads soup
    >>> round(float(frac[0, 0]), 3)  # mean 0.1, shape 1 x (0.1 / 0.5)**2 = 0.04
    0.079
    """
    mu, k, _ = fit_rates(stats, thr)
    callable_ = (thr * np.asarray(stats["s"], dtype=np.float64)) >= MIN_READS_AT_THRESHOLD
    inside = (k > K_MIN * (1 + 1e-9)) & (k < K_MAX * (1 - 1e-9))
    fitted = callable_ & inside
    shape = np.where(fitted, k, FALLBACK_SHAPE)
    soup = stats.get("soup")
    if soup is not None:
        S = np.asarray(stats["s"], dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            own = np.where(S > 0, np.clip(stats["x"] - soup, 0.0, None) / S, 0.0)
            ratio = np.where(mu > 0, own / mu, 0.0)
        mu, shape = own, shape * ratio**2
    return _cover(mu, np.where(shape > 0, shape, FALLBACK_SHAPE), thr), fitted


def _cover(m: np.ndarray, k: np.ndarray, thr: float) -> np.ndarray:
    m = np.broadcast_to(m, k.shape)
    out = np.zeros(k.shape, dtype=np.float64)
    pos = (m > 0) & np.isfinite(m)
    out[pos] = special.gammaincc(k[pos], k[pos] * thr / m[pos])
    out[np.isinf(m)] = 1.0
    return out


def rate_model(stats: dict[str, np.ndarray], threshold_cp10k: float) -> RateModel:
    """Fit the Gamma–Poisson model of every (group, gene) from :func:`group_rate_stats`.

    ``stats`` holds per-block statistics (leading axis: jackknife blocks); the fit uses
    their sum, the interval the wider of a delete-one-block jackknife (which carries the
    uncertainty of ``k̂``) and Garwood's count interval (which holds when reads are few).
    """
    thr = float(threshold_cp10k)
    keys = ("x", "x2", "xs", "s", "s2")
    total = {key: stats[key].sum(0) for key in keys}
    mu, k, cov = fit_rates(total, thr)
    S, S2 = total["s"], total["s2"]
    with np.errstate(divide="ignore", invalid="ignore"):
        phi = 1.0 + np.where(S > 0, mu * S2 / (k * S), 0.0)
        t_eff = total["x"] / phi
        lo_t = np.where(t_eff > 0, stats_chi2.ppf(0.05, 2 * t_eff) / 2, 0.0)
        hi_t = stats_chi2.ppf(0.95, 2 * t_eff + 2) / 2
        lo_mu = np.where(S > 0, lo_t * phi / S, 0.0)
        hi_mu = np.where(S > 0, hi_t * phi / S, np.inf)
    # the shape's range: the jackknife's spread of log k̂; where k̂ sits at a clip bound the
    # data cannot estimate it, and the range opens to [min(INTERVAL_SHAPES), K_MAX]
    J = stats["x"].shape[0]
    k_lo, k_hi = k.copy(), k.copy()
    se = np.zeros_like(cov)
    if J >= 2:  # noqa: PLR2004
        fits = [fit_rates({key: total[key] - stats[key][j] for key in keys}, thr) for j in range(J)]
        reps_c = np.stack([f[2] for f in fits])
        reps_k = np.log(np.stack([f[1] for f in fits]))
        se = np.sqrt((J - 1) / J * ((reps_c - reps_c.mean(0)) ** 2).sum(0))
        se_k = np.sqrt((J - 1) / J * ((reps_k - reps_k.mean(0)) ** 2).sum(0))
        k_lo = np.clip(k * np.exp(-_Z90 * se_k), K_MIN, K_MAX)
        k_hi = np.clip(k * np.exp(_Z90 * se_k), K_MIN, K_MAX)
    clipped = (k >= K_MAX * (1 - 1e-9)) | (k <= K_MIN * (1 + 1e-9))
    k_lo = np.where(clipped, np.minimum(k_lo, min(INTERVAL_SHAPES)), k_lo)
    k_hi = np.where(clipped, K_MAX, k_hi)
    corners = [_cover(m, kk, thr) for m in (lo_mu, hi_mu) for kk in (k_lo, k_hi)]
    low = np.minimum(np.min(corners, axis=0), np.clip(cov - _Z90 * se, 0.0, 1.0))
    high = np.maximum(np.max(corners, axis=0), np.clip(cov + _Z90 * se, 0.0, 1.0))
    return RateModel(
        mean_cp10k=mu,
        shape=k,
        coverage=cov,
        low=np.minimum(low, cov),
        high=np.maximum(high, cov),
        n_cells=total_n(stats),
        sum_s=total["s"][:, 0],
        median_s=stats["median_s"],
        threshold_cp10k=thr,
    )


def total_n(stats: dict[str, np.ndarray]) -> np.ndarray:
    """Cells per group, summed over the jackknife blocks."""
    return stats["n"].sum(0)


def rate_table(model: RateModel, genes: pd.Index, group_names: list[str]) -> pd.DataFrame:
    """Long table: one row per (target, group) with the model's coverage, interval and depth."""
    n_g, n_genes = model.coverage.shape
    rows = {
        "target": np.tile(np.asarray(genes, dtype=object), n_g),
        "group": np.repeat(np.asarray(group_names, dtype=object), n_genes),
        "n_cells": np.repeat(model.n_cells, n_genes).astype(int),
        "mean_cp10k": model.mean_cp10k.ravel(),
        "shape_k": model.shape.ravel(),
        "coverage_model": model.coverage.ravel(),
        "coverage_low": model.low.ravel(),
        "coverage_high": model.high.ravel(),
        "reads_at_threshold_median_cell": np.repeat(
            model.threshold_cp10k * model.median_s, n_genes
        ),
        "callable": np.repeat(model.callable, n_genes),
    }
    return pd.DataFrame(rows)
