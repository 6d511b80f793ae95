"""The preprocessing that travels with the weights (timm's data config), saved in every model manifest.

Inference preprocessing is Pillow and numpy only, so the runtime needs no PyTorch: `eval_transform` reproduces
timm's eval transform (resize the short side to `input_size / crop_pct`, centre crop, normalise) step by step
with the same Pillow calls torchvision makes, and is tested against it. Training augmentation is torchvision's.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image, ImageOps

RESIZE_MODES = ("crop", "pad")
_RESAMPLING = {"bicubic": Image.Resampling.BICUBIC, "bilinear": Image.Resampling.BILINEAR,
               "nearest": Image.Resampling.NEAREST, "lanczos": Image.Resampling.LANCZOS,
               "box": Image.Resampling.BOX, "hamming": Image.Resampling.HAMMING}


class PadToSquare:
    """Letterbox on white: product photos keep the whole item instead of losing its top and bottom to a crop."""

    def __init__(self, size: tuple[int, int]):
        self.size = size  # height, width

    def __call__(self, image: Image.Image) -> Image.Image:
        height, width = self.size
        return ImageOps.pad(image, (width, height), method=Image.Resampling.BICUBIC, color=(255, 255, 255))


def normalized(image: Image.Image, mean, std) -> np.ndarray:
    """An RGB image as the network's [3, H, W] float32 input: scaled to 0..1, then normalised per channel."""
    array = np.asarray(image, dtype=np.float32) / 255.0
    array = (array - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(array.transpose(2, 0, 1))


def resize_short_side(image: Image.Image, size: int, resample) -> Image.Image:
    """torchvision's `Resize(int)` on a PIL image: the short side to `size`, the long side truncated."""
    width, height = image.size
    short, long = (width, height) if width <= height else (height, width)
    if short == size:
        return image
    new_long = int(size * long / short)
    new = (size, new_long) if width <= height else (new_long, size)
    return image.resize(new, resample)


def center_crop(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    """torchvision's `CenterCrop` on a PIL image (a smaller image is padded with black first, as it does)."""
    height, width = size
    if image.width < width or image.height < height:
        padded = Image.new(image.mode, (max(width, image.width), max(height, image.height)))
        padded.paste(image, ((padded.width - image.width) // 2, (padded.height - image.height) // 2))
        image = padded
    top = int(round((image.height - height) / 2.0))
    left = int(round((image.width - width) / 2.0))
    return image.crop((left, top, left + width, top + height))


class EvalTransform:
    """PIL image in, the network's [3, H, W] float32 array out."""

    def __init__(self, config: PreprocessConfig):
        self.config = config
        self.resample = _RESAMPLING.get(config.interpolation, Image.Resampling.BILINEAR)
        self.scale_size = math.floor(config.input_size[0] / config.crop_pct)

    def __call__(self, image: Image.Image) -> np.ndarray:
        config = self.config
        if config.resize == "pad":
            image = PadToSquare(config.input_size)(image)
        else:
            if config.input_size[0] != config.input_size[1]:
                raise ValueError(f"centre-crop preprocessing needs a square input, not {config.input_size}")
            image = center_crop(resize_short_side(image, self.scale_size, self.resample), config.input_size)
        return normalized(image, config.mean, config.std)


@dataclass(frozen=True)
class PreprocessConfig:
    input_size: tuple[int, int]  # height, width
    crop_pct: float
    interpolation: str
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize: str = "crop"  # "crop": timm's resize and centre crop; "pad": letterbox the whole image on white

    def __post_init__(self):
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {', '.join(RESIZE_MODES)}, not {self.resize!r}")

    @classmethod
    def from_model(cls, model) -> PreprocessConfig:
        """The data config timm resolves for a model (training side: needs timm)."""
        from timm.data import resolve_data_config

        cfg = resolve_data_config({}, model=model)
        _, height, width = cfg["input_size"]
        return cls(
            input_size=(height, width),
            crop_pct=float(cfg["crop_pct"]),
            interpolation=str(cfg["interpolation"]),
            mean=tuple(float(v) for v in cfg["mean"]),
            std=tuple(float(v) for v in cfg["std"]),
        )

    @classmethod
    def from_dict(cls, data: dict) -> PreprocessConfig:
        return cls(
            input_size=tuple(data["input_size"]),
            crop_pct=float(data["crop_pct"]),
            interpolation=str(data["interpolation"]),
            mean=tuple(data["mean"]),
            std=tuple(data["std"]),
            resize=data.get("resize", "crop"),
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def short_side(self) -> int:
        """The smallest decoded side that still gives full-resolution crops (for JPEG draft decoding)."""
        return int(max(self.input_size) / self.crop_pct) + 1

    def eval_transform(self) -> EvalTransform:
        return EvalTransform(self)

    def train_transform(self, colour_jitter: float = 0.2):
        """Augmentation for fine-tuning: crops, flips and mild light changes, never a hue shift.

        `colour_jitter` is the brightness and contrast strength (saturation gets half); 0 turns it off, for
        colour labels, which even mild light changes blur (navy and blue, grey and black).
        """
        from timm.data import create_transform
        from torchvision import transforms

        jitter = (colour_jitter, colour_jitter, colour_jitter / 2, 0.0)
        if self.resize == "pad":
            return transforms.Compose([
                PadToSquare(self.input_size),
                transforms.RandomResizedCrop(self.input_size, scale=(0.6, 1.0), interpolation=transforms.InterpolationMode.BICUBIC),
                transforms.RandomHorizontalFlip(),
                *([transforms.ColorJitter(*jitter)] if colour_jitter > 0 else []),
                transforms.ToTensor(), transforms.Normalize(self.mean, self.std),
            ])
        return create_transform(
            input_size=(3, *self.input_size),
            is_training=True,
            scale=(0.5, 1.0),
            hflip=0.5,
            color_jitter=jitter if colour_jitter > 0 else None,
            interpolation=self.interpolation,
            mean=self.mean,
            std=self.std,
        )
