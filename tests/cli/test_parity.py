"""Each command reaches its API function's parameters with the API's defaults and values.

For every command and the function it drives, each API parameter is either set by a CLI
option (listed in ``OPTIONS``: same default, and a ``click.Choice`` offers exactly the
``Literal`` values of the API's annotation) or listed in ``CLI_LESS`` with the reason the
command does not offer it. A new API parameter, a changed default or a value set that drifts
fails here.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

import click
import pytest

from antigenscout import atlas, kinetics, tl
from antigenscout._cli_options import cli_spelling
from antigenscout.atlas import DEFAULT_CHUNK_CELLS, DEFAULT_SAMPLE_CELLS
from antigenscout.cli import cli
from antigenscout.kinetics._models import MODELS
from antigenscout.kinetics._params import PRODUCTS
from antigenscout.pp import DEFAULT_THRESHOLD
from antigenscout.tl._gates import TRIPLE_BUDGET

_OBJ = "an object, not a value: the command builds it"
_PLUMBING = "plumbing of the Python API (progress callback, uns key, copy, sums returned)"
_DEMO = "fixed by the embedded demo data (demo takes no input); rank offers it"


def _same(x: Any) -> Any:
    return x


def _none_is(api_default: Any) -> Callable[[Any], Any]:
    """A CLI default of None that the command replaces by the API's default."""

    def convert(cli_default: Any) -> Any:
        return api_default if cli_default is None else cli_default

    return convert


# command path -> (API function, {API parameter: (CLI parameter, CLI value -> API value)},
#                  {API parameter: why the command does not offer it})
RANK_OPTIONS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "malignant_key": ("malignant_key", _same),
    "patient_key": ("patient_key", _same),
    "compartment_key": ("compartment_key", _same),
    "modality": ("modality", _same),
    "positivity": ("positivity", _same),
    "threshold": ("threshold", _same),
    "layer": ("layer", _same),  # applied by the reader of INPUT
    "kind": ("kind", lambda v: v.replace("-", "_")),  # applied by the reader of INPUT
    "patient_threshold": ("patient_threshold", _same),
    "graph_key": ("graph_key", _same),
    "cancer": ("cancer", _same),
    "ambient": ("ambient", _same),
    "pregnancy": ("pregnancy", _same),
    "route": ("route", _same),
}
RANK_CLI_LESS = {
    "adata": "the INPUT argument, read by io.read",
    "reference": _OBJ + " from --reference and --atlas",
    "n_neighbors": "the knn model's calibrated default; an API tuning knob",
    "min_reach": "an API tuning knob for binder candidates; the CLI keeps the modality's rule",
    "progress": _PLUMBING,
    "rate_stats": _PLUMBING,
    "key_added": _PLUMBING,
    "copy": _PLUMBING,
}
DEMO_OPTIONS = {k: RANK_OPTIONS[k] for k in ("modality", "ambient")}
DEMO_CLI_LESS = {
    **RANK_CLI_LESS,
    "adata": "the embedded demo data",
    **{k: _DEMO for k in RANK_OPTIONS if k not in DEMO_OPTIONS},
}

GATES_OPTIONS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    **{
        k: RANK_OPTIONS[k]
        for k in (
            "malignant_key",
            "patient_key",
            "compartment_key",
            "modality",
            "positivity",
            "threshold",
            "layer",
            "graph_key",
            "ambient",
        )
    },
    "healthy_key": ("healthy_key", _same),
    "healthy_only": ("healthy_only", _same),
    "max_genes": ("max_genes", _same),
    "ops": ("ops", lambda v: tuple(o.strip() for o in v.split(","))),
    "max_vital_risk": ("max_vital_risk", _same),
    "objective": ("objective", _same),
    "n_candidates": ("n_candidates", _same),
    "top_k": ("top_k", _same),
    "triple_budget": ("triple_budget", _none_is(TRIPLE_BUDGET)),
    "designs": ("designs", tuple),
}
GATES_CLI_LESS = {
    "adata": "the INPUT argument, read by io.read",
    "reference": _OBJ + " from --atlas",
    "healthy": _OBJ + ": the input's cells that --healthy-value selects",
    "patient_threshold": "not offered by gates (rank has --patient-threshold); the API default",
    "require_arms": "the CLI always judges arms; False is for studying the search itself",
    "progress": _PLUMBING,
    "key_added": _PLUMBING,
    "copy": _PLUMBING,
}

PROFILE_OPTIONS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "gate": ("gate", _same),
    "agent": ("agent", _same),
    "threshold": ("threshold", _same),
    "kinds": ("tissues", lambda v: ("cell_type", "tissue") if v else ("cell_type",)),
    "pregnancy": ("pregnancy", _same),
    "route": ("route", _same),
}
PROFILE_CLI_LESS = {
    "genes": "the RECEPTOR argument",
    "reference": _OBJ + " from --atlas",
    "engaged_fraction": "not offered: the share of a context's cells that marks it engaged",
}

ATLAS_OPTIONS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "cell_type_key": ("cell_type_key", _same),
    "donor_key": ("donor_key", _same),
    "name": ("name", _same),
    "dask": ("dask", _same),
    "threshold": ("threshold", _none_is(DEFAULT_THRESHOLD)),
    "chunk_cells": ("chunk_cells", _none_is(DEFAULT_CHUNK_CELLS)),
    "sample_cells": ("sample_cells", _none_is(DEFAULT_SAMPLE_CELLS)),
    "measurement": ("measurement", _same),
    "layer": ("soma_layer", _same),
    "obs_filter": ("obs_filter", _same),
}
ATLAS_CLI_LESS = {
    "source": "the INPUT argument",
    "n_neighbors": "the knn model's calibrated default; an API tuning knob",
    "prior_shape": "the rate model's calibrated default; an API tuning knob",
    "seed": "not offered: the sampled cells' seed stays the API default",
    "mapping": _OBJ + ": a cell type -> body context table (the Cell Ontology map by default)",
    "resume": "the command keeps finished chunks beside --out (.<out>.chunks)",
    "progress": _PLUMBING,
}

SIMULATE_OPTIONS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "model": ("model", _same),
    "n_patients": ("n_patients", _same),
    "seed": ("seed", _same),
    "typical": ("typical", _same),
    "days": ("days", _same),
    "with_inhibitor": ("with_inhibitor", lambda v: True if v else None),
    "inhibitor_stop_day": ("inhibitor_stop_day", _same),
    "product": ("product", _same),
    "allow_other_indication": ("allow_other_indication", _same),
}
SIMULATE_CLI_LESS = {
    "scenario": _OBJ + " from --from/--target or --tumour-coverage and the options beside",
    "rtol": "the ODE solver's tolerance; an API tuning knob",
    "chunk_size": "patients per batch; memory plumbing",
    "progress": _PLUMBING,
}

CASES = {
    "rank": (("rank",), tl.score_targets, RANK_OPTIONS, RANK_CLI_LESS),
    "demo": (("demo",), tl.score_targets, DEMO_OPTIONS, DEMO_CLI_LESS),
    "gates": (("gates",), tl.search_gates, GATES_OPTIONS, GATES_CLI_LESS),
    "profile": (("profile",), tl.profile_agent, PROFILE_OPTIONS, PROFILE_CLI_LESS),
    "atlas build": (("atlas", "build"), atlas.build_atlas, ATLAS_OPTIONS, ATLAS_CLI_LESS),
    "simulate": (("simulate",), kinetics.simulate, SIMULATE_OPTIONS, SIMULATE_CLI_LESS),
}
#: Value sets whose API annotation is ``str`` but that the engine names in a table.
NAMED_VALUES = {
    (kinetics.simulate, "model"): set(MODELS),
    (kinetics.simulate, "product"): set(PRODUCTS),
}


def _command(path: tuple[str, ...]) -> click.Command:
    ctx = click.Context(cli)
    command: click.Command = cli
    for name in path:
        assert isinstance(command, click.Group)
        found = command.get_command(ctx, name)
        assert found is not None, name
        command = found
    return command


def _literal_values(func: Callable[..., Any], name: str) -> set[str] | None:
    """The ``Literal`` values of ``func``'s annotation of ``name`` (None: not a Literal)."""
    text = inspect.signature(func).parameters[name].annotation
    module = inspect.getmodule(func)
    try:
        hint = eval(text, vars(module)) if isinstance(text, str) else text
    except NameError:
        return None
    values: set[str] = set()
    stack = [hint]
    while stack:
        t = stack.pop()
        if typing.get_origin(t) is typing.Literal:
            values.update(typing.get_args(t))
        else:
            stack.extend(a for a in typing.get_args(t) if a is not type(None))
    return values or None


@pytest.mark.parametrize("case", CASES)
def test_every_api_parameter_is_an_option_or_says_why_not(case: str) -> None:
    path, func, options, cli_less = CASES[case]
    api = inspect.signature(func).parameters
    assert not set(options) & set(cli_less), "a parameter is both offered and CLI-less"
    missing = [p for p in api if p not in options and p not in cli_less]
    assert not missing, f"{case}: API parameters neither offered nor listed: {missing}"
    stale = [p for p in (*options, *cli_less) if p not in api]
    assert not stale, f"{case}: listed parameters the API no longer has: {stale}"
    params = {p.name: p for p in _command(path).params}
    for name, (option, _) in options.items():
        assert option in params, f"{case}: no CLI parameter {option!r} for {name!r}"


@pytest.mark.parametrize("case", CASES)
def test_cli_defaults_are_the_api_defaults(case: str) -> None:
    path, func, options, _ = CASES[case]
    api = inspect.signature(func).parameters
    # the values the command receives when no option is given
    defaults = _command(path).make_context(path[-1], [], resilient_parsing=True).params
    drift = {}
    for name, (option, convert) in options.items():
        if api[name].default is inspect.Parameter.empty:
            continue  # required by the API; the command requires it or sets it
        cli_default = convert(defaults[option])
        if cli_default != api[name].default:
            drift[name] = (cli_default, api[name].default)
    assert not drift, f"{case}: CLI default != API default (cli, api): {drift}"


@pytest.mark.parametrize("case", CASES)
def test_cli_choices_are_the_api_values(case: str) -> None:
    path, func, options, _ = CASES[case]
    params = {p.name: p for p in _command(path).params}
    checked = 0
    for name, (option, _) in options.items():
        ptype = params[option].type
        if not isinstance(ptype, click.Choice):
            continue
        api_values = NAMED_VALUES.get((func, name)) or _literal_values(func, name)
        assert api_values is not None, f"{case}: --{option} has choices, {name} no Literal"
        assert set(ptype.choices) == set(cli_spelling(api_values)), (case, name)
        checked += 1
    assert checked or case in {"atlas build"}, f"{case}: no choice checked"


def test_choices_of_reader_options_are_the_reader_values() -> None:
    from antigenscout._types import KIND_OPTIONS, ORIENTATIONS

    for command in ("rank", "gates"):
        params = {p.name: p for p in _command((command,)).params}
        assert tuple(params["kind"].type.choices) == cli_spelling(KIND_OPTIONS)
        assert tuple(params["orientation"].type.choices) == cli_spelling(ORIENTATIONS)
