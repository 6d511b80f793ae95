"""Boxes drawn on images, with class colour, label and score, so a person can check what a model or a label file says."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, ImageColor, ImageDraw, ImageFont

from fashionlens.data.samples import SkippedInput
from fashionlens.detect.detections import Detections
from fashionlens.detect.boxed_images import Items, readable_images, with_classes
from fashionlens.detect.formats.output import save_image


def class_colour(class_id: int) -> tuple[int, int, int]:
    """A stable, well-separated colour per class (golden-angle hue steps)."""
    return ImageColor.getrgb(f"hsl({int(class_id) * 137.508 % 360:.0f}, 85%, 50%)")


def drawing_order(detections: Detections) -> list[int]:
    """Indices weakest first, so the strongest box and label are painted last, on top of any they overlap
    (input order where there are no scores)."""
    if detections.confidence is None:
        return list(range(len(detections)))
    return sorted(range(len(detections)), key=lambda i: float(detections.confidence[i]))


def draw_detections(image: Image.Image, detections: Detections, classes: list[str],
                    colour: tuple[int, int, int] | None = None) -> Image.Image:
    """A copy of `image` with each box outlined and labelled "class score", the strongest on top; `colour` overrides
    the class colours."""
    out = image.convert("RGB")
    draw = ImageDraw.Draw(out)
    short = min(out.size)
    line = max(2, round(short / 200))
    font = ImageFont.load_default(size=max(11, round(short / 35)))
    scores = detections.confidence
    boxes, class_ids = detections.xyxy.tolist(), detections.class_id.tolist()
    for i in drawing_order(detections):
        box, class_id = boxes[i], class_ids[i]
        rgb = colour or class_colour(class_id)
        draw.rectangle(box, outline=rgb, width=line)
        name = classes[class_id] if 0 <= class_id < len(classes) else str(class_id)
        label = name if scores is None else f"{name} {scores[i]:.2f}"
        left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
        x, y = box[0], box[1] - (bottom - top) - 2 * line
        y = y if y >= 0 else box[1]  # label inside the box when there is no room above it
        draw.rectangle((x, y, x + right - left + 2 * line, y + bottom - top + 2 * line), fill=rgb)
        text = (0, 0, 0) if sum(rgb) > 450 else (255, 255, 255)
        draw.text((x + line - left, y + line - top), label, fill=text, font=font)
    return out


@dataclass
class DrawReport:
    written: list[Path] = field(default_factory=list)
    skipped: list[SkippedInput] = field(default_factory=list)


def draw_to_folder(items: Items, out_dir: str | Path,
                   classes: list[str] | None = None, progress: bool = True) -> DrawReport:
    """Draw each (image path, detections) pair into `out_dir`, keeping the images' relative paths.

    An image that cannot be read is reported and skipped; the others are still drawn.
    """
    classes, pairs = with_classes(items, classes, "draw_to_folder")
    out_dir = Path(out_dir)
    report = DrawReport()
    for _, image, detections, name in readable_images(pairs, report.skipped, "drawing boxes", progress):
        target = out_dir / name
        save_image(draw_detections(image, detections, classes), target)
        report.written.append(target)
    return report
