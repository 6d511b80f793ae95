"""Detection annotations in and out: Pascal VOC, YOLO, COCO, per-image polygon JSON and label maps (one index PNG
per photo, as CCP, LIP and ATR; read only: each connected part of a label becomes a box), all to `DetectionDataset`.

Every reader checks the same things the same way (`checks.py`): the image exists and opens, boxes more
than 2 px outside the image or without area are reported and skipped (closer ones are clipped), objects
of classes outside the class list are reported and skipped, and an image is kept only when at least one
usable box is left. Problems are collected in `DetectionDataset.skipped` as (path, reason); a broken file
never stops the run.
"""

from __future__ import annotations

from pathlib import Path

from fashionlens.detect.detections import DetectionDataset
from fashionlens.detect.formats.coco import ANNOTATION_FILE, coco_dict, read_coco, to_coco_results, write_coco
from fashionlens.detect.formats.label_masks import is_mask_layout, read_label_masks
from fashionlens.detect.formats.polygons import LABEL_DIRS, read_polygons
from fashionlens.detect.formats.voc import read_voc, write_voc
from fashionlens.detect.formats.yolo import read_yolo, write_yolo

FORMATS = ("voc", "yolo", "coco", "polygons", "masks")
_COCO_NAMES = (ANNOTATION_FILE, "_annotations.coco.json", "instances.json")


def detect_format(path: str | Path) -> str:
    """The annotation format a file or folder is in, judged by its layout."""
    path = Path(path)
    if path.is_file() and path.suffix.lower() == ".json":
        return "coco"
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such annotation file or folder")
    if (path / "Annotations").is_dir():
        return "voc"
    if (path / "labels").is_dir() and (path / "images").is_dir() and any(path.glob("labels/**/*.txt")):
        return "yolo"
    if any((path / name).is_file() for name in _COCO_NAMES):
        return "coco"
    if is_mask_layout(path):  # before polygons: both may use annotations/
        return "masks"
    if any((path / d).is_dir() for d in LABEL_DIRS):
        return "polygons"
    raise ValueError(f"{path}: cannot tell the annotation format (looked for Annotations/ (VOC), images/ + "
                     f"labels/*.txt (YOLO), {' or '.join(_COCO_NAMES)} (COCO), {'/'.join(LABEL_DIRS)}/*.json "
                     f"(polygons), labels.txt + images/ + masks/*.png (masks)); pass format=")


def read_dataset(path: str | Path, format: str | None = None, classes: list[str] | None = None,
                 progress: bool = False, *, masks: bool = False) -> DetectionDataset:
    """Read annotations in any supported format; `format` is detected from the layout when not given.

    A COCO `path` is the JSON file, or a folder holding `annotations.json` with the images beside it.
    `masks` fills `Detections.mask` from COCO segmentations and label maps; the other formats are read without masks.
    """
    path = Path(path)
    format = format or detect_format(path)
    if format == "voc":
        return read_voc(path, classes, progress)
    if format == "yolo":
        return read_yolo(path, classes, progress)
    if format == "coco":
        json_path = path if path.is_file() else next((path / n for n in _COCO_NAMES if (path / n).is_file()), None)
        if json_path is None:
            raise FileNotFoundError(f"{path}: no COCO file ({' or '.join(_COCO_NAMES)})")
        return read_coco(json_path, classes=classes, progress=progress, masks=masks)
    if format == "polygons":
        return read_polygons(path, classes, progress)
    if format == "masks":
        return read_label_masks(path, classes, progress=progress, masks=masks)
    raise ValueError(f"unknown annotation format {format!r}; use one of {', '.join(FORMATS)}")


__all__ = ["FORMATS", "coco_dict", "detect_format", "read_coco", "read_dataset", "read_label_masks", "read_polygons",
           "read_voc", "read_yolo", "to_coco_results", "write_coco", "write_voc", "write_yolo"]
