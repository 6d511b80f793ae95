"""The garment parser: a semantic FPN head (as in Panoptic FPN) on the registry backbone's feature pyramid.

Each pyramid level is refined by one convolution and upsampled to the finest level (stride 4); their sum is
classified per pixel and upsampled to the input size. Only stages after the cut train; the cut's output is
cached per training view, as for the detector. (`ParserConfig` lives in `parse.config`, free of PyTorch.)
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from fashionlens.backbones import Backbone
from fashionlens.parse.config import ParserConfig
from fashionlens.pyramid import PyramidBackbone


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
