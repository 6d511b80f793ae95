"""A garment's own pixels as a bool mask [H, W], and the COCO polygons and RLE it travels as.

Coordinates follow COCO (and pycocotools' rasteriser): pixel (x, y) covers [x, x + 1] x [y, y + 1], so a mask
filling columns 5..39 has its polygon edge at x = 5 and x = 40. OpenCV traces contours through pixel centres,
half a pixel inside that edge; `polygons_from_mask` moves each contour out by that half pixel, which is what
keeps small garments (a 30 px shoe) from losing a tenth of their area on each round trip.
"""

from __future__ import annotations

import numpy as np

DEFAULT_MIN_AREA = 8.0
"""Parts smaller than this many pixels are dropped from polygons: specks a mask leaves at a garment's edge
(a 3x3 blob is kept)."""
_HALF = 0.5
_SHARP = 0.5  # 1 + cos(angle between the normals) below this: a spike, capped square instead of mitred


def segmentation_rle(segmentation, height: int, width: int) -> dict:
    """One compressed RLE for a COCO segmentation: polygons (merged, as pycocotools' `annToRLE` does), or an
    RLE, compressed or not."""
    from pycocotools import mask as mask_utils

    if isinstance(segmentation, list):
        polygons = [[float(v) for v in polygon] for polygon in segmentation]
        bad = [len(p) for p in polygons if len(p) < 6 or len(p) % 2]
        if not polygons or bad:
            # frPyObjects would read a 4-value polygon as a bbox, so short ones are refused here
            raise ValueError(f"polygons need an even number of at least 6 coordinates, got lengths {bad or [0]}")
        return mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
    if isinstance(segmentation, dict) and "counts" in segmentation:
        if isinstance(segmentation["counts"], list):  # uncompressed
            return mask_utils.frPyObjects(segmentation, height, width)
        return segmentation
    raise ValueError("segmentation is neither polygons nor RLE")


def mask_from_segmentation(segmentation, height: int, width: int) -> np.ndarray:
    """Bool [height, width] mask of a COCO segmentation (polygons or RLE); an RLE of another size is refused."""
    from pycocotools import mask as mask_utils

    rle = segmentation_rle(segmentation, height, width)
    if [int(v) for v in rle["size"]] != [height, width]:
        raise ValueError(f"RLE of size {list(rle['size'])} (height, width) for a {width}x{height} image")
    return mask_utils.decode(rle).astype(bool)


def mask_from_polygons(polygons, height: int, width: int) -> np.ndarray:
    """Bool [height, width] mask covering the union of flat [x1, y1, x2, y2, ...] pixel polygons (none: all False)."""
    polygons = list(polygons)
    if not polygons:
        return np.zeros((height, width), bool)
    return mask_from_segmentation(polygons, height, width)


def mask_to_rle(mask: np.ndarray) -> dict:
    """Compressed COCO RLE of a bool [H, W] mask, JSON-ready (`counts` as text)."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(np.asarray(mask, dtype=np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def _outset(points: np.ndarray, width: int, height: int) -> np.ndarray:
    """A closed contour through pixel centres moved out to the pixels' outer edges, in COCO coordinates.

    Each vertex moves along its two edges' outward normals (a mitre: exact at the right-angle corners pixels
    make); a spike (a 1 px wide line's end, a lone pixel) gets two square-cap corners instead of an endless mitre.
    """
    if len(points) == 1:  # one lone pixel (or a run the tracer collapsed to one point)
        x, y = points[0]
        return np.array([[x, y], [x + 1, y], [x + 1, y + 1], [x, y + 1]], np.float64)
    p = points.astype(np.float64) + _HALF  # centres in COCO coordinates
    d_out = np.roll(p, -1, axis=0) - p  # edge i -> i+1
    d_out /= np.linalg.norm(d_out, axis=1, keepdims=True)
    d_in = np.roll(d_out, 1, axis=0)  # edge i-1 -> i
    twice_area = np.sum(p[:, 0] * np.roll(p[:, 1], -1) - np.roll(p[:, 0], -1) * p[:, 1])
    sign = 1.0 if twice_area >= 0 else -1.0  # a 2-point contour has no area: either side is outside
    n_in, n_out = sign * np.stack([d_in[:, 1], -d_in[:, 0]], 1), sign * np.stack([d_out[:, 1], -d_out[:, 0]], 1)
    out = []
    for v, a, b, t_in, t_out in zip(p, n_in, n_out, d_in, d_out, strict=True):
        denom = 1.0 + float(a @ b)
        if denom >= _SHARP:
            out.append(v + _HALF * (a + b) / denom)
        else:
            out.extend([v + _HALF * (a + t_in), v + _HALF * (b - t_out)])
    out = np.asarray(out)
    out[:, 0] = out[:, 0].clip(0, width)
    out[:, 1] = out[:, 1].clip(0, height)
    return out


def polygons_from_mask(mask: np.ndarray, *, tolerance: float = 1.0, min_area: float = DEFAULT_MIN_AREA
                       ) -> list[list[float]]:
    """Outer contours of a bool [H, W] mask as flat COCO [x1, y1, x2, y2, ...] pixel polygons, largest first.

    Contours are simplified by Douglas-Peucker (`tolerance`, in pixels) and parts under `min_area` pixels are
    dropped; holes are not kept (COCO polygons of one object are a union). An empty mask gives [].
    """
    import cv2

    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be [height, width], got shape {mask.shape}")
    height, width = mask.shape
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    polygons = []
    for contour in contours:
        if tolerance > 0:
            contour = cv2.approxPolyDP(contour, tolerance, True)
        polygon = _outset(contour.reshape(-1, 2), width, height)
        x, y = polygon[:, 0], polygon[:, 1]
        area = 0.5 * abs(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))
        if len(polygon) >= 3 and area >= min_area and area > 0:
            polygons.append((area, [round(float(v), 2) for v in polygon.reshape(-1)]))
    return [polygon for _, polygon in sorted(polygons, key=lambda item: -item[0])]


def mask_box(mask: np.ndarray) -> tuple[float, float, float, float] | None:
    """(x1, y1, x2, y2) around a bool [H, W] mask's pixels, in COCO coordinates (edges, not centres); None if empty."""
    mask = np.asarray(mask, dtype=bool)
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not len(rows):
        return None
    return float(cols[0]), float(rows[0]), float(cols[-1] + 1), float(rows[-1] + 1)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two bool masks of one shape; 0.0 when both are empty (as pycocotools)."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError(f"masks of shapes {a.shape} and {b.shape}")
    union = np.count_nonzero(a | b)
    return float(np.count_nonzero(a & b) / union) if union else 0.0
