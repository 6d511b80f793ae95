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


SHIPPED_CLASSIFIERS = {"default": default_classifier_dir, "types": default_type_classifier_dir}
"""Names a pipeline may give instead of a classifier folder."""
