"""Real example and reference datasets.

``demo()``, ``tcga_medians()`` and ``hpa_cell_lines()`` load files shipped inside the package;
``vangalen2019(path)`` and ``citeseq_triana2021(path)`` read the original public files.
"""

from ._datasets import (
    TCGA_HPA_CANCER,
    VANGALEN_STEM_PROGENITOR,
    add_vangalen_compartment,
    citeseq_triana2021,
    demo,
    hpa_cell_lines,
    tcga_medians,
    vangalen2019,
)

__all__ = [
    "TCGA_HPA_CANCER",
    "VANGALEN_STEM_PROGENITOR",
    "add_vangalen_compartment",
    "citeseq_triana2021",
    "demo",
    "hpa_cell_lines",
    "tcga_medians",
    "vangalen2019",
]
