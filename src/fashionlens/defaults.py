"""The models shipped inside the package, used when the caller names none."""

from __future__ import annotations

from pathlib import Path

from fashionlens.model_kinds import KINDS


def default_classifier_dir() -> Path:
    return KINDS["classifier"].shipped_folder()


def default_detector_dir() -> Path:
    return KINDS["detector"].shipped_folder()


def default_parser_dir() -> Path:
    return KINDS["parser"].shipped_folder()


def default_type_classifier_dir() -> Path:
    """The street-photo garment type head (CCP's names), trained on the same backbone as the classifier's."""
    return KINDS["classifier"].shipped_folder("types")


def resolve_model(name: str | Path | None, kind: str) -> Path:
    """The model folder a name stands for: None or a shipped model's name ("default"; a classifier's "types"),
    else the path given. The one place shipped names are read, so every entry point means the same by them."""
    model_kind = KINDS[kind]
    if name is None:
        return model_kind.shipped_folder()
    return model_kind.shipped_folder(name) if isinstance(name, str) and name in model_kind.shipped else Path(name)
