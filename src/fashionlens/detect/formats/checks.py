"""What every annotation reader checks the same way: the image behind a label, its size, each box and class."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from fashionlens.data.samples import SkippedInput
from fashionlens.detect.detections import AnnotatedImage, Detections
from fashionlens.images import IMAGE_SUFFIXES

CLIP_TOLERANCE = 2.0
"""Pixels a box may stick out of the image and still be clipped to it (rounding in labelling tools);
further out, the box is reported and skipped, since its coordinates are in some other frame."""

_TRANSPOSED = {5, 6, 7, 8}  # EXIF orientations that swap width and height


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) of the upright image, as `load_image` will return it, read from the header only."""
    if not path.is_file():
        raise ValueError("image file not found")
    try:
        with Image.open(path) as image:
            width, height = image.size
            orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
    except (UnidentifiedImageError, OSError) as exc:
        raise ValueError(f"not a readable image ({exc})") from None
    return (height, width) if orientation in _TRANSPOSED else (width, height)


def find_image(folder: Path, name: str | None, stem: str) -> Path | None:
    """The image `name` in `folder`, else any image there with the same stem (labels often drop the suffix)."""
    if name:
        candidate = folder / name
        if candidate.is_file():
            return candidate
        stem = Path(name).stem
    for suffix in IMAGE_SUFFIXES:
        for candidate in (folder / f"{stem}{suffix}", folder / f"{stem}{suffix.upper()}"):
            if candidate.is_file():
                return candidate
    return None


def clean_box(box, width: int, height: int) -> tuple[list[float] | None, str]:
    """The box clipped to the image, or None and why it cannot be used."""
    x1, y1, x2, y2 = (float(v) for v in box)
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        return None, f"non-finite coordinates {box}"
    tol = CLIP_TOLERANCE
    if min(x1, x2) < -tol or min(y1, y2) < -tol or max(x1, x2) > width + tol or max(y1, y2) > height + tol:
        return None, (f"box ({x1:g}, {y1:g}, {x2:g}, {y2:g}) lies outside the {width}x{height} image "
                      f"by more than {tol:g} px")
    x1, x2 = min(max(x1, 0.0), width), min(max(x2, 0.0), width)
    y1, y2 = min(max(y1, 0.0), height), min(max(y2, 0.0), height)
    if x2 <= x1 or y2 <= y1:
        return None, f"degenerate box ({x1:g}, {y1:g}, {x2:g}, {y2:g}): no area"
    return [x1, y1, x2, y2], ""


def polygon_box(points) -> list[float]:
    """Bounding box of a flat [x1, y1, x2, y2, ...] point list or a list of [x, y] pairs."""
    xy = np.asarray(points, dtype=np.float64).reshape(-1, 2)
    if len(xy) < 3:
        raise ValueError(f"polygon with {len(xy)} point(s); at least 3 needed")
    return [float(xy[:, 0].min()), float(xy[:, 1].min()), float(xy[:, 0].max()), float(xy[:, 1].max())]


def read_class_file(path: Path) -> list[str]:
    """One class name a line (labels.txt, classes.txt); blank lines ignored."""
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not names:
        raise ValueError(f"{path}: class file is empty")
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: class names repeat")
    return names


@dataclass
class ImageBuilder:
    """Collects one image's boxes, checking each one and reporting the ones it drops under `source`."""

    source: str
    width: int
    height: int
    skipped: list[SkippedInput]
    boxes: list[list[float]] = field(default_factory=list)
    class_ids: list[int] = field(default_factory=list)

    def add(self, box, class_id: int | None, what: str, class_name: str = "") -> None:
        """`what` names the box inside the file (e.g. "object 3", "line 7") for the report."""
        if class_id is None:
            self.skipped.append(SkippedInput(f"{self.source} ({what})", f"unknown class {class_name!r}"))
            return
        clean, reason = clean_box(box, self.width, self.height)
        if clean is None:
            self.skipped.append(SkippedInput(f"{self.source} ({what})", reason))
            return
        self.boxes.append(clean)
        self.class_ids.append(class_id)

    def build(self, path: Path) -> AnnotatedImage:
        return AnnotatedImage(path, self.width, self.height, Detections(np.asarray(self.boxes).reshape(-1, 4), self.class_ids))
