"""Fit any photo into the detector's fixed input size without distorting it: scale, then pad right and bottom."""

from __future__ import annotations

import numpy as np
from PIL import Image

from fashionlens.preprocess import normalized

PAD_COLOUR = (124, 116, 104)  # ImageNet mean: padding looks like nothing to the backbone


def letterbox(image: Image.Image, size: tuple[int, int]) -> tuple[Image.Image, float]:
    """The image scaled to fit (height, width), top-left aligned; boxes map back by dividing by the scale."""
    height, width = size
    scale = min(width / image.width, height / image.height)
    resized = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))),
                           Image.Resampling.BILINEAR)
    canvas = Image.new("RGB", (width, height), PAD_COLOUR)
    canvas.paste(resized, (0, 0))
    return canvas, scale


def to_tensor(image: Image.Image, mean: tuple[float, ...], std: tuple[float, ...]):
    """`normalized` as a torch tensor, for training."""
    import torch

    return torch.from_numpy(normalized(image, mean, std))


def letterbox_labels(labels: Image.Image, size: tuple[int, int], fill: int) -> np.ndarray:
    """A label map ('L' image) through the same geometry as `letterbox`, by nearest neighbour; padding is `fill`."""
    height, width = size
    scale = min(width / labels.width, height / labels.height)
    resized = labels.resize((max(1, round(labels.width * scale)), max(1, round(labels.height * scale))),
                            Image.Resampling.NEAREST)
    canvas = np.full((height, width), fill, np.uint8)
    canvas[:resized.height, :resized.width] = np.asarray(resized)
    return canvas
