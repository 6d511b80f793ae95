"""Analyses as one COCO file: each photo an image, each garment an annotation with its score and, where it has a
mask, its `segmentation` (polygons) and `area`, so detection and instance-mask tools (pycocotools' `loadRes`,
FiftyOne) read fashionlens' output directly."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fashionlens.detect.detections import Detections
from fashionlens.detect.formats.coco import annotation_records
from fashionlens.pipeline.result import Analysis


class CocoExport:
    """Add analyses one by one (masks become polygons at once, so a large folder never holds them all)."""

    def __init__(self, classes: list[str] | None = None):
        self.classes = list(classes or [])
        self.images: list[dict] = []
        self.annotations: list[dict] = []

    def add(self, file_name: str | Path, analysis: Analysis) -> None:
        image_id = len(self.images) + 1
        self.images.append({"id": image_id, "file_name": str(file_name), "width": analysis.width,
                            "height": analysis.height})
        garments = [g for g in analysis.items if not g.whole_image]
        if not garments:
            return
        for g in garments:
            if g.label not in self.classes:
                self.classes.append(g.label)
        shape = (analysis.height, analysis.width)
        masks = None
        if any(g.mask is not None for g in garments):
            masks = np.stack([g.mask if g.mask is not None else np.zeros(shape, bool) for g in garments])
        detections = Detections(np.array([g.box for g in garments], np.float32),
                                np.array([self.classes.index(g.label) for g in garments], np.int64),
                                np.array([g.score for g in garments], np.float32), masks)
        self.annotations += annotation_records(detections, image_id, len(self.annotations) + 1)

    def to_dict(self) -> dict:
        return {"images": self.images, "annotations": self.annotations,
                "categories": [{"id": i + 1, "name": name} for i, name in enumerate(self.classes)]}
