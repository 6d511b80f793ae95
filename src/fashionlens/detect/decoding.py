"""FCOS's post-processing in numpy, as torchvision's `FCOS.postprocess_detections` does it (tested equal): per
pyramid level, scores sqrt(sigmoid(class) x sigmoid(centre-ness)) above the threshold, the best 1,000, boxes
decoded from their anchor and clipped to the input; then non-maximum suppression per class."""

from __future__ import annotations

import numpy as np

from fashionlens.boxes import batched_nms
from fashionlens.detect.config import DetectorConfig

TOPK_CANDIDATES = 1000  # torchvision FCOS's default


def level_shapes(config: DetectorConfig) -> list[tuple[int, int]]:
    """(height, width) of each pyramid level: the backbone's stages ('same' padding halves rounding up), then P6
    and P7 by stride-2 convolutions, which round up likewise. `decode` checks them against the graph's outputs."""
    height, width = config.input_size
    shapes = []
    for stride in (2 ** (stage + 1) for stage in config.stages):  # EfficientNet's stage i has stride 2^(i+1)
        shapes.append((-(-height // stride), -(-width // stride)))
    for _ in range(2):
        h, w = shapes[-1]
        shapes.append((-(-h // 2), -(-w // 2)))
    return shapes


def anchors(input_size: tuple[int, int], shapes: list[tuple[int, int]]) -> list[np.ndarray]:
    """torchvision's `AnchorGenerator` with one square anchor of the level's stride per location (x fastest)."""
    height, width = input_size
    out = []
    for level, (h, w) in enumerate(shapes):
        size = 8 * 2**level
        stride_y, stride_x = height // h, width // w
        ys, xs = np.meshgrid(np.arange(h) * stride_y, np.arange(w) * stride_x, indexing="ij")
        xs, ys = xs.reshape(-1).astype(np.float32), ys.reshape(-1).astype(np.float32)
        half = np.float32(round(size / 2))
        out.append(np.stack([xs - half, ys - half, xs + half, ys + half], axis=1))
    return out


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def decode(config: DetectorConfig, outputs: dict[str, np.ndarray], level_anchors: list[np.ndarray]) -> list[dict]:
    """Per image of the batch: {"boxes" [n, 4] in input pixels, "scores", "labels"}, best first."""
    sizes = [len(a) for a in level_anchors]
    if sum(sizes) != outputs["cls_logits"].shape[1]:
        raise ValueError(f"the detector's outputs have {outputs['cls_logits'].shape[1]} locations, its pyramid "
                         f"{sum(sizes)}: the graph does not fit the manifest's config")
    bounds = np.cumsum([0, *sizes])
    height, width = config.input_size
    found = []
    for index in range(outputs["cls_logits"].shape[0]):
        boxes, scores, labels = [], [], []
        for level, level_boxes in enumerate(level_anchors):
            rows = slice(bounds[level], bounds[level + 1])
            logits = outputs["cls_logits"][index, rows]
            num_classes = logits.shape[-1]
            level_scores = np.sqrt(_sigmoid(logits) * _sigmoid(outputs["bbox_ctrness"][index, rows])).reshape(-1)
            keep = np.flatnonzero(level_scores > config.score_thresh)
            order = np.argsort(-level_scores[keep], kind="stable")[:TOPK_CANDIDATES]
            keep = keep[order]
            anchor_index, label = keep // num_classes, keep % num_classes
            box = _decode_boxes(outputs["bbox_regression"][index, rows][anchor_index], level_boxes[anchor_index])
            box[:, 0::2] = box[:, 0::2].clip(0, width)
            box[:, 1::2] = box[:, 1::2].clip(0, height)
            boxes.append(box)
            scores.append(level_scores[keep])
            labels.append(label)
        boxes, scores, labels = np.concatenate(boxes), np.concatenate(scores), np.concatenate(labels)
        kept = batched_nms(boxes, scores, labels, config.nms_thresh)[:config.detections_per_img]
        found.append({"boxes": boxes[kept], "scores": scores[kept].astype(np.float32), "labels": labels[kept]})
    return found


def _decode_boxes(codes: np.ndarray, anchor_boxes: np.ndarray) -> np.ndarray:
    """torchvision's `BoxLinearCoder(normalize_by_size=True).decode`: distances to the four sides, in anchor sizes."""
    cx = 0.5 * (anchor_boxes[:, 0] + anchor_boxes[:, 2])
    cy = 0.5 * (anchor_boxes[:, 1] + anchor_boxes[:, 3])
    w = anchor_boxes[:, 2] - anchor_boxes[:, 0]
    h = anchor_boxes[:, 3] - anchor_boxes[:, 1]
    codes = codes * np.stack([w, h, w, h], axis=1)
    return np.stack([cx - codes[:, 0], cy - codes[:, 1], cx + codes[:, 2], cy + codes[:, 3]], axis=1)
