"""Static plots (matplotlib) of antigenscout runs, for notebooks and papers.

Each function accepts a run directory written by the CLI, an AnnData scored by
:func:`antigenscout.tl.score_targets` / :func:`~antigenscout.tl.search_gates` (read from
``adata.uns``, as scanpy's ``sc.pl`` does), or the matching table, and returns a
:class:`matplotlib.figure.Figure`; nothing is shown and no global matplotlib state is
changed. The interactive equivalents are in :func:`antigenscout.report.write_html`.
"""

from ._plots import coverage_risk, gate_scatter, kinetics_curves, patient_coverage, risk_heatmap

__all__ = ["coverage_risk", "gate_scatter", "kinetics_curves", "patient_coverage", "risk_heatmap"]
