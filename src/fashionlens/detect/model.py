"""The garment detector: torchvision FCOS on a feature pyramid over a registry backbone (training and export;
the runtime decodes the ONNX graph's outputs in `detect.decoding`; `DetectorConfig` lives in `detect.config`).

The backbone splits at a cut: everything before it is frozen and its output can be cached once per image,
so training on a 2-core CPU only runs the deeper blocks, the pyramid and the head.
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.detection import FCOS
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.fcos import FCOSHead
from torchvision.models.detection.image_list import ImageList

from fashionlens.backbones import Backbone
from fashionlens.detect.config import DetectorConfig
from fashionlens.pyramid import PyramidBackbone


def build_detector(config: DetectorConfig, backbone: Backbone) -> FCOS:
    net = backbone.model.net
    pyramid = PyramidBackbone(net, config.stages, config.frozen_stages, config.channels)
    strides = [8 * 2**i for i in range(len(config.stages) + 2)]
    anchors = AnchorGenerator(sizes=tuple((s,) for s in strides), aspect_ratios=((1.0,),) * len(strides))
    head = FCOSHead(config.channels, 1, len(config.classes), num_convs=config.head_convs)
    height, width = config.input_size
    return FCOS(pyramid, num_classes=len(config.classes), min_size=min(height, width), max_size=max(height, width),
                image_mean=list(backbone.preprocess.mean), image_std=list(backbone.preprocess.std),
                anchor_generator=anchors, head=head, score_thresh=config.score_thresh, nms_thresh=config.nms_thresh,
                detections_per_img=config.detections_per_img)


class RawDetector(nn.Module):
    """Normalised image batch in, raw head outputs out: the part exported to ONNX (decoding stays in torch)."""

    def __init__(self, model: FCOS):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features = list(self.model.backbone(images).values())
        out = self.model.head(features)
        return out["cls_logits"], out["bbox_regression"], out["bbox_ctrness"]


def level_shapes(model: FCOS, input_size: tuple[int, int]) -> list[tuple[int, int]]:
    """(height, width) of each pyramid level for a fixed input size, to split the flat head outputs again."""
    with torch.no_grad():
        feats = model.backbone(torch.zeros(1, 3, *input_size))
    return [tuple(f.shape[-2:]) for f in feats.values()]


def decode(model: FCOS, outputs: dict[str, torch.Tensor], input_size: tuple[int, int],
           shapes: list[tuple[int, int]]) -> list[dict]:
    """torchvision's own FCOS post-processing (box decoding, score threshold, NMS) on raw head outputs."""
    batch = outputs["cls_logits"].shape[0]
    images = ImageList(torch.empty(batch, 3, *input_size), [tuple(input_size)] * batch)
    anchors = model.anchor_generator(images, [torch.empty(batch, 1, h, w) for h, w in shapes])
    sizes = [h * w for h, w in shapes]
    split = {k: list(v.split(sizes, dim=1)) for k, v in outputs.items()}
    return model.postprocess_detections(split, [list(a.split(sizes)) for a in anchors], images.image_sizes)
