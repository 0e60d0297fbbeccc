"""The engine names the parameter at fault; the command line writes its flag instead."""

from __future__ import annotations

import pytest

from antigenscout import datasets, tl
from antigenscout._errors import InputError
from antigenscout.cli import _as_flags, _flags


@pytest.mark.parametrize(
    ("param", "message", "shown"),
    [
        ("max_genes", "max_genes must be an integer from 1 to 5; got 7", "--max-genes must"),
        ("n_candidates", "n_candidates must be an integer ≥ 1; got 0", "--candidates must"),
        ("top_k", "top_k must be an integer ≥ 1; got 0", "--top must"),
        ("route", "route 'oral' is not one of systemic", "--route 'oral'"),
    ],
)
def test_cli_writes_the_flag_of_the_parameter(param: str, message: str, shown: str) -> None:
    assert _as_flags(InputError(message, param=param)).startswith(shown)


def test_messages_without_a_known_parameter_are_left_as_they_are() -> None:
    assert _as_flags(InputError("no such gene")) == "no such gene"
    assert _as_flags(InputError("x must be 1", param="not_an_option")) == "x must be 1"
    # the parameter must open the message: a later mention is the engine's own words
    assert _as_flags(InputError("got ops", param="ops")) == "got ops"


def test_every_flag_is_a_long_option_of_its_parameter() -> None:
    flags = _flags()
    assert flags["max_vital_risk"] == "--max-vital-risk"
    assert all(f.startswith("--") for f in flags.values())


@pytest.mark.parametrize(
    ("kw", "param"),
    [
        ({"ops": ("and", "xor")}, "ops"),
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
