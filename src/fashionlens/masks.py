"""Masks as polygons and back: OpenCV traces and simplifies outlines, pycocotools rasterises them, as COCO does."""

from __future__ import annotations

import cv2
import numpy as np
from pycocotools import mask as mask_utils


def polygons_from_mask(mask: np.ndarray, *, tolerance: float = 1.0, min_area: float = 4.0) -> list[list[float]]:
    """Outer outlines of a bool mask as flat [x1, y1, x2, y2, ...] lists in pixels, simplified by Douglas-Peucker
    within `tolerance` pixels; parts smaller than `min_area` pixels are dropped."""
    contours, _ = cv2.findContours(np.ascontiguousarray(mask, dtype=np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polygons = []
    for contour in contours:
        if cv2.contourArea(contour) < min_area:
            continue
        points = cv2.approxPolyDP(contour, tolerance, True).reshape(-1, 2)
        if len(points) >= 3:
            polygons.append([round(float(v), 1) for v in points.ravel()])
    return polygons


def mask_from_polygons(polygons: list[list[float]], height: int, width: int) -> np.ndarray:
    if not polygons:
        return np.zeros((height, width), bool)
    rle = mask_utils.merge(mask_utils.frPyObjects([list(map(float, p)) for p in polygons], height, width))
    return mask_utils.decode(rle).astype(bool)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0
