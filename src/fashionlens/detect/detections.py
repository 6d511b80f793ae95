"""The one in-memory type for boxes, shared by every annotation format, the detector and the store."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fashionlens.data.samples import SkippedInput


@dataclass
class Detections:
    """Boxes of one image in its original pixels, as (x1, y1, x2, y2); `confidence` is None for ground truth.

    `mask`, when given, is each object's own pixels: bool [n, height, width] over the whole image, so crops,
    colours, drawing and export all read one array. An all-False row means that object has no mask (e.g. a COCO
    annotation with only a bbox next to ones with polygons). `data` holds more per-object arrays of length n, as
    supervision's does: the pipeline keeps each garment's `class_name` and `source` there, so the stages pass one
    object instead of parallel lists.
    """

    xyxy: np.ndarray  # float32 [n, 4]
    class_id: np.ndarray  # int64 [n], index into the dataset's or model's class list
    confidence: np.ndarray | None = None  # float32 [n]
    mask: np.ndarray | None = None  # bool [n, height, width]
    data: dict[str, np.ndarray] = field(default_factory=dict)  # name -> [n] per-object values

    def __post_init__(self) -> None:
        self.xyxy = np.asarray(self.xyxy, dtype=np.float32).reshape(-1, 4)
        self.class_id = np.asarray(self.class_id, dtype=np.int64).reshape(-1)
        if self.confidence is not None:
            self.confidence = np.asarray(self.confidence, dtype=np.float32).reshape(-1)
        if len(self.class_id) != len(self.xyxy) or (self.confidence is not None and len(self.confidence) != len(self.xyxy)):
            raise ValueError(f"Detections: {len(self.xyxy)} boxes, {len(self.class_id)} class ids, "
                             f"{None if self.confidence is None else len(self.confidence)} scores")
        if self.mask is not None:
            self.mask = _bool_masks(self.mask, len(self.xyxy))
        self.data = {k: np.asarray(v) if len(v) else np.asarray(v, dtype=object) for k, v in self.data.items()}
        for key, values in self.data.items():
            if len(values) != len(self.xyxy):
                raise ValueError(f"Detections: data[{key!r}] has {len(values)} values for {len(self.xyxy)} boxes")

    @classmethod
    def empty(cls, with_confidence: bool = False, mask_size: tuple[int, int] | None = None) -> Detections:
        """No boxes; `mask_size` (height, width) gives an empty [0, height, width] mask, for images whose
        detections carry masks."""
        mask = None if mask_size is None else np.zeros((0, *mask_size), bool)
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.int64),
                   np.zeros(0, np.float32) if with_confidence else None, mask)

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index) -> Detections:
        """Select boxes by a boolean mask, an index array, a slice or one position (still a `Detections` of one)."""
        if isinstance(index, (int, np.integer)):
            index = [index]  # keeps the mask's [n, H, W] shape
        return Detections(self.xyxy[index], self.class_id[index],
                          None if self.confidence is None else self.confidence[index],
                          None if self.mask is None else self.mask[index],
                          {k: v[index] for k, v in self.data.items()})

    @property
    def area(self) -> np.ndarray:
        return (self.xyxy[:, 2] - self.xyxy[:, 0]) * (self.xyxy[:, 3] - self.xyxy[:, 1])


def _bool_masks(mask, n: int) -> np.ndarray:
    """`mask` checked to be [n, H, W] and boolean (0/1 integers are accepted; scores must be thresholded first,
    since casting them would silently turn every non-zero score into the object)."""
    mask = np.asarray(mask)
    if mask.ndim != 3 or len(mask) != n:
        raise ValueError(f"Detections: mask has shape {mask.shape}, expected ({n}, height, width) for {n} boxes")
    if mask.dtype == bool:
        return mask
    if mask.dtype.kind in "iu" and (mask.size == 0 or (mask.min() >= 0 and mask.max() <= 1)):
        return mask.astype(bool)
    raise ValueError(f"Detections: mask must be boolean (or 0/1 integers), got {mask.dtype}"
                     + (" values; threshold scores first" if mask.dtype.kind == "f" else ""))


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
