"""Readers that turn expression files into AnnData, and atomic writers.

Every reader returns cells/samples × genes with raw values in ``.X``, the identifiers found
in the file in ``var['gene_id_input']`` and ``uns['antigenscout']['kind']``
(``'single_cell'`` or ``'bulk'``).
"""

from ._h5ad import read_h5ad
from ._loom import read_loom
from ._read import join_obs, read
from ._soma import read_soma
from ._table import read_table
from ._tenx import read_10x_h5, read_10x_mtx
from ._write import prepare_out_dir, write_json, write_table
from ._zarr import read_zarr

__all__ = [
    "join_obs",
    "prepare_out_dir",
    "read",
    "read_10x_h5",
    "read_10x_mtx",
    "read_h5ad",
    "read_loom",
    "read_soma",
    "read_table",
    "read_zarr",
    "write_json",
    "write_table",
]
