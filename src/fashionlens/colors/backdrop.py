"""A product photo's studio backdrop, found so it is not counted as the garment's colour.

The backdrop is the near-white reached from the image border without crossing an edge: near-white means very
close to pure white (an off-white garment is not backdrop), and the flood stops at any visible change of
lightness (a garment's outline or shading), so a white T-shirt on white is kept whole instead of leaving only
its print. Near-white the flood cannot reach (enclosed by an outline) is the garment's own.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

BACKDROP_L, BACKDROP_CHROMA = 96.0, 4.0
"""Near-white: CIELAB L* at least 96 and chroma at most 4 (a studio backdrop is blown out to ~100; an off-white
garment sits at 85-95)."""
EDGE_STEP = 2.0
"""A change of L* above this between neighbours is an edge the flood does not cross (JPEG noise on a blown-out
backdrop stays below 1)."""
BACKDROP_BORDER_SHARE = 0.6
"""A region is a product photo on a backdrop when at least this share of its border is near-white."""


def near_white(lab: np.ndarray) -> np.ndarray:
    return (lab[..., 0] >= BACKDROP_L) & (np.hypot(lab[..., 1], lab[..., 2]) <= BACKDROP_CHROMA)


def border(pixels: np.ndarray) -> np.ndarray:
    """The outermost ring of an image's pixels (H x W x C), as rows."""
    return np.concatenate([pixels[0], pixels[-1], pixels[1:-1, 0], pixels[1:-1, -1]])


def has_white_backdrop(ring_lab: np.ndarray) -> bool:
    """Whether a region is a product photo: most of its border (Lab rows) is near-white."""
    return bool(near_white(ring_lab).mean() >= BACKDROP_BORDER_SHARE)


def backdrop_mask(lab: np.ndarray) -> np.ndarray:
    """True where a pixel is the backdrop: near-white, connected to the border through near-white pixels with
    no edge between them."""
    lightness = lab[..., 0]
    step = np.zeros_like(lightness)
    step[:, 1:] = np.abs(np.diff(lightness, axis=1))
    step[1:, :] = np.maximum(step[1:, :], np.abs(np.diff(lightness, axis=0)))
    open_white = near_white(lab) & (step <= EDGE_STEP)
    labels, _ = ndimage.label(open_white)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    flooded = np.isin(labels, border[border > 0])
    # the flood's own rim (near-white pixels on an edge beside it) is backdrop too, not a garment's outline
    return flooded | (ndimage.binary_dilation(flooded) & near_white(lab))
