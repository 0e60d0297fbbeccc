"""The package's public surface: clean namespaces, docstrings that name real objects."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import types

import pytest

import antigenscout

PUBLIC = (
    "atlas",
    "datasets",
    "get",
    "io",
    "kinetics",
    "pl",
    "pp",
    "reference",
    "report",
    "tl",
    "benchmark",
)
_REF = re.compile(r":(?:func|class|mod|meth|attr|data):`~?(antigenscout(?:\.\w+)+)`")


@pytest.mark.parametrize("name", PUBLIC)
def test_namespace_exposes_only_its_api(name: str) -> None:
    mod = importlib.import_module(f"antigenscout.{name}")
    public = {k for k in dir(mod) if not k.startswith("_")}
    submodules = {
        k
        for k in public
        if isinstance(getattr(mod, k), types.ModuleType)
        and getattr(mod, k).__name__.startswith(f"antigenscout.{name}.")
    }
    assert public - submodules == set(mod.__all__)


def _all_modules() -> list[types.ModuleType]:
    mods = [antigenscout]
    for info in pkgutil.walk_packages(antigenscout.__path__, "antigenscout."):
        if info.name.endswith("__main__"):
            continue
        mods.append(importlib.import_module(info.name))
    return mods


def _resolve(path: str) -> bool:
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def test_docstring_references_resolve() -> None:
    """Every ``:func:`antigenscout.…``` in a docstring names an object that exists."""
    broken = []
    for mod in _all_modules():
        objs = [mod, *(v for _, v in inspect.getmembers(mod) if callable(v) or inspect.isclass(v))]
        for obj in objs:
            if getattr(obj, "__module__", mod.__name__) != mod.__name__:
                continue
            doc = inspect.getdoc(obj) or ""
            if inspect.isclass(obj):
                doc += "".join(inspect.getdoc(m) or "" for _, m in inspect.getmembers(obj))
            broken += [f"{mod.__name__}: {ref}" for ref in _REF.findall(doc) if not _resolve(ref)]
    assert sorted(set(broken)) == []


def test_import_is_lazy_and_subpackages_load_on_use() -> None:
    import subprocess
    import sys

    code = (
        "import sys, antigenscout as asc; print('anndata' in sys.modules); "
        "asc.tl.score_targets; print('antigenscout.tl' in sys.modules); "
        "print(asc.atlas.__name__)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True", "antigenscout.atlas"]
