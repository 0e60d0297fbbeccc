"""Static plots (matplotlib) of antigenscout runs, for notebooks and papers.

Each function accepts a run directory written by the CLI (or the matching table) and
returns a :class:`matplotlib.figure.Figure`; nothing is shown and no global matplotlib
state is changed. The interactive equivalents are in :func:`antigenscout.report.write_html`.
"""

from ._plots import coverage_risk, gate_scatter, kinetics_curves, patient_coverage, risk_heatmap

__all__ = ["coverage_risk", "gate_scatter", "kinetics_curves", "patient_coverage", "risk_heatmap"]
