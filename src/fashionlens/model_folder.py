"""What every model folder shares, whatever its task: the file names, the manifest checks, the versions."""

from __future__ import annotations

import json
import platform
import time
from importlib.metadata import PackageNotFoundError, version
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from fashionlens.atomic import atomic_path, write_text_atomic
from fashionlens.extras import require
from fashionlens.lazy import attribute
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


def manifest_of(folder: str | Path) -> dict:
    """A model folder's manifest, whatever its format, or a ModelError saying why there is none."""
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
    if not isinstance(manifest, dict):
        raise ModelError(f"{path}: not a JSON object")
    return manifest


def read_manifest(folder: str | Path, fmt: str, format_version: int, required: tuple[str, ...]) -> dict:
    """The manifest of a model folder of format `fmt`, or a ModelError saying what is wrong with it."""
    path = Path(folder) / MANIFEST_FILE
    manifest = manifest_of(folder)
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


def save_network(state: dict, folder: str | Path, fmt: str, format_version: int, sections: dict) -> Path:
    """A whole network's model folder. Weights first, then the manifest naming their hash: a crash leaves the
    previous model whole; an ONNX export of the old weights is dropped."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / WEIGHTS_FILE) as tmp:
        save_file({k: v.detach().contiguous().clone() for k, v in state.items()}, tmp, metadata={"format": fmt})
    manifest = {"format": fmt, "format_version": format_version,
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **sections,
                "weights": {"file": WEIGHTS_FILE, "sha256": sha256_file(folder / WEIGHTS_FILE)},
                "versions": library_versions()}
    write_json_atomic(folder / MANIFEST_FILE, manifest)
    (folder / EXPORT_FILE).unlink(missing_ok=True)
    return folder


def build_network(folder: Path, manifest: dict, section: str, config, build):
    """The PyTorch network of a folder written by `save_network`: its registry backbone built without weights,
    then the stored tensors loaded; anything that does not fit is a ModelError naming the file."""
    from safetensors.torch import load_file

    from fashionlens.backbones import BackboneError, create_backbone

    try:
        backbone = create_backbone(config.backbone, pretrained=False)
    except BackboneError as exc:
        raise ModelError(f"{folder / MANIFEST_FILE}: cannot rebuild the {section} ({exc})") from None
    network = build(config, backbone)
    weights = folder / manifest["weights"]["file"]
    try:
        network.load_state_dict(load_file(weights))
    except RuntimeError as exc:
        raise ModelError(f"{weights}: tensors do not fit the manifest's {section}: {exc}") from None
    return network.eval()


@dataclass
class LoadedNetwork:
    """A whole network's model folder, loaded (a detector or a garment parser): its config, the preprocessing
    that travels with its weights, and its manifest. The runtime runs its ONNX graph; `model`, the PyTorch
    network, is built on first use (training, export, the torch reference; needs the `train` extra)."""

    folder: Path
    config: Any
    preprocess: Any  # PreprocessConfig
    manifest: dict
    format: NetworkFormat
    _model: Any = None

    @property
    def model(self):
        if self._model is None:
            require("train", f"the PyTorch {self.format.section} (training, export, the torch runtime)")
            self._model = build_network(self.folder, self.manifest, self.format.section, self.config,
                                        self.format.builder())
        return self._model

    @property
    def weights_sha256(self) -> str:
        return self.manifest["weights"]["sha256"]


@dataclass(frozen=True)
class NetworkFormat:
    """One kind of whole-network model folder: its format name and version, the manifest section holding its
    config, how to read that config, and where the function that builds the network lives (`module:function`,
    imported only when PyTorch is wanted); `save` and `load` are the folder's only readers and writers."""

    name: str
    version: int
    section: str
    config_from_dict: Callable
    build: str

    def builder(self) -> Callable:
        return attribute(self.build)

    def save(self, model, config, backbone, folder: str | Path, info: dict | None = None) -> Path:
        return save_network(model.state_dict(), folder, self.name, self.version,
                            {self.section: config.to_dict(), **letterbox_sections(backbone, config.input_size),
                             **(info or {})})

    def load(self, folder: str | Path) -> LoadedNetwork:
        """The manifest and the config it holds, with the weights it names checked by hash; no PyTorch."""
        folder = Path(folder)
        manifest = read_manifest(folder, self.name, self.version, (self.section, "backbone", "preprocess", "weights"))
        checked_weights(folder, manifest)
        try:
            config = self.config_from_dict(manifest[self.section])
        except (TypeError, KeyError, ValueError) as exc:
            raise ModelError(f"{folder / MANIFEST_FILE}: cannot read the {self.section} ({exc})") from None
        return LoadedNetwork(folder, config, letterbox_preprocess(manifest), manifest, self)


def letterbox_preprocess(manifest: dict):
    """The preprocessing a letterboxing network's manifest records."""
    from fashionlens.preprocess import PreprocessConfig

    pre = manifest["preprocess"]
    return PreprocessConfig(input_size=tuple(pre["input_size"]), crop_pct=1.0, interpolation="bilinear",
                            mean=tuple(pre["mean"]), std=tuple(pre["std"]))


def letterbox_sections(backbone, input_size) -> dict:
    return {"backbone": {"name": backbone.name, "weights_id": backbone.weights_id},
            "preprocess": {"mean": list(backbone.preprocess.mean), "std": list(backbone.preprocess.std),
                           "input_size": list(input_size), "resize": "letterbox"}}


def write_export_record(folder: Path, onnx_file: Path, weights_sha256: str, parity: dict) -> None:
    """The folder's record of its ONNX graph: which weights it was exported from, and its parity with PyTorch."""
    write_json_atomic(folder / EXPORT_FILE, {"onnx": onnx_file.name, "onnx_sha256": sha256_file(onnx_file),
                                             "weights_sha256": weights_sha256, **parity})


def onnx_file_for(folder: Path, weights_sha256: str, kind: str, export, needs: dict | None = None) -> Path:
    """The folder's own ONNX export when it matches the weights (and its record has every item of `needs`: a
    property older exports lack), else one made by `export(path)` on first use and kept in the cache, keyed by
    the weights hash and `needs`."""
    from fashionlens.cache import default_cache_dir

    record = folder / EXPORT_FILE
    if record.is_file():
        info = json.loads(record.read_text())
        path = folder / info["onnx"]
        has = all(info.get(k) == v for k, v in (needs or {}).items())
        if info.get("weights_sha256") == weights_sha256 and has and path.is_file():
            return path
    tag = "".join(f"-{k}" for k, v in (needs or {}).items() if v)
    cached = default_cache_dir() / "onnx" / f"{kind}{tag}-{weights_sha256[:16]}.onnx"
    if not cached.is_file():
        require("train", f"{folder}: this {kind} folder has no ONNX graph of its weights; exporting one")
        cached.parent.mkdir(parents=True, exist_ok=True)
        export(cached)
    return cached
