"""Packages whose names are imported on first use (PEP 562), so `fashionlens --help` loads no model stack."""

from __future__ import annotations

import sys
from importlib import import_module
from types import ModuleType


def attribute(spec: str):
    """The object a `module:attribute` string names, imported now: how tables name code they load only on use."""
    module, name = spec.split(":")
    return getattr(import_module(module), name)


def lazy_exports(package: str, exports: dict[str, str]):
    """A module `__getattr__` that imports each exported name from its submodule (`exports`: name -> submodule).

    A submodule named like one of its exports (`classify.train` holds `train`) would otherwise hide the export once
    it is imported, since importing binds the submodule on its package: the package keeps the export instead."""

    class LazyPackage(ModuleType):
        def __setattr__(self, name, value):
            if name in exports and isinstance(value, ModuleType):
                return
            super().__setattr__(name, value)

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f"{package}.{exports[name]}"), name)
        ModuleType.__setattr__(sys.modules[package], name, value)
        return value

    sys.modules[package].__class__ = LazyPackage
    return __getattr__
