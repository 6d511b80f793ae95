"""Packages whose names are imported on first use (PEP 562), so `fashionlens --help` loads no model stack."""

from __future__ import annotations

from importlib import import_module


def lazy_exports(package: str, exports: dict[str, str]):
    """A module `__getattr__` that imports each exported name from its submodule (`exports`: name -> submodule)."""

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f"{package}.{exports[name]}"), name)

    return __getattr__
