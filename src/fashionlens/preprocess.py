"""The preprocessing that travels with the weights (timm's data config), saved in every model manifest."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from PIL import Image, ImageOps
from timm.data import create_transform, resolve_data_config
from torchvision import transforms

RESIZE_MODES = ("crop", "pad")


class PadToSquare:
    """Letterbox on white: product photos keep the whole item instead of losing its top and bottom to a crop."""

    def __init__(self, size: tuple[int, int]):
        self.size = size  # height, width

    def __call__(self, image: Image.Image) -> Image.Image:
        height, width = self.size
        return ImageOps.pad(image, (width, height), method=Image.Resampling.BICUBIC, color=(255, 255, 255))


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
    def from_model(cls, model: torch.nn.Module) -> PreprocessConfig:
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

    def _normalize(self) -> list:
        return [transforms.ToTensor(), transforms.Normalize(self.mean, self.std)]

    def eval_transform(self):
        if self.resize == "pad":
            return transforms.Compose([PadToSquare(self.input_size), *self._normalize()])
        return create_transform(
            input_size=(3, *self.input_size),
            is_training=False,
            crop_pct=self.crop_pct,
            interpolation=self.interpolation,
            mean=self.mean,
            std=self.std,
        )

    def train_transform(self, colour_jitter: float = 0.2):
        """Augmentation for fine-tuning: crops, flips and mild light changes, never a hue shift.

        `colour_jitter` is the brightness and contrast strength (saturation gets half); 0 turns it off, for
        colour labels, which even mild light changes blur (navy and blue, grey and black).
        """
        jitter = (colour_jitter, colour_jitter, colour_jitter / 2, 0.0)
        if self.resize == "pad":
            return transforms.Compose([
                PadToSquare(self.input_size),
                transforms.RandomResizedCrop(self.input_size, scale=(0.6, 1.0), interpolation=transforms.InterpolationMode.BICUBIC),
                transforms.RandomHorizontalFlip(),
                *([transforms.ColorJitter(*jitter)] if colour_jitter > 0 else []),
                *self._normalize(),
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
