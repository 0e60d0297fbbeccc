"""The threshold methods ``detected`` (count > 0) and ``cp10k`` (count / library × 1e4).

Both are called straight from the CSR arrays by one numba kernel
(:func:`antigenscout.pp._kernels.select_positive`), block by block, without copies.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from ._checks import _colmap

if TYPE_CHECKING:
    from ._ambient import Soup


def _iter_threshold_blocks(  # noqa: PLR0913, PLR0917
    X: sp.csr_matrix | np.ndarray,
    lib: np.ndarray,
    method: str,
    t: float,
    G: sp.csr_matrix | None,
    scale: np.ndarray | None,
    cols: np.ndarray | None,
    block_size: int,
    return_probability: bool,
    a0: float,
    soup: Soup | None = None,
) -> Iterator[tuple[slice, sp.csr_matrix]]:
    """Yield ``detected`` / ``cp10k`` calls straight from CSR arrays (numba, no copies).

    The registry's function of both methods (:class:`~antigenscout.pp.PositivityMethod`);
    ``method`` picks the kernel's rule, and the knn method's arguments (``G``, ``scale``,
    ``a0``, ``soup``) are unused.
    """
    from ._kernels import RULE_CODES, select_positive  # noqa: PLC0415

    code = RULE_CODES[method]
    n_cells, n_genes = X.shape
    colmap = _colmap(cols, n_genes)
    n_out = n_genes if cols is None else len(cols)
    dtype = np.float32 if return_probability else np.bool_
    for start in range(0, n_cells, block_size):
        rows = slice(start, min(start + block_size, n_cells))
        blk = X[rows]
        blk = sp.csr_matrix(blk) if sp.issparse(blk) else sp.csr_matrix(np.asarray(blk))
        ptr, idx = select_positive(blk.indptr, blk.indices, blk.data, lib[rows], t, code, colmap)
        out = sp.csr_matrix(
            (np.ones(len(idx), dtype=dtype), idx, ptr), shape=(rows.stop - rows.start, n_out)
        )
        out.sort_indices()
        yield rows, out
