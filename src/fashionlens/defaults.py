"""The models shipped inside the package, used when the caller names none."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def default_classifier_dir() -> Path:
    return Path(str(files("fashionlens") / "assets" / "garment-classifier"))


def default_detector_dir() -> Path:
    return Path(str(files("fashionlens") / "assets" / "garment-detector"))


def default_parser_dir() -> Path:
    return Path(str(files("fashionlens") / "assets" / "garment-parser"))


def default_type_classifier_dir() -> Path:
    """The street-photo garment type head (CCP's names), trained on the same backbone as the classifier's."""
    return Path(str(files("fashionlens") / "assets" / "garment-types"))


SHIPPED: dict[str, dict[str, callable]] = {
    "classifier": {"default": default_classifier_dir, "types": default_type_classifier_dir},
    "detector": {"default": default_detector_dir},
    "parser": {"default": default_parser_dir},
}
"""Names a caller may give instead of a model folder, per kind of model."""


def resolve_model(name: str | Path | None, kind: str) -> Path:
    """The model folder a name stands for: None or a shipped model's name ("default"; a classifier's "types"),
    else the path given. The one place shipped names are read, so every entry point means the same by them."""
    shipped = SHIPPED[kind]
    if name is None:
        return shipped["default"]()
    return shipped[name]() if isinstance(name, str) and name in shipped else Path(name)
