"""The one in-memory type for boxes, shared by every annotation format, the detector and the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fashionlens.data.samples import SkippedInput


@dataclass
class Detections:
    """Boxes of one image in its original pixels, as (x1, y1, x2, y2); `confidence` is None for ground truth."""

    xyxy: np.ndarray  # float32 [n, 4]
    class_id: np.ndarray  # int64 [n], index into the dataset's or model's class list
    confidence: np.ndarray | None = None  # float32 [n]

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        self.class_id = np.asarray(self.class_id, dtype=np.int64).reshape(-1)
        if self.confidence is not None:
            self.confidence = np.asarray(self.confidence, dtype=np.float32).reshape(-1)
        if len(self.class_id) != len(self.xyxy) or (self.confidence is not None and len(self.confidence) != len(self.xyxy)):
            raise ValueError(f"Detections: {len(self.xyxy)} boxes, {len(self.class_id)} class ids, "
                             f"{None if self.confidence is None else len(self.confidence)} scores")

    @classmethod
    def empty(cls, with_confidence: bool = False) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.int64), np.zeros(0, np.float32) if with_confidence else None)

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index) -> Detections:
        """Select boxes by a boolean mask, an index array or a slice."""
        return Detections(self.xyxy[index], self.class_id[index], None if self.confidence is None else self.confidence[index])

    @property
    def area(self) -> np.ndarray:
        return (self.xyxy[:, 2] - self.xyxy[:, 0]) * (self.xyxy[:, 3] - self.xyxy[:, 1])


@dataclass
class AnnotatedImage:
    path: Path
    width: int
    height: int
    detections: Detections


@dataclass
class DetectionDataset:
    """Images with boxes and the class list their `class_id`s index; what could not be read is in `skipped`."""

    classes: list[str]
    images: list[AnnotatedImage]
    source: str = ""
    skipped: list[SkippedInput] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, indices) -> DetectionDataset:
        return DetectionDataset(self.classes, [self.images[i] for i in indices], self.source, [])
