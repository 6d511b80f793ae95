"""COCO JSON: one file with `images`, `annotations` and `categories`, beside an image folder.

`bbox` is [x, y, width, height]; an annotation without one gets the box of its `segmentation` (polygons,
or RLE through pycocotools). `iscrowd` regions are kept as ordinary boxes, since `Detections` has no
ignore flag. With `masks=True` the segmentations also become `Detections.mask`, for mask-based tools (crops
on white or transparent, colours of the garment's own pixels); out, a mask is written as polygons (`masks.py`)
with its pixel count as `area`. Ids written here are position + 1 (images) and class index + 1 (categories),
the ids `to_coco_results` uses for predictions.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fashionlens.atomic import write_text_atomic
from fashionlens.data.samples import SkippedInput
from fashionlens.detect.detections import AnnotatedImage, DetectionDataset, Detections
from fashionlens.detect.formats.checks import ImageBuilder, image_size, polygon_box
from fashionlens.detect.formats.output import place_image, relative_names
from fashionlens.masks import mask_from_segmentation, mask_to_rle, polygons_from_mask, segmentation_rle
from fashionlens.progress import progress_bar

ANNOTATION_FILE = "annotations.json"


def segmentation_box(segmentation, width: int, height: int) -> list[float]:
    """xyxy box of a COCO segmentation: a list of polygons, or an RLE (compressed or not)."""
    if isinstance(segmentation, list):
        if not segmentation:
            raise ValueError("empty segmentation")
        boxes = np.array([polygon_box(polygon) for polygon in segmentation])
        return [*boxes[:, :2].min(axis=0).tolist(), *boxes[:, 2:].max(axis=0).tolist()]
    if isinstance(segmentation, dict) and "counts" in segmentation:
        from pycocotools import mask as mask_utils

        x, y, w, h = mask_utils.toBbox(segmentation_rle(segmentation, height, width)).tolist()
        return [x, y, x + w, y + h]
    raise ValueError("segmentation is neither polygons nor RLE")


def _annotation_box(ann: dict, width: int, height: int) -> list[float]:
    bbox = ann.get("bbox")
    if bbox:
        if len(bbox) != 4:
            raise ValueError(f"bbox has {len(bbox)} values, not 4")
        x, y, w, h = (float(v) for v in bbox)
        return [x, y, x + w, y + h]
    if ann.get("segmentation"):
        return segmentation_box(ann["segmentation"], width, height)
    raise ValueError("no bbox and no segmentation")


def _find_image(file_name: str, roots: list[Path]) -> Path | None:
    return next((root / file_name for root in roots if (root / file_name).is_file()), None)


def read_coco(json_path: str | Path, images_root: str | Path | None = None, classes: list[str] | None = None,
              progress: bool = False, *, masks: bool = False) -> DetectionDataset:
    """Read a COCO file; broken images and annotations are reported in `skipped`, never fatal.

    Images are looked up under `images_root`, else beside the JSON file and in its `images/` folder.
    Classes are `classes` (matched by category name) or the categories in id order. `masks` decodes each
    annotation's segmentation into `Detections.mask` (in an image where some annotation has one; an annotation
    without one, or with an unusable one, keeps its box and gets an all-False row). The masks are held in
    memory, one bool byte per pixel per object.
    """
    json_path = Path(json_path)
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{json_path}: bad JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise ValueError(f"{json_path}: not a COCO file (no `images` list)")
    categories = sorted(data.get("categories") or [], key=lambda c: c["id"])
    names = list(classes) if classes is not None else [str(c["name"]) for c in categories]
    index = {name: i for i, name in enumerate(names)}
    category_class = {c["id"]: index.get(str(c["name"])) for c in categories}
    category_name = {c["id"]: str(c["name"]) for c in categories}
    roots = [Path(images_root)] if images_root else [json_path.parent, json_path.parent / "images"]

    by_image = defaultdict(list)
    for ann in data.get("annotations") or []:
        by_image[ann.get("image_id")].append(ann)
    skipped: list[SkippedInput] = []
    known_ids = {info.get("id") for info in data["images"]}
    for image_id in by_image.keys() - known_ids:
        skipped.append(SkippedInput(f"{json_path} (image_id {image_id})", "annotations for an image id not in `images`"))
    images: list[AnnotatedImage] = []
    with progress_bar("reading COCO annotations", len(data["images"]), enabled=progress) as advance:
        for info in data["images"]:
            advance()
            source = f"{json_path} (image {info.get('id')}: {info.get('file_name')})"
            image_path = _find_image(str(info.get("file_name", "")), roots)
            if image_path is None:
                skipped.append(SkippedInput(source, f"image not found under {', '.join(map(str, roots))}"))
                continue
            try:
                width, height = image_size(image_path)
            except ValueError as exc:
                skipped.append(SkippedInput(str(image_path), str(exc)))
                continue
            declared = (info.get("width"), info.get("height"))
            if all(declared) and tuple(declared) not in ((width, height), (height, width)):
                skipped.append(SkippedInput(source, f"JSON says {declared[0]}x{declared[1]} but the image is {width}x{height}"))
                continue
            anns = by_image.get(info.get("id"), [])
            if not anns:
                skipped.append(SkippedInput(source, "no annotations for this image"))
                continue
            builder = ImageBuilder(source, width, height, skipped)
            object_masks: list[np.ndarray | None] = []  # one per box the builder kept
            for ann in anns:
                what = f"annotation {ann.get('id')}"
                try:
                    box = _annotation_box(ann, width, height)
                except (ValueError, TypeError) as exc:
                    skipped.append(SkippedInput(f"{source} ({what})", str(exc)))
                    continue
                cat = ann.get("category_id")
                kept = len(builder.boxes)
                builder.add(box, category_class.get(cat), what, category_name.get(cat, f"category_id {cat}"))
                if masks and len(builder.boxes) > kept:
                    object_masks.append(_annotation_mask(ann, width, height, f"{source} ({what})", skipped))
            if builder.boxes:
                image = builder.build(image_path)
                if any(m is not None for m in object_masks):
                    d = image.detections
                    stacked = np.stack([np.zeros((height, width), bool) if m is None else m for m in object_masks])
                    image.detections = Detections(d.xyxy, d.class_id, d.confidence, stacked)
                images.append(image)
            else:
                skipped.append(SkippedInput(source, "no usable box left (see the annotation reports)"))
    return DetectionDataset(names, images, str(json_path), skipped)


def _annotation_mask(ann: dict, width: int, height: int, what: str, skipped: list[SkippedInput]) -> np.ndarray | None:
    """The annotation's segmentation as a bool [height, width] mask; None without one (or, reported, a broken one)."""
    if not ann.get("segmentation"):
        return None
    try:
        return mask_from_segmentation(ann["segmentation"], height, width)
    except (ValueError, TypeError, KeyError) as exc:
        skipped.append(SkippedInput(what, f"segmentation not usable ({exc}); box kept without a mask"))
        return None


def _segmentation(mask: np.ndarray) -> list[list[float]] | dict:
    """Polygons of a mask; an RLE where every part is too small for a polygon, so no mask is lost."""
    return polygons_from_mask(mask) or mask_to_rle(mask)


def detections_to_coco(detections: Detections, image_id: int) -> list[dict]:
    """COCO annotation (or, with scores, result) dicts for one image; category id = class index + 1.

    Objects with a (non-empty) mask also get `segmentation` (polygons) and `area` (the mask's pixel count)."""
    xywh = detections.xyxy.astype(np.float64).copy()
    xywh[:, 2:] -= xywh[:, :2]
    records = []
    for i, (box, class_id) in enumerate(zip(xywh.tolist(), detections.class_id.tolist(), strict=True)):
        record = {"image_id": image_id, "category_id": class_id + 1, "bbox": [round(v, 3) for v in box]}
        if detections.confidence is not None:
            record["score"] = round(float(detections.confidence[i]), 5)
        if detections.mask is not None and detections.mask[i].any():
            record["segmentation"] = _segmentation(detections.mask[i])
            record["area"] = int(np.count_nonzero(detections.mask[i]))
        records.append(record)
    return records


def annotation_records(detections: Detections, image_id: int, first_id: int) -> list[dict]:
    """Full COCO annotations of one image (ids from `first_id`, `iscrowd` 0); `area` is the mask's pixel count
    where the object has a mask, else the box's."""
    records = detections_to_coco(detections, image_id)
    for k, record in enumerate(records):
        record.update(id=first_id + k, area=record.get("area", record["bbox"][2] * record["bbox"][3]), iscrowd=0)
    return records


def to_coco_results(predictions: Sequence[Detections]) -> list[dict]:
    """Predictions (one `Detections` per image, in dataset order) as a COCO results list for `loadRes`."""
    results = []
    for position, detections in enumerate(predictions):
        if len(detections) and detections.confidence is None:
            raise ValueError(f"predictions for image {position} have no confidence scores")
        results.extend(detections_to_coco(detections, position + 1))
    return results


def coco_dict(dataset: DetectionDataset, file_names: Sequence[str] | None = None) -> dict:
    """The dataset as a COCO dict (ids: position + 1, class index + 1), e.g. for pycocotools' `COCO`."""
    file_names = file_names or [str(image.path) for image in dataset.images]
    images, annotations = [], []
    for position, (image, file_name) in enumerate(zip(dataset.images, file_names, strict=True)):
        images.append({"id": position + 1, "file_name": file_name, "width": image.width, "height": image.height})
        annotations += annotation_records(image.detections, position + 1, len(annotations) + 1)
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(dataset.classes)]
    return {"images": images, "annotations": annotations, "categories": categories}


def write_coco(dataset: DetectionDataset, out_dir: str | Path, link_images: bool = False) -> Path:
    """Write `out_dir/annotations.json` and the images under `out_dir/images/`; returns the JSON path."""
    out_dir = Path(out_dir)
    names = relative_names([i.path for i in dataset.images])
    for image, name in zip(dataset.images, names, strict=True):
        place_image(image.path, out_dir / "images" / name, link_images)
    path = out_dir / ANNOTATION_FILE
    write_text_atomic(path, json.dumps(coco_dict(dataset, [n.as_posix() for n in names]), indent=1))
    return path
