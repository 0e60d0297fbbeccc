"""Embedded healthy reference: cell types, tissues, expression, IHC and surface evidence."""

from ._reference import ISOFORM_COLUMNS, REFERENCE_FILES, Reference, load_isoforms, load_reference

__all__ = ["ISOFORM_COLUMNS", "REFERENCE_FILES", "Reference", "load_isoforms", "load_reference"]
