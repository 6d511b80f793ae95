"""One garment, one class: of two boxes of different classes that overlap almost entirely, the lower-scored one
is dropped, since the detector suppresses overlaps only within a class (a top comes back as jacket and shirt).

Classes that really are worn on top of each other are kept together (`LAYERED`): a shirt under an open jacket,
a bag over a dress. Measured on colorful-fashion's test photos (`benchmarks/detect_levers.py`, see the README):
it lowers mAP a little, but removes most wrong-class twins among the boxes the pipeline shows.
"""

from __future__ import annotations

import numpy as np

from fashionlens.boxes import box_iou
from fashionlens.detect.detections import Detections

LAYERED: frozenset[frozenset[str]] = frozenset({frozenset(("jacket", "shirt")), frozenset(("jacket", "dress")),
                                                frozenset(("bag", "dress")), frozenset(("bag", "shirt")),
                                                frozenset(("bag", "jacket"))})
"""Class pairs that may share a box: a layer and what is under it, or a bag carried in front of a garment."""


def suppress_cross_class(found: Detections, classes: list[str] | tuple[str, ...], iou: float = 0.7,
                         layered: frozenset[frozenset[str]] = LAYERED) -> Detections:
    """`found` without the lower-scored box of each pair of different, non-layered classes at IoU >= `iou`;
    the kept boxes come best first."""
    if len(found) < 2:
        return found
    order = np.argsort(-found.confidence, kind="stable")
    found = found[order]
    overlap = box_iou(found.xyxy, found.xyxy)
    names = [classes[c] for c in found.class_id]
    keep: list[int] = []
    for i in range(len(found)):
        if not any(overlap[i, j] >= iou and names[i] != names[j] and frozenset((names[i], names[j])) not in layered
                   for j in keep):
            keep.append(i)
    return found[np.asarray(keep, np.int64)]


__all__ = ["LAYERED", "suppress_cross_class"]
