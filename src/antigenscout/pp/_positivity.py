"""Per-cell antigen positivity: whether each cell is positive for each gene.

Three methods sit behind one streaming interface, :func:`positive_blocks`:

``"detected"``
    count > 0 (the rule of the anchor tools, kept as a baseline).
``"cp10k"``
    library-size aware: count / library_size × 1e4 ≥ ``threshold``.
``"knn"`` (default, dropout-aware)
    pool the counts of each cell with those of its nearest neighbours, put a Gamma prior on the
    cell's expression rate λ (UMIs of the gene per UMI of the cell), update it with the pooled
    counts (Poisson likelihood), and call the cell positive when P(λ ≥ λ0 | data) ≥ 0.5 with
    λ0 = ``threshold`` / 1e4.

The knn posterior
-----------------
Let ``g_ij`` be the affinity of cell ``i`` to cell ``j`` (the supplied graph, e.g.
``adata.obsp['connectivities']``, with the diagonal set to the row's largest off-diagonal
weight so that a cell counts as much as its closest neighbour; 1 for a cell without neighbours).
With row-normalised weights ``w_ij = g_ij / Σ_j g_ij`` and Kish's effective number of pooled cells
``n_i = 1 / Σ_j w_ij²`` the pooled evidence is

    y_i = n_i Σ_j w_ij x_j        (pooled count of the gene)
    s_i = n_i Σ_j w_ij L_j        (pooled library size)

which for a binary k-nearest-neighbour graph is exactly the sum over the cell and its k neighbours.
Prior: λ ~ Gamma(shape a0, rate a0 / λ0), whose mean is the threshold itself and whose weight is
``a0`` pseudo-counts (``prior_shape``, default 0.5, the Jeffreys shape of a Poisson rate). The
prior thus makes no claim either way about the cell; because the median of a Gamma distribution
lies below its mean, a cell with no pooled count is never called positive, which keeps the output
sparse. Posterior: λ | y ~ Gamma(a0 + y_i, a0/λ0 + s_i) and

    P(λ ≥ λ0) = Q(a0 + y_i, (a0/λ0 + s_i) λ0)   (Q = regularised upper incomplete gamma).

The registry, the checks of the method and threshold and the two entry points
(:func:`positive_blocks`, :func:`positivity`) are here; the knn posterior on a graph is in
:mod:`antigenscout.pp._knn`, the ``detected`` / ``cp10k`` rules in
:mod:`antigenscout.pp._thresholds`, the knn calls on a neighbour list (numba kernels, listed or
counted per group) in :mod:`antigenscout.pp._neighbors`, the streamed pass at scale in
:mod:`antigenscout.pp._streamed` and the checks of the inputs in :mod:`antigenscout.pp._checks`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from antigenscout._errors import InputError

from ._ambient import Soup, estimate_ambient
from ._checks import _as_counts, _check_counts, _check_genes, _check_library, _check_soup
from ._knn import _iter_knn_blocks, _prepare_graph
from ._thresholds import _iter_threshold_blocks

if TYPE_CHECKING:
    from anndata import AnnData

__all__ = [
    "DEFAULT_N_NEIGHBORS",
    "DEFAULT_PRIOR_SHAPE",
    "DEFAULT_THRESHOLD",
    "PositivityMethod",
    "methods",
    "positive_blocks",
    "positivity",
]

#: Default threshold λ0 in counts per 10,000 UMIs of the cell (whole-transcriptome library).
#: Chosen in ``docs/positivity.md`` from the Triana 2021 CITE-seq RNA/protein agreement, converted
#: from the targeted-panel scale to the whole-transcriptome scale.
DEFAULT_THRESHOLD: float = 0.2
#: Default number of neighbours pooled with each cell by the ``"knn"`` method.
DEFAULT_N_NEIGHBORS: int = 5
#: Default prior shape a0 (pseudo-counts) of the Gamma prior on the expression rate.
DEFAULT_PRIOR_SHAPE: float = 0.5


@dataclass(frozen=True)
class PositivityMethod:
    """Registry entry of one positivity method.

    Parameters
    ----------
    name
        Value of the ``method`` argument.
    description
        One-line statement of the rule.
    reference
        Where the rule comes from.
    blocks
        The function that computes the method's calls block by block, from the arguments
        :func:`positive_blocks` has checked (``X, lib, method, threshold, graph, scale,
        genes, block_size, return_probability, prior_shape, soup``; each method uses those it
        needs).
    """

    name: str
    description: str
    reference: str
    blocks: Callable[..., Iterator[tuple[slice, sp.csr_matrix]]]


_METHODS: dict[str, PositivityMethod] = {
    m.name: m
    for m in (
        PositivityMethod(
            "detected",
            "positive if the raw count is > 0 (baseline; blind to library size and dropout)",
            "rule of the anchor tools; e.g. Perna et al. 2017 Cancer Cell 32:506",
            _iter_threshold_blocks,
        ),
        PositivityMethod(
            "cp10k",
            "positive if count / library_size * 1e4 >= threshold (library-size aware)",
            "counts-per-10k normalisation as in scanpy.pp.normalize_total(target_sum=1e4)",
            _iter_threshold_blocks,
        ),
        PositivityMethod(
            "knn",
            "pool counts over the cell and its kNN neighbours; Gamma-Poisson posterior on the "
            "expression rate; positive if P(rate >= threshold/1e4) >= 0.5 (dropout-aware)",
            "kNN smoothing: Wagner et al. 2018 bioRxiv 217737; Gamma-Poisson: "
            "Sarkar & Stephens 2021 Nat Genet 53:770; see docs/positivity.md",
            _iter_knn_blocks,
        ),
    )
}


def methods() -> pd.DataFrame:
    """Table of the available positivity methods.

    Returns
    -------
    DataFrame with columns ``name``, ``description``, ``reference``, one row per method.

    Examples
    --------
    >>> from antigenscout.pp._positivity import methods
    >>> methods()["name"].tolist()
    ['detected', 'cp10k', 'knn']
    """
    return pd.DataFrame(
        [(m.name, m.description, m.reference) for m in _METHODS.values()],
        columns=["name", "description", "reference"],
    )


def _check_method(method: str) -> str:
    if method not in _METHODS:
        msg = (
            f"The 'method' parameter must be one of {sorted(_METHODS)}. Got {method!r}; "
            "pass method='knn' (default), 'cp10k' or 'detected'."
        )
        raise InputError(msg)
    return method


def _check_threshold(threshold: float, method: str) -> float:
    t = float(threshold)
    if method != "detected" and not (np.isfinite(t) and t > 0):
        msg = (
            f"The 'threshold' parameter (counts per 10k) must be a finite number > 0 for "
            f"method={method!r}. Got {threshold!r}; the calibrated default is {DEFAULT_THRESHOLD}."
        )
        raise InputError(msg)
    return t


def positive_blocks(  # noqa: PLR0913
    X: sp.csr_matrix | np.ndarray,
    library_size: np.ndarray,
    *,
    method: str = "knn",
    threshold: float = DEFAULT_THRESHOLD,
    graph: sp.csr_matrix | None = None,
    genes: np.ndarray | None = None,
    block_size: int = 8192,
    return_probability: bool = False,
    prior_shape: float = DEFAULT_PRIOR_SHAPE,
    soup: Soup | None = None,
) -> Iterator[tuple[slice, sp.csr_matrix]]:
    """Stream positivity calls over blocks of cells.

    Parameters
    ----------
    X
        Cells × genes raw counts (non-negative), CSR (other sparse formats are converted) or
        dense. Never densified: the knn method computes ``graph[rows] @ X`` one block at a time.
    library_size
        Total counts of each cell over *all* genes (not only those in ``X``).
    method
        ``"knn"`` (default), ``"cp10k"`` or ``"detected"``; see :func:`methods`.
    threshold
        λ0 in counts per 10,000 UMIs (ignored by ``"detected"``).
    graph
        Cells × cells affinities (e.g. ``adata.obsp['connectivities']`` or
        :func:`~antigenscout.pp.neighbor_graph`); required for ``"knn"``. The diagonal is set to
        the row's largest off-diagonal weight and rows are normalised inside.
    genes
        Column indices (or boolean mask) of the genes to evaluate; ``None`` = all columns.
    block_size
        Number of cells per yielded block.
    return_probability
        Yield float32 probabilities instead of booleans. For ``"knn"`` this is the posterior
        P(λ ≥ λ0), stored for every entry with a non-zero pooled count; entries without any
        pooled count are left implicit (0) although their exact value is the prior-only tail
        ``Q(a0, a0 + s_i λ0)``, which is below 0.5 and so never makes a positive call.
        For ``"detected"``/``"cp10k"`` the values are 1.0 at positive entries.
    prior_shape
        Shape ``a0`` of the Gamma prior (knn only), in pseudo-counts; the prior mean is λ0.
    soup
        knn only: soup reads to discount (:class:`Soup`; ``background`` columns are the
        genes evaluated, ``code`` one sample per cell). The pooled count is then
        ``y ~ Poisson(λ s' + b)`` with ``b`` the pool's expected soup reads and the call
        the mixture posterior of :func:`~antigenscout.pp._graph_kernels.soup_tail`, on the
        pooled count rounded to a whole number (exact for binary graphs).

    Yields
    ------
    ``(rows, block)``: ``rows`` is the slice of cells, ``block`` a CSR matrix
    ``len(rows) × n_genes`` of dtype bool (or float32 when ``return_probability``).
    Cells with ``library_size == 0`` are never positive.

    Raises
    ------
    InputError
        Negative/NaN counts, wrong shapes, missing graph for knn, bad threshold. Raised when the
        generator is created, before any block is yielded.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> X = sp.csr_matrix(np.array([[0, 3], [1, 0], [0, 0]]))
    >>> lib = np.array([1000.0, 100.0, 50.0])
    >>> [b.toarray().tolist() for _, b in positive_blocks(X, lib, method="cp10k", threshold=25)]
    [[[False, True], [True, False], [False, False]]]
    """
    method = _check_method(method)
    if not (isinstance(block_size, int | np.integer) and block_size > 0):
        msg = f"The 'block_size' parameter must be a positive int. Got {block_size!r}."
        raise InputError(msg)
    X = _as_counts(X)
    _check_counts(X, block_size)
    lib = _check_library(library_size, X)
    t = _check_threshold(threshold, method)
    a0 = float(prior_shape)
    if method == "knn" and not (np.isfinite(a0) and a0 > 0):
        msg = f"The 'prior_shape' parameter must be > 0. Got {prior_shape!r}."
        raise InputError(msg)
    cols = _check_genes(genes, X.shape[1])
    G = scale = None
    if method == "knn":
        G, scale = _prepare_graph(graph, X.shape[0])
        _check_soup(soup, X.shape[1] if cols is None else len(cols))
        if soup is not None and np.asarray(soup.code).shape != (X.shape[0],):
            msg = f"soup.code must hold one sample per cell ({X.shape[0]})"
            raise InputError(msg)
    blocks = _METHODS[method].blocks
    return blocks(X, lib, method, t, G, scale, cols, block_size, return_probability, a0, soup)


def cut_graph(graph: Any, batch: np.ndarray | None) -> Any:
    """Return ``graph`` without the edges that join cells of different pooling batches.

    ``batch``: one label or code per cell; ``None`` keeps every edge.
    """
    if batch is None:
        return graph
    codes = pd.factorize(np.asarray(batch))[0]
    g = sp.coo_matrix(graph)
    keep = codes[g.row] == codes[g.col]
    return sp.csr_matrix(
        (g.data[keep], (g.row[keep], g.col[keep])), shape=g.shape, dtype=np.float64
    )


def positivity(  # noqa: PLR0912, PLR0913, PLR0915
    adata: AnnData,
    *,
    method: str = "knn",
    layer: str | None = None,
    threshold: float = DEFAULT_THRESHOLD,
    n_neighbors: int = DEFAULT_N_NEIGHBORS,
    batch_key: str | None = None,
    state_key: str | None = None,
    ambient: bool = True,
    obsp: str | None = None,
    prior_shape: float = DEFAULT_PRIOR_SHAPE,
    block_size: int = 8192,
    key_added: str = "positive",
    copy: bool = False,
) -> AnnData | None:
    """Call every cell positive or negative for every gene.

    Parameters
    ----------
    adata
        Cells × genes AnnData holding raw counts in ``layer`` (or ``X``).
    method
        ``"knn"`` (default, dropout-aware), ``"cp10k"`` or ``"detected"``; see :func:`methods`.
    layer
        Layer with raw counts; ``None`` uses ``adata.X``.
    threshold
        λ0 in counts per 10,000 UMIs (ignored by ``"detected"``).
    n_neighbors
        Neighbours pooled with each cell (knn; used when the graph is built here).
    batch_key
        ``adata.obs`` column of samples (e.g. patient, donor): neighbours are pooled within a
        sample, and each sample's ambient RNA is estimated on its own.
    state_key
        ``adata.obs`` column of labelled cell states (e.g. cell type): neighbours are pooled
        within a state too, never across a label boundary; the states also find the
        markers of the ambient model.
    ambient
        knn: estimate each sample's soup and contamination
        (:func:`antigenscout.pp._ambient.estimate_ambient`) and call a cell positive only
        where its pooled counts exceed what the soup explains (the rule of
        :func:`antigenscout.tl.score_targets`); ``False`` counts every read.
    obsp
        Use ``adata.obsp[obsp]`` (e.g. ``"connectivities"``) as the graph instead of building
        one (edges across samples or states are cut).
    prior_shape
        Prior shape a0 (knn).
    block_size
        Cells per block.
    key_added
        Name of the layer and ``uns`` entry written.
    copy
        Return a modified copy instead of writing in place.

    Returns
    -------
    ``None`` (or the copy if ``copy=True``). Sets ``adata.layers[key_added]`` (boolean CSR,
    cells × all genes) and ``adata.uns[key_added] = {"params": {...}}`` (with the ambient
    model, ``"ambient"``: one row per sample). The library size is
    ``adata.obs['total_counts']`` when present, else the row sums of the counts.

    Examples
    --------
    >>> import anndata as ad, numpy as np, scipy.sparse as sp
    >>> rng = np.random.default_rng(0)
    >>> a = ad.AnnData(sp.csr_matrix(rng.poisson(0.5, (60, 8)).astype(np.float32)))
    >>> positivity(a, method="cp10k", threshold=1000)
    >>> a.layers["positive"].dtype
    dtype('bool')
    """
    method = _check_method(method)
    if copy:
        adata = adata.copy()
    if layer is None:
        X = adata.X
    elif layer in adata.layers:
        X = adata.layers[layer]
    else:
        msg = f"Layer {layer!r} is not in adata.layers ({list(adata.layers)}); pass one of those."
        raise InputError(msg)
    if X is None:
        msg = "adata.X is empty; pass layer= naming the raw counts layer."
        raise InputError(msg)
    if "total_counts" in adata.obs:
        library = adata.obs["total_counts"].to_numpy(dtype=np.float64)
        lib_source = "obs['total_counts']"
    else:
        library = np.asarray(X.sum(axis=1), dtype=np.float64).ravel()
        lib_source = "row sums"
    for key in (batch_key, state_key):
        if key is not None and key not in adata.obs:
            msg = f"{key!r} is not an adata.obs column ({list(adata.obs.columns)[:10]})"
            raise InputError(msg)
    pool_key = None
    if batch_key is not None or state_key is not None:  # pooling batch: sample × state
        cols = [k for k in (batch_key, state_key) if k is not None]
        pool = adata.obs[cols].astype(str).agg("\t".join, axis=1)
        pool_key = "_antigenscout_pool"
        adata.obs[pool_key] = pool.to_numpy()
    graph = None
    graph_source = None
    soup = amb = None
    try:
        if method == "knn":
            if obsp is not None:
                if obsp not in adata.obsp:
                    msg = (
                        f"{obsp!r} is not in adata.obsp ({list(adata.obsp)}); run "
                        "scanpy.pp.neighbors first or leave obsp=None to build the graph here."
                    )
                    raise InputError(msg)
                graph = cut_graph(
                    adata.obsp[obsp], adata.obs[pool_key].to_numpy() if pool_key else None
                )
                graph_source = f"obsp['{obsp}']"
            else:
                from antigenscout.pp._graph import neighbor_graph  # noqa: PLC0415

                graph = neighbor_graph(
                    adata, n_neighbors=n_neighbors, batch_key=pool_key, layer=layer
                )
                graph_source = "neighbor_graph"
            if ambient:
                sample = (
                    adata.obs[batch_key].to_numpy(dtype=object)
                    if batch_key is not None
                    else np.full(adata.n_obs, "all", dtype=object)
                )
                state = None if state_key is None else adata.obs[state_key].to_numpy(object)
                amb, code = estimate_ambient(
                    X, sample, state, library=library, gene_names=adata.var_names
                )
                soup = amb.soup(np.arange(X.shape[1]), code)
    finally:
        if pool_key is not None:
            del adata.obs[pool_key]
    blocks = [
        b
        for _, b in positive_blocks(
            X,
            library,
            method=method,
            threshold=threshold,
            graph=graph,
            block_size=block_size,
            prior_shape=prior_shape,
            soup=soup,
        )
    ]
    adata.layers[key_added] = sp.csr_matrix(sp.vstack(blocks, format="csr"), dtype=bool)
    adata.uns[key_added] = {
        "params": {
            "method": method,
            "layer": layer,
            "threshold": float(threshold),
            "threshold_unit": "CP10k",
            "n_neighbors": int(n_neighbors) if method == "knn" and obsp is None else None,
            "batch_key": batch_key,
            "state_key": state_key,
            "graph": graph_source,
            "prior_shape": float(prior_shape) if method == "knn" else None,
            "library_size": lib_source,
            "ambient": None if amb is None else amb.summary(),
        }
    }
    if amb is not None:
        adata.uns[key_added]["ambient"] = amb.table
    return adata if copy else None
