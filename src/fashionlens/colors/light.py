"""The photo's light, undone before naming: a colour cast (daylight shade is blue, indoor light yellow) shifts every
pixel of a garment, so a grey jacket reads sky blue and a white shirt beige. The cast is estimated once per photo
from its brightest surfaces (a "shades of grey" norm leans on highlights, skin and white, which reveal the light)
and removed by per-channel gains in linear light, limited so a photo full of one colour is not turned grey."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image

NORM_POWER = 6
"""The Minkowski norm of the light estimate: 1 is grey-world (a red dress photo turns cyan), large is the brightest
pixels only (one lamp decides); 6 is the usual middle (Finlayson and Trezzi, "Shades of Gray", 2004)."""
STRENGTH = 0.7
"""How much of the estimated cast is removed (0: none, 1: all): part, since the estimate is also moved by large
coloured surfaces. Chosen on the street tuning labels (benchmarks/colors_street.py)."""
MAX_GAIN = 1.3
"""No channel is raised or lowered by more than this factor."""
MAX_EXPOSURE = 1.5
"""A photo whose brightest surfaces are dim (shade, overcast) is brightened up to this factor in linear light, so
that they read white: people judge a white shirt in shade against the scene, not as the grey it measures."""
BRIGHT_PERCENTILE, WHITE_LUMINANCE = 98, 0.85
"""The photo's brightest surfaces: its 98th percentile of linear luminance, brought up to 0.85 (L* 94)."""
LUMINANCE = np.array([0.2126, 0.7152, 0.0722])
ESTIMATE_SIDE = 96


def srgb_to_linear(values: np.ndarray) -> np.ndarray:
    c = np.asarray(values, dtype=np.float64) / 255.0
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(linear: np.ndarray) -> np.ndarray:
    c = np.clip(linear, 0.0, 1.0)
    return 255.0 * np.where(c <= 0.0031308, 12.92 * c, 1.055 * c ** (1 / 2.4) - 0.055)


@dataclass(frozen=True)
class WhiteBalance:
    """Per-channel gains in linear light; (1, 1, 1) leaves a photo as it is."""

    gains: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def apply(self, rgb: np.ndarray) -> np.ndarray:
        """uint8 RGB (any leading shape) with the cast removed, through one 256-entry table per channel."""
        if self.gains == (1.0, 1.0, 1.0):
            return rgb
        tables = _channel_tables(self.gains)
        return np.stack([tables[c][rgb[..., c]] for c in range(3)], axis=-1)


@functools.lru_cache(maxsize=64)
def _channel_tables(gains: tuple[float, float, float]) -> list[np.ndarray]:
    levels = srgb_to_linear(np.arange(256))
    return [np.round(linear_to_srgb(levels * g)).astype(np.uint8) for g in gains]


NEUTRAL = WhiteBalance()


def estimate_balance(image: Image.Image, strength: float = STRENGTH, power: float = NORM_POWER,
                     max_exposure: float = MAX_EXPOSURE) -> WhiteBalance:
    """The gains that make the photo's light neutral and its brightest surfaces white, from the whole photo (not
    one garment: a garment's own colour is not the light's). Near-black pixels say nothing about the light's
    colour and are left out of that estimate."""
    small = image.convert("RGB")
    small.thumbnail((ESTIMATE_SIDE, ESTIMATE_SIDE), Image.Resampling.BILINEAR)
    rgb = np.asarray(small, dtype=np.uint8).reshape(-1, 3)
    usable = rgb.max(1) > 20  # blown-out white stays: a studio backdrop or a white wall is the light's colour
    if usable.sum() < 50:
        return NEUTRAL
    linear = srgb_to_linear(rgb[usable])
    light = np.mean(linear ** power, axis=0) ** (1 / power)
    gains = (light.mean() / np.maximum(light, 1e-6)) ** strength
    gains = np.clip(gains / np.dot(LUMINANCE, gains), 1 / MAX_GAIN, MAX_GAIN)  # keep brightness
    brightest = np.percentile(srgb_to_linear(rgb) @ LUMINANCE, BRIGHT_PERCENTILE)
    exposure = np.clip(WHITE_LUMINANCE / max(brightest, 1e-6), 1.0, max_exposure)
    return WhiteBalance(tuple(round(float(g * exposure), 4) for g in gains))
