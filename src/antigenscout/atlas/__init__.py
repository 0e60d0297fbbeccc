"""Healthy single-cell atlases as references: build (in-process or on Dask) and use them."""

from ._atlas import ATLAS_FILES, Atlas, cell_ontology_map, map_cell_types
from ._build import DEFAULT_CHUNK_CELLS, DEFAULT_SAMPLE_CELLS, build_atlas, plan_chunks
from ._load import load_atlas

__all__ = [
    "ATLAS_FILES",
    "DEFAULT_CHUNK_CELLS",
    "DEFAULT_SAMPLE_CELLS",
    "Atlas",
    "build_atlas",
    "cell_ontology_map",
    "load_atlas",
    "map_cell_types",
    "plan_chunks",
]
