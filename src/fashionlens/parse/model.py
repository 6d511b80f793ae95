"""The garment parser: a semantic FPN head (as in Panoptic FPN) on the registry backbone's feature pyramid.

Each pyramid level is refined by one convolution and upsampled to the finest level (stride 4); their sum is
classified per pixel and upsampled to the input size. Only stages after the cut train; the cut's output is
cached per training view, as for the detector.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn
from torch.nn import functional as F

from fashionlens.backbones import Backbone
from fashionlens.parse.labels import CCP_GROUPS
from fashionlens.pyramid import PyramidBackbone


@dataclass(frozen=True)
class ParserConfig:
    """Everything needed to rebuild the network; saved in the model manifest."""

    classes: tuple[str, ...] = tuple(CCP_GROUPS)
    groups: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(CCP_GROUPS))  # class -> merged names
    backbone: str = "efficientnet_lite0"
    input_size: tuple[int, int] = (384, 256)  # height, width: photos are letterboxed to it
    stages: tuple[int, ...] = (1, 2, 3, 4)  # strides 4, 8, 16, 32
    frozen_stages: int = 1  # stages 0..frozen_stages are frozen (and cached during training)
    channels: int = 64

    def to_dict(self) -> dict:
        return {**asdict(self), "groups": {k: list(v) for k, v in self.groups.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> ParserConfig:
        data = dict(data)
        for key in ("classes", "input_size", "stages"):
            data[key] = tuple(data[key])
        data["groups"] = {k: tuple(v) for k, v in data["groups"].items()}
        return cls(**data)


def _conv(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class SegmentationHead(nn.Module):
    def __init__(self, channels: int, levels: int, num_classes: int):
        super().__init__()
        self.refine = nn.ModuleList(_conv(channels, channels) for _ in range(levels))
        self.fuse = _conv(channels, channels)
        self.classify = nn.Conv2d(channels, num_classes, 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        size = features[0].shape[-2:]
        x = self.refine[0](features[0])
        for conv, f in zip(self.refine[1:], features[1:], strict=True):
            x = x + F.interpolate(conv(f), size=size, mode="bilinear", align_corners=False)
        return self.classify(self.fuse(x))


class GarmentParser(nn.Module):
    """Normalised images in, per-pixel class logits at the input size out."""

    def __init__(self, config: ParserConfig, backbone: Backbone):
        super().__init__()
        self.backbone = PyramidBackbone(backbone.model.net, config.stages, config.frozen_stages, config.channels,
                                        extra_levels=False)
        self.head = SegmentationHead(config.channels, len(config.stages), len(config.classes))

    def from_stem(self, stem: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        logits = self.head(list(self.backbone.deep(stem).values()))
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.from_stem(self.backbone.stem(images), images.shape[-2:])


def build_parser(config: ParserConfig, backbone: Backbone) -> GarmentParser:
    return GarmentParser(config, backbone)
