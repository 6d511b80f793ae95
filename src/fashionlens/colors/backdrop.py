"""A product photo's studio backdrop, found so it is not counted as the garment's colour.

The backdrop is a light, near-neutral shade that most of the region's border shares (pure white, or the light
grey of a studio sweep). It is the backdrop-coloured area reached from the border without crossing an edge: the
flood stops at any visible change of lightness (a garment's outline or shading), so a white T-shirt on white is
kept whole instead of leaving only its print. Backdrop-coloured pixels the flood cannot reach are the garment's.
"""

from __future__ import annotations

import numpy as np

from fashionlens.morphology import connected_parts, dilation

BACKDROP_MIN_L, BACKDROP_CHROMA = 75.0, 6.0
"""A backdrop is light (CIELAB L* at least 75) and near-neutral (chroma at most 6)."""
BACKDROP_MATCH_L = 10.0
"""A pixel matches the backdrop within this many L* (a studio sweep darkens towards the corners)."""
EDGE_STEP = 2.0
"""A change of L* above this between neighbours is an edge the flood does not cross (JPEG noise on a blown-out
backdrop stays below 1)."""
BACKDROP_BORDER_SHARE = 0.6
"""A region is a product photo on a backdrop when at least this share of its border matches the backdrop."""


def border(pixels: np.ndarray) -> np.ndarray:
    """The outermost ring of an image's pixels (H x W x C), as rows."""
    return np.concatenate([pixels[0], pixels[-1], pixels[1:-1, 0], pixels[1:-1, -1]])


def backdrop_lightness(ring_lab: np.ndarray) -> float | None:
    """The backdrop's L* if the region is a product photo (most of its border one light neutral shade), else None."""
    neutral = (np.hypot(ring_lab[:, 1], ring_lab[:, 2]) <= BACKDROP_CHROMA) & (ring_lab[:, 0] >= BACKDROP_MIN_L)
    if neutral.mean() < BACKDROP_BORDER_SHARE:
        return None
    level = float(np.median(ring_lab[neutral, 0]))
    matching = neutral & (np.abs(ring_lab[:, 0] - level) <= BACKDROP_MATCH_L)
    return level if matching.mean() >= BACKDROP_BORDER_SHARE else None


def backdrop_mask(lab: np.ndarray, level: float) -> np.ndarray:
    """True where a pixel is the backdrop (of lightness `level`): backdrop-coloured and connected to the border
    through backdrop-coloured pixels with no edge between them."""
    lightness = lab[..., 0]
    like = (np.abs(lightness - level) <= BACKDROP_MATCH_L) | (lightness >= max(level, 99.0))
    like &= np.hypot(lab[..., 1], lab[..., 2]) <= BACKDROP_CHROMA
    step = np.zeros_like(lightness)
    step[:, 1:] = np.abs(np.diff(lightness, axis=1))
    step[1:, :] = np.maximum(step[1:, :], np.abs(np.diff(lightness, axis=0)))
    labels, _ = connected_parts(like & (step <= EDGE_STEP))
    ring = border(labels)
    flooded = np.isin(labels, np.unique(ring[ring > 0]))
    # the flood's own rim (backdrop-coloured pixels on an edge beside it) is backdrop too, not a garment's outline
    return flooded | (dilation(flooded) & like)
