"""Tidy tables from results stored in ``adata.uns`` (after scanpy's ``sc.get``), and a glossary.

The glossary describes the tables the command-line tools write.
"""

from ._get import gates_df, patient_coverage_df, risk_df, targets_df
from ._glossary import column_glossary, describe_column

__all__ = [
    "column_glossary",
    "describe_column",
    "gates_df",
    "patient_coverage_df",
    "risk_df",
    "targets_df",
]
