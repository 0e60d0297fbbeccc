"""Tidy tables from results stored in ``adata.uns`` (after scanpy's ``sc.get``)."""

from ._get import gates_df, patient_coverage_df, risk_df, targets_df

__all__ = ["gates_df", "patient_coverage_df", "risk_df", "targets_df"]
