"""One visual style for both chart renderers: the report's SVG and the ``pl`` figures.

Colours, the font, font sizes, the colour ramps of healthy risk and tumour coverage and the
axis rules (limits, ticks, labels, when an axis turns logarithmic) are defined here once;
:mod:`antigenscout.report._svg` (and the report sections around it) and
:mod:`antigenscout.pl._plots` take them from here. Sizes are in SVG pixels; matplotlib,
which measures in points, converts them with :data:`PT_PER_PX`. This module imports neither
renderer.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence

import numpy as np

#: A colour ramp: ``(position, "#rrggbb")`` stops over ``[0, 1]``, drawn piecewise-linearly.
Stops = tuple[tuple[float, str], ...]

# ----------------------------------------------------------------------------- colours

#: White → dark red, for vital-weighted healthy risk in [0, 1].
RISK_RAMP: Stops = (
    (0.0, "#f7f7f7"),
    (0.05, "#fde9d9"),
    (0.2, "#fcbba1"),
    (0.4, "#fb6a4a"),
    (0.7, "#cb181d"),
    (1.0, "#67000d"),
)
#: White → dark blue, for tumour/patient coverage in [0, 1].
COVERAGE_RAMP: Stops = (
    (0.0, "#f7fbff"),
    (0.25, "#c6dbef"),
    (0.5, "#6baed6"),
    (0.75, "#2171b5"),
    (1.0, "#08306b"),
)
#: Fill of a missing (NaN) value on a ramp.
MISSING = "#e0e0e0"
#: Pareto-front points and the step line joining them.
FRONT = "#d95f02"
#: Every other point of a scatter, and its opacity.
OTHER = "#9e9e9e"
OTHER_ALPHA = 0.55
#: The desirable corner of a coverage-vs-risk scatter, and its caption.
SWEET_SPOT = "#e5f5e0"
SWEET_SPOT_TEXT = "#31a354"
#: Kinetics: the 5–95 % band (and its opacity), the median line and the typical patient.
BAND = "#6baed6"
BAND_ALPHA = 0.3
MEDIAN = "#08519c"
TYPICAL = "#555"
#: Grid lines, the plot frame, tick labels, and other text (labels, titles).
GRID = "#eee"
FRAME = "#999"
AXIS_TEXT = "#444"
TEXT = "#222"
#: Labels of row groups (anatomical systems) in heatmaps.
GROUP_TEXT = "#334"
#: Leader lines from a point to its label.
LEADER = "#888"
#: The background: marker edges, label halos and the lines between heatmap cells.
BACKGROUND = "#fff"
#: Text of colour-scale legends.
SCALE_TEXT = "#333"
#: Rule the matplotlib heatmap draws between groups of rows (the SVG shades them instead).
GROUP_RULE = "#333"
#: Alternating shades behind the row groups (anatomical systems) of heatmaps.
GROUP_SHADES = ("#eef2f7", "#f7f4ee")
#: Dark and light ink for text written on a colour (see :func:`ink`).
INK_DARK = "#000"
INK_LIGHT = "#fff"

# ----------------------------------------------------------------------------- fonts

#: Font families of the report, in order of preference (browser names; matplotlib keeps its
#: default sans-serif family, the last of them).
FONT_FAMILIES = ("system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif")
#: The same list as a CSS/SVG ``font-family`` value.
FONT_CSS = ", ".join(f"'{f}'" if " " in f else f for f in FONT_FAMILIES)
#: Font sizes in SVG pixels: tick labels, axis labels, chart titles, point labels,
#: heatmap row and column labels, values written in heatmap cells.
SIZE_TICK = 10
SIZE_AXIS_LABEL = 12
SIZE_TITLE = 12
SIZE_POINT_LABEL = 11
SIZE_CELL_LABEL = 10.5
SIZE_CELL_VALUE = 8.5
#: Points per SVG pixel (CSS pixels are 1/96 inch, points 1/72): matplotlib sizes.
PT_PER_PX = 0.75

# ----------------------------------------------------------------------------- axis rules

#: Axis label of tumour coverage on scatters.
COVERAGE_AXIS_LABEL = "tumour coverage (fraction of tumour cells positive)"
#: Axis label of the time axis of kinetics curves.
TIME_AXIS_LABEL = "time (days)"
#: Colour-scale labels of the risk and coverage heatmaps.
RISK_SCALE_LABEL = "healthy risk (fraction × vital weight)"
COVERAGE_SCALE_LABEL = "tumour coverage"
#: The desirable corner: coverage at least this, risk in this lowest fraction of the axis.
SWEET_SPOT_COVERAGE = 0.8
SWEET_SPOT_RISK_FRACTION = 0.2
#: Heatmap cells below this value are left without a number.
ANNOTATE_MIN = 0.005
#: A kinetics axis turns logarithmic when its positive values span more than this factor.
LOG_SPAN = 1e3
#: A risk axis ends at 1 once its largest value passes this; below, it is zoomed in.
RISK_ZOOM_BELOW = 0.5


def hex_rgb(colour: str) -> tuple[int, int, int]:
    """Return the red, green and blue bytes of a ``#rrggbb`` colour (ramp stops are written so)."""
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def ramp(value: float | None, stops: Sequence[tuple[float, str]] = RISK_RAMP) -> str:
    """Return the colour of ``value`` on a piecewise-linear ramp (NaN → :data:`MISSING`)."""
    if value is None or not np.isfinite(value):
        return MISSING
    v = min(max(float(value), stops[0][0]), stops[-1][0])
    for (a, ca), (b, cb) in itertools.pairwise(stops):
        if v <= b:
            t = 0.0 if b == a else (v - a) / (b - a)
            ra, ga, ba = hex_rgb(ca)
            rb, gb, bb = hex_rgb(cb)
            rgb = (round(ra + t * (rb - ra)), round(ga + t * (gb - ga)), round(ba + t * (bb - ba)))
            return "#{:02x}{:02x}{:02x}".format(*rgb)
    return stops[-1][1]


def ink(fill: str) -> str:
    """Return the text colour readable on ``fill``: dark on light colours, light on dark."""
    r, g, b = hex_rgb(fill)
    return INK_DARK if 0.299 * r + 0.587 * g + 0.114 * b > 140 else INK_LIGHT  # noqa: PLR2004


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """Return about ``n`` round tick values covering ``[lo, hi]``."""
    if not (np.isfinite(lo) and np.isfinite(hi)) or hi <= lo:
        return [lo]
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw)
    start = math.ceil(lo / step - 1e-9) * step
    ticks = []
    v = start
    while v <= hi + step * 1e-9:
        ticks.append(round(v, 10))
        v += step
    return ticks


def points(px: float) -> float:
    """Return the matplotlib size in points of a size given in SVG pixels."""
    return px * PT_PER_PX


def risk_axis_top(ymax: float) -> float:
    """Return where a risk axis ends for data reaching ``ymax``.

    At 1 once the data pass :data:`RISK_ZOOM_BELOW`; below, zoomed in to the data with 10 %
    headroom, rounded up to a multiple of 0.05.
    """
    return 1.0 if ymax > RISK_ZOOM_BELOW else max(0.05, math.ceil(ymax * 20 * 1.1) / 20)


def risk_axis_label(column: str) -> str:
    """Return the axis label of a risk column, e.g. ``vital risk (fraction × vital weight)``."""
    return f"{column.replace('_', ' ')} (fraction × vital weight)"


def log_axis(values: np.ndarray) -> bool:
    """Return whether the values drawn on one axis want it logarithmic.

    They do when all finite values are positive and they span more than :data:`LOG_SPAN`.
    """
    finite = values[np.isfinite(values)]
    pos = finite[finite > 0]
    lo = float(finite.min()) if finite.size else 0.0
    hi = float(finite.max()) if finite.size else 1.0
    return bool(pos.size and lo > 0 and hi / max(pos.min(), 1e-300) > LOG_SPAN)
