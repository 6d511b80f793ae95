"""Connected parts and morphology of bool masks in OpenCV, with scipy.ndimage's semantics, so the base install
needs no scipy: parts numbered in raster order of their first pixel (OpenCV's SAUF labelling; its block-based
default numbers 8-connected parts otherwise), the 3x3 cross as structuring element, and pixels outside the
mask read as background by the erosion (ndimage's border_value=0). tests/test_morphology.py holds them equal to
ndimage on random masks."""

from __future__ import annotations

import cv2
import numpy as np

CROSS = cv2.getStructuringElement(cv2.MORPH_CROSS, (3, 3))
"""ndimage's default structure: 4-connected neighbours."""


def connected_parts(mask: np.ndarray, connectivity: int = 4) -> tuple[np.ndarray, int]:
    """(labels int32 [H, W]: 0 background, 1..n the parts in raster order of their first pixel, n), as
    `ndimage.label` gives them (connectivity 8: with a 3x3 structure of ones)."""
    count, labels = cv2.connectedComponentsWithAlgorithm(np.asarray(mask, np.uint8), connectivity, cv2.CV_32S,
                                                         cv2.CCL_SAUF)
    return labels, count - 1


def dilation(mask: np.ndarray, iterations: int = 1) -> np.ndarray:
    """`ndimage.binary_dilation(mask, iterations=...)`: grown by the cross, `iterations` times."""
    return cv2.dilate(np.asarray(mask, np.uint8), CROSS, iterations=iterations).astype(bool)


def closing(mask: np.ndarray, iterations: int = 1) -> np.ndarray:
    """`ndimage.binary_closing(mask, iterations=...)`: the dilation, then an erosion for which pixels outside the
    mask are background (so a part touching the edge loses its edge pixels, as in ndimage)."""
    grown = cv2.dilate(np.asarray(mask, np.uint8), CROSS, iterations=iterations)
    return cv2.erode(grown, CROSS, iterations=iterations, borderType=cv2.BORDER_CONSTANT, borderValue=0).astype(bool)


def distance_to_background(mask: np.ndarray) -> np.ndarray:
    """Exact Euclidean distance of each True pixel to the nearest False one (0 on False pixels), float32; pixels
    outside the mask are not background (`ndimage.distance_transform_edt`)."""
    return cv2.distanceTransform(np.asarray(mask, np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
