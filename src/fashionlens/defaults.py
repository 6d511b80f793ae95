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
