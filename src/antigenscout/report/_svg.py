r"""Small inline-SVG chart builders (no plotting library, no network at view time).

Every interactive mark carries either ``data-tip`` (tooltip text, lines joined by ``\n``)
or ``data-i`` (a row index into a JSON dataset named by the enclosing ``<svg data-set>``);
the inlined ``report.js`` turns both into hover tooltips.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

import numpy as np
import pandas as pd

from .. import _theme
from .._theme import nice_ticks, ramp

__all__ = [
    "LabelSpot",
    "bands_svg",
    "heatmap_svg",
    "legend_svg",
    "place_labels",
    "scatter_svg",
]

FONT = _theme.FONT_CSS


def _fmt_tick(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1e4 or abs(v) < 1e-3:  # noqa: PLR2004
        mant, exp = f"{v:.1e}".split("e")
        return f"{mant.removesuffix('.0')}e{int(exp)}"
    return f"{v:g}"


def _t(x: float) -> str:
    """Compact coordinate."""
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _text(  # noqa: PLR0913
    x: float, y: float, s: str, *, anchor: str = "start", size: float = 11, extra: str = ""
) -> str:
    return (
        f'<text x="{_t(x)}" y="{_t(y)}" font-size="{size}" text-anchor="{anchor}"{extra}>'
        f"{escape(s)}</text>"
    )


def _axes(  # noqa: PLR0913
    *,
    left: float,
    top: float,
    pw: float,
    ph: float,
    xticks: list[float],
    yticks: list[float],
    sx: Callable[[float], float],
    sy: Callable[[float], float],
    xlabel: str,
    ylabel: str,
    yfmt: Callable[[float], str] = _fmt_tick,
) -> list[str]:
    out = [f'<g class="axes" fill="{_theme.AXIS_TEXT}" font-family="{FONT}">']
    for v in xticks:
        x = sx(v)
        out.append(
            f'<line x1="{_t(x)}" x2="{_t(x)}" y1="{_t(top)}" y2="{_t(top + ph)}" '
            f'stroke="{_theme.GRID}"/>'
        )
        out.append(_text(x, top + ph + 15, _fmt_tick(v), anchor="middle", size=_theme.SIZE_TICK))
    for v in yticks:
        y = sy(v)
        out.append(
            f'<line x1="{_t(left)}" x2="{_t(left + pw)}" y1="{_t(y)}" y2="{_t(y)}" '
            f'stroke="{_theme.GRID}"/>'
        )
        out.append(_text(left - 6, y + 3.5, yfmt(v), anchor="end", size=_theme.SIZE_TICK))
    out.append(
        f'<rect x="{_t(left)}" y="{_t(top)}" width="{_t(pw)}" height="{_t(ph)}" fill="none" '
        f'stroke="{_theme.FRAME}"/>'
    )
    out.append(
        _text(left + pw / 2, top + ph + 34, xlabel, anchor="middle", size=_theme.SIZE_AXIS_LABEL)
    )
    cy = top + ph / 2
    out.append(
        _text(
            left - 42,
            cy,
            ylabel,
            anchor="middle",
            size=_theme.SIZE_AXIS_LABEL,
            extra=f' transform="rotate(-90 {_t(left - 42)} {_t(cy)})"',
        )
    )
    out.append("</g>")
    return out


LABEL_SIZE = _theme.SIZE_POINT_LABEL


def label_width(text: str, size: float = LABEL_SIZE) -> float:
    """Approximate rendered width (px) of bold sans-serif ``text`` at ``size`` px."""
    return 0.62 * size * len(text) + 2


@dataclass(frozen=True)
class LabelSpot:
    """Where one label goes: text anchor point, anchor side, box and leader-line end."""

    x: float
    y: float
    anchor: str
    box: tuple[float, float, float, float]  # x0, y0, x1, y1
    leader: bool
    lx: float
    ly: float


def _overlaps(a: tuple[float, float, float, float], b: tuple[float, float, float, float]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def place_labels(
    points: Sequence[tuple[float, float, str]],
    *,
    bounds: tuple[float, float, float, float],
    markers: Sequence[tuple[float, float, float]] = (),
    size: float = LABEL_SIZE,
) -> list[LabelSpot | None]:
    """Greedy, collision-free placement of point labels (earlier labels have priority).

    Each label tries positions around its point (right, left, above, below, then further out
    with a leader line) and takes the first whose box stays inside ``bounds`` and overlaps
    neither an already placed label nor a marker; a label with no free position is skipped.

    Parameters
    ----------
    points
        ``(x, y, text)`` in SVG pixels, in priority order.
    bounds
        ``(x0, y0, x1, y1)`` the labels must stay within (the plot area).
    markers
        ``(x, y, radius)`` of drawn markers labels must not cover.
    size
        Font size in pixels.

    Returns
    -------
    One :class:`LabelSpot` per point, or ``None`` where the label was skipped.
    """
    h = size + 1
    asc = 0.78 * size  # baseline to the top of capitals
    near = [(8, 4, "start"), (-8, 4, "end"), (4, -8, "start"), (-4, -8, "end")]
    near += [(4, 16, "start"), (-4, 16, "end")]
    far = [
        (dx, dy, a)
        for dy in (-20, 26, -34, 40, -48)
        for dx, a in ((14, "start"), (-14, "end"), (0, "middle"))
    ]
    dots = [(mx - r, my - r, mx + r, my + r) for mx, my, r in markers]
    taken: list[tuple[float, float, float, float]] = []
    out: list[LabelSpot | None] = []
    for px, py, text in points:
        w = label_width(text, size)
        # every marker but the labelled point's own one is an obstacle
        others = taken + [
            b
            for b in dots
            if abs(b[0] + b[2] - 2 * px) + abs(b[1] + b[3] - 2 * py) > 0.02  # noqa: PLR2004
        ]
        spot = None
        for k, (dx, dy, anchor) in enumerate(near + far):
            tx, ty = px + dx, py + dy
            x0 = tx if anchor == "start" else tx - w if anchor == "end" else tx - w / 2
            box = (x0, ty - asc, x0 + w, ty - asc + h)
            if box[0] < bounds[0] or box[2] > bounds[2] or box[1] < bounds[1]:
                continue
            if box[3] > bounds[3]:
                continue
            if any(_overlaps(box, b) for b in others):
                continue
            leader = k >= len(near)
            ly = box[3] if dy < 0 else box[1]
            lx = min(max(px, box[0]), box[2])
            spot = LabelSpot(tx, ty, anchor, box, leader, lx, ly)
            break
        out.append(spot)
        if spot is not None:
            taken.append(spot.box)
    return out


def scatter_svg(  # noqa: PLR0913
    x: np.ndarray,
    y: np.ndarray,
    *,
    highlight: np.ndarray,
    labels: dict[int, str],
    dataset: str,
    xlabel: str,
    ylabel: str,
    width: int = 760,
    height: int = 470,
    front: bool = True,
    title: str = "",
) -> str:
    """Draw a scatter of ``y`` against ``x`` (both in [0, 1]), its Pareto front and labels.

    Highlighted points are joined by a step line (the Pareto front: coverage up, risk down);
    text labels are drawn for ``labels``.

    Each point carries ``data-i`` (its row in the JSON dataset ``dataset``).
    """
    left, top, right, bottom = 60, 14, 16, 48
    pw, ph = width - left - right, height - top - bottom
    ymax = float(np.nanmax(y)) if len(y) and np.isfinite(np.nanmax(y)) else 1.0
    ymax = _theme.risk_axis_top(ymax)

    def sx(v: float) -> float:
        return left + min(max(v, 0.0), 1.0) * pw

    def sy(v: float) -> float:
        return top + ph - min(max(v, 0.0), ymax) / ymax * ph

    parts = [
        f'<svg class="chart scatter" data-set="{escape(dataset)}" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="{escape(title or ylabel)}" '
        f'font-family="{FONT}">'
    ]
    # the desirable corner: high coverage, low risk
    cov, low = _theme.SWEET_SPOT_COVERAGE, ymax * _theme.SWEET_SPOT_RISK_FRACTION
    parts.append(
        f'<rect x="{_t(sx(cov))}" y="{_t(sy(low))}" width="{_t(sx(1) - sx(cov))}" '
        f'height="{_t(sy(0) - sy(low))}" fill="{_theme.SWEET_SPOT}"/>'
    )
    parts.append(
        _text(
            sx(1) - 4,
            sy(low) + 12,
            "high coverage, low risk",
            anchor="end",
            size=_theme.SIZE_TICK,
            extra=f' fill="{_theme.SWEET_SPOT_TEXT}"',
        )
    )
    parts += _axes(
        left=left,
        top=top,
        pw=pw,
        ph=ph,
        xticks=nice_ticks(0, 1),
        yticks=nice_ticks(0, ymax),
        sx=sx,
        sy=sy,
        xlabel=xlabel,
        ylabel=ylabel,
    )
    hi = np.asarray(highlight, dtype=bool)
    if front and hi.sum() >= 2:  # noqa: PLR2004
        idx = np.flatnonzero(hi)
        idx = idx[np.lexsort((y[idx], x[idx]))]
        pts = []
        for k, i in enumerate(idx):
            if k:
                pts.append(f"{_t(sx(x[i]))},{_t(sy(y[idx[k - 1]]))}")
            pts.append(f"{_t(sx(x[i]))},{_t(sy(y[i]))}")
        parts.append(
            f'<polyline points="{" ".join(pts)}" fill="none" stroke="{_theme.FRONT}" '
            'stroke-width="1.5" stroke-dasharray="4 3" opacity="0.8"/>'
        )
    parts.append(f'<g class="pts" fill="{_theme.OTHER}" fill-opacity="{_theme.OTHER_ALPHA}">')
    for i in np.flatnonzero(~hi):
        if np.isfinite(x[i]) and np.isfinite(y[i]):
            parts.append(f'<circle cx="{_t(sx(x[i]))}" cy="{_t(sy(y[i]))}" r="3" data-i="{i}"/>')
    parts.append("</g>")
    parts.append(
        f'<g class="pts front" fill="{_theme.FRONT}" stroke="{_theme.BACKGROUND}" '
        'stroke-width="0.8">'
    )
    for i in np.flatnonzero(hi):
        if np.isfinite(x[i]) and np.isfinite(y[i]):
            parts.append(f'<circle cx="{_t(sx(x[i]))}" cy="{_t(sy(y[i]))}" r="5" data-i="{i}"/>')
    parts.append("</g>")
    pts = [
        (i, sx(x[i]), sy(y[i]), lab)
        for i, lab in labels.items()
        if np.isfinite(x[i]) and np.isfinite(y[i])
    ]
    markers = [(sx(x[i]), sy(y[i]), 5.0) for i in np.flatnonzero(hi) if np.isfinite(x[i] + y[i])]
    markers += [(px, py, 3.0) for _, px, py, _ in pts]
    placed = place_labels(
        [(px, py, lab) for _, px, py, lab in pts],
        bounds=(left, top, left + pw, top + ph),
        markers=markers,
    )
    parts.append(
        f'<g class="labels" font-family="{FONT}" fill="{_theme.TEXT}" pointer-events="none" '
        f'stroke="{_theme.BACKGROUND}" stroke-width="3" stroke-linejoin="round" '
        'paint-order="stroke">'
    )
    for (i, px, py, lab), spot in zip(pts, placed, strict=True):
        if spot is None:
            continue
        if spot.leader:
            parts.append(
                f'<line x1="{_t(px)}" y1="{_t(py)}" x2="{_t(spot.lx)}" y2="{_t(spot.ly)}" '
                f'stroke="{_theme.LEADER}" stroke-width="0.8"/>'
            )
        parts.append(
            _text(
                spot.x,
                spot.y,
                lab,
                anchor=spot.anchor,
                size=LABEL_SIZE,
                extra=f' font-weight="600" data-label-for="{i}"',
            )
        )
    parts.append("</g></svg>")
    return "".join(parts)


def heatmap_svg(  # noqa: PLR0913
    mat: pd.DataFrame,
    *,
    stops: Sequence[tuple[float, str]],
    tip: Callable[[str, str, float], str],
    row_groups: pd.Series | None = None,
    cell_w: float = 26,
    cell_h: float = 16,
    label_w: float = 190,
    group_w: float = 0,
    col_label_h: float = 64,
    annotate: bool = False,
    title: str = "",
    vmax: float = 1.0,
) -> str:
    """Heatmap of ``mat`` (rows × columns, values in ``[0, vmax]``).

    Rows sharing a ``row_groups`` value are drawn as one block with the group name in a
    band on the left and a gap between blocks. ``tip(row, col, value)`` gives the tooltip.
    """
    rows = [str(r) for r in mat.index]
    cols = [str(c) for c in mat.columns]
    vals = mat.to_numpy(dtype=float)
    groups = [str(g) for g in row_groups.to_numpy()] if row_groups is not None else [""] * len(rows)
    gap = 6.0 if row_groups is not None else 0.0
    ys: list[float] = []
    y = col_label_h
    for k in range(len(rows)):
        if k and groups[k] != groups[k - 1]:
            y += gap
        ys.append(y)
        y += cell_h
    x0 = group_w + label_w
    longest = max((len(c) for c in cols), default=0)
    width = x0 + cell_w * len(cols) + 10 + longest * 6.2 * 0.57
    height = y + 8
    parts = [
        f'<svg class="chart heatmap" viewBox="0 0 {_t(width)} {_t(height)}" width="{_t(width)}" '
        f'height="{_t(height)}" role="img" aria-label="{escape(title)}" '
        f'font-family="{FONT}">'
    ]
    parts.append(f'<g class="collabels" fill="{_theme.TEXT}">')
    for j, c in enumerate(cols):
        cx = x0 + (j + 0.5) * cell_w
        cy = col_label_h - 6
        parts.append(
            _text(
                cx + 3,
                cy,
                c,
                size=_theme.SIZE_POINT_LABEL,
                extra=f' transform="rotate(-55 {_t(cx + 3)} {_t(cy)})" font-weight="600"',
            )
        )
    parts.append("</g>")
    if row_groups is not None:
        parts.append('<g class="groups">')
        k = 0
        while k < len(rows):
            k2 = k
            while k2 + 1 < len(rows) and groups[k2 + 1] == groups[k]:
                k2 += 1
            y_a, y_b = ys[k], ys[k2] + cell_h
            shade = _theme.GROUP_SHADES[len({*groups[:k]}) % 2]
            parts.append(
                f'<rect x="0" y="{_t(y_a)}" width="{_t(width - 10)}" height="{_t(y_b - y_a)}" '
                f'fill="{shade}"/>'
            )
            label = groups[k]
            size = _theme.SIZE_CELL_LABEL
            if (k2 - k + 1) * cell_h < 13:  # noqa: PLR2004
                label = label if len(label) <= 22 else label[:21] + "…"  # noqa: PLR2004
            parts.append(
                _text(
                    4,
                    (y_a + y_b) / 2 + 3.5,
                    label,
                    size=size,
                    extra=f' font-weight="600" fill="{_theme.GROUP_TEXT}"',
                )
            )
            k = k2 + 1
        parts.append("</g>")
    parts.append(f'<g class="rowlabels" fill="{_theme.TEXT}">')
    for k, r in enumerate(rows):
        lab = r if len(r) <= 34 else r[:33] + "…"  # noqa: PLR2004
        parts.append(
            _text(x0 - 5, ys[k] + cell_h / 2 + 3.5, lab, anchor="end", size=_theme.SIZE_CELL_LABEL)
        )
    parts.append("</g>")
    parts.append(f'<g class="cells" stroke="{_theme.BACKGROUND}" stroke-width="1">')
    for k, r in enumerate(rows):
        for j, c in enumerate(cols):
            v = vals[k, j]
            fill = ramp(v / vmax if vmax else v, stops)
            parts.append(
                f'<rect x="{_t(x0 + j * cell_w)}" y="{_t(ys[k])}" width="{_t(cell_w)}" '
                f'height="{_t(cell_h)}" fill="{fill}" data-tip="{escape(tip(r, c, v))}"/>'
            )
            if annotate and np.isfinite(v) and v >= _theme.ANNOTATE_MIN:
                parts.append(
                    _text(
                        x0 + (j + 0.5) * cell_w,
                        ys[k] + cell_h / 2 + 3.2,
                        f"{v:.2f}".lstrip("0"),
                        anchor="middle",
                        size=_theme.SIZE_CELL_VALUE,
                        extra=f' fill="{_theme.ink(fill)}" stroke="none" pointer-events="none"',
                    )
                )
    parts.append("</g></svg>")
    return "".join(parts)


def legend_svg(
    stops: Sequence[tuple[float, str]], label: str, *, vmax: float = 1.0, width: int = 220
) -> str:
    """Horizontal colour bar with ticks at 0, ½ and the maximum."""
    h = 34
    n = 40
    parts = [
        f'<svg class="legend" viewBox="0 0 {width} {h}" width="{width}" height="{h}" '
        f'font-family="{FONT}">'
    ]
    bw = (width - 20) / n
    for k in range(n):
        parts.append(
            f'<rect x="{_t(10 + k * bw)}" y="14" width="{_t(bw + 0.6)}" height="9" '
            f'fill="{ramp((k + 0.5) / n, stops)}"/>'
        )
    parts.append(_text(10, 10, label, size=_theme.SIZE_TICK, extra=f' fill="{_theme.SCALE_TEXT}"'))
    for frac in (0.0, 0.5, 1.0):
        parts.append(
            _text(
                10 + frac * (width - 20),
                33,
                f"{frac * vmax:g}",
                anchor="middle",
                size=9,
                extra=f' fill="{_theme.SCALE_TEXT}"',
            )
        )
    parts.append("</svg>")
    return "".join(parts)


def bands_svg(  # noqa: PLR0913, PLR0915
    df: pd.DataFrame,
    *,
    title: str,
    ylabel: str = "",
    unit: str = "",
    width: int = 440,
    height: int = 270,
    log: bool | None = None,
) -> str:
    """Median line with a shaded 5–95 % band over ``time_days`` (optional ``typical`` dashed).

    ``df`` has columns ``time_days``, ``p50`` and optionally ``p05``, ``p95``, ``typical``.
    ``ylabel`` labels the y axis (with its unit); ``unit`` follows values in tooltips.
    """
    left, top, right, bottom = 64, 24, 12, 40
    pw, ph = width - left - right, height - top - bottom
    df = df.sort_values("time_days")
    t = df["time_days"].to_numpy(dtype=float)
    cols = [c for c in ("p05", "p50", "p95", "typical") if c in df.columns]
    vals = df[cols].to_numpy(dtype=float)
    finite = vals[np.isfinite(vals)]
    lo = float(finite.min()) if finite.size else 0.0
    hi = float(finite.max()) if finite.size else 1.0
    pos = finite[finite > 0]
    if log is None:
        log = _theme.log_axis(vals)
    if log:
        lo_l = math.floor(math.log10(pos.min())) if pos.size else 0
        hi_l = math.ceil(math.log10(hi)) if hi > 0 else 1
        hi_l = max(hi_l, lo_l + 1)

        def tr(v: float) -> float:
            return math.log10(v) if v > 0 else float(lo_l)

        ylo, yhi = float(lo_l), float(hi_l)
        step = max(1, math.ceil((hi_l - lo_l) / 5))
        yticks = [float(e) for e in range(lo_l, hi_l + 1, step)]

        def yfmt(v: float) -> str:
            return f"1e{int(v)}"
    else:
        ylo = min(0.0, lo)
        yhi = hi if hi > ylo else ylo + 1
        yhi += (yhi - ylo) * 0.05

        def tr(v: float) -> float:
            return v

        yticks = nice_ticks(ylo, yhi, 4)
        yfmt = _fmt_tick
    tmin, tmax = (float(t.min()), float(t.max())) if t.size else (0.0, 1.0)
    if tmax <= tmin:
        tmax = tmin + 1

    def sx(v: float) -> float:
        return left + (v - tmin) / (tmax - tmin) * pw

    def sy(v: float) -> float:  # v already on the (possibly log10) axis scale
        return top + ph - (min(max(v, ylo), yhi) - ylo) / (yhi - ylo) * ph

    def py(v: float) -> float:
        return sy(tr(v))

    parts = [
        f'<svg class="chart bands" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" '
        f'role="img" aria-label="{escape(title)}" font-family="{FONT}">'
    ]
    parts.append(
        _text(
            left,
            15,
            title,
            size=_theme.SIZE_TITLE,
            extra=f' font-weight="600" fill="{_theme.TEXT}"',
        )
    )
    parts += _axes(
        left=left,
        top=top,
        pw=pw,
        ph=ph,
        xticks=nice_ticks(tmin, tmax, 5),
        yticks=yticks,
        sx=sx,
        sy=sy,
        xlabel=_theme.TIME_AXIS_LABEL,
        ylabel=ylabel,
        yfmt=yfmt,
    )
    if "p05" in df.columns and "p95" in df.columns:
        ok = np.isfinite(df["p05"].to_numpy(float)) & np.isfinite(df["p95"].to_numpy(float))
        up = [
            f"{_t(sx(a))},{_t(py(b))}"
            for a, b in zip(t[ok], df["p95"].to_numpy(float)[ok], strict=True)
        ]
        dn = [
            f"{_t(sx(a))},{_t(py(b))}"
            for a, b in zip(t[ok][::-1], df["p05"].to_numpy(float)[ok][::-1], strict=True)
        ]
        if up:
            parts.append(
                f'<polygon points="{" ".join(up + dn)}" fill="{_theme.BAND}" '
                f'fill-opacity="{_theme.BAND_ALPHA}" stroke="none"/>'
            )
    for col, style in (
        ("typical", f'stroke="{_theme.TYPICAL}" stroke-dasharray="5 3"'),
        ("p50", f'stroke="{_theme.MEDIAN}" stroke-width="2"'),
    ):
        if col in df.columns:
            v = df[col].to_numpy(float)
            ok = np.isfinite(v)
            pts = " ".join(f"{_t(sx(a))},{_t(py(b))}" for a, b in zip(t[ok], v[ok], strict=True))
            if pts:
                parts.append(f'<polyline points="{pts}" fill="none" {style}/>')
    # hover targets: a thin invisible column per sampled time point
    n = len(t)
    take = np.unique(np.linspace(0, n - 1, min(n, 60)).round().astype(int)) if n else []
    colw = max(pw / max(len(take), 1), 2)
    parts.append('<g class="hover" fill="transparent">')
    for i in take:
        lines = [f"{title}", f"day {t[i]:g}"]
        row = df.iloc[int(i)]
        u = f" {unit}" if unit else ""
        lines.append(f"median {_fmt_val(row['p50'])}{u}")
        if "p05" in df.columns and "p95" in df.columns:
            lines.append(f"5–95 %: {_fmt_val(row['p05'])} – {_fmt_val(row['p95'])}")
        if "typical" in df.columns:
            lines.append(f"typical patient {_fmt_val(row['typical'])}")
        parts.append(
            f'<rect x="{_t(sx(t[i]) - colw / 2)}" y="{top}" width="{_t(colw)}" height="{_t(ph)}" '
            f'data-tip="{escape(chr(10).join(lines))}"/>'
        )
    parts.append("</g></svg>")
    return "".join(parts)


def _fmt_val(v: float) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not np.isfinite(v):
        return "–"
    if v == 0:
        return "0"
    if abs(v) >= 1e5 or abs(v) < 1e-3:  # noqa: PLR2004
        return f"{v:.3g}"
    return f"{v:.4g}"
