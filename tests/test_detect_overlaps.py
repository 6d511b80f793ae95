"""Cross-class suppression: one garment as two classes loses its weaker twin, layered classes stay together."""

from __future__ import annotations

import numpy as np

from fashionlens.detect.detections import Detections
from fashionlens.detect.overlaps import suppress_cross_class

CLASSES = ["sunglass", "hat", "jacket", "shirt", "pants", "shorts", "skirt", "dress", "bag", "shoe"]


def _found(rows: list[tuple[list[float], str, float]]) -> Detections:
    return Detections([r[0] for r in rows], [CLASSES.index(r[1]) for r in rows], [r[2] for r in rows])


def test_the_weaker_of_two_classes_on_one_box_goes_but_layers_and_same_class_pairs_stay():
    top = [10, 10, 110, 110]
    nearly = [12, 11, 110, 112]  # IoU about 0.95 with `top`
    found = _found([(top, "shirt", 0.5), (nearly, "pants", 0.8), (nearly, "jacket", 0.6), ([0, 200, 40, 240], "shoe", 0.9),
                    ([5, 201, 41, 240], "shoe", 0.3)])
    kept = suppress_cross_class(found, CLASSES)
    names = [CLASSES[c] for c in kept.class_id]
    assert names == ["shoe", "pants", "shoe"]  # best first; jacket and shirt lose to pants; two shoes are per-class NMS's
    np.testing.assert_allclose(kept.confidence, [0.9, 0.8, 0.3])
    layered = suppress_cross_class(_found([(top, "jacket", 0.9), (nearly, "shirt", 0.7), (nearly, "skirt", 0.6)]), CLASSES)
    assert [CLASSES[c] for c in layered.class_id] == ["jacket", "shirt"]  # a shirt under a jacket; not a skirt
    apart = _found([(top, "shirt", 0.9), ([10, 60, 110, 160], "pants", 0.8)])  # IoU 0.33: two garments
    assert len(suppress_cross_class(apart, CLASSES)) == 2
    assert len(suppress_cross_class(apart, CLASSES, iou=0.3)) == 1
    assert len(suppress_cross_class(Detections.empty(with_confidence=True), CLASSES)) == 0
