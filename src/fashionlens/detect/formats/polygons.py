"""Per-image JSON files with outline polygons (DeepFashion2, K-Fashion): each polygon becomes its box.

Layout: JSON files in `annos/` (or `labels/`, `annotations/`, `label/`) beside images in `image/` (or
`images/`), matched by relative path and stem. Two schemas are understood:
- DeepFashion2: `{"item1": {"category_name": ..., "segmentation": [[x1, y1, x2, y2, ...], ...]}, ...}`;
- K-Fashion: `"데이터셋 정보" > "데이터셋 상세설명" > "폴리곤좌표"`, a mapping from garment part (아우터, 상의,
  하의, 원피스) to point dicts `{"X좌표1": x, "Y좌표1": y, ...}`; the part is the class.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from fashionlens.data.samples import SkippedInput
from fashionlens.detect.detections import AnnotatedImage, DetectionDataset
from fashionlens.detect.formats.checks import ImageBuilder, find_image, image_size, polygon_box
from fashionlens.progress import progress_bar

LABEL_DIRS = ("annos", "labels", "annotations", "label")
IMAGE_DIRS = ("image", "images")
_KFASHION_POINT = re.compile(r"([XY])좌표(\d+)$")


def _kfashion_points(point_dict: dict) -> list[float]:
    """{"X좌표1": x1, "Y좌표1": y1, ...} as a flat [x1, y1, x2, y2, ...] list in point-number order."""
    points: dict[int, dict[str, float]] = {}
    for key, value in point_dict.items():
        match = _KFASHION_POINT.match(key)
        if match:
            points.setdefault(int(match.group(2)), {})[match.group(1)] = float(value)
    if any(len(p) != 2 for p in points.values()):
        raise ValueError("a point has an X without a Y or the reverse")
    return [v for n in sorted(points) for v in (points[n]["X"], points[n]["Y"])]


def polygon_objects(data: dict) -> list[tuple[str, str, list[float] | str]]:
    """[(where in the file, class name, box or why there is none)] from one DeepFashion2 or K-Fashion file."""
    objects: list[tuple[str, str, list[float] | str]] = []
    details = data.get("데이터셋 정보", {}).get("데이터셋 상세설명", {}) if isinstance(data.get("데이터셋 정보"), dict) else {}
    if "폴리곤좌표" in details:
        for part, polygons in (details["폴리곤좌표"] or {}).items():
            for n, point_dict in enumerate(polygons or [], 1):
                if not point_dict:
                    continue  # K-Fashion lists every part, with [{}] for the ones not worn
                try:
                    objects.append((f"{part} {n}", part, polygon_box(_kfashion_points(point_dict))))
                except (ValueError, TypeError) as exc:
                    objects.append((f"{part} {n}", part, str(exc)))
        return objects
    for key in sorted((k for k in data if re.fullmatch(r"item\d+", k)), key=lambda k: int(k[4:])):
        item = data[key]
        name = str(item.get("category_name", item.get("category_id", "")))
        try:
            boxes = [polygon_box(polygon) for polygon in item.get("segmentation") or []]
            if not boxes:
                raise ValueError("no segmentation polygon")
            objects.append((key, name, [min(b[0] for b in boxes), min(b[1] for b in boxes),
                                        max(b[2] for b in boxes), max(b[3] for b in boxes)]))
        except (ValueError, TypeError) as exc:
            objects.append((key, name, str(exc)))
    return objects


def _image_name(data: dict) -> str | None:
    info = data.get("이미지 정보")
    return str(info.get("이미지 파일명")) if isinstance(info, dict) and info.get("이미지 파일명") else None


def read_polygons(root: str | Path, classes: list[str] | None = None, progress: bool = False) -> DetectionDataset:
    """Read a folder of per-image polygon JSON files; broken files and polygons are reported, never fatal."""
    root = Path(root)
    labels_dir = next((root / d for d in LABEL_DIRS if (root / d).is_dir()), None)
    images_dir = next((root / d for d in IMAGE_DIRS if (root / d).is_dir()), None)
    if labels_dir is None or images_dir is None:
        raise FileNotFoundError(f"{root}: expected a JSON folder ({', '.join(LABEL_DIRS)}) and an image folder "
                                f"({', '.join(IMAGE_DIRS)})")
    json_paths = sorted(labels_dir.rglob("*.json"))
    if not json_paths:
        raise ValueError(f"{labels_dir}: no .json files")
    skipped: list[SkippedInput] = []
    parsed = []
    with progress_bar("reading polygon annotations", len(json_paths), enabled=progress) as advance:
        for json_path in json_paths:
            advance()
            try:
                data = json.loads(json_path.read_text(encoding="utf-8"))
                if not isinstance(data, dict):
                    raise ValueError("not a JSON object")
                folder = images_dir / json_path.parent.relative_to(labels_dir)
                image_path = find_image(folder, _image_name(data), json_path.stem)
                if image_path is None:
                    raise ValueError(f"image {_image_name(data) or json_path.stem} not found in {folder}")
                parsed.append((json_path, image_path, image_size(image_path), polygon_objects(data)))
            except json.JSONDecodeError as exc:
                skipped.append(SkippedInput(str(json_path), f"bad JSON ({exc})"))
            except ValueError as exc:
                skipped.append(SkippedInput(str(json_path), str(exc)))
    names = list(classes) if classes is not None else sorted({name for *_, objects in parsed for _, name, _ in objects})
    index = {name: i for i, name in enumerate(names)}
    images: list[AnnotatedImage] = []
    for json_path, image_path, (width, height), objects in parsed:
        if not objects:
            skipped.append(SkippedInput(str(json_path), "no polygons in the file"))
            continue
        builder = ImageBuilder(str(json_path), width, height, skipped)
        for where, name, box in objects:
            if isinstance(box, str):
                skipped.append(SkippedInput(f"{json_path} ({where})", box))
            else:
                builder.add(box, index.get(name), where, name)
        if builder.boxes:
            images.append(builder.build(image_path))
        else:
            skipped.append(SkippedInput(str(json_path), "no usable box left (see the polygon reports)"))
    return DetectionDataset(names, images, str(root), skipped)
