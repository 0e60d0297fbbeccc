"""Preprocessing: gene-identifier harmonising and per-cell antigen positivity."""

from ._genes import harmonise_genes
from ._graph import neighbor_graph
from ._positivity import (
    DEFAULT_N_NEIGHBORS,
    DEFAULT_THRESHOLD,
    PositivityMethod,
    positive_blocks,
    positivity,
)
from ._positivity import methods as positivity_methods

__all__ = [
    "DEFAULT_N_NEIGHBORS",
    "DEFAULT_THRESHOLD",
    "PositivityMethod",
    "harmonise_genes",
    "neighbor_graph",
    "positive_blocks",
    "positivity",
    "positivity_methods",
]
