"""RNA level of a context → fraction of its cells that carry the protein.

The model, per gene ``g``, for a context (cell type, tissue) with mean RNA ``μ`` in CP10k::

    logit(fraction) = a_g + b_g · log10(μ + ε),      ε = 0.01 CP10k (= 1 nTPM)

With ε = 0.01 CP10k the predictor is an exact affine function of the HPA scale
``log2(nTPM + 1)`` (``log2(nTPM + 1) = log2(100) + log10(μ + ε) / log10(2)`` for nTPM = 100 μ), so
the HPA RNA-vs-IHC fits map onto it without approximation.

Fitting (empirical Bayes, partial pooling; :func:`fit_calibration`)
-------------------------------------------------------------------
1. A pooled quasi-binomial logistic regression over all (gene, context) rows with the features
   ``1, x = log10(μ + ε)`` and gene-level covariates (e.g. the HPA RNA level at 50 % IHC detection,
   centred, plus an indicator for a missing covariate) gives the global prior mean of each gene:
   ``prior_a_g = β0 + γ·cov_g``, ``prior_b = β1``. The Pearson dispersion ``φ ≥ 1`` of separate
   per-gene fits down-weights the binomial likelihood (contexts vary more than binomially).
2. Each gene's ``θ_g = (a_g, b_g)`` gets the prior ``N(prior_g, T)``; its maximum a posteriori
   estimate under ``loglik / φ + log N(θ_g | prior_g, T)`` and the Laplace covariance
   ``S_g = (H_g/φ + T⁻¹)⁻¹`` are computed by Newton's method. ``T`` (between-gene covariance) is
   estimated by EM: ``T ← mean_g[(θ_g − prior_g)(θ_g − prior_g)ᵀ + S_g]``. Genes with few or
   uninformative contexts stay near the prior; genes with many stay near their own fit.
3. ``σ_ctx``: the spread of a new context around the gene's curve (logit scale), from
   leave-one-data-set-out residuals minus their parameter and binomial sampling variance (so it
   includes the shift between data sets). Prediction intervals use
   ``Var = [1, x] S_g [1, x]ᵀ + σ_ctx²``.

The calibration table shipped with the package (``reference/data/protein_calibration.parquet``)
is built by ``scripts/calibrate_protein.py``; see ``docs/positivity.md`` for the data, the
protein-positivity rule and the held-out evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources

import numpy as np
import pandas as pd
from scipy.special import expit

from antigenscout._errors import InputError

__all__ = [
    "EPS_CP10K",
    "GLOBAL_ROW",
    "Z_INTERVAL",
    "fit_calibration",
    "load_calibration",
    "protein_positive_fraction",
]

#: Pseudo-count ε added to the mean RNA (CP10k) before log10; 0.01 CP10k = 1 nTPM.
EPS_CP10K: float = 0.01
#: Index of the row that holds the prior of a gene absent from the table.
GLOBAL_ROW: str = "__global__"
#: Normal quantile of the reported interval (two-sided 90 %).
Z_INTERVAL: float = 1.6448536269514722

_PARAM_COLUMNS = ("a", "b", "var_a", "var_b", "cov_ab", "sigma_ctx")


def _design(mean_cp10k: np.ndarray) -> np.ndarray:
    return np.log10(np.maximum(np.asarray(mean_cp10k, dtype=np.float64), 0.0) + EPS_CP10K)


# --------------------------------------------------------------------------- loading
def load_calibration() -> pd.DataFrame:
    """Load the packaged RNA→protein-positivity calibration.

    Returns
    -------
    DataFrame indexed by gene symbol (plus the row ``"__global__"``: the prior of a gene with no
    entry) with the columns

    ``a``, ``b``
        Posterior mean intercept and slope of ``logit(fraction) = a + b·log10(CP10k + 0.01)``.
    ``var_a``, ``var_b``, ``cov_ab``
        Their posterior (Laplace) covariance; for a gene without protein data the prior
        covariance ``T``.
    ``sigma_ctx``
        Context-to-context standard deviation on the logit scale (the same in every row), added to
        the parameter variance in prediction intervals.
    ``prior_a``, ``prior_b``
        The gene's prior mean (global fit shifted by its HPA/CPTAC covariates).
    ``n_contexts``, ``n_cells``, ``n_datasets``
        CITE-seq observations behind the gene's own fit (0 where none).
    ``sources``
        ``;``-separated data sources that informed the row (CITE-seq data sets, ``hpa_ihc``,
        ``cptac``; ``prior`` when only the global prior).
    ``hpa_mid_cp10k``
        HPA tissue RNA at 50 % IHC detection, in CP10k (NaN where HPA has no usable fit).
    ``cptac_mid_log2uq``
        Median over CPTAC cohorts of the tumour RNA at 50 % protein detection,
        log2(upper-quartile RSEM + 1) (NaN where none).
    ``midpoint_cp10k``
        Mean RNA at which the estimated fraction is 0.5 (NaN if the slope is ≤ 0).

    Examples
    --------
    >>> from antigenscout.pp._protein import load_calibration
    >>> cal = load_calibration()
    >>> "__global__" in cal.index and {"a", "b", "sigma_ctx"} <= set(cal.columns)
    True
    """
    ref = resources.files("antigenscout.reference") / "data" / "protein_calibration.parquet"
    with resources.as_file(ref) as path:
        return pd.read_parquet(path)


def _check_calibration(cal: pd.DataFrame) -> pd.DataFrame:
    missing = [c for c in _PARAM_COLUMNS if c not in cal.columns]
    if missing or GLOBAL_ROW not in cal.index:
        msg = (
            f"The calibration table lacks {missing or [GLOBAL_ROW]}; pass the output of "
            "load_calibration() or fit_calibration()."
        )
        raise InputError(msg)
    return cal


# --------------------------------------------------------------------------- prediction
def protein_positive_fraction(
    genes: Sequence[str],
    mean_cp10k: np.ndarray,
    *,
    calibration: pd.DataFrame | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fraction of a context's cells that carry the protein, from the context's mean RNA.

    Parameters
    ----------
    genes
        Gene symbols, one per row of ``mean_cp10k``.
    mean_cp10k
        Genes × contexts mean RNA in CP10k (HPA nTPM / 100). Negative values are treated as 0;
        NaN propagates.
    calibration
        Table as returned by :func:`load_calibration` (the default) or :func:`fit_calibration`.
        Genes absent from it use the ``"__global__"`` row (the shrunk global prior).

    Returns
    -------
    ``(fraction, lower, upper)``, each of the shape of ``mean_cp10k``: the estimated
    protein-positive fraction (the median of its predictive distribution) and a two-sided 90 %
    interval that includes the parameter uncertainty and the context-to-context spread.

    Raises
    ------
    InputError
        ``mean_cp10k`` is not 2-D with one row per gene, or the table lacks required columns.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> cal = pd.DataFrame(
    ...     {"a": [0.0], "b": [2.0], "var_a": [0.0], "var_b": [0.0], "cov_ab": [0.0],
    ...      "sigma_ctx": [0.0]}, index=["__global__"])
    >>> f, lo, hi = protein_positive_fraction(["X"], np.array([[0.99]]), calibration=cal)
    >>> float(f[0, 0].round(3))  # logit = 2 * log10(0.99 + 0.01) = 0
    0.5
    """
    cal = _check_calibration(load_calibration() if calibration is None else calibration)
    mean = np.asarray(mean_cp10k, dtype=np.float64)
    genes = [str(g) for g in genes]
    if mean.ndim == 1 and len(genes) == mean.shape[0]:
        mean = mean[:, None]
    if mean.ndim != 2 or mean.shape[0] != len(genes):  # noqa: PLR2004
        msg = (
            f"mean_cp10k must be genes × contexts with {len(genes)} rows (one per gene). "
            f"Got shape {mean.shape}."
        )
        raise InputError(msg)
    rows = cal.reindex(genes)
    glob = cal.loc[GLOBAL_ROW]
    par = {}
    for c in _PARAM_COLUMNS:
        v = rows[c].to_numpy(dtype=np.float64)
        par[c] = np.where(np.isnan(v), float(glob[c]), v)[:, None]
    x = _design(mean)
    eta = par["a"] + par["b"] * x
    var = par["var_a"] + 2 * x * par["cov_ab"] + x**2 * par["var_b"] + par["sigma_ctx"] ** 2
    sd = np.sqrt(np.maximum(var, 0.0))
    nan = np.isnan(mean)
    out = []
    for v in (eta, eta - Z_INTERVAL * sd, eta + Z_INTERVAL * sd):
        f = expit(v)
        f[nan] = np.nan
        out.append(f)
    return out[0], out[1], out[2]


# --------------------------------------------------------------------------- fitting
def _irls(
    F: np.ndarray, k: np.ndarray, n: np.ndarray, ridge: float = 1e-6, n_iter: int = 100
) -> np.ndarray:
    """Binomial logistic regression (k successes of n) by Newton–Raphson with a tiny ridge."""
    beta = np.zeros(F.shape[1])
    for _ in range(n_iter):
        p = expit(F @ beta)
        w = n * p * (1 - p)
        H = F.T @ (F * w[:, None]) + ridge * np.eye(F.shape[1])
        step = np.linalg.solve(H, F.T @ (k - n * p) - ridge * beta)
        beta += step
        if np.max(np.abs(step)) < 1e-9:  # noqa: PLR2004
            break
    return beta


def _map_gene(  # noqa: PLR0913, PLR0917
    x: np.ndarray,
    k: np.ndarray,
    n: np.ndarray,
    prior: np.ndarray,
    Tinv: np.ndarray,
    phi: float,
    start: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """MAP of (a, b) under loglik/φ + N(prior, T) and its Laplace covariance."""
    F = np.column_stack([np.ones_like(x), x])
    th = start.copy()
    for _ in range(100):
        p = expit(F @ th)
        g = F.T @ (k - n * p) / phi - Tinv @ (th - prior)
        H = F.T @ (F * (n * p * (1 - p))[:, None]) / phi + Tinv
        step = np.linalg.solve(H, g)
        # damped Newton: the penalised log-likelihood is concave, halve overly long steps
        while np.max(np.abs(step)) > 5:  # noqa: PLR2004
            step /= 2
        th = th + step
        if np.max(np.abs(step)) < 1e-9:  # noqa: PLR2004
            break
    p = expit(F @ th)
    H = F.T @ (F * (n * p * (1 - p))[:, None]) / phi + Tinv
    return th, np.linalg.inv(H)


def _sigma_between_datasets(df: pd.DataFrame, covariates: pd.DataFrame | None, n_em: int) -> float:
    """σ_ctx from leave-one-data-set-out logit residuals, net of parameter and sampling variance."""
    r2, vpar, samp = [], [], []
    for ds in pd.unique(df["dataset"]):
        train, test = df[df["dataset"] != ds], df[df["dataset"] == ds]
        cal = fit_calibration(train, covariates, n_em=n_em, sigma_from="residual")
        rows = cal.reindex(test["gene"].astype(str))
        glob = cal.loc[GLOBAL_ROW]
        par = {
            c: np.where(rows[c].isna(), float(glob[c]), rows[c].to_numpy(dtype=np.float64))
            for c in ("a", "b", "var_a", "var_b", "cov_ab")
        }
        x = _design(test["mean_cp10k"].to_numpy())
        n = test["n_cells"].to_numpy(dtype=np.float64)
        pt = (test["n_pos"].to_numpy(dtype=np.float64) + 0.5) / (n + 1)
        r2.append((np.log(pt / (1 - pt)) - par["a"] - par["b"] * x) ** 2)
        vpar.append(par["var_a"] + 2 * x * par["cov_ab"] + x**2 * par["var_b"])
        samp.append(1 / ((n + 1) * pt * (1 - pt)))
    v = np.mean(np.concatenate(r2)) - np.mean(np.concatenate(vpar)) - np.mean(np.concatenate(samp))
    return float(np.sqrt(max(v, 0.0)))


def fit_calibration(  # noqa: PLR0912, PLR0915
    pairs: pd.DataFrame,
    covariates: pd.DataFrame | None = None,
    *,
    n_em: int = 50,
    sigma_from: str = "dataset",
) -> pd.DataFrame:
    """Fit the per-gene RNA→protein-positivity model with partial pooling across genes.

    Parameters
    ----------
    pairs
        One row per (gene, context) with columns ``gene``, ``mean_cp10k`` (context mean RNA),
        ``n_cells`` and ``n_pos`` (cells protein-positive), and optionally ``dataset``.
    covariates
        Optional gene-level covariates indexed by gene symbol, numeric columns (NaN = missing).
        Each column enters the prior intercept centred on its median, with an indicator column
        for missing values. Genes here but not in ``pairs`` get rows with the prior only.
    n_em
        Maximum number of EM iterations for the between-gene covariance ``T``.
    sigma_from
        How ``σ_ctx`` is estimated. ``"dataset"`` (default; needs a ``dataset`` column with
        ≥ 2 values, else falls back): from leave-one-data-set-out residuals inside ``pairs``
        (refit without each data set, predict it), minus their parameter and binomial sampling
        variance, so that intervals also cover the shift between data sets. ``"residual"``: from
        the in-sample residuals of the fit.

    Returns
    -------
    Calibration table as described in :func:`load_calibration` (covariate columns copied as they
    are). ``attrs`` holds the global coefficients (``beta``), ``phi`` and ``T``.

    Raises
    ------
    InputError
        Missing columns, ``n_pos > n_cells`` or no rows.
    """
    need = {"gene", "mean_cp10k", "n_cells", "n_pos"}
    if not need <= set(pairs.columns) or len(pairs) == 0:
        msg = f"pairs needs rows and the columns {sorted(need)}; got {list(pairs.columns)}."
        raise InputError(msg)
    df = pairs.loc[pairs["n_cells"] > 0].reset_index(drop=True)
    if (df["n_pos"] > df["n_cells"]).any() or (df["n_pos"] < 0).any():
        msg = "pairs has n_pos outside [0, n_cells]."
        raise InputError(msg)
    genes_obs = pd.Index(pd.unique(df["gene"].astype(str)))
    cov = pd.DataFrame(index=genes_obs) if covariates is None else covariates.copy()
    cov.index = cov.index.astype(str)
    cov = cov[~cov.index.duplicated()]
    all_genes = genes_obs.union(cov.index, sort=False)
    cov = cov.reindex(all_genes)
    # centred covariates + missing indicators → gene-level feature matrix Z (genes × q)
    zcols, zmat = [], []
    for c in cov.columns:
        v = cov[c].to_numpy(dtype=np.float64)
        ok = np.isfinite(v)
        med = float(np.median(v[ok])) if ok.any() else 0.0
        zmat += [np.where(ok, v - med, 0.0), (~ok).astype(np.float64)]
        zcols += [c, f"{c}_missing"]
    Z = np.column_stack(zmat) if zmat else np.zeros((len(all_genes), 0))
    Zdf = pd.DataFrame(Z, index=all_genes, columns=zcols)
    x = _design(df["mean_cp10k"].to_numpy())
    k = df["n_pos"].to_numpy(dtype=np.float64)
    n = df["n_cells"].to_numpy(dtype=np.float64)
    Zr = Zdf.loc[df["gene"].astype(str)].to_numpy()
    # drop constant covariate columns (e.g. an indicator that is all 0 among the observed genes)
    keep = [j for j in range(Zr.shape[1]) if np.ptp(Zr[:, j]) > 0]
    Zr = Zr[:, keep]
    Zg = Z[:, keep]
    kept = [zcols[j] for j in keep]
    F = np.column_stack([np.ones_like(x), x, Zr])
    beta = _irls(F, k, n, ridge=1e-3)
    prior_a = beta[0] + Zg @ beta[2:]
    prior = pd.DataFrame({"prior_a": prior_a, "prior_b": beta[1]}, index=all_genes)

    groups = {g: idx for g, idx in df.groupby(df["gene"].astype(str)).indices.items()}
    # dispersion φ: Pearson χ² of the per-gene fits (weak ridge prior) per residual df
    weak = np.eye(2) * 1e-2
    chi2 = 0.0
    for g, idx in groups.items():
        pr = prior.loc[g].to_numpy()
        th, _ = _map_gene(x[idx], k[idx], n[idx], pr, weak, 1.0, pr)
        p = expit(th[0] + th[1] * x[idx])
        chi2 += float(((k[idx] - n[idx] * p) ** 2 / np.maximum(n[idx] * p * (1 - p), 1e-9)).sum())
    phi = max(1.0, chi2 / max(len(df) - 2 * len(groups), 1))
    T = np.diag([1.0, 0.25])
    thetas: dict[str, np.ndarray] = {}
    covs: dict[str, np.ndarray] = {}
    for _ in range(n_em):
        Tinv = np.linalg.inv(T)
        acc = np.zeros((2, 2))
        for g, idx in groups.items():
            pr = prior.loc[g].to_numpy()
            th, S = _map_gene(x[idx], k[idx], n[idx], pr, Tinv, phi, thetas.get(g, pr))
            thetas[g], covs[g] = th, S
            d = th - pr
            acc += np.outer(d, d) + S
        T_new = acc / len(groups)
        w, V = np.linalg.eigh(T_new)
        T_new = V @ np.diag(np.maximum(w, 1e-4)) @ V.T
        done = np.max(np.abs(T_new - T)) < 1e-6  # noqa: PLR2004
        T = T_new
        if done:
            break
    # context spread: residual variance beyond binomial sampling
    res, samp = [], []
    for g, idx in groups.items():
        eta = thetas[g][0] + thetas[g][1] * x[idx]
        pt = (k[idx] + 0.5) / (n[idx] + 1)
        res.append(np.log(pt / (1 - pt)) - eta)
        samp.append(1 / ((n[idx] + 1) * pt * (1 - pt)))
    r = np.concatenate(res)
    sigma_ctx = float(np.sqrt(max(0.0, np.mean(r**2) - np.mean(np.concatenate(samp)))))
    if sigma_from == "dataset" and "dataset" in df.columns and df["dataset"].nunique() >= 2:  # noqa: PLR2004
        sigma_ctx = _sigma_between_datasets(df, covariates, n_em)
    elif sigma_from not in ("dataset", "residual"):
        msg = f"sigma_from must be 'dataset' or 'residual'. Got {sigma_from!r}."
        raise InputError(msg)

    stats = (
        df.assign(gene=df["gene"].astype(str))
        .groupby("gene")
        .agg(n_contexts=("n_cells", "size"), n_cells=("n_cells", "sum"))
    )
    if "dataset" in df.columns:
        ds = df.assign(gene=df["gene"].astype(str)).groupby("gene")["dataset"]
        stats["n_datasets"] = ds.nunique()
        stats["sources"] = ds.agg(lambda s: ";".join(sorted(set(map(str, s)))))
    else:
        stats["n_datasets"] = 1
        stats["sources"] = "citeseq"
    out = prior.copy()
    a = out["prior_a"].to_numpy().copy()
    b = out["prior_b"].to_numpy().copy()
    va = np.full(len(out), T[0, 0])
    vb = np.full(len(out), T[1, 1])
    cab = np.full(len(out), T[0, 1])
    pos = {g: i for i, g in enumerate(out.index)}
    for g, th in thetas.items():
        i = pos[g]
        a[i], b[i] = th
        va[i], vb[i], cab[i] = covs[g][0, 0], covs[g][1, 1], covs[g][0, 1]
    out["a"], out["b"], out["var_a"], out["var_b"], out["cov_ab"] = a, b, va, vb, cab
    out["sigma_ctx"] = sigma_ctx
    out = out.join(stats)
    out["n_contexts"] = out["n_contexts"].fillna(0).astype(np.int64)
    out["n_cells"] = out["n_cells"].fillna(0).astype(np.int64)
    out["n_datasets"] = out["n_datasets"].fillna(0).astype(np.int64)
    cov_src = []
    for g in out.index:
        s = [] if pd.isna(out.at[g, "sources"]) else [str(out.at[g, "sources"])]
        s += [c for c in cov.columns if np.isfinite(cov.at[g, c])]
        cov_src.append(";".join(s) if s else "prior")
    out["sources"] = cov_src
    for c in cov.columns:
        out[c] = cov[c]
    # global row: a gene with no data and every covariate missing
    zg = np.array([0.0 if not c.endswith("_missing") else 1.0 for c in kept])
    glob = {
        "prior_a": beta[0] + zg @ beta[2:],
        "prior_b": beta[1],
        "a": beta[0] + zg @ beta[2:],
        "b": beta[1],
        "var_a": T[0, 0],
        "var_b": T[1, 1],
        "cov_ab": T[0, 1],
        "sigma_ctx": sigma_ctx,
        "n_contexts": 0,
        "n_cells": 0,
        "n_datasets": 0,
        "sources": "prior",
    }
    out = pd.concat([out, pd.DataFrame(glob, index=[GLOBAL_ROW])])
    with np.errstate(divide="ignore", invalid="ignore"):
        mid = np.where(out["b"] > 0, 10 ** (-out["a"] / out["b"]) - EPS_CP10K, np.nan)
    out["midpoint_cp10k"] = mid
    out.index.name = "gene"
    out.attrs = {
        "beta": dict(zip(["intercept", "log10_cp10k", *kept], map(float, beta), strict=True)),
        "phi": phi,
        "T": T.tolist(),
    }
    return out
