"""Accuracy and cost of the approximate neighbour search used above 20,000 cells per patient.

The default positivity searches neighbours exactly for a patient of up to 20,000 cells and
with randomised partition trees (:func:`antigenscout.pp._graph.approx_knn`, 2 trees, leaves
of 512) above. The bootstrapped million-cell benchmark cannot show what the trees cost in
accuracy (its cells are copies, so every tree finds distance-0 neighbours), so this script
runs the trees on the real malignant cells of van Galen 2019, projected on the shared PCA,
and compares them with the exact neighbours (the baseline) on:

* recall@k: the fraction of found neighbours no farther than the true k-th neighbour;
* the knn calls: entries called differently, as a fraction of the exact calls' positives;
* per-gene coverage (fraction of cells called positive), the quantity ``rank`` reports.

Usage::

    python benchmarks/bench_knn_trees.py ../shared/data/singlecell/vangalen2019_aml
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp


def main() -> None:
    """Print recall, call and coverage differences and time per tree count."""
    import antigenscout as asc  # noqa: PLC0415
    from antigenscout.pp import _graph as graph  # noqa: PLC0415
    from antigenscout.pp._neighbors import knn_blocks_from_neighbors  # noqa: PLC0415
    from antigenscout.pp._positivity import (  # noqa: PLC0415
        DEFAULT_N_NEIGHBORS,
        DEFAULT_PRIOR_SHAPE,
        DEFAULT_THRESHOLD,
    )

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("vangalen_dir", type=Path)
    ap.add_argument("--trees", type=int, nargs="+", default=[2, 3, 4])
    ap.add_argument("--leaf-size", type=int, default=512)
    args = ap.parse_args()

    a = asc.datasets.vangalen2019(args.vangalen_dir)
    rows = np.flatnonzero(a.obs["malignant"].astype(str).to_numpy() == "malignant")
    X = sp.csr_matrix(a.X[rows])
    lib = np.asarray(X.sum(axis=1), dtype=np.float64).ravel()
    Y = graph.fit_embedding(X, lib, random_state=0).transform(X, lib)
    Y = np.ascontiguousarray(Y, dtype=np.float32)
    k = DEFAULT_N_NEIGHBORS
    y64 = Y.astype(np.float64)
    sq = (y64**2).sum(axis=1)
    dist = np.maximum(sq[:, None] + sq[None, :] - 2 * y64 @ y64.T, 0.0)
    np.fill_diagonal(dist, np.inf)
    kth = np.sort(dist, axis=1)[:, k - 1]

    def calls(nbr: np.ndarray) -> sp.csr_matrix:
        blocks = knn_blocks_from_neighbors(
            X,
            lib,
            nbr,
            threshold=DEFAULT_THRESHOLD,
            prior_shape=DEFAULT_PRIOR_SHAPE,
            block_size=8192,
        )
        return sp.csr_matrix(sp.vstack([b for _, b in blocks]))

    exact = graph.approx_knn(Y, k, leaf_size=Y.shape[0])  # one leaf: exact
    c0 = calls(exact)
    cov0 = np.asarray(c0.mean(axis=0)).ravel()
    print(f"{len(rows):,} real malignant cells, {X.shape[1]:,} genes, k = {k}")
    print(f"baseline: exact neighbours; {c0.nnz:,} positive calls")
    for n_trees in args.trees:
        t = time.process_time()
        nbr = graph.approx_knn(Y, k, leaf_size=args.leaf_size, n_trees=n_trees)
        cpu = time.process_time() - t
        found = dist[np.arange(len(Y))[:, None], nbr]
        recall = float((found <= kth[:, None] * (1 + 1e-6)).mean())
        c = calls(nbr)
        flipped = (c != c0).nnz
        diff = np.abs(np.asarray(c.mean(axis=0)).ravel() - cov0)
        print(
            f"{n_trees} trees, leaves of {args.leaf_size}: recall@{k} {recall:.3f}; "
            f"calls flipped {flipped / c0.nnz:.3f} of the exact positives; "
            f"|coverage difference| max {diff.max():.4f}, median over genes with exact "
            f"coverage > 0.05 {np.median(diff[cov0 > 0.05]):.4f}; search {cpu:.2f} CPU-s"  # noqa: PLR2004
        )


if __name__ == "__main__":
    main()
