"""Static matplotlib figures of a run (for notebooks and papers).

Every function takes a run directory, an AnnData scored by :mod:`antigenscout.tl` (results in
``adata.uns``, scanpy's ``pl`` convention) or the matching DataFrame, and returns a
:class:`matplotlib.figure.Figure` built without :mod:`matplotlib.pyplot`, so no global
state, backend or style is touched; save it with ``fig.savefig("x.png")`` or ``.svg``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .. import _theme
from .._errors import InputError
from ..report._run import (
    RunData,
    as_run,
    curve_label,
    is_anndata,
    patient_matrix,
    risk_matrix,
    system_matrix,
)

if TYPE_CHECKING:
    from anndata import AnnData
    from matplotlib.axes import Axes
    from matplotlib.colors import Colormap
    from matplotlib.figure import Figure

__all__ = ["coverage_risk", "gate_scatter", "kinetics_curves", "patient_coverage", "risk_heatmap"]


def _mpl() -> Any:
    try:
        import matplotlib  # noqa: PLC0415
        from matplotlib.figure import Figure  # noqa: PLC0415
    except ImportError:  # pragma: no cover - matplotlib ships with scanpy
        msg = "antigenscout.pl needs matplotlib: pip install 'antigenscout[plot]' (or matplotlib)."
        raise InputError(msg) from None
    return matplotlib, Figure


def _cmap(kind: str) -> Colormap:
    from matplotlib.colors import LinearSegmentedColormap  # noqa: PLC0415

    if kind == "risk":
        return LinearSegmentedColormap.from_list("asc_risk", list(_theme.RISK_RAMP))
    return LinearSegmentedColormap.from_list("asc_cov", list(_theme.COVERAGE_RAMP))


def _frame(
    data: Any, name: str, what: str, *, include: Sequence[str] = ()
) -> tuple[pd.DataFrame | None, RunData | None]:
    """Return ``(table, run)`` from a run directory, an AnnData, a RunData or the table itself.

    The AnnData is one scored by ``antigenscout.tl``; ``include``: targets an AnnData's risk
    table must hold.
    """
    if isinstance(data, pd.DataFrame):
        return data, None
    if isinstance(data, RunData | str | os.PathLike) or is_anndata(data):
        run = as_run(data, include=include)
    else:
        msg = (
            f"expected a run directory, an AnnData scored by antigenscout.tl or a {what} "
            f"DataFrame, got {type(data).__name__}."
        )
        raise InputError(msg)
    table = getattr(run, name)
    if table is None:
        where = "AnnData" if run.run_dir is None else f"run directory {str(run.run_dir)!r}"
        msg = f"the {where} has no {what}; run the command that writes it first."
        raise InputError(msg)
    return table, run


def _require(df: pd.DataFrame, cols: tuple[str, ...], what: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        msg = (
            f"the {what} table lacks the column(s) {missing}; pass a table written by antigenscout."
        )
        raise InputError(msg)


def _finish(fig: Figure, save: str | os.PathLike[str] | None, show: bool) -> Figure:
    """Write and display the figure as asked (scanpy's ``save=`` and ``show=``)."""
    if save is not None:
        fig.savefig(save, dpi=200, bbox_inches="tight")
    if show:
        try:
            from IPython.display import display  # noqa: PLC0415
        except ImportError:  # outside IPython there is no display to show it in
            from .._errors import warn  # noqa: PLC0415

            warn("show=True displays figures in Jupyter only; use save= to write it")
        else:
            display(fig)
    return fig


def _new_figure(figsize: tuple[float, float], ax: Axes | None) -> tuple[Figure, Axes]:
    _, Figure = _mpl()
    if ax is not None:
        return ax.figure, ax  # type: ignore[return-value]
    fig = Figure(figsize=figsize, layout="constrained")
    return fig, fig.add_subplot()


def _style_axes(ax: Axes) -> None:
    """Give ``ax`` the theme's grid, frame, tick, label and title colours and sizes."""
    ax.grid(color=_theme.GRID, lw=0.8)
    for spine in ax.spines.values():
        spine.set_edgecolor(_theme.FRAME)
    ax.tick_params(colors=_theme.AXIS_TEXT, labelsize=_theme.points(_theme.SIZE_TICK))
    for label in (ax.xaxis.label, ax.yaxis.label):
        label.set_color(_theme.AXIS_TEXT)
        label.set_fontsize(_theme.points(_theme.SIZE_AXIS_LABEL))
    ax.title.set_color(_theme.TEXT)
    ax.title.set_fontsize(_theme.points(_theme.SIZE_TITLE))


def _risk_axes(ax: Axes, y: np.ndarray, ylabel: str) -> None:
    """Limit, tick and label a coverage-vs-risk scatter as the report's SVG scatter is."""
    ymax = np.nanmax(y) if len(y) and np.isfinite(np.nanmax(y)) else 1.0
    top = _theme.risk_axis_top(float(ymax))
    ax.set_xlim(0, 1)
    ax.set_ylim(0, top)
    ax.set_xticks(_theme.nice_ticks(0, 1))
    ax.set_yticks(_theme.nice_ticks(0, top))
    ax.set_ylabel(ylabel)
    _style_axes(ax)


def _point_label(ax: Axes, text: str, x: float, y: float) -> None:
    """Label the point ``(x, y)`` in the theme's bold point-label font."""
    ax.annotate(
        text,
        (x, y),
        xytext=(4, 4),
        textcoords="offset points",
        fontsize=_theme.points(_theme.SIZE_POINT_LABEL),
        fontweight="bold",
        color=_theme.TEXT,
    )


def _heatmap_labels(ax: Axes, mat: pd.DataFrame) -> None:
    """Label a heatmap's rows and columns as the report's SVG heatmaps are."""
    size = _theme.points(_theme.SIZE_CELL_LABEL)
    ax.set_xticks(range(mat.shape[1]), [str(c) for c in mat.columns], rotation=60, ha="right")
    ax.set_yticks(range(mat.shape[0]), [str(i) for i in mat.index])
    ax.tick_params(length=0, labelsize=size, colors=_theme.TEXT)


def _heatmap_title(ax: Axes) -> None:
    """Give a heatmap's title the theme's colour and size."""
    ax.title.set_color(_theme.TEXT)
    ax.title.set_fontsize(_theme.points(_theme.SIZE_TITLE))


def coverage_risk(  # noqa: PLR0913
    data: str | os.PathLike[str] | pd.DataFrame | RunData | AnnData,
    *,
    n_labels: int = 10,
    risk: str | None = None,
    ax: Axes | None = None,
    figsize: tuple[float, float] = (6.5, 4.8),
    save: str | os.PathLike[str] | None = None,
    show: bool = False,
) -> Figure:
    """Tumour coverage against vital healthy risk, Pareto front highlighted.

    Parameters
    ----------
    data
        A run directory, an AnnData scored by :func:`antigenscout.tl.score_targets`, or a
        ``targets.tsv`` DataFrame.
    n_labels
        Label this many best-ranked candidates (and the Pareto front, up to 10).
    risk
        Column for the y axis; default ``vital_risk``, else ``worst_healthy_risk``.
    ax
        Draw into this Axes instead of a new figure.
    figsize
        Size of a new figure in inches.
    save
        Also write the figure to this file (format from its suffix, 200 dpi), as scanpy's
        ``save=``.
    show
        Also display it (in a Jupyter notebook); the figure is returned either way.

    Returns
    -------
    The figure.

    Examples
    --------
    >>> fig = asc.pl.coverage_risk("runs/demo")  # doctest: +SKIP
    >>> fig.savefig("coverage_risk.png", dpi=200)  # doctest: +SKIP
    """
    t, _ = _frame(data, "targets", "targets.tsv")
    assert t is not None
    if risk is None:
        risk = next(
            (c for c in ("vital_risk", "worst_healthy_risk") if c in t.columns), "vital_risk"
        )
    _require(t, ("target", "tumor_coverage", risk), "targets")
    if "rank" in t.columns:
        t = t.sort_values("rank", kind="stable")
    fig, ax = _new_figure(figsize, ax)
    x = t["tumor_coverage"].to_numpy(float)
    y = t[risk].to_numpy(float)
    front = (
        (t["pareto_rank"] == 1).to_numpy() if "pareto_rank" in t.columns else np.zeros(len(t), bool)
    )
    ax.axvspan(
        _theme.SWEET_SPOT_COVERAGE,
        1.0,
        ymax=_theme.SWEET_SPOT_RISK_FRACTION,
        color=_theme.SWEET_SPOT,
        zorder=0,
        lw=0,
    )
    ax.scatter(
        x[~front],
        y[~front],
        s=10,
        c=_theme.OTHER,
        alpha=_theme.OTHER_ALPHA,
        lw=0,
        label="candidates",
        clip_on=False,
    )
    if front.any():
        order = np.argsort(x[front])
        fx, fy = x[front][order], y[front][order]
        ax.step(fx, fy, where="post", color=_theme.FRONT, lw=1.2, ls="--", alpha=0.8)
        ax.scatter(
            fx,
            fy,
            s=36,
            c=_theme.FRONT,
            edgecolors=_theme.BACKGROUND,
            lw=0.6,
            zorder=3,
            label="Pareto front",
            clip_on=False,
        )
    names = t["target"].astype(str).to_numpy()
    lab = list(range(min(n_labels, len(t)))) + list(np.flatnonzero(front)[:10])
    for i in dict.fromkeys(int(k) for k in lab):
        if np.isfinite(x[i]) and np.isfinite(y[i]):
            _point_label(ax, names[i], x[i], y[i])
    ax.set_xlabel(_theme.COVERAGE_AXIS_LABEL)
    _risk_axes(ax, y, _theme.risk_axis_label(risk))
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncols=2, fontsize=8, frameon=False)
    return _finish(fig, save, show)


def risk_heatmap(  # noqa: PLR0913
    data: str | os.PathLike[str] | pd.DataFrame | RunData | AnnData,
    *,
    targets: list[str] | None = None,
    n_top: int = 20,
    level: str = "context",
    max_contexts: int = 45,
    min_risk: float = 0.02,
    figsize: tuple[float, float] | None = None,
    ax: Axes | None = None,
    save: str | os.PathLike[str] | None = None,
    show: bool = False,
) -> Figure:
    """Healthy risk of the top candidates per healthy context, grouped by anatomical system.

    Parameters
    ----------
    data
        A run directory, an AnnData scored by :func:`antigenscout.tl.score_targets`, or a
        ``risk.tsv`` DataFrame (long format).
    targets
        Columns in display order; default the ``n_top`` best-ranked (run directory) or the
        first ``n_top`` targets of the table.
    n_top
        Number of candidates when ``targets`` is not given.
    level
        ``'context'`` (cell types and tissues, grouped by system) or ``'system'`` (maximum per
        anatomical system).
    max_contexts, min_risk
        Keep at most ``max_contexts`` contexts whose risk reaches ``min_risk`` for a shown target.
    figsize
        Figure size in inches; default from the matrix shape (ignored with ``ax``).
    ax
        Draw into this matplotlib axes (its figure gets the colour bar) instead of a new
        figure, as scanpy's ``ax=``.
    save
        Also write the figure to this file (format from its suffix, 200 dpi), as scanpy's
        ``save=``.
    show
        Also display it (in a Jupyter notebook); the figure is returned either way.

    Returns
    -------
    The figure.
    """
    if level not in {"context", "system"}:
        msg = f"The 'level' parameter of risk_heatmap must be 'context' or 'system'. Got {level!r}."
        raise InputError(msg)
    r, run = _frame(data, "risk", "risk.tsv", include=targets or ())
    assert r is not None
    _require(r, ("target", "name", "risk"), "risk")
    if targets is None:
        order = (
            run.target_order() if run is not None else list(dict.fromkeys(r["target"].astype(str)))
        )
        targets = order[:n_top]
    if level == "system":
        mat = system_matrix(r, targets)
        groups = None
    else:
        mat, groups = risk_matrix(r, targets, max_contexts=max_contexts, min_risk=min_risk)
    if mat.empty:
        msg = f"no healthy context reaches risk {min_risk} for the chosen targets; lower min_risk."
        raise InputError(msg)
    n_r, n_c = mat.shape
    if figsize is None:
        figsize = (2.8 + 0.32 * n_c + (1.4 if groups is not None else 0), 1.4 + 0.22 * n_r)
    fig, ax = _new_figure(figsize, ax)
    im = ax.imshow(
        mat.to_numpy(float),
        cmap=_cmap("risk"),
        vmin=0,
        vmax=1,
        aspect="auto",
        interpolation="nearest",
    )
    _heatmap_labels(ax, mat)
    ax.set_xticks(np.arange(-0.5, n_c), minor=True)
    ax.set_yticks(np.arange(-0.5, n_r), minor=True)
    ax.grid(which="minor", color=_theme.BACKGROUND, lw=0.8)
    ax.tick_params(which="minor", length=0)
    if groups is not None:
        g = groups.to_numpy()
        starts = [0] + [k for k in range(1, n_r) if g[k] != g[k - 1]]
        ends = [*starts[1:], n_r]
        for s, e in zip(starts, ends, strict=True):
            if s:
                ax.axhline(s - 0.5, color=_theme.GROUP_RULE, lw=1.2)
            ax.annotate(
                g[s],
                xy=(1, (s + e - 1) / 2),
                xycoords=("axes fraction", "data"),
                xytext=(0.6, 0),
                textcoords="offset fontsize",
                ha="left",
                va="center",
                fontsize=_theme.points(_theme.SIZE_CELL_LABEL),
                fontweight="bold",
                color=_theme.GROUP_TEXT,
            )
    fig.colorbar(im, ax=ax, shrink=0.6, label=_theme.RISK_SCALE_LABEL, location="bottom")
    ax.set_title(f"healthy risk by {'anatomical system' if level == 'system' else 'context'}")
    _heatmap_title(ax)
    return _finish(fig, save, show)


def patient_coverage(  # noqa: PLR0913
    data: str | os.PathLike[str] | pd.DataFrame | RunData | AnnData,
    *,
    targets: list[str] | None = None,
    n_top: int = 20,
    annotate: bool | None = None,
    figsize: tuple[float, float] | None = None,
    ax: Axes | None = None,
    save: str | os.PathLike[str] | None = None,
    show: bool = False,
) -> Figure:
    """Per-patient tumour coverage of the top candidates (targets × patients heatmap).

    Parameters
    ----------
    data
        A run directory, an AnnData scored by :func:`antigenscout.tl.score_targets`, or a
        ``patient_coverage.tsv`` DataFrame (index = target).
    targets
        Rows in display order; default the ``n_top`` best-ranked.
    n_top
        Number of candidates when ``targets`` is not given.
    annotate
        Write the values in the cells; default when there are at most 20 patients.
    figsize
        Figure size in inches; default from the matrix shape (ignored with ``ax``).
    ax
        Draw into this matplotlib axes (its figure gets the colour bar) instead of a new
        figure, as scanpy's ``ax=``.
    save
        Also write the figure to this file (format from its suffix, 200 dpi), as scanpy's
        ``save=``.
    show
        Also display it (in a Jupyter notebook); the figure is returned either way.

    Returns
    -------
    The figure.
    """
    pc, run = _frame(data, "patient_coverage", "patient_coverage.tsv")
    assert pc is not None
    if "target" in pc.columns:
        pc = pc.set_index("target")
    if targets is None:
        order = run.target_order() if run is not None else list(pc.index.astype(str))
        targets = order[:n_top]
    mat = patient_matrix(pc, targets)
    if mat.empty:
        msg = "none of the requested targets is in the patient-coverage table; check the names."
        raise InputError(msg)
    n_r, n_c = mat.shape
    if annotate is None:
        annotate = n_c <= 20  # noqa: PLR2004
    if figsize is None:
        figsize = (2.0 + 0.38 * n_c, 1.2 + 0.26 * n_r)
    fig, ax = _new_figure(figsize, ax)
    vals = mat.to_numpy(float)
    im = ax.imshow(
        vals, cmap=_cmap("coverage"), vmin=0, vmax=1, aspect="auto", interpolation="nearest"
    )
    _heatmap_labels(ax, mat)
    if annotate:
        for i in range(n_r):
            for j in range(n_c):
                v = vals[i, j]
                if np.isfinite(v) and v >= _theme.ANNOTATE_MIN:
                    ax.text(
                        j,
                        i,
                        f"{v:.2f}".lstrip("0"),
                        ha="center",
                        va="center",
                        fontsize=_theme.points(_theme.SIZE_CELL_VALUE),
                        color=_theme.ink(_theme.ramp(v, _theme.COVERAGE_RAMP)),
                    )
    fig.colorbar(im, ax=ax, shrink=0.7, label=_theme.COVERAGE_SCALE_LABEL)
    ax.set_xlabel("patient", color=_theme.AXIS_TEXT)
    ax.set_title("coverage per patient")
    _heatmap_title(ax)
    return _finish(fig, save, show)


def gate_scatter(  # noqa: PLR0913
    data: str | os.PathLike[str] | pd.DataFrame | RunData | AnnData,
    *,
    n_labels: int = 8,
    ax: Axes | None = None,
    figsize: tuple[float, float] = (6.5, 4.8),
    save: str | os.PathLike[str] | None = None,
    show: bool = False,
) -> Figure:
    """Tumour coverage against worst healthy risk for logic gates (``gates.tsv``).

    Gates whose risk is a Fréchet upper bound (``risk_is_bound``) are drawn hollow.

    Parameters
    ----------
    data
        A run directory, an AnnData searched by :func:`antigenscout.tl.search_gates`, or a
        ``gates.tsv`` DataFrame.
    n_labels
        Label this many best-ranked gates.
    ax
        Draw into this Axes instead of a new figure.
    figsize
        Size of a new figure in inches.
    save
        Also write the figure to this file (format from its suffix, 200 dpi), as scanpy's
        ``save=``.
    show
        Also display it (in a Jupyter notebook); the figure is returned either way.

    Returns
    -------
    The figure.
    """
    g, _ = _frame(data, "gates", "gates.tsv")
    assert g is not None
    _require(g, ("gate", "tumor_coverage", "worst_healthy_risk"), "gates")
    if "rank" in g.columns:
        g = g.sort_values("rank", kind="stable")
    fig, ax = _new_figure(figsize, ax)
    x = g["tumor_coverage"].to_numpy(float)
    y = g["worst_healthy_risk"].to_numpy(float)
    front = (
        g["pareto"].astype(str).str.lower().isin(["true", "1"]).to_numpy()
        if "pareto" in g.columns
        else np.zeros(len(g), bool)
    )
    bound = (
        g["risk_is_bound"].astype(str).str.lower().isin(["true", "1"]).to_numpy()
        if "risk_is_bound" in g.columns
        else np.zeros(len(g), bool)
    )
    colour = np.where(front, _theme.FRONT, _theme.OTHER)
    for mask, face, lab in ((~bound, True, "exact risk"), (bound, False, "risk is an upper bound")):
        if mask.any():
            ax.scatter(
                x[mask],
                y[mask],
                s=30,
                edgecolors=colour[mask],
                facecolors=colour[mask] if face else "none",
                lw=1.2,
                label=lab,
                clip_on=False,
            )
    names = g["gate"].astype(str).to_numpy()
    for i in range(min(n_labels, len(g))):
        _point_label(ax, names[i], x[i], y[i])
    ax.set_xlabel(_theme.COVERAGE_AXIS_LABEL)
    ax.set_title("logic gates (orange = Pareto front)")
    _risk_axes(ax, y, _theme.risk_axis_label("worst_healthy_risk"))
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    return _finish(fig, save, show)


def kinetics_curves(  # noqa: PLR0913
    data: str | os.PathLike[str] | pd.DataFrame | RunData | AnnData,
    *,
    quantities: list[str] | None = None,
    log: bool | None = None,
    ncols: int = 3,
    figsize: tuple[float, float] | None = None,
    ax: Axes | Sequence[Axes] | None = None,
    save: str | os.PathLike[str] | None = None,
    show: bool = False,
) -> Figure:
    """Plot simulated curves: cohort median with a 5–95 % band (typical patient dashed).

    Parameters
    ----------
    data
        A run directory of ``antigenscout simulate``, or a ``curves.tsv`` DataFrame.
    quantities
        Which quantities to draw (one panel each); default all.
    log
        Logarithmic y axes; default per panel when the values span more than 3 decades.
    ncols
        Panels per row.
    figsize
        Figure size in inches; default from the number of panels (ignored with ``ax``).
    ax
        Draw into these matplotlib axes instead of a new figure: one axes per quantity, in
        the order of ``quantities`` (a single axes when one quantity is drawn), as scanpy's
        multi-panel plots take them.
    save
        Also write the figure to this file (format from its suffix, 200 dpi), as scanpy's
        ``save=``.
    show
        Also display it (in a Jupyter notebook); the figure is returned either way.

    Returns
    -------
    The figure.
    """
    cv, run = _frame(data, "curves", "curves.tsv")
    assert cv is not None
    _require(cv, ("time_days", "quantity", "p50"), "curves")
    names = list(dict.fromkeys(cv["quantity"].astype(str)))
    if quantities is not None:
        unknown = [q for q in quantities if q not in names]
        if unknown:
            msg = f"unknown quantities {unknown}; the curves table has {names}."
            raise InputError(msg)
        names = list(quantities)
    n = len(names)
    if n == 0:
        msg = "the curves table is empty; re-run 'antigenscout simulate'."
        raise InputError(msg)
    ncols = max(1, min(ncols, n))
    nrows = -(-n // ncols)
    if ax is None:
        _, Figure = _mpl()
        fig = Figure(figsize=figsize or (3.6 * ncols, 2.8 * nrows), layout="constrained")
        grid = fig.subplots(nrows, ncols, squeeze=False)
        panels = [grid[k // ncols][k % ncols] for k in range(nrows * ncols)]
    else:
        panels = list(np.ravel(np.asarray(ax, dtype=object)))
        if len(panels) != n:
            msg = (
                f"ax= gives {len(panels)} axes for {n} quantities ({', '.join(names)}); give "
                "one axes per quantity, or choose them with quantities="
            )
            raise InputError(msg)
        fig = panels[0].figure
    for k, name in enumerate(names):
        ax = panels[k]
        sub = cv[cv["quantity"].astype(str) == name].sort_values("time_days")
        t = sub["time_days"].to_numpy(float)
        if "p05" in sub.columns and "p95" in sub.columns:
            ax.fill_between(
                t,
                sub["p05"].to_numpy(float),
                sub["p95"].to_numpy(float),
                color=_theme.BAND,
                alpha=_theme.BAND_ALPHA,
                lw=0,
                label="5–95 %",
            )
        ax.plot(t, sub["p50"].to_numpy(float), color=_theme.MEDIAN, lw=1.8, label="median")
        if "typical" in sub.columns:
            ax.plot(
                t,
                sub["typical"].to_numpy(float),
                color=_theme.TYPICAL,
                lw=1,
                ls="--",
                label="typical",
            )
        vals = sub[[c for c in ("p05", "p50", "p95", "typical") if c in sub.columns]]
        use_log = log if log is not None else _theme.log_axis(vals.to_numpy(float))
        if use_log:
            ax.set_yscale("log")
        lab = curve_label(run if run is not None else RunData(), name)
        ax.set_title(lab.title)
        ax.set_ylabel(lab.ylabel)
        ax.set_xlabel(_theme.TIME_AXIS_LABEL)
        _style_axes(ax)
    for spare in panels[n:]:
        spare.set_visible(False)
    panels[0].legend(fontsize=7, frameon=False)
    return _finish(fig, save, show)
