"""The engine names the parameter at fault; the command line writes its flag instead."""

from __future__ import annotations

import pytest

from antigenscout import datasets, tl
from antigenscout._errors import InputError
from antigenscout.cli import _as_flags, _invoked

GATES = ["gates", "in.h5ad", "--malignant-key", "m=m"]


@pytest.mark.parametrize(
    ("argv", "param", "message", "shown"),
    [
        (GATES, "max_genes", "max_genes must be an integer from 1 to 5; got 7", "--max-genes must"),
        (GATES, "n_candidates", "n_candidates must be an integer ≥ 1; got 0", "--candidates must"),
        (GATES, "top_k", "top_k must be an integer ≥ 1; got 0", "--top must"),
        (["rank", "x.h5ad"], "route", "route 'oral' is not one of systemic", "--route 'oral'"),
        (["atlas", "build", "a.h5ad"], "dask", "dask 'x': give local:N", "--dask 'x'"),
    ],
)
def test_cli_writes_the_flag_of_the_parameter(
    argv: list[str], param: str, message: str, shown: str
) -> None:
    assert _as_flags(InputError(message, param=param), argv).startswith(shown)


def test_messages_without_an_option_of_the_command_are_left_as_they_are() -> None:
    assert _as_flags(InputError("no such gene"), GATES) == "no such gene"
    assert _as_flags(InputError("x must be 1", param="not_an_option"), GATES) == "x must be 1"
    # the parameter must open the message: a later mention is the engine's own words
    assert _as_flags(InputError("got ops", param="ops"), GATES) == "got ops"
    # profile has no --max-genes: the API's name stays
    err = InputError("max_genes must be 1", param="max_genes")
    assert _as_flags(err, ["profile", "CD19"]) == "max_genes must be 1"
    assert _as_flags(err, ["--version"]) == "max_genes must be 1"
    assert _as_flags(err, []) == "max_genes must be 1"


def test_the_invoked_command_is_found_through_groups() -> None:
    assert _invoked(["atlas", "build", "x"]).name == "build"
    assert _invoked(["gates", "x"]).name == "gates"
    assert _invoked(["atlas"]) is None
    assert _invoked(["nope"]) is None


@pytest.mark.parametrize(
    ("kw", "param"),
    [
        ({"ops": ("and", "xor")}, "ops"),
        ({"ops": ("not",)}, "ops"),  # NOT needs AND: refused before the tumour is read
        ({"ops": ("not",), "max_genes": 1}, "ops"),
        ({"max_genes": 9}, "max_genes"),
        ({"max_vital_risk": 2.0}, "max_vital_risk"),
        ({"top_k": 0}, "top_k"),
        ({"modality": "laser"}, "modality"),
        ({"threshold": -1.0}, "threshold"),
        ({"positivity": "guess"}, "positivity"),
    ],
)
def test_api_errors_name_the_parameter_not_a_flag(kw: dict, param: str) -> None:
    adata = datasets.demo()
    with pytest.raises(InputError) as info:
        tl.search_gates(adata, malignant_key="malignant=malignant", **kw)
    assert info.value.param == param
    assert str(info.value).startswith(param)
    assert "--" not in str(info.value)
