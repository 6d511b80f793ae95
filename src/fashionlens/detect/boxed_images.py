"""Walking images with their boxes, for the tools that write one file per image or per box (crop, draw)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path, PurePath

from PIL import Image

from fashionlens.data.samples import SkippedInput
from fashionlens.detect.detections import DetectionDataset, Detections
from fashionlens.detect.formats.output import relative_names
from fashionlens.images import ImageError, load_image
from fashionlens.progress import progress_bar

Items = DetectionDataset | Iterable[tuple[Path, Detections]]


def with_classes(items: Items, classes: list[str] | None, caller: str) -> tuple[list[str], list[tuple]]:
    """(class names, [(path, detections, annotated (width, height) or None)]) for a dataset or (path, detections) pairs."""
    if isinstance(items, DetectionDataset):
        return classes or items.classes, [(im.path, im.detections, (im.width, im.height)) for im in items.images]
    if classes is None:
        raise ValueError(f"{caller}: pass `classes` with (path, detections) pairs")
    return classes, [(Path(path), detections, None) for path, detections in items]


def readable_images(pairs: list[tuple], skipped: list[SkippedInput], description: str, progress: bool
                    ) -> Iterator[tuple[Path, Image.Image, Detections, PurePath]]:
    """(path, decoded image, detections, path below the images' common folder) for each usable image; an unreadable
    image, or one whose size differs from its annotation, goes to `skipped`."""
    names = relative_names([path for path, *_ in pairs])
    with progress_bar(description, len(pairs), enabled=progress) as advance:
        for (path, detections, size), name in zip(pairs, names, strict=True):
            advance()
            try:
                image = load_image(path)
            except ImageError as exc:
                skipped.append(SkippedInput(str(path), exc.reason))
                continue
            if size and image.size != tuple(size):
                skipped.append(SkippedInput(str(path), f"image is {image.size[0]}x{image.size[1]}, its annotation "
                                                       f"{size[0]}x{size[1]}"))
                continue
            yield path, image, detections, name
