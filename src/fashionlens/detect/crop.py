"""One image per garment: each annotated or detected box cut out into a folder per class, for attribute training."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from fashionlens.data.samples import SkippedInput
from fashionlens.detect.boxed_images import Items, readable_images, with_classes
from fashionlens.detect.formats.output import save_image


@dataclass
class CropReport:
    out_dir: Path
    counts: dict[str, int]  # class -> crops written
    written: list[Path] = field(default_factory=list)
    skipped: list[SkippedInput] = field(default_factory=list)


def padded_box(box, padding: float, width: int, height: int) -> tuple[int, int, int, int]:
    """The box grown by `padding` x its own width/height on each side, on whole pixels, clipped to the image."""
    x1, y1, x2, y2 = box
    dx, dy = padding * (x2 - x1), padding * (y2 - y1)
    return (max(0, math.floor(x1 - dx)), max(0, math.floor(y1 - dy)),
            min(width, math.ceil(x2 + dx)), min(height, math.ceil(y2 + dy)))


def folder_name(class_name: str) -> str:
    """A class name usable as one folder name (K-Fashion has names like "키치/키덜트")."""
    return class_name.replace("/", "_").replace("\\", "_").strip(". ") or "_"


def crop_objects(data: Items, out_dir: str | Path,
                 padding: float = 0.0, classes: list[str] | None = None, progress: bool = True) -> CropReport:
    """Write `out_dir/<class>/<image>_<n>.jpg` for box n of every image; unreadable images are reported and skipped.

    `data` is a dataset, or (image path, detections) pairs with `classes` naming their class ids.
    """
    if padding < 0:
        raise ValueError(f"padding must be >= 0 (a fraction of the box size), got {padding}")
    classes, pairs = with_classes(data, classes, "crop_objects")
    out_dir = Path(out_dir)
    report = CropReport(out_dir, {})
    counts: Counter[str] = Counter()
    for path, image, detections, name in readable_images(pairs, report.skipped, "cropping objects", progress):
        stem = name.with_suffix("").as_posix().replace("/", "__")
        for n, (box, class_id) in enumerate(zip(detections.xyxy.tolist(), detections.class_id.tolist()), 1):
            if not 0 <= class_id < len(classes):
                report.skipped.append(SkippedInput(f"{path} (box {n})", f"class id {class_id} outside the {len(classes)} classes"))
                continue
            x1, y1, x2, y2 = padded_box(box, padding, *image.size)
            if x2 <= x1 or y2 <= y1:
                report.skipped.append(SkippedInput(f"{path} (box {n})", f"box {box} has no area inside the image"))
                continue
            target = out_dir / folder_name(classes[class_id]) / f"{stem}_{n}.jpg"
            save_image(image.crop((x1, y1, x2, y2)), target)
            report.written.append(target)
            counts[classes[class_id]] += 1
    report.counts = dict(sorted(counts.items()))
    return report
