"""Constants of the Gamma model of per-cell expression rates.

They are shared by the engagement model (``_risk``) and the per-patient rate model (``_rate``),
which import them and not each other.
"""

from __future__ import annotations

#: Shapes of the within-context Gamma distribution spanned by the engagement interval.
INTERVAL_SHAPES = (0.5, 2.0)
#: Least expected reads at the threshold, summed over a group's cells, for a call.
MIN_READS_AT_THRESHOLD = 10.0
