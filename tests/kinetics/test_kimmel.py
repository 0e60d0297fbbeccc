"""Kimmel 2021: right-hand side vs the BioModels SBML, published medians, and the cohort
integrator vs scipy's solve_ivp."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from scipy.integrate import solve_ivp

from antigenscout.kinetics import _kernels as K
from antigenscout.kinetics import simulate
from antigenscout.kinetics._models import atol_vector, build_ode_cohort, get_model
from antigenscout.kinetics._simulate import integrate, output_grid

MML = "{http://www.w3.org/1998/Math/MathML}"
SBML = "{http://www.sbml.org/sbml/level2/version4}"


class _SbmlModel:
    """Minimal MathML evaluator for the Kimmel SBML (xml.etree only)."""

    def __init__(self, path):
        root = ET.parse(path).getroot()
        model = root.find(f"{SBML}model")
        self.funcs = {}
        for fd in model.iter(f"{SBML}functionDefinition"):
            lam = fd.find(f"{MML}math/{MML}lambda")
            bvars = [b.find(f"{MML}ci").text.strip() for b in lam.findall(f"{MML}bvar")]
            body = next(c for c in lam if c.tag != f"{MML}bvar")
            self.funcs[fd.get("id")] = (bvars, body)
        self.params = {p.get("id"): float(p.get("value")) for p in model.iter(f"{SBML}parameter")}
        self.species = {
            s.get("id"): float(s.get("initialConcentration")) for s in model.iter(f"{SBML}species")
        }
        self.rules = {
            r.get("variable"): r.find(f"{MML}math")[0] for r in model.iter(f"{SBML}assignmentRule")
        }
        self.compartments = {
            c.get("id"): float(c.get("size")) for c in model.iter(f"{SBML}compartment")
        }
        self.reactions = []
        for r in model.iter(f"{SBML}reaction"):
            reactants = [
                s.get("species") for s in r.findall(f"{SBML}listOfReactants/{SBML}speciesReference")
            ]
            products = [
                s.get("species") for s in r.findall(f"{SBML}listOfProducts/{SBML}speciesReference")
            ]
            law = r.find(f"{SBML}kineticLaw/{MML}math")[0]
            self.reactions.append((reactants, products, law))

    def _eval(self, node, env):  # noqa: PLR0911
        tag = node.tag.removeprefix(MML)
        if tag == "ci":
            return env[node.text.strip()]
        if tag == "cn":
            return float(node.text)
        if tag != "apply":
            raise ValueError(tag)
        op, *args = list(node)
        name = op.tag.removeprefix(MML)
        vals = [self._eval(a, env) for a in args]
        if name == "ci":
            bvars, body = self.funcs[op.text.strip()]
            return self._eval(body, dict(zip(bvars, vals, strict=True)))
        if name == "times":
            return math.prod(vals)
        if name == "plus":
            return sum(vals)
        if name == "minus":
            return -vals[0] if len(vals) == 1 else vals[0] - vals[1]
        if name == "divide":
            return vals[0] / vals[1]
        if name == "power":
            return vals[0] ** vals[1]
        if name == "ln":
            return math.log(vals[0])
        raise ValueError(name)

    def rhs(self, state):
        env = {**self.params, **self.compartments, **state}
        for var in ("Total_lymphocyte_count", "r_C"):
            env[var] = self._eval(self.rules[var], env)
        d = dict.fromkeys(state, 0.0)
        for reactants, products, law in self.reactions:
            v = self._eval(law, env)
            for s in reactants:
                d[s] -= v
            for s in products:
                d[s] += v
        return d


@pytest.fixture(scope="module")
def sbml(shared_data):
    return _SbmlModel(shared_data / "kinetics" / "BIOMD0000001041.xml")


def test_rhs_matches_sbml(sbml):
    spec = get_model("kimmel2021")
    p, y0, _ = build_ode_cohort(spec, 1, None, None, inhibitor=False, inhibitor_stop_day=None)
    p = p[0]
    p[K.P_LEVEL + 12] = sbml.params["r_B"]
    # initial values agree with the SBML
    assert y0[0, K.S_N] == sbml.species["Normal_T_cells"]
    assert y0[0, K.S_C] == sbml.species["CAR_T_cells"]
    assert y0[0, K.S_L + 6] == sbml.species["Antigen_presenting_tumour_cells"]
    for n, c, b in [
        (6.0, 0.36, 94.86),
        (40.0, 25.0, 10.0),
        (300.0, 2.1, 1e-3),
        (520.0, 0.01, 50.0),
    ]:
        y = np.zeros(K.N_STATES)
        y[K.S_N], y[K.S_C], y[K.S_L + 6] = n, c, b
        dy = np.zeros(K.N_STATES)
        K.rhs(0.0, y, p, True, False, dy)
        ref = sbml.rhs(
            {"Normal_T_cells": n, "CAR_T_cells": c, "Antigen_presenting_tumour_cells": b}
        )
        assert dy[K.S_N] == pytest.approx(ref["Normal_T_cells"], rel=1e-12)
        assert dy[K.S_C] == pytest.approx(ref["CAR_T_cells"], rel=1e-12)
        assert dy[K.S_L + 6] == pytest.approx(ref["Antigen_presenting_tumour_cells"], rel=1e-12)


def test_typical_and_cohort_medians_match_zuma1():
    # Kimmel 2021 (Moffitt ZUMA-1 sub-cohort) medians, cells/uL: 27.5, 9.1, 2.1 at d7/14/28.
    published = {7: 27.5, 14: 9.1, 28: 2.1}
    typ = simulate("kimmel2021", typical=True).cohort.iloc[0]
    cohort = simulate("kimmel2021", n_patients=300, seed=1).summary
    for day, med in published.items():
        assert 1 / 1.5 < typ[f"car_t_day{day}"] / med < 1.5
        assert 1 / 1.5 < cohort[f"car_t_day{day}"]["median"] / med < 1.5
    # the local LSODA check in kinetics-literature.md: peak 30.1 at day 7.0
    assert typ["cmax"] == pytest.approx(30.1, rel=0.01)
    assert typ["tmax_days"] == pytest.approx(7.0, abs=0.1)


def _ref_solve(p, y0, t, atol):
    """Per-patient solve_ivp with the same RHS, split at the AUC window and extinction events."""
    ext = p[K.P_EXT]
    out = np.empty((t.size, K.N_STATES))
    y = y0.copy()
    t0 = 0.0
    for seg_end in (28.0, t[-1]):
        auc_on = seg_end <= 28.0
        while t0 < seg_end:
            live = [j for j in range(K.S_L, K.S_L + 8) if y[j] > 0]
            events = []
            for j in live:
                ev = lambda _t, yy, j=j: yy[j] - ext  # noqa: E731
                ev.terminal = True
                ev.direction = -1
                events.append(ev)

            def f(_t, yy, auc_on=auc_on):
                dy = np.empty_like(yy)
                K.rhs(_t, yy, p, auc_on, False, dy)
                return dy

            sol = solve_ivp(
                f,
                (t0, seg_end),
                y,
                method="RK45",
                rtol=1e-9,
                atol=atol * 1e-2,
                dense_output=True,
                events=events or None,
            )
            mask = (t >= t0) & (t <= sol.t[-1])
            out[mask] = sol.sol(t[mask]).T
            y = sol.y[:, -1].copy()
            t0 = sol.t[-1]
            if sol.status == 1:
                for j in live:
                    if y[j] <= ext * (1 + 1e-6):
                        y[j] = 0.0
    return out


@pytest.mark.parametrize("model", ["cart-leukaemia", "kimmel2021"])
def test_cohort_integrator_matches_solve_ivp(model):
    spec = get_model(model)
    from antigenscout.kinetics import Scenario

    sc = Scenario(
        "X", tumour_coverage=0.999, healthy_cell_type="B cell", healthy_positive_fraction=0.9
    )
    p, y0, _ = build_ode_cohort(
        spec, 4, np.random.default_rng(5), sc, inhibitor=False, inhibitor_stop_day=None
    )
    t = output_grid(200.0)
    # CAR-T level: the state C (Kimmel) or Stein's closed form evaluated at t
    car = K.S_C
    atol = atol_vector(spec)
    obs, _ = integrate(y0=y0, params=p, t=t, rtol=1e-8, atol=atol)
    for i in range(4):
        ref = _ref_solve(p[i], y0[i], t, atol)
        if spec.car_kinetics == "kimmel":
            np.testing.assert_allclose(obs[i, :, K.O_C], ref[:, car], rtol=1e-5)
        np.testing.assert_allclose(obs[i, :, K.O_AUC], ref[:, K.S_AUC], rtol=1e-5)
        h = ref[:, K.S_HP] + ref[:, K.S_HN]
        np.testing.assert_allclose(obs[i, :, K.O_HEALTHY], h, rtol=1e-5)
        tum = ref[:, K.S_L : K.S_L + 8].sum(axis=1)
        big = tum > 1e-6  # well above one cell (1e-9 mL)
        np.testing.assert_allclose(obs[i, big, K.O_TUMOUR], tum[big], rtol=1e-4)
