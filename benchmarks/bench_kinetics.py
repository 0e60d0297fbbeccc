"""Cohort kinetics benchmark: 10,000 virtual patients x 1 year of the mechanistic model
(``cart-leukaemia``: Stein 2019 CAR-T kinetics in closed form + Kimmel 2021 killing of an
antigen +/- B-ALL tumour and healthy B cells) in one process,
against a per-patient ``scipy.integrate.solve_ivp`` loop on a subset, scaled up.

Run: ``python benchmarks/bench_kinetics.py [--patients 10000] [--subset 100]``
"""

from __future__ import annotations

import argparse
import os
import resource
import time
import tracemalloc

import numpy as np
from scipy.integrate import solve_ivp

from antigenscout.kinetics import _kernels as K
from antigenscout.kinetics import simulate
from antigenscout.kinetics._models import atol_vector, build_ode_cohort, get_model
from antigenscout.kinetics._simulate import _stein_peak, ode_endpoints, output_grid

ENDPOINTS = (
    "cmax",
    "tmax_days",
    "auc_0_28",
    "car_t_day28",
    "car_t_day90",
    "remission_day",
    "time_to_relapse_days",
    "healthy_fraction_day30",
    "healthy_depletion_days",
    "healthy_recovery_day",
)
FLAGS = ("remission", "remission_1y", "tumour_extinct", "healthy_depleted_day30")


def solve_one(p: np.ndarray, y0: np.ndarray, t: np.ndarray, method: str, rtol: float) -> np.ndarray:
    """One patient with solve_ivp: split at day 28 (AUC window), extinction as terminal events."""
    atol = atol_vector(get_model("cart-leukaemia"))
    ext = p[K.P_EXT]
    obs = np.empty((t.size, K.N_OBS))
    y = y0.copy()
    t0 = 0.0
    for seg_end in (28.0, t[-1]):
        auc_on = seg_end <= 28.0

        def f(_t: float, yy: np.ndarray, auc_on: bool = auc_on) -> np.ndarray:
            dy = np.empty_like(yy)
            K.rhs(_t, yy, p, auc_on, False, dy)
            return dy

        while t0 < seg_end:
            live = [j for j in range(K.S_L, K.S_L + 8) if y[j] > 0]
            events = []
            for j in live:

                def ev(_t: float, yy: np.ndarray, j: int = j) -> float:
                    return yy[j] - ext

                ev.terminal = True  # type: ignore[attr-defined]
                ev.direction = -1  # type: ignore[attr-defined]
                events.append(ev)
            sol = solve_ivp(
                f,
                (t0, seg_end),
                y,
                method=method,
                rtol=rtol,
                atol=atol,
                dense_output=True,
                events=events or None,
            )
            mask = (t >= t0) & (t <= sol.t[-1])
            for i in np.nonzero(mask)[0]:
                K._observe(t[i], sol.sol(t[i]), p, obs[i])
            y = sol.y[:, -1].copy()
            t0 = sol.t[-1]
            if sol.status == 1:
                y[[j for j in live if y[j] <= ext * (1 + 1e-6)]] = 0.0
    return obs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--patients", type=int, default=10_000)
    ap.add_argument("--subset", type=int, default=100)
    ap.add_argument("--method", default="LSODA")
    args = ap.parse_args()
    spec = get_model("cart-leukaemia")
    print(
        f"CPU cores available: {len(os.sched_getaffinity(0))}; numba threads: "
        f"{__import__('numba').get_num_threads()}"
    )

    t0 = time.perf_counter()
    simulate("cart-leukaemia", n_patients=8, seed=1)  # JIT warm-up (cached after first run)
    print(f"warm-up (JIT load/compile): {time.perf_counter() - t0:.2f} s")

    tracemalloc.start()
    t0 = time.perf_counter()
    res = simulate("cart-leukaemia", n_patients=args.patients, seed=0)
    t_vec = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    steps = res.cohort["solver_steps"]
    print(
        f"vectorised cohort: {args.patients} patients x 365 d in {t_vec:.2f} s "
        f"({args.patients / t_vec:,.0f} patients/s; median {steps.median():.0f} steps/patient)"
    )
    print(f"peak memory: {peak / 2**20:.0f} MiB traced (numpy), {rss:.0f} MiB max RSS")

    # Reference: per-patient solve_ivp on the first `subset` patients of the same cohort.
    rng = np.random.default_rng(0)
    p, y0, _ = build_ode_cohort(
        spec, args.patients, rng, spec.default_scenario, inhibitor=False, inhibitor_stop_day=None
    )
    t = output_grid(365.0)
    n = args.subset
    t0 = time.perf_counter()
    obs = np.stack([solve_one(p[i], y0[i], t, args.method, 1e-6) for i in range(n)])
    t_ref = time.perf_counter() - t0
    ref = ode_endpoints(spec, t, obs, 1.0)
    # Stein's peak is a kink at Tmax: both sides take it from the closed form
    ref["cmax"], ref["tmax_days"] = _stein_peak(p[:n])
    scaled = t_ref / n * args.patients
    print(
        f"solve_ivp loop ({args.method}, rtol 1e-6): {n} patients in {t_ref:.2f} s "
        f"-> {scaled:.1f} s scaled to {args.patients}"
    )
    print(f"speed ratio: {scaled / t_vec:.1f}x")

    mine = res.cohort.iloc[:n].reset_index(drop=True)
    worst = 0.0
    for col in ENDPOINTS:
        a = mine[col].to_numpy(dtype=float)
        b = ref[col].to_numpy(dtype=float)
        both = ~np.isnan(a) & ~np.isnan(b)
        assert (np.isnan(a) == np.isnan(b)).all(), col
        dev = np.max(np.abs(a[both] - b[both]) / np.maximum(np.abs(b[both]), 1e-300), initial=0.0)
        worst = max(worst, dev)
        print(f"  {col:24s} max relative deviation {dev:.2e} (n={both.sum()})")
    for col in FLAGS:
        agree = (mine[col].to_numpy(dtype=float) == ref[col].to_numpy(dtype=float)).mean()
        print(f"  {col:24s} agreement {agree:.3f}")
    print(f"worst relative deviation: {worst:.2e} ({'PASS' if worst < 1e-3 else 'FAIL'} < 1e-3)")


if __name__ == "__main__":
    main()
