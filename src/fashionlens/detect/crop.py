"""One image per garment: each annotated or detected box cut out into a folder per class, for attribute training.

With a mask mode the crop keeps only the garment's own pixels (`Detections.mask`): the rest of the box is white
(a JPEG, like a product shot) or transparent (a PNG), so a model trained on crops never learns the neighbour's
sleeve or the street behind. `square` pads each crop to a square on white, as ultralytics' `save_one_box` can:
a classifier's centre crop then keeps the whole garment (a tall pair of trousers keeps its hems and waist).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from fashionlens.data.samples import SkippedInput
from fashionlens.detect.boxed_images import Items, readable_images, with_classes
from fashionlens.detect.formats.output import save_image


MASK_MODES = ("white", "transparent")


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


def _masked(crop: Image.Image, inside: np.ndarray, mode: str) -> Image.Image:
    """The crop with everything outside `inside` (bool, the crop's size) white, or transparent."""
    if mode == "transparent":
        rgba = crop.convert("RGBA")
        rgba.putalpha(Image.fromarray(inside.astype(np.uint8) * 255))
        return rgba
    rgb = np.array(crop.convert("RGB"))
    rgb[~inside] = 255
    return Image.fromarray(rgb)


def square_on_white(crop: Image.Image) -> Image.Image:
    """The crop centred on a white (or, with an alpha channel, transparent) square as wide as its longer side."""
    side = max(crop.size)
    if crop.width == crop.height:
        return crop
    fill = (255, 255, 255, 0) if crop.mode == "RGBA" else (255, 255, 255)
    return ImageOps.pad(crop, (side, side), color=fill)


def cut_out(image: Image.Image, box, padding: float = 0.0, inside: np.ndarray | None = None,
            mask: str | None = None, square: bool = False) -> Image.Image:
    """One object's crop: its box grown by `padding`, blanked outside `inside` (bool, the image's size; `mask`
    says white or transparent) and padded to a square if asked; the one way crops are made, for training
    folders and the pipeline alike."""
    area = padded_box(box, padding, *image.size)
    crop = image.crop(area)
    if mask is not None and inside is not None:
        x1, y1, x2, y2 = area
        crop = _masked(crop, inside[y1:y2, x1:x2], mask)
    return square_on_white(crop) if square else crop


def crop_objects(data: Items, out_dir: str | Path,
                 padding: float = 0.0, classes: list[str] | None = None, progress: bool = True,
                 mask: str | None = None, square: bool = False) -> CropReport:
    """Write `out_dir/<class>/<image>_<n>.jpg` for box n of every image; unreadable images are reported and skipped.

    `data` is a dataset, or (image path, detections) pairs with `classes` naming their class ids. `mask`
    ("white" or "transparent", the latter written as `.png`) blanks the crop outside the object's mask; an
    object without a mask (or with an empty one) is reported in `skipped`. `square` pads each crop to a square.
    """
    if padding < 0:
        raise ValueError(f"padding must be >= 0 (a fraction of the box size), got {padding}")
    if mask is not None and mask not in MASK_MODES:
        raise ValueError(f"mask must be one of {', '.join(MASK_MODES)}, not {mask!r}")
    suffix = ".png" if mask == "transparent" else ".jpg"
    classes, pairs = with_classes(data, classes, "crop_objects")
    out_dir = Path(out_dir)
    report = CropReport(out_dir, {})
    counts: Counter[str] = Counter()
    for path, image, detections, name in readable_images(pairs, report.skipped, "cropping objects", progress):
        stem = name.with_suffix("").as_posix().replace("/", "__")
        for n, (box, class_id) in enumerate(zip(detections.xyxy.tolist(), detections.class_id.tolist(), strict=True), 1):
            if not 0 <= class_id < len(classes):
                report.skipped.append(SkippedInput(f"{path} (box {n})", f"class id {class_id} outside the {len(classes)} classes"))
                continue
            x1, y1, x2, y2 = padded_box(box, padding, *image.size)
            if x2 <= x1 or y2 <= y1:
                report.skipped.append(SkippedInput(f"{path} (box {n})", f"box {box} has no area inside the image"))
                continue
            inside = None
            if mask is not None:
                masks = detections.mask
                if masks is None or not masks[n - 1].any():
                    report.skipped.append(SkippedInput(f"{path} (box {n})", "no mask for this object (the data has no "
                                                       "segmentation for it)"))
                    continue
                if masks.shape[1:] != (image.height, image.width):
                    report.skipped.append(SkippedInput(f"{path} (box {n})", f"mask is {masks.shape[2]}x"
                                                       f"{masks.shape[1]}, the image {image.width}x{image.height}"))
                    continue
                inside = masks[n - 1]
                if not inside[y1:y2, x1:x2].any():
                    report.skipped.append(SkippedInput(f"{path} (box {n})", "its mask has no pixels inside the box"))
                    continue
            crop = cut_out(image, box, padding, inside, mask, square)
            target = out_dir / folder_name(classes[class_id]) / f"{stem}_{n}{suffix}"
            save_image(crop, target)
            report.written.append(target)
            counts[classes[class_id]] += 1
    report.counts = dict(sorted(counts.items()))
    return report
