"""Numba kernels: the mechanistic right-hand side and a Dormand–Prince 5(4) integrator.

The integrator is adaptive per patient and runs over all patients in parallel.

State layout (one row per patient, :data:`N_STATES` columns)::

    0 N      normal T cells (cells/uL)            Kimmel 2021 (unused with Stein kinetics)
    1 C      CAR-T cells (cells/uL)               Kimmel 2021 (unused with Stein kinetics)
    2 AUC    integral of C over [0, auc_end]      quadrature state
    3..10    tumour level k = 0..3 (stem, progenitor, differentiated, terminal/bulk),
             antigen-positive at 3 + 2k, antigen-negative at 4 + 2k
    11..13   normal haematopoiesis X1, X2, X3     Michor 2005 (X0 held at its set point)
    14, 15   healthy cell type, antigen-positive / antigen-negative, as fraction of baseline

CAR-T kinetics come in two modes (parameter ``P_MODE``): ``MODE_KIMMEL`` integrates Kimmel
2021's normal-T / CAR-T competition ODE (cells/uL); ``MODE_STEIN`` evaluates Stein 2019's
closed-form expansion / biexponential decline (transgene copies/ug) at the stage time, so the
CAR-T level is exact and only the cells it kills are integrated. Both modes take an extra
first-order clearance ``P_REJ_RATE`` from day ``P_REJ_DAY`` on (host rejection of an
allogeneic product, short-lived CAR-NK cells; 0 for autologous CAR-T).

Why an explicit method: every rate in these models is at most a few per day (largest:
CAR-T growth ~1.7/d, Michor d3 = 1/d, killing gamma_B = 1.15/d), so an explicit method's
stability limit (h of order 1 d) sits above the step that accuracy needs (0.1–0.5 d); the
system is not stiff and an implicit solver would only add Jacobian work.
"""

from __future__ import annotations

import math

import numba as nb
import numpy as np

# ---- parameter indices ---------------------------------------------------------------
P_KN, P_KC, P_RN, P_RHOC, P_A, P_B, P_GAMMA, P_KB = range(8)
P_LEVEL = 8  # level k: G (self-renewal), D (death), A (input from k-1), F (antigen+ share)
P_A1_TKI = 24
P_A2_TKI = 25
P_TKI_STOP = 26
P_SP, P_AX, P_BX, P_CX, P_DX1, P_DX2, P_DX3 = range(27, 34)
P_KH = 34
P_HPOS = 35
P_EXT = 36
P_AUC_END = 37
P_MODE = 38
P_S_RHO, P_S_TMAX, P_S_CMAX, P_S_ALPHA, P_S_FB, P_S_BETA = range(39, 45)
P_REJ_RATE = 45
P_REJ_DAY = 46
P_STEM_TKI = 47  # extra death of leukaemic stem cells (level 0) while the inhibitor is on (1/day)
N_PARAMS = 48

MODE_KIMMEL = 0.0
MODE_STEIN = 1.0

# ---- state indices -------------------------------------------------------------------
S_N, S_C, S_AUC = 0, 1, 2
S_L = 3
S_X1, S_X2, S_X3 = 11, 12, 13
S_HP, S_HN = 14, 15
N_STATES = 16

# ---- observables written on the output grid ------------------------------------------
O_C, O_N, O_TUMOUR, O_TUMOUR_NEG, O_HEALTHY, O_STEM, O_AUC, O_X3, O_TERMINAL = range(9)
N_OBS = 9

# Dormand–Prince 5(4) tableau (Dormand & Prince 1980; the one in scipy's RK45). Row 6 holds
# the 5th-order weights, so stage 7 is evaluated at the new state (FSAL).
_A = np.array(
    [
        [0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        [1 / 5, 0.0, 0.0, 0.0, 0.0, 0.0],
        [3 / 40, 9 / 40, 0.0, 0.0, 0.0, 0.0],
        [44 / 45, -56 / 15, 32 / 9, 0.0, 0.0, 0.0],
        [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729, 0.0, 0.0],
        [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656, 0.0],
        [35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
    ]
)
# stage nodes
_C = np.array([0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0])
# 5th minus embedded 4th order weights
_E = np.array(
    [
        71 / 57600,
        0.0,
        -71 / 16695,
        71 / 1920,
        -17253 / 339200,
        22 / 525,
        -1 / 40,
    ]
)


@nb.njit(cache=True)
def car_level(t: float, y: np.ndarray, p: np.ndarray) -> float:
    """CAR-T level at time ``t``: Stein closed form, or the Kimmel state ``C``."""
    if p[P_MODE] != MODE_STEIN:
        return y[S_C]
    s = t - p[P_S_TMAX]
    if s < 0.0:
        c = p[P_S_CMAX] * math.exp(p[P_S_RHO] * s)
    else:
        fb = p[P_S_FB]
        c = p[P_S_CMAX] * (
            (1.0 - fb) * math.exp(-p[P_S_ALPHA] * s) + fb * math.exp(-p[P_S_BETA] * s)
        )
    late = t - p[P_REJ_DAY]
    if p[P_REJ_RATE] > 0.0 and late > 0.0:
        c *= math.exp(-p[P_REJ_RATE] * late)
    return c


@nb.njit(cache=True)
def rhs(t: float, y: np.ndarray, p: np.ndarray, auc_on: bool, tki_on: bool, dy: np.ndarray) -> None:  # noqa: PLR0913, PLR0917
    """Right-hand side of the composite model for one patient at time ``t`` (writes ``dy``)."""
    c = car_level(t, y, p)
    if p[P_MODE] == MODE_STEIN:
        dy[S_N] = 0.0
        dy[S_C] = 0.0
    else:
        n = y[S_N]
        kn = p[P_KN]
        tot = n + c
        dev = (tot - kn) * (tot - kn)
        r_c = p[P_RHOC] + p[P_B] * dev / (p[P_A] * tot * tot + dev)
        dy[S_N] = -p[P_RN] * n * math.log(tot / kn)
        dy[S_C] = -r_c * c * math.log(tot / p[P_KC])
        if p[P_REJ_RATE] > 0.0 and t >= p[P_REJ_DAY]:
            dy[S_C] -= p[P_REJ_RATE] * c
    dy[S_AUC] = c if auc_on else 0.0
    kill = p[P_GAMMA] * c / (p[P_KB] + c)
    upstream = 0.0
    for k in range(4):
        base = P_LEVEL + 4 * k
        g = p[base]
        d = p[base + 1]
        a = p[base + 2]
        f = p[base + 3]
        if tki_on:
            if k == 0:
                d = d + p[P_STEM_TKI]
            elif k == 1:
                a = p[P_A1_TKI]
            elif k == 2:  # noqa: PLR2004
                a = p[P_A2_TKI]
        yp = y[S_L + 2 * k]
        yn = y[S_L + 2 * k + 1]
        inflow = a * upstream
        dy[S_L + 2 * k] = f * inflow + (g - d) * yp - kill * yp
        dy[S_L + 2 * k + 1] = (1.0 - f) * inflow + (g - d) * yn
        upstream = yp + yn
    dy[S_X1] = p[P_AX] * p[P_SP] - p[P_DX1] * y[S_X1]
    dy[S_X2] = p[P_BX] * y[S_X1] - p[P_DX2] * y[S_X2]
    dy[S_X3] = p[P_CX] * y[S_X2] - p[P_DX3] * y[S_X3]
    kh = p[P_KH]
    hp = p[P_HPOS]
    dy[S_HP] = kh * hp - kh * y[S_HP] - kill * y[S_HP]
    dy[S_HN] = kh * (1.0 - hp) - kh * y[S_HN]


@nb.njit(cache=True)
def _observe(t: float, y: np.ndarray, p: np.ndarray, out: np.ndarray) -> None:
    out[O_C] = car_level(t, y, p)
    out[O_N] = y[S_N]
    tum = 0.0
    neg = 0.0
    for k in range(4):
        tum += y[S_L + 2 * k] + y[S_L + 2 * k + 1]
        neg += y[S_L + 2 * k + 1]
    out[O_TUMOUR] = tum
    out[O_TUMOUR_NEG] = neg
    out[O_HEALTHY] = y[S_HP] + y[S_HN]
    out[O_STEM] = y[S_L] + y[S_L + 1]
    out[O_AUC] = y[S_AUC]
    out[O_X3] = y[S_X3]
    out[O_TERMINAL] = y[S_L + 6] + y[S_L + 7]


@nb.njit(cache=True)
def _clamp_extinct(y: np.ndarray, ext: float) -> bool:
    """Set tumour sub-populations below one cell to zero (absorbing extinction)."""
    changed = False
    for j in range(S_L, S_L + 8):
        if y[j] != 0.0 and y[j] < ext:
            y[j] = 0.0
            changed = True
    return changed


@nb.njit(cache=True)
def integrate_one(  # noqa: PLR0912, PLR0913, PLR0915, PLR0917
    y0: np.ndarray,
    p: np.ndarray,
    t_grid: np.ndarray,
    rtol: float,
    atol: np.ndarray,
    h0: float,
    obs: np.ndarray,
) -> int:
    """Integrate one patient over ``t_grid``, writing observables into ``obs`` (T, N_OBS).

    Returns the number of accepted steps. Steps never cross a grid point, so piecewise
    switches (AUC window, inhibitor stop) that sit on grid points are resolved exactly;
    which side of a switch a step is on is decided by the step's start time.
    """
    ns = y0.shape[0]
    y = y0.copy()
    ynew = np.empty(ns)
    ytmp = np.empty(ns)
    k = np.empty((7, ns))
    ext = p[P_EXT]
    _clamp_extinct(y, ext)
    _observe(t_grid[0], y, p, obs[0])
    t = t_grid[0]
    h = h0
    need_k1 = True
    accepted = 0
    last_auc = True
    last_tki = True
    for j in range(1, t_grid.shape[0]):
        t_end = t_grid[j]
        while t < t_end:
            auc_on = t < p[P_AUC_END]
            tki_on = t < p[P_TKI_STOP]
            if need_k1 or auc_on != last_auc or tki_on != last_tki:
                rhs(t, y, p, auc_on, tki_on, k[0])
                need_k1 = False
            last_auc = auc_on
            last_tki = tki_on
            clipped = False
            h_try = h
            if t + h_try >= t_end:
                h_try = t_end - t
                clipped = True
            for s in range(1, 7):
                for i in range(ns):
                    acc = 0.0
                    for m in range(s):
                        acc += _A[s, m] * k[m, i]
                    ytmp[i] = y[i] + h_try * acc
                if s < 6:  # noqa: PLR2004
                    rhs(t + _C[s] * h_try, ytmp, p, auc_on, tki_on, k[s])
                else:
                    for i in range(ns):
                        ynew[i] = ytmp[i]
                    rhs(t + h_try, ynew, p, auc_on, tki_on, k[6])
            err = 0.0
            for i in range(ns):
                e = 0.0
                for m in range(7):
                    e += _E[m] * k[m, i]
                sc = atol[i] + rtol * max(abs(y[i]), abs(ynew[i]))
                r = h_try * e / sc
                err += r * r
            err = math.sqrt(err / ns)
            if err <= 1.0 and not math.isnan(err):
                fac = 10.0 if err == 0.0 else min(10.0, 0.9 * err ** (-0.2))
                t = t_end if clipped else t + h_try
                for i in range(ns):
                    y[i] = ynew[i]
                    k[0, i] = k[6, i]
                if _clamp_extinct(y, ext):
                    need_k1 = True
                accepted += 1
                h_new = h_try * fac
                h = max(h, h_new) if clipped else h_new
            else:
                fac = 0.2 if math.isnan(err) else max(0.2, 0.9 * err ** (-0.2))
                h = h_try * fac
        _observe(t, y, p, obs[j])
    return accepted


@nb.njit(parallel=True, cache=True)
def integrate_cohort(  # noqa: PLR0913, PLR0917
    y0: np.ndarray,
    params: np.ndarray,
    t_grid: np.ndarray,
    rtol: float,
    atol: np.ndarray,
    obs: np.ndarray,
    steps: np.ndarray,
) -> None:
    """Integrate every patient row of ``y0``/``params`` in parallel (fills ``obs``, ``steps``)."""
    for i in nb.prange(y0.shape[0]):
        steps[i] = integrate_one(y0[i], params[i], t_grid, rtol, atol, 0.01, obs[i])
