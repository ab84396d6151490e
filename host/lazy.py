"""Lazily exported package attributes (PEP 562), so that importing a package stays cheap."""

from __future__ import annotations

import importlib

__all__ = ["lazy_exports"]


def lazy_exports(package: str, names: dict[str, str]):
    """A module ``__getattr__`` for ``package`` that imports attribute ``name`` from its
    submodule ``names[name]`` on first use."""

    def __getattr__(name: str):
        mod = names.get(name)
        if mod is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{mod}"), name)

    return __getattr__
