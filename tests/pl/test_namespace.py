"""``asc.pl`` and ``asc.report`` expose their public functions and nothing else."""

from __future__ import annotations

import types

import pytest

import antigenscout as asc


@pytest.mark.parametrize(
    ("mod", "submodules"),
    [(asc.pl, set()), (asc.report, {"html"})],
    ids=["pl", "report"],
)
def test_public_names_are_all(mod: types.ModuleType, submodules: set[str]) -> None:
    public = {n for n in dir(mod) if not n.startswith("_")}
    # no stray imports (``annotations`` from __future__, ``pd``, ``os`` …)
    assert public - submodules == set(mod.__all__)
    for name in mod.__all__:
        obj = getattr(mod, name)
        assert not isinstance(obj, types.ModuleType), name
    for name in submodules:  # a documented submodule of the package itself, not a stray import
        assert getattr(mod, name).__name__ == f"{mod.__name__}.{name}"
