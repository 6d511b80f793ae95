"""A registry backbone cut in two for training on a CPU, with a feature pyramid on top.

Everything before the cut is frozen, so its output can be cached once per image and training only runs the
deeper blocks, the pyramid and a task head: the detector's and the garment parser's shared trunk.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import torch
from PIL import Image
from torch import nn
from torchvision.transforms import functional as TF
from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelP6P7

from fashionlens.backbones import BackboneError


class PyramidBackbone(nn.Module):
    """Backbone blocks up to the cut (`stem`), the blocks after it (`deep`), and an FPN (with P6/P7 on top for
    detection; `extra_levels=False` for dense tasks that only need the backbone's own strides)."""

    def __init__(self, net: nn.Module, stages: tuple[int, ...], frozen_stages: int, channels: int,
                 extra_levels: bool = True):
        super().__init__()
        if not hasattr(net, "blocks") or not hasattr(net, "conv_stem"):
            raise BackboneError(f"{type(net).__name__}: the detector needs an EfficientNet-style backbone (conv_stem, blocks)")
        info = net.feature_info
        self.block_of_stage = [int(info[i]["module"].split(".")[1]) for i in range(len(info))]
        if not 0 <= frozen_stages <= stages[0]:
            raise BackboneError(f"frozen_stages={frozen_stages} must lie between 0 and the first pyramid stage {stages[0]}")
        self.cut = self.block_of_stage[frozen_stages] + 1  # blocks[:cut] are frozen
        self.outputs = [self.block_of_stage[s] for s in stages]
        self.conv_stem, self.bn1 = net.conv_stem, net.bn1
        self.blocks = net.blocks[: self.outputs[-1] + 1]
        self.fpn = FeaturePyramidNetwork([info[s]["num_chs"] for s in stages], channels,
                                         extra_blocks=LastLevelP6P7(channels, channels) if extra_levels else None)
        self.out_channels = channels
        for module in (self.conv_stem, self.bn1, *self.blocks[: self.cut]):
            module.requires_grad_(False)

    def stem(self, images: torch.Tensor) -> torch.Tensor:
        x = self.bn1(self.conv_stem(images))
        for block in self.blocks[: self.cut]:
            x = block(x)
        return x

    def deep(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        levels = OrderedDict()
        for i in range(self.cut, len(self.blocks)):
            if i - 1 in self.outputs and i - 1 < self.cut:
                levels[str(len(levels))] = x
            x = self.blocks[i](x)
            if i in self.outputs:
                levels[str(len(levels))] = x
        if not levels:  # every pyramid stage lies at or before the cut
            levels["0"] = x
        return self.fpn(levels)

    def forward(self, images: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        return self.deep(self.stem(images))

    def train(self, mode: bool = True):
        super().train(mode)
        for module in (self.bn1, *self.blocks[: self.cut]):
            module.eval()  # frozen BatchNorm keeps its ImageNet statistics
        return self


class StemOnly(nn.Module):
    """The frozen part alone, exported to ONNX to fill the training caches."""

    def __init__(self, pyramid: PyramidBackbone):
        super().__init__()
        self.pyramid = pyramid

    def forward(self, images):
        return self.pyramid.stem(images)


def as_channels_last(stems: np.ndarray) -> torch.Tensor:
    """Channels-last runs the depthwise convolutions about 10x faster on CPU, forward and backward."""
    return torch.from_numpy(np.asarray(stems, dtype=np.float32)).contiguous(memory_format=torch.channels_last)


def trunk_param_groups(pyramid: PyramidBackbone, model: nn.Module, lr: float, backbone_lr_scale: float) -> list[dict]:
    """The pretrained blocks learn slower than the new pyramid and head."""
    pretrained = [p for p in pyramid.blocks.parameters() if p.requires_grad]
    ids = {id(p) for p in pretrained}
    new = [p for p in model.parameters() if p.requires_grad and id(p) not in ids]
    return [{"params": pretrained, "lr": lr * backbone_lr_scale}, {"params": new, "lr": lr}]


def train_trunk(model: nn.Module) -> None:
    """Train mode for a model with a `backbone` pyramid, whose BatchNorm statistics stay ImageNet's: batches of
    8 are too small to refit them."""
    model.train()
    model.backbone.blocks.eval()
    model.backbone.bn1.eval()


def colour_jitter(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Mild light and saturation changes and a barely-there hue shift: colour can be what a model must tell."""
    image = TF.adjust_brightness(image, rng.uniform(0.7, 1.3))
    image = TF.adjust_contrast(image, rng.uniform(0.7, 1.3))
    image = TF.adjust_saturation(image, rng.uniform(0.7, 1.3))
    return TF.adjust_hue(image, rng.uniform(-0.03, 0.03))
