"""Simulated droplets with a known soup: a shared fixture of the ambient-model tests.

Each sample has malignant cells and four normal cell types; every type makes 30 genes of
its own at a high level (``M<type>_<j>``), all make 1,500 housekeeping genes (``H<j>``) and
the malignant cells make 12 antigen-like genes (``G0`` … ``G11``) at low to moderate
levels. A droplet holds its cell's native counts plus soup counts: Poisson draws with
mean ``ρ / (1 - ρ) × native library × a_g``, ``a`` the sample's abundance-weighted native
profile, so that a share ``ρ`` of its UMIs is soup (``rho`` per sample).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from anndata import AnnData
from scipy import integrate, sparse, stats

TYPES = ["malignant", "eryth", "plasma", "tcell", "mono"]
N_MARKERS = 30
N_HOUSE = 1500
ANTIGENS = [f"G{i}" for i in range(12)]


def simulate_soup(
    rho: tuple[float, ...] = (0.03, 0.08, 0.15),
    n_cells: int = 600,
    share: tuple[float, ...] = (0.6, 0.1, 0.1, 0.1, 0.1),
    seed: int = 0,
) -> AnnData:
    """Cells × genes counts of ``len(rho)`` samples (obs: ``patient``, ``status``,
    ``cell_type``; ``uns['rho']`` the true contamination per sample)."""
    rng = np.random.default_rng(seed)
    markers = [f"M{t}_{j}" for t in TYPES for j in range(N_MARKERS)]
    house = [f"H{j}" for j in range(N_HOUSE)]
    genes = ANTIGENS + markers + house
    n_g = len(genes)
    profiles = np.zeros((len(TYPES), n_g))
    h0 = len(ANTIGENS) + len(markers)
    house_level = rng.lognormal(0.0, 1.5, N_HOUSE)  # shared across types, long-tailed
    for t in range(len(TYPES)):
        profiles[t, h0:] = house_level * rng.gamma(4.0, 0.25, N_HOUSE)
        profiles[t, h0:] *= 0.6 / profiles[t, h0:].sum()
        m0 = len(ANTIGENS) + t * N_MARKERS
        w = rng.lognormal(0.0, 1.0, N_MARKERS)
        profiles[t, m0 : m0 + N_MARKERS] = 0.35 * w / w.sum()
    antigen = np.geomspace(2e-5, 2e-3, len(ANTIGENS))  # 0.2 to 20 CP10k
    profiles[0, : len(ANTIGENS)] = antigen
    profiles /= profiles.sum(axis=1, keepdims=True)
    mats, obs = [], []
    for s, r in enumerate(rho):
        types = rng.choice(len(TYPES), n_cells, p=np.asarray(share) / sum(share))
        native_lib = rng.lognormal(np.log(2000), 0.4, n_cells)
        soup = (np.bincount(types, minlength=len(TYPES)) @ profiles) / n_cells
        lam = native_lib[:, None] * (profiles[types] + r / (1 - r) * soup[None, :])
        mats.append(sparse.csr_matrix(rng.poisson(lam).astype(np.float32)))
        obs.append(
            pd.DataFrame(
                {
                    "patient": f"P{s + 1}",
                    "status": np.where(types == 0, "malignant", "normal"),
                    "cell_type": np.asarray(TYPES)[types],
                }
            )
        )
    o = pd.concat(obs, ignore_index=True)
    o.index = [f"c{i}" for i in range(len(o))]
    a = AnnData(X=sparse.vstack(mats, format="csr"), obs=o, var=pd.DataFrame(index=genes))
    a.uns["rho"] = dict(zip([f"P{s + 1}" for s in range(len(rho))], rho, strict=True))
    return a


def posterior_tail(y: int, b: float, s_nat: float, a0: float, lam0: float) -> float:
    """P(λ ≥ λ0 | y), y ~ Poisson(λ s' + b), λ ~ Gamma(a0, a0/λ0), by quadrature over log λ
    (the prior's spike at 0 and the likelihood's peak are both smooth there)."""

    def post(u: float) -> float:
        lam = np.exp(u)
        log = stats.gamma.logpdf(lam, a0, scale=lam0 / a0) + stats.poisson.logpmf(
            y, lam * s_nat + b
        )
        return np.exp(log + u + 300.0)  # scaled; the ratio below cancels the scale

    lo, mid, hi = np.log(lam0) - 60.0, np.log(lam0), np.log(lam0) + 12.0
    peak = np.log(max(y - b, 0.5) / s_nat)
    pts = [p for p in (peak,) if mid < p < hi]
    num = integrate.quad(post, mid, hi, limit=800, points=pts or None, epsabs=0)[0]
    den = integrate.quad(post, lo, mid, limit=800, epsabs=0)[0]
    return num / (num + den)


def posterior_tail_sum(y: int, b: float, s_nat: float, a0: float, lam0: float) -> float:
    """The same posterior as :func:`posterior_tail` as its mixture over the native count
    ``k``, every term by scipy (``gammaincc``, ``gammaln``): fast, for many entries."""
    from scipy.special import gammaincc, gammaln, logsumexp

    k = np.arange(y + 1)
    x = a0 + lam0 * s_nat
    r = s_nat / (a0 / lam0 + s_nat)
    logw = (
        gammaln(y + 1)
        - gammaln(k + 1)
        - gammaln(y - k + 1)
        + k * np.log(r)
        + (y - k) * np.log(b)
        + gammaln(a0 + k)
    )
    w = np.exp(logw - logsumexp(logw))
    return float((w * gammaincc(a0 + k, x)).sum())
