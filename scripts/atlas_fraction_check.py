"""Which per-cell-type positive fraction should ``atlas build`` store? Held out against
surface protein on the three CITE-seq sets of ``scripts/calibrate_protein.py``.

For every context (cell type with at least 15 cells) × gene with a QC-passing antibody, the
protein-positive fraction (the mixture-model protein calls of ``calibrate_protein.py``) is
compared with two RNA estimates at the default threshold (0.2 whole-transcriptome CP10k):

* **knn** — what ``atlas build`` stores today: each cell called by the default positivity
  (5 neighbours within its sample and cell type, the ambient soup discounted; the engine's
  ``pp.positivity(state_key=, ambient=True)``), the called fraction of the context;
* **rate** — the Gamma–Poisson rate model of ``tl._rate`` fitted on the context's counts
  alone (method of moments on Σx, Σx², Σxs, Σs, Σs²; no neighbour graph): P(λ ≥ threshold).

Neither estimate has a parameter fitted on these sets (the knn defaults were chosen
leave-data-set-out, docs/positivity.md; the rate model has none), so every set is held out.
Printed per set: the mean absolute error against protein of each, the paired difference with
a 95% bootstrap interval over genes, and how far the two RNA tables are apart. Run::

    python scripts/atlas_fraction_check.py
"""  # noqa: D205

from __future__ import annotations

import sys
import time
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

from calibrate_positivity import load_citeseq, sample_of  # noqa: E402
from calibrate_protein import DATASETS, MIN_CELLS, load_dataset  # noqa: E402
from calibrate_protein import panel_fraction as healthy_panel_fraction  # noqa: E402

from antigenscout.pp import positivity  # noqa: E402
from antigenscout.pp._positivity import DEFAULT_N_NEIGHBORS, DEFAULT_THRESHOLD  # noqa: E402
from antigenscout.tl._rate import (  # noqa: E402
    MIN_READS_AT_THRESHOLD,
    _cover,
    fit_rates,
    rate_fraction,
)

N_BOOT = 2000


def rate_fractions(  # noqa: PLR0913, PLR0917
    X: np.ndarray, lib: np.ndarray, ctx: np.ndarray, keep: list, thr: float, knn: np.ndarray
) -> dict[str, np.ndarray]:
    """Contexts × genes fractions of the rate model fitted on each context's cells: as
    ``atlas build`` stores them (a context with at least 10 expected reads at the threshold:
    the rate model, the fitted shape inside its bounds, else 1; a shallower context: its knn
    calls), and the rate model alone with the fitted shape, and with shape 1, everywhere.
    """  # noqa: D205
    s = lib / 1e4
    out: dict[str, list] = {"as built": [], "rate, fitted k̂ always": [], "rate, k = 1": []}
    for i, c in enumerate(keep):
        m = ctx == c
        x, sc = X[m], s[m][:, None]
        stats = {
            "x": x.sum(0)[None],
            "x2": (x * x).sum(0)[None],
            "xs": (x * sc).sum(0)[None],
            "s": np.full((1, 1), sc.sum()),
            "s2": np.full((1, 1), (sc * sc).sum()),
        }
        mu, _, fitted = fit_rates(stats, thr)
        deep = thr * sc.sum() >= MIN_READS_AT_THRESHOLD
        out["as built"].append(rate_fraction(stats, thr)[0][0] if deep else knn[i])
        out["rate, fitted k̂ always"].append(fitted[0])
        out["rate, k = 1"].append(_cover(mu, np.ones_like(mu), thr)[0])
    return {k: np.array(v) for k, v in out.items()}


def main() -> None:  # noqa: D103
    t0 = time.perf_counter()
    a, _ = load_citeseq()
    f_panel = healthy_panel_fraction(a.var_names)
    rng = np.random.default_rng(0)
    rows = []
    for name in DATASETS:
        d = load_dataset(name, f_panel)
        X, lib, truth, ctx, genes = d["X"], d["lib"], d["protein"], d["ctx"], d["genes"]
        scale = 1.0 / f_panel if name == "triana2021" else 1.0
        thr = DEFAULT_THRESHOLD * scale
        keep = [c for c in np.unique(ctx) if (ctx == c).sum() >= MIN_CELLS]
        obs = pd.DataFrame(
            {"total_counts": lib, "sample": sample_of(name, len(lib)), "state": ctx},
            index=[str(i) for i in range(len(lib))],
        )
        full = ad.AnnData(sp.csr_matrix(d["X_full"], dtype=np.float32), obs=obs)
        called = positivity(
            full,
            threshold=thr,
            n_neighbors=DEFAULT_N_NEIGHBORS,
            batch_key="sample",
            state_key="state",
            ambient=True,
            copy=True,
        )
        gi = np.array([d["var_names"].get_loc(g) for g in genes], dtype=np.intp)
        pred = called.layers["positive"][:, gi].toarray()
        knn = np.array([pred[ctx == c].mean(0) for c in keep])
        prot = np.array([truth[ctx == c].mean(0) for c in keep])
        spear = pd.Series(prot.ravel())
        rows.append(
            {
                "set": name,
                "contexts": len(keep),
                "genes": len(genes),
                "estimate": "knn calls (today's build)",
                "MAE": np.abs(knn - prot).mean(),
                "minus knn (95% CI over genes)": "",
                "|minus knn| mean / max": "",
                "Spearman": pd.Series(knn.ravel()).corr(spear, "spearman"),
            }
        )
        e_knn = np.abs(knn - prot).mean(0)  # per gene, over contexts
        for label, rate in rate_fractions(X, lib, ctx, keep, thr, knn).items():
            diff = np.abs(rate - prot).mean(0) - e_knn
            boot = [diff[rng.integers(0, diff.size, diff.size)].mean() for _ in range(N_BOOT)]
            lo, hi = np.quantile(boot, [0.025, 0.975])
            gap = np.abs(rate - knn)
            rows.append(
                {
                    "set": name,
                    "contexts": len(keep),
                    "genes": len(genes),
                    "estimate": label,
                    "MAE": np.abs(rate - prot).mean(),
                    "minus knn (95% CI over genes)": f"{diff.mean():+.3f} [{lo:+.3f}, {hi:+.3f}]",
                    "|minus knn| mean / max": f"{gap.mean():.3f} / {gap.max():.3f}",
                    "Spearman": pd.Series(rate.ravel()).corr(spear, "spearman"),
                }
            )
    df = pd.DataFrame(rows)
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(df.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    main()
