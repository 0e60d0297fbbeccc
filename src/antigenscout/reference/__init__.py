"""Embedded healthy reference: cell types, tissues, expression, IHC and surface evidence."""

from ._reference import REFERENCE_FILES, Reference, load_reference

__all__ = ["REFERENCE_FILES", "Reference", "load_reference"]
