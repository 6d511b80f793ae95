"""What every model folder shares, whatever its task: the file names, the manifest checks, the versions."""

from __future__ import annotations

import json
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from fashionlens.atomic import write_text_atomic
from fashionlens.fingerprints import sha256_file

WEIGHTS_FILE = "weights.safetensors"
MANIFEST_FILE = "manifest.json"
EXPORT_FILE = "export.json"


class ModelError(ValueError):
    pass


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("fashionlens", "torch", "torchvision", "timm", "onnxruntime", "safetensors", "numpy"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def write_json_atomic(path: Path, data: dict) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def read_manifest(folder: str | Path, fmt: str, format_version: int, required: tuple[str, ...]) -> dict:
    """The manifest of a model folder of format `fmt`, or a ModelError saying what is wrong with it."""
    folder = Path(folder)
    path = folder / MANIFEST_FILE
    if not folder.is_dir():
        raise ModelError(f"{folder}: model folder not found")
    if not path.is_file():
        raise ModelError(f"{folder}: not a fashionlens model (no {MANIFEST_FILE})")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{path}: not valid JSON ({exc})") from None
    if manifest.get("format") != fmt:
        raise ModelError(f"{path}: format is {manifest.get('format')!r}, expected {fmt!r}")
    if int(manifest.get("format_version", 0)) > format_version:
        raise ModelError(f"{path}: format version {manifest['format_version']} is newer than this fashionlens reads ({format_version})")
    for key in required:
        if key not in manifest:
            raise ModelError(f"{path}: missing field {key!r}")
    return manifest


def checked_weights(folder: Path, manifest: dict) -> Path:
    """The weights file, refused when it is missing or not the one the manifest names by hash."""
    path = folder / manifest["weights"]["file"]
    if not path.is_file():
        raise ModelError(f"{path}: weights file missing")
    actual = sha256_file(path)
    if actual != manifest["weights"]["sha256"]:
        raise ModelError(f"{path}: sha256 {actual[:12]}… does not match the manifest ({manifest['weights']['sha256'][:12]}…); the file was changed or damaged")
    return path
