"""Cohort simulation, per-patient endpoints, cohort summaries and output files."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .._errors import InputError
from ..io._write import prepare_out_dir, write_json, write_table
from . import _kernels as K
from ._models import ModelSpec, atol_vector, build_ode_cohort, get_model
from ._params import MRD_THRESHOLD, PRODUCTS
from ._scenario import Scenario, same_indication
from ._stein import stein_auc, stein_concentration, stein_sample, stein_typical

__all__ = ["SimulationResult", "output_grid", "simulate", "write_simulation"]

#: Healthy cells count as depleted below this fraction of their baseline.
DEPLETION_THRESHOLD = 0.5
_PCTS = (5.0, 50.0, 95.0)
_F32_MAX = float(np.finfo(np.float32).max)
#: Reported tumour burden is capped at this multiple of baseline. Kimmel 2021's tumour grows
#: exponentially; over a year a non-responder's burden would reach 1e38 x baseline, whereas a
#: 100-fold rise over a presenting burden of 1e10-1e12 cells already exceeds ~1e12 cells
#: (~1 kg, Del Monte 2009 Cell Cycle 8:505), a burden incompatible with life. The model's
#: dynamics are unchanged; only curves and endpoints are capped, and the day is reported.
BURDEN_CAP_FOLD = 100.0
#: Months at which molecular responses are read (day = months / 12 x 365, on the grid).
RESPONSE_MONTHS = (12, 24, 36, 48, 60)
_KEY_DAYS = (
    7.0,
    14.0,
    28.0,
    30.0,
    60.0,
    90.0,
    180.0,
    250.0,
    *(m / 12 * 365.0 for m in RESPONSE_MONTHS),
)
#: BCR-ABL response levels (ratio, as a fraction): major molecular response (0.1 % IS),
#: MR4 (0.01 %) and MR4.5 (0.0032 %) (European LeukemiaNet definitions).
MOLECULAR_RESPONSE = {"mmr": 1e-3, "mr4": 1e-4, "mr45": 3.2e-5}


@dataclass
class SimulationResult:
    """Outcome of :func:`simulate`.

    Attributes
    ----------
    model
        Model name.
    cohort
        One row per virtual patient: sampled parameters and endpoints.
    summary
        Cohort summary (medians, 5th/95th percentiles, fractions, definitions, settings).
    curves
        Tidy table ``time_days, quantity, p05, p50, p95, typical``.
    """

    model: str
    cohort: pd.DataFrame
    summary: dict[str, object]
    curves: pd.DataFrame
    scenario: Scenario | None = None
    settings: dict[str, object] = field(default_factory=dict)


def output_grid(days: float, extra: tuple[float, ...] = ()) -> np.ndarray:
    """Output times: 0.1 d to day 30, 0.5 d to day 60, then daily, plus key days."""
    parts = [
        np.arange(0.0, min(days, 30.0) + 1e-9, 0.1),
        np.arange(30.0, min(days, 60.0) + 1e-9, 0.5),
        np.arange(60.0, days + 1e-9, 1.0),
        np.array([d for d in (*_KEY_DAYS, *extra, days) if 0.0 <= d <= days]),
    ]
    return np.unique(np.round(np.concatenate(parts), 9))


# ---- endpoint helpers ----------------------------------------------------------------


def _peak(t: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Peak value and time per row, refined by the parabola through the top three points."""
    j = np.argmax(y, axis=1)
    rows = np.arange(y.shape[0])
    cmax = y[rows, j].copy()
    tmax = t[j].copy()
    inner = (j > 0) & (j < len(t) - 1)
    if inner.any():
        r = rows[inner]
        jj = j[inner]
        t0, t1, t2 = t[jj - 1], t[jj], t[jj + 1]
        y0, y1, y2 = y[r, jj - 1], y[r, jj], y[r, jj + 1]
        d0 = (y1 - y0) / (t1 - t0)
        d1 = (y2 - y1) / (t2 - t1)
        a = (d1 - d0) / (t2 - t0)
        with np.errstate(divide="ignore", invalid="ignore"):
            tv = 0.5 * (t0 + t1) - d0 / (2.0 * a)
        ok = (a < 0) & (tv > t0) & (tv < t2)
        # parabola in Newton form: y0 + d0*(t - t0) + a*(t - t0)*(t - t1)
        yv = y0 + d0 * (tv - t0) + a * (tv - t0) * (tv - t1)
        cmax[inner] = np.where(ok, yv, y1)
        tmax[inner] = np.where(ok, tv, t1)
    return cmax, tmax


def _crossing(  # noqa: PLR0913, PLR0917
    t: np.ndarray, lo: np.ndarray, hi: np.ndarray, ylo: np.ndarray, yhi: np.ndarray, thr: float
) -> np.ndarray:
    """Time at which a curve passes ``thr`` between two grid points (log-linear when possible)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        pos = (ylo > 0) & (yhi > 0)
        frac_log = (np.log(thr) - np.log(ylo)) / (np.log(yhi) - np.log(ylo))
        frac_lin = (thr - ylo) / (yhi - ylo)
        frac = np.where(pos, frac_log, frac_lin)
    frac = np.clip(np.nan_to_num(frac, nan=1.0), 0.0, 1.0)
    return lo + frac * (hi - lo)


def _first_cross(
    t: np.ndarray, y: np.ndarray, thr: float, below: bool, start: np.ndarray
) -> np.ndarray:
    """First time at or after grid index ``start`` that ``y`` goes below (or reaches) ``thr``."""
    n, nt = y.shape
    idx = np.arange(nt)[None, :]
    hit = (y < thr) if below else (y >= thr)
    hit &= idx >= start[:, None]
    anyhit = hit.any(axis=1)
    j = np.argmax(hit, axis=1)
    out = np.full(n, np.nan)
    rows = np.nonzero(anyhit)[0]
    if rows.size:
        jj = j[rows]
        at_start = jj == start[rows]
        prev = np.maximum(jj - 1, 0)
        tc = _crossing(t, t[prev], t[jj], y[rows, prev], y[rows, jj], thr)
        out[rows] = np.where(at_start, t[jj], tc)
    return out


def _time_below(t: np.ndarray, y: np.ndarray, thr: float) -> np.ndarray:
    """Total time each row spends below ``thr`` (linear interpolation at crossings)."""
    a, b = y[:, :-1], y[:, 1:]
    dt = np.diff(t)[None, :]
    both = (a < thr) & (b < thr)
    cross = (a < thr) != (b < thr)
    with np.errstate(divide="ignore", invalid="ignore"):
        f = (thr - a) / (b - a)
    part = np.where(a < thr, f, 1.0 - f)
    return (dt * both).sum(axis=1) + np.where(cross, part * dt, 0.0).sum(axis=1)


def _at(t: np.ndarray, y: np.ndarray, day: float) -> np.ndarray:
    j = np.searchsorted(t, day)
    if j >= len(t) or abs(t[j] - day) > 1e-9:  # noqa: PLR2004
        return np.full(y.shape[0], np.nan)
    return y[:, j]


def _flag(value: np.ndarray, known: np.ndarray) -> pd.arrays.BooleanArray:
    """Return a yes/no endpoint, missing where ``known`` is false (cohort.tsv: True/False/empty)."""
    out = pd.array(np.asarray(value, dtype=bool), dtype="boolean")
    out[~np.asarray(known, dtype=bool)] = pd.NA
    return out


def ode_endpoints(spec: ModelSpec, t: np.ndarray, obs: np.ndarray, hpos: float) -> pd.DataFrame:  # noqa: PLR0915
    """Per-patient endpoints from observables on the output grid (``obs``: P × T × N_OBS)."""
    n = obs.shape[0]
    out: dict[str, np.ndarray] = {}
    if spec.car_t:
        c = obs[:, :, K.O_C]
        cmax, tmax = _peak(t, c)
        out["cmax"] = cmax
        out["tmax_days"] = tmax
        out["auc_0_28"] = _at(t, obs[:, :, K.O_AUC], 28.0)
        for d in (7.0, 14.0, 28.0, 90.0):
            out[f"car_t_day{int(d)}"] = _at(t, c, d)
    tum = obs[:, :, K.O_TUMOUR]
    base = tum[:, :1]
    rel = tum / base
    nadir_j = np.argmin(rel, axis=1)
    out["tumour_nadir"] = rel[np.arange(n), nadir_j]
    out["tumour_nadir_day"] = t[nadir_j]
    out["tumour_extinct"] = (tum == 0.0).any(axis=1)
    zero = np.zeros(n, dtype=int)
    rem_day = _first_cross(t, rel, MRD_THRESHOLD, True, zero)
    out["remission"] = ~np.isnan(rem_day)
    out["remission_day"] = rem_day
    rem_j = np.where(np.isnan(rem_day), len(t), np.searchsorted(t, np.nan_to_num(rem_day, nan=0.0)))
    relapse = _first_cross(t, rel, MRD_THRESHOLD, False, np.minimum(rem_j, len(t) - 1))
    relapse[np.isnan(rem_day)] = np.nan
    out["time_to_relapse_days"] = relapse
    # among patients in remission by day 365 (a later remission cannot relapse within it)
    out["relapse_1y"] = _flag(relapse <= 365.0, (rem_day <= 365.0) & (t[-1] >= 365.0))  # noqa: PLR2004
    # what came back: the antigen-negative share of the burden on the day of relapse
    rel_j = np.searchsorted(t, np.nan_to_num(relapse, nan=t[-1]))
    rel_j = np.minimum(rel_j, len(t) - 1)
    neg_at = obs[np.arange(n), rel_j, K.O_TUMOUR_NEG]
    tum_at = tum[np.arange(n), rel_j]
    with np.errstate(divide="ignore", invalid="ignore"):
        neg_share = np.where(tum_at > 0, neg_at / tum_at, np.nan)
    out["relapse_antigen_negative"] = _flag(neg_share > 0.5, ~np.isnan(relapse))  # noqa: PLR2004
    out["burden_cap_day"] = _first_cross(t, rel, BURDEN_CAP_FOLD, False, zero)
    neg = obs[:, -1, K.O_TUMOUR_NEG]
    with np.errstate(divide="ignore", invalid="ignore"):
        out["antigen_negative_fraction_end"] = np.where(tum[:, -1] > 0, neg / tum[:, -1], np.nan)
    r365 = _at(t, rel, 365.0)
    out["remission_1y"] = _flag((r365 < MRD_THRESHOLD) & out["remission"], ~np.isnan(r365))
    if spec.tumour == "hierarchy":
        stem = obs[:, :, K.O_STEM]
        out["stem_fraction_end"] = stem[:, -1] / stem[:, 0]
        out["stem_extinct"] = stem[:, -1] == 0.0
        y3 = obs[:, :, K.O_TERMINAL]
        x3 = obs[:, :, K.O_X3]
        ratio = y3 / (y3 + 2.0 * x3)
        out["bcr_abl_ratio_end"] = ratio[:, -1]
        # cumulative: reached at any time up to a day (as the trials report MMR "by" a month)
        best_so_far = np.fmin.accumulate(ratio, axis=1)
        for months in RESPONSE_MONTHS:
            day = months / 12 * 365.0
            r = _at(t, ratio, day)
            if np.isnan(r).all():
                continue
            out[f"bcr_abl_ratio_{months}m"] = r
            for name, thr in MOLECULAR_RESPONSE.items():
                out[f"{name}_{months}m"] = r <= thr
            out[f"mmr_by_{months}m"] = _at(t, best_so_far, day) <= MOLECULAR_RESPONSE["mmr"]
        with np.errstate(divide="ignore", invalid="ignore"):
            lr = np.log(ratio)
            # Tang 2011 windows: first (differentiated-cell) and second (progenitor) phase
            out["bcr_abl_slope1_per_day"] = (_at(t, lr, 60.0) - _at(t, lr, 30.0)) / 30.0
            out["bcr_abl_slope2_per_day"] = (_at(t, lr, 365.0) - _at(t, lr, 250.0)) / 115.0
    if hpos > 0:
        h = obs[:, :, K.O_HEALTHY] / obs[:, :1, K.O_HEALTHY]
        out["healthy_nadir"] = h.min(axis=1)
        out["healthy_fraction_day30"] = _at(t, h, 30.0)
        out["healthy_depleted_day30"] = out["healthy_fraction_day30"] < DEPLETION_THRESHOLD
        out["healthy_depletion_days"] = _time_below(t, h, DEPLETION_THRESHOLD)
        dep = _first_cross(t, h, DEPLETION_THRESHOLD, True, zero)
        dep_j = np.where(np.isnan(dep), len(t) - 1, np.searchsorted(t, np.nan_to_num(dep)))
        rec = _first_cross(t, h, DEPLETION_THRESHOLD, False, np.minimum(dep_j, len(t) - 1))
        rec[np.isnan(dep)] = np.nan
        out["healthy_recovery_day"] = rec
        h365 = _at(t, h, 365.0)
        out["healthy_recovered_1y"] = _flag(h365 >= DEPLETION_THRESHOLD, ~np.isnan(h365))
    return pd.DataFrame(out)


# ---- summaries and curves ------------------------------------------------------------


def _band(x: pd.Series) -> dict[str, float]:
    v = pd.to_numeric(x, errors="coerce").to_numpy(dtype=float)
    v = v[~np.isnan(v)]
    if v.size == 0:
        return {"median": math.nan, "p05": math.nan, "p95": math.nan, "n": 0}
    p05, p50, p95 = np.percentile(v, _PCTS)
    return {"median": float(p50), "p05": float(p05), "p95": float(p95), "n": int(v.size)}


def _share(x: pd.Series) -> float:
    """Mean of a yes/no (or numeric) column over its known values; NaN when none is known."""
    v = pd.to_numeric(x, errors="coerce").astype("Float64").dropna()
    return float(v.mean()) if len(v) else math.nan


def _summarise(cohort: pd.DataFrame) -> dict[str, object]:
    s: dict[str, object] = {"n_patients": len(cohort)}
    for col in (
        "cmax",
        "tmax_days",
        "auc_0_28",
        "car_t_day7",
        "car_t_day14",
        "car_t_day28",
        "car_t_day90",
        "tumour_nadir",
        "time_to_relapse_days",
        "healthy_depletion_days",
        "healthy_recovery_day",
        "stem_fraction_end",
        "bcr_abl_ratio_end",
        *(f"bcr_abl_ratio_{m}m" for m in RESPONSE_MONTHS),
        "bcr_abl_slope1_per_day",
        "bcr_abl_slope2_per_day",
    ):
        if col in cohort:
            s[col] = _band(cohort[col])
    for col, key in (
        ("healthy_depleted_day30", "healthy_depleted_fraction_day30"),
        ("healthy_recovered_1y", "healthy_recovered_fraction_1y"),
        ("remission", "remission_fraction"),
        ("remission_1y", "remission_fraction_1y"),
        ("tumour_extinct", "tumour_extinct_fraction"),
        ("stem_extinct", "stem_extinct_fraction"),
        *(
            (f"{name}_{m}m", f"{name}_fraction_{m}m")
            for m in RESPONSE_MONTHS
            for name in MOLECULAR_RESPONSE
        ),
        *((f"mmr_by_{m}m", f"mmr_cumulative_fraction_{m}m") for m in RESPONSE_MONTHS),
    ):
        if col in cohort:
            s[key] = _share(cohort[col])
    if "time_to_relapse_days" in cohort:
        rel = cohort["time_to_relapse_days"].notna()
        s["relapse_fraction"] = float(rel.mean())
        s["relapse_among_remitters_1y"] = _share(cohort["relapse_1y"])
        s["antigen_negative_relapse_fraction"] = _share(cohort["relapse_antigen_negative"][rel])
    for col in ("bcr_abl_slope1_per_day", "bcr_abl_slope2_per_day"):
        if col in cohort:
            v = pd.to_numeric(cohort[col], errors="coerce").dropna()
            s[col]["mean"] = float(v.mean())  # type: ignore[index]
            s[col]["sd"] = float(v.std())  # type: ignore[index]
    return s


def _units(spec: ModelSpec) -> dict[str, str]:
    """Return the unit of every summary / curve quantity of a model ("-": dimensionless)."""
    car = "copies/ug" if spec.car_kinetics in (None, "stein") else "cells/uL"
    car_long = "transgene copies/ug genomic DNA" if car == "copies/ug" else "CAR-T cells/uL blood"
    u = {
        "n_patients": "patients",
        "cmax": car_long,
        "tmax_days": "day",
        "auc_0_28": f"{car} x day",
        "car_t": car_long,
        "normal_t": "cells/uL blood",
        "time_days": "day",
        "tumour_nadir": "fraction of baseline burden (0-1)",
        "tumour_burden": "fold of baseline burden (capped at 100)",
        "time_to_relapse_days": "day",
        "healthy_depletion_days": "days",
        "healthy_recovery_day": "day",
        "healthy_fraction": "fraction of baseline (0-1)",
        "stem_fraction_end": "fold of baseline",
        "stem_fraction": "fold of baseline",
        "bcr_abl_ratio": "fraction (0-1)",
        "bcr_abl_ratio_end": "fraction (0-1)",
        **{f"bcr_abl_ratio_{m}m": "fraction (0-1)" for m in RESPONSE_MONTHS},
        "bcr_abl_slope1_per_day": "1/day",
        "bcr_abl_slope2_per_day": "1/day",
        **{f"car_t_day{d}": car_long for d in (7, 14, 28, 90, 180, 365)},
    }
    for key in (
        "healthy_depleted_fraction_day30",
        "healthy_recovered_fraction_1y",
        "remission_fraction",
        "remission_fraction_1y",
        "tumour_extinct_fraction",
        "stem_extinct_fraction",
        "relapse_fraction",
        *(f"{n}_fraction_{m}m" for m in RESPONSE_MONTHS for n in MOLECULAR_RESPONSE),
        *(f"mmr_cumulative_fraction_{m}m" for m in RESPONSE_MONTHS),
    ):
        u[key] = "fraction of patients"
    u["relapse_among_remitters_1y"] = "fraction of patients in remission"
    u["antigen_negative_relapse_fraction"] = "fraction of relapses"
    return u


#: A healthy context with this vital weight or more is flagged when it is depleted.
VITAL_FLAG_WEIGHT = 0.8


def _healthy_loss_warning(scenario: Scenario, cohort: pd.DataFrame) -> list[str]:
    """Flag loss of the simulated healthy compartment when it is vital or widely depleted."""
    if "healthy_nadir" not in cohort:
        return []
    lost = float((cohort["healthy_nadir"] < DEPLETION_THRESHOLD).mean())
    if lost == 0.0:
        return []
    w = scenario.healthy_vital_weight
    name = scenario.healthy_cell_type
    if w is not None and w >= VITAL_FLAG_WEIGHT:
        return [
            f"{name} (vital weight {w:g}) falls below {DEPLETION_THRESHOLD:g} of baseline in "
            f"{lost:.0%} of patients: on-target, off-tumour loss of a vital cell type."
        ]
    return []


def _curve_rows(t: np.ndarray, name: str, values: np.ndarray, typical: np.ndarray) -> pd.DataFrame:
    with np.errstate(invalid="ignore"):
        p05, p50, p95 = np.nanpercentile(values, _PCTS, axis=0)
    return pd.DataFrame(
        {"time_days": t, "quantity": name, "p05": p05, "p50": p50, "p95": p95, "typical": typical}
    )


def _ode_quantities(spec: ModelSpec, obs: np.ndarray, hpos: float) -> dict[str, np.ndarray]:
    q: dict[str, np.ndarray] = {}
    if spec.car_t:
        q["car_t"] = obs[:, :, K.O_C]
        if spec.car_kinetics == "kimmel":
            q["normal_t"] = obs[:, :, K.O_N]
    tum = obs[:, :, K.O_TUMOUR]
    q["tumour_burden"] = np.minimum(tum / tum[:, :1], BURDEN_CAP_FOLD)
    if spec.tumour == "hierarchy":
        stem = obs[:, :, K.O_STEM]
        q["stem_fraction"] = stem / stem[:, :1]
        y3 = obs[:, :, K.O_TERMINAL]
        q["bcr_abl_ratio"] = y3 / (y3 + 2.0 * obs[:, :, K.O_X3])
    if hpos > 0:
        q["healthy_fraction"] = obs[:, :, K.O_HEALTHY] / obs[:, :1, K.O_HEALTHY]
    return q


# ---- public entry point --------------------------------------------------------------


def _check_int(name: str, value: object, lo: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < lo:
        msg = f"{name} must be an integer >= {lo}. Got {value!r}."
        raise InputError(msg)
    return int(value)


def simulate(  # noqa: PLR0912, PLR0913, PLR0915
    model: str,
    *,
    n_patients: int = 200,
    seed: int = 0,
    typical: bool = False,
    days: float = 365,
    scenario: Scenario | None = None,
    with_inhibitor: bool | None = None,
    inhibitor_stop_day: float | None = None,
    product: str = "autologous-car-t",
    allow_other_indication: bool = False,
    rtol: float = 1e-6,
    chunk_size: int = 1000,
    progress: Callable[[int, int], None] | None = None,
) -> SimulationResult:
    """Simulate a therapy over a virtual cohort.

    Parameters
    ----------
    model
        Name from :func:`models` (``stein2019``, ``kimmel2021``, ``michor2005``,
        ``cart-leukaemia``, ``cart-cml``).
    n_patients
        Number of virtual patients (ignored when ``typical``).
    seed
        Seed of the parameter sampling; the result is deterministic given the seed.
    typical
        Simulate only the typical patient (published typical parameter values).
    days
        Simulated time span in days.
    scenario
        Target coverages (``cart-*`` models only); see :func:`scenario_from_run`.
    with_inhibitor
        Give the imatinib-like inhibitor (hierarchy models); ``None`` uses the model
        default (on for ``michor2005``, off for ``cart-cml``).
    inhibitor_stop_day
        Day the inhibitor is stopped (``None``: given throughout).
    product
        Cell-therapy product (``cart-*`` models): ``autologous-car-t`` (default),
        ``allogeneic-car-t`` (host rejection) or ``car-nk`` (no persistent phase); see
        ``_params.PRODUCTS`` for values and sources.
    allow_other_indication
        Simulate a scenario whose ranking was run on another disease than the model's
        (recorded as a warning); by default that is refused.
    rtol
        Relative tolerance of the adaptive integrator.
    chunk_size
        Patients integrated per call of the parallel kernel (bounds memory).
    progress
        Called as ``progress(done, total)`` after each chunk.

    Returns
    -------
    :class:`SimulationResult` with ``cohort`` (row per patient), ``summary`` and ``curves``.

    Examples
    --------
    >>> from antigenscout import kinetics
    >>> res = kinetics.simulate("stein2019", typical=True, days=28)
    >>> round(res.summary["cmax"]["median"])
    24000
    """
    spec = get_model(model)
    n = 1 if typical else _check_int("n_patients", n_patients, 1)
    seed = _check_int("seed", seed, 0)
    if not isinstance(days, int | float) or not math.isfinite(days) or days < 28:  # noqa: PLR2004
        msg = f"days must be a number >= 28 (the AUC window). Got {days!r}."
        raise InputError(msg, param="days")
    days = float(days)
    if scenario is not None and not spec.takes_scenario:
        msg = (
            f"model {model!r} takes no scenario; use 'cart-leukaemia' or 'cart-cml' to "
            "simulate a target's coverage."
        )
        raise InputError(msg, param="model")
    if scenario is None and spec.takes_scenario:
        if spec.default_scenario is None:
            msg = (
                f"model {model!r} needs a scenario: pass scenario=Scenario(...) or "
                "scenario_from_run(run_dir, target) (CLI: --from DIR --target NAME)."
            )
            raise InputError(msg)
        scenario = spec.default_scenario
    if with_inhibitor is None:
        with_inhibitor = spec.default_inhibitor
    if with_inhibitor and spec.tumour != "hierarchy":
        msg = f"model {model!r} has no kinase-inhibitor arm; use 'cart-cml' or 'michor2005'."
        raise InputError(msg)
    if inhibitor_stop_day is not None and not (
        isinstance(inhibitor_stop_day, int | float) and 0 < inhibitor_stop_day <= days
    ):
        msg = f"inhibitor_stop_day must be in (0, days]. Got {inhibitor_stop_day!r}."
        raise InputError(msg, param="inhibitor_stop_day")
    if not (0 < rtol < 1e-2):  # noqa: PLR2004
        msg = f"rtol must be in (0, 0.01). Got {rtol!r}."
        raise InputError(msg, param="rtol")
    chunk_size = _check_int("chunk_size", chunk_size, 1)
    if product not in PRODUCTS:
        msg = f"unknown product {product!r}; choose one of {sorted(PRODUCTS)}."
        raise InputError(msg)
    if product != "autologous-car-t" and not spec.takes_scenario:
        msg = (
            f"product {product!r} applies to the cart-leukaemia and cart-cml models; "
            f"model {model!r} is a published autologous fit as is."
        )
        raise InputError(msg, param="product")
    warnings: list[str] = []
    if scenario is not None:
        warnings.extend(scenario.warnings)
        if scenario.indication is not None and spec.indication is not None:
            if not same_indication(scenario.indication, spec.indication):
                if not allow_other_indication:
                    msg = (
                        f"the ranking in {scenario.source!r} is {scenario.indication} data but "
                        f"{model!r} models {spec.indication}; rank {spec.indication} tumour "
                        "cells, or pass allow_other_indication=True (CLI: "
                        "--allow-other-indication) to carry the coverages over anyway."
                    )
                    raise InputError(msg)
                warnings.append(
                    f"the ranking is {scenario.indication} data but {model!r} models "
                    f"{spec.indication}: coverages were carried over as they are."
                )
        elif (
            scenario.source is not None
            and Path(scenario.source).is_dir()
            and spec.indication is not None
        ):
            warnings.append(
                f"the indication of the ranking in {scenario.source!r} is not recorded; "
                f"{model!r} assumes its coverages were measured on {spec.indication} cells."
            )

    rng = np.random.default_rng(seed)
    extra = () if inhibitor_stop_day is None else (float(inhibitor_stop_day),)
    t = output_grid(days, extra)
    # curves: every 0.5 d to day 30, then daily
    half = np.abs(t * 2 - np.round(t * 2)) < 1e-9  # noqa: PLR2004
    whole = np.abs(t - np.round(t)) < 1e-9  # noqa: PLR2004
    curve_idx = np.nonzero(whole | ((t <= 30.0 + 1e-9) & half))[0]
    settings: dict[str, object] = {
        "model": model,
        "n_patients": n,
        "seed": seed,
        "typical": typical,
        "days": days,
        "with_inhibitor": bool(with_inhibitor),
        "inhibitor_stop_day": inhibitor_stop_day,
        "product": product,
        "rtol": rtol,
    }

    if spec.kind == "analytic":
        cohort, curves = _run_stein(rng, n, typical, t, curve_idx)
    else:
        cohort, curves = _run_ode(
            spec,
            rng,
            n,
            typical,
            t,
            curve_idx,
            scenario,
            bool(with_inhibitor),
            inhibitor_stop_day,
            product,
            rtol,
            chunk_size,
            progress,
        )
    summary = _summarise(cohort)
    summary["settings"] = settings
    summary["reference"] = spec.reference
    summary["definitions"] = _definitions(spec)
    quantities = set(curves["quantity"]) | set(summary) | set(cohort.columns)
    summary["units"] = {k: v for k, v in _units(spec).items() if k in quantities}
    if spec.takes_scenario:
        summary["product"] = {"name": product, **PRODUCTS[product]}
    if scenario is not None:
        summary["scenario"] = scenario.as_dict()
        warnings.extend(_healthy_loss_warning(scenario, cohort))
    summary["warnings"] = warnings
    cohort.insert(0, "patient", np.arange(len(cohort)))
    return SimulationResult(model, cohort, summary, curves, scenario, settings)


def _definitions(spec: ModelSpec) -> dict[str, str]:
    d: dict[str, str] = {
        "cmax": "peak CAR-T level (parabola through the top 3 points of a 0.1-day grid; "
        "closed form for stein2019)",
        "auc_0_28": "integral of the CAR-T level from day 0 to 28",
    }
    if spec.tumour != "none":
        d |= {
            "tumour_nadir": "minimum tumour burden as a fraction of baseline",
            "remission": f"burden below {MRD_THRESHOLD:g} of baseline (MRD < 0.01 %, = MR4 in CML)",
            "burden_cap_day": f"first day the burden reaches {BURDEN_CAP_FOLD:g} x baseline "
            "(reported curves are capped there; NaN: never)",
            "time_to_relapse_days": "first day after remission at which burden is back at "
            f">= {MRD_THRESHOLD:g} of baseline (NaN: no remission, or no relapse in the horizon)",
            "remission_1y": "in remission and burden below the threshold at day 365",
            "relapse_among_remitters_1y": "patients whose relapse (as time_to_relapse_days) "
            "came by day 365 / patients in remission by day 365 (days from infusion)",
            "antigen_negative_relapse_fraction": "relapses in which antigen-negative cells make "
            "up more than half of the burden on the day of relapse / all relapses in the "
            "horizon (NaN: no relapse)",
            "tumour_extinct": "every tumour sub-population fell below one cell (absorbing)",
        }
    if spec.tumour == "hierarchy":
        d |= {
            "bcr_abl_ratio": "Y3 / (Y3 + 2 X3): leukaemic over all terminal cells' BCR transcripts",
            "mmr_fraction_<m>m": "BCR-ABL ratio <= 0.1 % on day m / 12 x 365 (point prevalence; "
            "mr4 <= 0.01 %, mr45 <= 0.0032 %)",
            "mmr_cumulative_fraction_<m>m": "BCR-ABL ratio <= 0.1 % on any day up to m / 12 x "
            "365 (cumulative incidence, as IRIS and ENESTnd report MMR 'by' a month)",
            "stem_fraction_end": "leukaemic stem cells at the end / at baseline",
        }
    if spec.takes_scenario:
        d |= {
            "healthy_depleted_day30": "healthy cell type below "
            f"{DEPLETION_THRESHOLD:g} of baseline at day 30",
            "healthy_depletion_days": f"total days below {DEPLETION_THRESHOLD:g} of baseline",
            "healthy_recovery_day": "first day after depletion back at >= "
            f"{DEPLETION_THRESHOLD:g} of baseline",
        }
    return d


def _run_stein(
    rng: np.random.Generator, n: int, typical: bool, t: np.ndarray, curve_idx: np.ndarray
) -> tuple[pd.DataFrame, pd.DataFrame]:
    p = stein_typical() if typical else stein_sample(n, rng)
    tp = stein_typical()
    conc = stein_concentration(p, t[curve_idx])
    tconc = stein_concentration(tp, t[curve_idx])[0]
    rho = np.log(p["foldx"]) / p["tmax"]
    cohort = pd.DataFrame(
        {
            **{k: v for k, v in p.items()},
            "cmax": p["cmax"],
            "tmax_days": p["tmax"],
            "auc_0_28": stein_auc(p, 28.0),
            "doubling_time_days": np.log(2.0) / rho,
            "half_life_fast_days": np.log(2.0) / p["alpha"],
            "half_life_slow_days": np.log(2.0) / p["beta"],
            **{
                f"car_t_day{d}": stein_concentration(p, np.array([float(d)]))[:, 0]
                for d in (28, 90, 180, 365)
                if d <= t[-1]
            },
        }
    )
    curves = _curve_rows(t[curve_idx], "car_t", conc, tconc)
    return cohort, curves


def _run_ode(  # noqa: PLR0913, PLR0917
    spec: ModelSpec,
    rng: np.random.Generator,
    n: int,
    typical: bool,
    t: np.ndarray,
    curve_idx: np.ndarray,
    scenario: Scenario | None,
    inhibitor: bool,
    stop: float | None,
    product: str,
    rtol: float,
    chunk_size: int,
    progress: Callable[[int, int], None] | None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    hpos = 0.0 if scenario is None else scenario.healthy_positive_fraction
    kw = {"inhibitor": inhibitor, "inhibitor_stop_day": stop, "product": product}
    p, y0, sampled = build_ode_cohort(spec, n, None if typical else rng, scenario, **kw)
    pt, yt, _ = build_ode_cohort(spec, 1, None, scenario, **kw)
    atol = atol_vector(spec)
    obs_t, _ = integrate(y0=yt, params=pt, t=t, rtol=rtol, atol=atol)
    typ = {k: v[0, curve_idx] for k, v in _ode_quantities(spec, obs_t, hpos).items()}
    frames: list[pd.DataFrame] = []
    curve_store: dict[str, np.ndarray] = {}
    steps_all = np.zeros(n, dtype=np.int64)
    for start in range(0, n, chunk_size):
        stop_i = min(n, start + chunk_size)
        obs, steps = integrate(
            y0=y0[start:stop_i], params=p[start:stop_i], t=t, rtol=rtol, atol=atol
        )
        steps_all[start:stop_i] = steps
        ep = ode_endpoints(spec, t, obs, hpos)
        if spec.car_kinetics == "stein":
            # Stein's peak is a kink at Tmax: take it from the closed form, not the grid
            ep["cmax"], ep["tmax_days"] = _stein_peak(p[start:stop_i])
        frames.append(ep)
        for k, v in _ode_quantities(spec, obs, hpos).items():
            if k not in curve_store:
                curve_store[k] = np.empty((n, curve_idx.size), dtype=np.float32)
            # Kimmel's tumour grows without bound; clip to the float32 range for storage.
            curve_store[k][start:stop_i] = np.clip(v[:, curve_idx], -_F32_MAX, _F32_MAX)
        if progress is not None:
            progress(stop_i, n)
    cohort = pd.concat(
        [sampled.reset_index(drop=True), pd.concat(frames, ignore_index=True)], axis=1
    )
    cohort["solver_steps"] = steps_all
    curves = pd.concat(
        [_curve_rows(t[curve_idx], k, v.astype(float), typ[k]) for k, v in curve_store.items()],
        ignore_index=True,
    )
    return cohort, curves


def _stein_peak(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact CAR-T peak and its day with Stein kinetics (expansion stops at Tmax).

    With a clearance ``k`` from day ``t_rej`` on, the level rises at ``rho - k`` after
    ``t_rej``; if that is negative the peak moves to ``t_rej``.
    """
    tmax = p[:, K.P_S_TMAX]
    rho = p[:, K.P_S_RHO]
    k = p[:, K.P_REJ_RATE]
    t_rej = p[:, K.P_REJ_DAY]
    early = (k > 0) & (t_rej < tmax) & (rho < k)
    tpk = np.where(early, t_rej, tmax)
    level = p[:, K.P_S_CMAX] * np.exp(rho * (tpk - tmax))
    level = level * np.exp(-np.where(k > 0, k * np.maximum(tpk - t_rej, 0.0), 0.0))
    return level, tpk


def integrate(
    *, y0: np.ndarray, params: np.ndarray, t: np.ndarray, rtol: float, atol: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Integrate all patient rows on the output grid ``t``: (observables P×T×N_OBS, steps)."""
    y0 = np.ascontiguousarray(y0, dtype=np.float64)
    params = np.ascontiguousarray(params, dtype=np.float64)
    obs = np.empty((y0.shape[0], t.size, K.N_OBS))
    steps = np.zeros(y0.shape[0], dtype=np.int64)
    K.integrate_cohort(
        y0, params, np.ascontiguousarray(t, dtype=np.float64), rtol, atol, obs, steps
    )
    return obs, steps


def write_simulation(result: SimulationResult, out_dir: str | os.PathLike[str]) -> list[Path]:
    """Write ``cohort.tsv``, ``summary.json`` and ``curves.tsv`` into ``out_dir`` (atomic).

    Returns
    -------
    The written paths.
    """
    out = prepare_out_dir(out_dir)
    return [
        write_table(result.cohort, out / "cohort.tsv"),
        write_json(out / "summary.json", {"model": result.model, **result.summary}),
        write_table(result.curves, out / "curves.tsv"),
    ]
