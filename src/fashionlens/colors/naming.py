"""Each pixel named through the learned table, grouped by family: `named_colors` and its `ColorShare`."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable

import numpy as np
from PIL import Image

from fashionlens.colors.backdrop import backdrop_lightness, backdrop_mask, border
from fashionlens.colors.light import WhiteBalance, estimate_balance
from fashionlens.colors.table import name_families, name_table, rgb_cells, srgb_to_lab
from fashionlens.colors.vocabulary import COLOR_FAMILIES, COLOR_NAMES, family_of
from fashionlens.masks import mask_box

MAX_SIDE = 160
"""Images are reduced to this longest side first: a colour census needs no more, and it keeps calls ~ms."""
MIN_KEPT = 0.05
"""If removing the backdrop would leave less than this share of the region, everything is kept."""


@dataclass(frozen=True)
class ColorShare:
    name: str  # a fine name (COLOR_NAMES): navy, olive, cream
    fraction: float  # share of the garment's pixels in this family (centre-weighted), 0..1
    rgb: tuple[int, int, int]  # mean sRGB of those pixels (the garment's actual shade)
    family: str = ""  # one of COLOR_FAMILIES; empty: the family of `name`

    def __post_init__(self):
        if not self.family:
            object.__setattr__(self, "family", family_of(self.name) or self.name)

    @property
    def hex(self) -> str:
        return "#{:02x}{:02x}{:02x}".format(*self.rgb)

    def to_json(self) -> dict:
        return {"name": self.name, "family": self.family, "hex": self.hex, "fraction": round(self.fraction, 4),
                "rgb": list(self.rgb)}


def named_colors(
    image: Image.Image,
    box: tuple[float, float, float, float] | None = None,
    top: int = 3,
    *,
    mask: np.ndarray | None = None,
    remove_background: bool | None = None,
    balance: WhiteBalance | None = None,
) -> list[ColorShare]:
    """The `top` colour families covering most of the garment, largest share first, each with its fine name.

    `box` (x1, y1, x2, y2 in pixels) restricts the count to a detected garment. `remove_background`: None
    removes a white backdrop only when the region's border is mostly near-white (product photos); if that
    would leave under 5% of the pixels all pixels are kept. `mask` (bool, the whole image's size) counts only
    the garment's own pixels (inside `box` if given, else inside the mask's own box), with no backdrop removal.
    An empty mask is a ValueError (the caller falls back to the box). `balance`: the photo's light, from
    `estimate_balance(image)`; computed here from the whole image when not given (pass it to name several
    garments of one photo).
    """
    if balance is None:
        balance = estimate_balance(image)
    rgb, keep = _region(image, box, mask)
    studio = False
    if mask is None and remove_background is not False:
        keep, studio = _without_backdrop(rgb, force=bool(remove_background))
    if not studio and remove_background is not False:
        studio = _studio_photo(image)
    pixels = rgb[keep].reshape(-1, 3)
    weight = centre_weights(rgb.shape[:2])[keep]
    fine = name_table(product=studio)[rgb_cells(balance.apply(pixels))]
    families = name_families()[fine]
    per_name = np.bincount(fine, weight, minlength=len(COLOR_NAMES))
    totals = np.bincount(name_families(), per_name, minlength=len(COLOR_FAMILIES))
    counts = np.bincount(families, minlength=len(COLOR_FAMILIES))
    sums = np.stack([np.bincount(families, pixels[:, c], minlength=len(COLOR_FAMILIES)) for c in range(3)], axis=1)
    shares = []
    for f in np.argsort(-totals, kind="stable")[:top]:
        if totals[f] == 0:
            continue
        members = np.flatnonzero(name_families() == f)
        name = COLOR_NAMES[members[per_name[members].argmax()]]
        shares.append(ColorShare(name, float(totals[f] / totals.sum()),
                                 tuple(int(round(v)) for v in sums[f] / counts[f]), COLOR_FAMILIES[f]))
    return shares


CENTRE_SPREAD = 0.3
"""Pixels count less away from the region's centre (a Gaussian of this share of each side): a garment fills the
middle of its box or product photo, while a model's face and arms, or the background in a box's corners, lie at
the edges."""


@functools.lru_cache(maxsize=256)
def centre_weights(shape: tuple[int, int], spread: float = CENTRE_SPREAD) -> np.ndarray:
    h, w = shape
    y = (np.arange(h) - (h - 1) / 2) / max(1.0, spread * h)
    x = (np.arange(w) - (w - 1) / 2) / max(1.0, spread * w)
    return np.exp(-0.5 * (y[:, None] ** 2 + x[None, :] ** 2))


def _region(image: Image.Image, box, mask) -> tuple[np.ndarray, np.ndarray]:
    """The region's pixels at the census size (uint8 RGB) and which of them are the garment's."""
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
    if mask is None:
        return rgb, np.ones(rgb.shape[:2], dtype=bool)
    keep = np.asarray(mask_image.resize(image.size, Image.Resampling.NEAREST)) > 0
    if not keep.any():
        raise ValueError("the mask has no pixels here (empty inside the box, or too thin for the reduced size)")
    return rgb, keep


def _without_backdrop(rgb: np.ndarray, force: bool) -> tuple[np.ndarray, bool]:
    """Pixels that are not a studio backdrop (all of them where the region has none), and whether it has one."""
    everything = np.ones(rgb.shape[:2], dtype=bool)
    level = backdrop_lightness(srgb_to_lab(border(rgb)))
    if level is None and not force:
        return everything, False
    keep = ~backdrop_mask(srgb_to_lab(rgb), 100.0 if level is None else level)
    return (keep, level is not None) if keep.mean() >= MIN_KEPT else (everything, level is not None)


def garment_colors(image: Image.Image, box: tuple[float, float, float, float] | None = None,
                   mask: np.ndarray | None = None, *, balance: WhiteBalance | None = None,
                   top: int = 3) -> tuple[list[ColorShare], str]:
    """Colours of a garment's own pixels ("mask"), or of its box ("box") or the photo ("image") where the mask
    is missing or empty, with which of the three was counted."""
    if mask is not None and mask.any():
        try:
            return named_colors(image, box, top, mask=mask, balance=balance), "mask"
        except ValueError:  # a sliver that vanishes at the colour census's reduced size
            pass
    return named_colors(image, box, top, balance=balance), "box" if box is not None else "image"


def whole_photo_colors(image: Image.Image, garment_pixels: Callable[[], np.ndarray | None] | None = None, *,
                       balance: WhiteBalance | None = None, top: int = 3) -> tuple[list[ColorShare], str]:
    """A photo of one garment named whole, as every entry point names it (analyze, ingest, POST /v1/items): on a
    studio backdrop the namer leaves the backdrop out itself; on any other background (a floor, a bed, a wall)
    only `garment_pixels()` count (the parser's garment, a mask of the photo's size, asked for only then): the
    background is not the garment's colour."""
    studio = garment_pixels is None or _studio_photo(image)
    return garment_colors(image, mask=None if studio else garment_pixels(), balance=balance, top=top)


STUDIO_SIDE = 48


def _studio_photo(image: Image.Image) -> bool:
    """Whether the whole photo is a studio product shot (its border mostly one light neutral backdrop): a garment
    named from a box or mask on it is named with the product table."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    small = rgb.resize((STUDIO_SIDE, STUDIO_SIDE), Image.Resampling.NEAREST)  # a sample of the border: ~0.2 ms
    return backdrop_lightness(srgb_to_lab(border(np.asarray(small, dtype=np.uint8)))) is not None
