"""Named dominant colours of a garment, from a fixed fashion palette, with the share of the garment each covers.

Pixels are compared in CIELAB (perceptually even, so "nearest" means "looks closest"), each assigned to the
nearest palette anchor; a name can have several anchors (light and dark blues are both "blue"). A product
photo's white background is removed first: near-white pixels connected to the image border (a flood fill),
which keeps a white garment's inside but drops the studio backdrop (measured in benchmarks/colors_products.py).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from fashionlens.masks import mask_box

# name -> sRGB anchors. The neutrals sit where photographed garments fall, not at paint colours: a black
# product photographs at L* 20-40, a white one at 70-85 (fashion-products medians).
# Metallics are told apart by colour alone: silver is a light grey, gold a yellow ochre. "neon" is the very
# saturated bright yellow-green or pink of fluorescent fabric.
PALETTE: dict[str, tuple[tuple[int, int, int], ...]] = {
    "white": ((250, 250, 250), (205, 205, 205)),
    "black": ((10, 10, 10), (55, 55, 55)),
    "beige": ((225, 205, 170), (240, 228, 205), (210, 185, 150)),
    "pink": ((245, 175, 195), (225, 95, 150), (250, 215, 225), (200, 120, 140)),
    "sky blue": ((135, 195, 235), (175, 215, 240), (90, 170, 210)),
    "blue": ((40, 80, 180), (70, 120, 200), (30, 60, 150), (100, 140, 190)),
    "grey": ((120, 120, 120),),
    "navy": ((25, 35, 70), (40, 50, 95), (20, 25, 45)),
    "brown": ((110, 70, 40), (145, 95, 55), (75, 50, 35), (120, 90, 70)),
    "red": ((200, 30, 40), (225, 45, 45), (165, 25, 35)),
    "lavender": ((190, 170, 220), (210, 195, 235)),
    "silver": ((165, 165, 165),),
    "yellow": ((240, 210, 40), (250, 230, 100), (225, 185, 30)),
    "khaki": ((190, 175, 125), (150, 140, 95), (170, 160, 110)),
    "wine": ((110, 20, 40), (128, 0, 32), (85, 20, 35)),
    "purple": ((110, 50, 140), (130, 70, 165), (80, 40, 100)),
    "mint": ((170, 230, 200), (150, 220, 185)),
    "orange": ((240, 130, 30), (250, 155, 65), (215, 100, 40)),
    "green": ((40, 140, 60), (30, 100, 50), (90, 165, 85), (25, 70, 45), (85, 100, 55)),
    "gold": ((212, 175, 55), (195, 155, 75)),
    "neon": ((57, 255, 20), (204, 255, 0), (255, 0, 200)),
}
COLOR_NAMES: tuple[str, ...] = tuple(PALETTE)
LIGHTNESS_WEIGHT = 0.5
"""Lightness counts half as much as hue and chroma: shading changes L* across one fabric, not its colour."""
CHROMA_GAIN, CHROMA_SCALE = 1.6, 20.0
"""Weak chroma is boosted before matching, up to 1.6x, fading out above ~20: photos wash colour out (a blue
shirt's median chroma in a fashion-products thumbnail is about 8) while vivid pixels and the anchors
themselves stay put. Chosen on rows < 3000 of fashion-products styles.csv (a flat 1.5x scored 1 point
higher there but renamed 8 of the anchors themselves)."""
MAX_SIDE = 160
"""Images are reduced to this longest side first: a colour census needs no more, and it keeps calls ~ms."""


@dataclass(frozen=True)
class ColorShare:
    name: str  # a palette name (COLOR_NAMES)
    fraction: float  # share of the garment's pixels, 0..1
    rgb: tuple[int, int, int]  # mean sRGB of those pixels (the garment's actual shade, not the anchor)

    @property
    def hex(self) -> str:
        return "#{:02x}{:02x}{:02x}".format(*self.rgb)

    def to_json(self) -> dict:
        return {"name": self.name, "fraction": round(self.fraction, 4), "rgb": list(self.rgb), "hex": self.hex}


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (0..255, any leading shape, last axis 3) to CIELAB under D65."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124564, 0.3575761, 0.1804375],
                  [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = linear @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


_ANCHOR_NAMES = np.array([i for i, anchors in enumerate(PALETTE.values()) for _ in anchors])
_ANCHOR_LAB = srgb_to_lab(np.array([a for anchors in PALETTE.values() for a in anchors]))
_WEIGHT = np.array([LIGHTNESS_WEIGHT, 1.0, 1.0])


def palette_index(lab: np.ndarray) -> np.ndarray:
    """Index into COLOR_NAMES of the nearest anchor for each Lab row."""
    gain = 1 + (CHROMA_GAIN - 1) * np.exp(-np.hypot(lab[:, 1], lab[:, 2]) / CHROMA_SCALE)
    lab = lab * np.stack([np.ones_like(gain), gain, gain], axis=1)
    x, anchors = (lab * _WEIGHT).astype(np.float32), (_ANCHOR_LAB * _WEIGHT).astype(np.float32)
    d = (anchors ** 2).sum(1)[None, :] - 2 * x @ anchors.T  # squared distance less |x|^2, which argmin ignores
    return _ANCHOR_NAMES[d.argmin(1)]


def near_white(lab: np.ndarray) -> np.ndarray:
    return (lab[..., 0] >= 90) & (np.hypot(lab[..., 1], lab[..., 2]) <= 8)


LUT_BITS = 6
"""Pixels are named through a table over RGB at 6 bits per channel (262,144 cells, filled once from the Lab rules
above at each cell's centre): a garment costs a lookup instead of per-pixel Lab arithmetic (about 3 ms less per
image; a cell spans 4 levels of each channel, below what names a colour)."""


@functools.cache
def _lookup_tables() -> tuple[np.ndarray, np.ndarray]:
    """(palette index, near-white flag) for every RGB cell."""
    step = 1 << (8 - LUT_BITS)
    levels = np.arange(0, 256, step) + step // 2
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(-1, 3)
    lab = srgb_to_lab(grid)
    return palette_index(lab).astype(np.uint8), near_white(lab)


def rgb_cells(rgb: np.ndarray) -> np.ndarray:
    """Each uint8 RGB pixel's cell in the lookup tables."""
    q = (rgb >> (8 - LUT_BITS)).astype(np.int32)
    return (q[..., 0] << (2 * LUT_BITS)) | (q[..., 1] << LUT_BITS) | q[..., 2]


def background_mask(white: np.ndarray) -> np.ndarray:
    """True where a pixel is near-white and connected to the image border (the studio backdrop)."""
    labels, _ = ndimage.label(white)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    return np.isin(labels, border[border > 0])


def has_white_backdrop(white: np.ndarray, share: float = 0.6) -> bool:
    """A product photo: most of the border is near-white."""
    ring = np.concatenate([white[0], white[-1], white[1:-1, 0], white[1:-1, -1]])
    return bool(ring.mean() >= share)


def named_colors(
    image: Image.Image,
    box: tuple[float, float, float, float] | None = None,
    top: int = 3,
    *,
    mask: np.ndarray | None = None,
    remove_background: bool | None = None,
) -> list[ColorShare]:
    """The `top` palette colours covering most of the garment, largest share first.

    `box` (x1, y1, x2, y2 in pixels) restricts the count to a detected garment. `remove_background`: None
    removes a white backdrop only when the region's border is mostly near-white (product photos); if that
    would leave under 5% of the pixels (a white garment filling the frame) all pixels are kept. `mask` (bool,
    the whole image's size) counts only the garment's own pixels (inside `box` if given, else inside the mask's
    own box, so a small garment keeps its resolution), with no backdrop removal: the mask already leaves the
    background out. An empty mask is a ValueError (the caller falls back to the box).
    """
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != (image.height, image.width):
            raise ValueError(f"mask has shape {mask.shape}, not the {image.width}x{image.height} image's "
                             f"({image.height}, {image.width})")
        if box is None:
            box = mask_box(mask)
            if box is None:
                raise ValueError("the mask has no pixels (an empty mask)")
        mask_image = Image.fromarray(np.ascontiguousarray(mask, dtype=np.uint8) * 255)
    if box is not None:
        x1, y1, x2, y2 = box
        if not (x2 > x1 and y2 > y1):
            raise ValueError(f"box {box}: needs x1 < x2 and y1 < y2")
        left, upper = max(0, int(np.floor(x1))), max(0, int(np.floor(y1)))
        right, lower = min(image.width, int(np.ceil(x2))), min(image.height, int(np.ceil(y2)))
        if right <= left or lower <= upper:
            raise ValueError(f"box {box} lies outside the {image.width}x{image.height} image")
        image = image.crop((left, upper, right, lower))
        if mask is not None:
            mask_image = mask_image.crop((left, upper, right, lower))
    image = image.convert("RGB")
    image.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.BILINEAR)  # never enlarges
    rgb = np.asarray(image, dtype=np.uint8)
    names, whites = _lookup_tables()
    cells = rgb_cells(rgb)
    keep = np.ones(rgb.shape[:2], dtype=bool)
    white = whites[cells]
    if mask is not None:
        keep = np.asarray(mask_image.resize(image.size, Image.Resampling.NEAREST)) > 0
        if not keep.any():
            raise ValueError("the mask has no pixels here (empty inside the box, or too thin for the reduced size)")
    elif remove_background or (remove_background is None and has_white_backdrop(white)):
        keep = ~background_mask(white)
        if keep.mean() < 0.05:
            keep[:] = True
    pixels = rgb[keep].reshape(-1, 3)
    index = names[cells[keep]]
    counts = np.bincount(index, minlength=len(COLOR_NAMES))
    order = np.argsort(-counts, kind="stable")[:top]
    return [
        ColorShare(COLOR_NAMES[i], float(counts[i] / len(index)),
                   tuple(int(round(v)) for v in pixels[index == i].mean(0)))
        for i in order if counts[i] > 0
    ]
