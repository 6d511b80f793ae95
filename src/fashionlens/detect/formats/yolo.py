"""YOLO txt: `images/**` beside `labels/**` (same relative path, `.txt`), classes in `classes.txt` or `data.yaml`.

Each label line is `class cx cy w h` (normalised to 0..1), or `class x1 y1 x2 y2 x3 y3 ...` (a YOLO
segmentation polygon), which becomes its bounding box. An empty label file, or an image without one, is
reported and skipped rather than taken as a background image: it cannot be told apart from a lost export.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from fashionlens.atomic import write_text_atomic
from fashionlens.data.samples import SkippedInput
from fashionlens.detect.detections import AnnotatedImage, DetectionDataset, Detections
from fashionlens.detect.formats.checks import ImageBuilder, image_size, polygon_box, read_class_file
from fashionlens.detect.formats.output import place_image, relative_names
from fashionlens.images import IMAGE_SUFFIXES
from fashionlens.progress import progress_bar


def yolo_classes(root: Path) -> list[str]:
    """Class names from `classes.txt` (root or labels/), else `names` in `data.yaml`/`dataset.yaml`."""
    for candidate in (root / "classes.txt", root / "labels" / "classes.txt"):
        if candidate.is_file():
            return read_class_file(candidate)
    for candidate in (root / "data.yaml", root / "dataset.yaml"):
        if candidate.is_file():
            try:
                names = (yaml.safe_load(candidate.read_text(encoding="utf-8")) or {}).get("names")
            except yaml.YAMLError as exc:
                raise ValueError(f"{candidate}: bad YAML ({exc})") from None
            if isinstance(names, dict):
                names = [names[k] for k in sorted(names, key=int)]
            if not isinstance(names, list) or not names:
                raise ValueError(f"{candidate}: no `names` list or mapping")
            return [str(n) for n in names]
    raise FileNotFoundError(f"{root}: no class names (expected classes.txt or data.yaml with `names`)")


def _boxes_from_lines(text: str, width: int, height: int) -> list[tuple[int, str, list[float] | str]]:
    """[(line number, class field, pixel box or why the line is unusable)]."""
    rows: list[tuple[int, str, list[float] | str]] = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            values = [float(v) for v in fields[1:]]
        except ValueError:
            rows.append((number, fields[0], f"non-numeric value in {line.strip()!r}"))
            continue
        if len(values) == 4:
            cx, cy, w, h = values
            rows.append((number, fields[0], [(cx - w / 2) * width, (cy - h / 2) * height,
                                             (cx + w / 2) * width, (cy + h / 2) * height]))
        elif len(values) >= 6 and len(values) % 2 == 0:
            x1, y1, x2, y2 = polygon_box(values)
            rows.append((number, fields[0], [x1 * width, y1 * height, x2 * width, y2 * height]))
        else:
            rows.append((number, fields[0], f"expected 5 fields (class cx cy w h) or a polygon, got {len(fields)}"))
    return rows


def read_yolo(root: str | Path, classes: list[str] | None = None, progress: bool = False) -> DetectionDataset:
    """Read a YOLO folder; broken files and boxes are reported in `skipped` (path and reason), never fatal."""
    root = Path(root)
    images_dir, labels_dir = root / "images", root / "labels"
    if not images_dir.is_dir() or not labels_dir.is_dir():
        raise FileNotFoundError(f"{root}: expected images/ and labels/ folders")
    classes = list(classes) if classes is not None else yolo_classes(root)
    label_paths = {p.relative_to(labels_dir).with_suffix(""): p for p in labels_dir.rglob("*.txt")
                   if p.name != "classes.txt"}
    image_paths = {p.relative_to(images_dir).with_suffix(""): p for p in sorted(images_dir.rglob("*"))
                   if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")}
    skipped = [SkippedInput(str(label_paths[k]), f"image not found in {images_dir}")
               for k in sorted(label_paths.keys() - image_paths.keys())]
    images: list[AnnotatedImage] = []
    with progress_bar("reading YOLO labels", len(image_paths), enabled=progress) as advance:
        for key in sorted(image_paths):
            advance()
            image_path, label_path = image_paths[key], label_paths.get(key)
            if label_path is None:
                skipped.append(SkippedInput(str(image_path), f"no label file {labels_dir / key}.txt"))
                continue
            text = label_path.read_text(encoding="utf-8", errors="replace")
            if not text.strip():
                skipped.append(SkippedInput(str(label_path), "empty label file (no boxes)"))
                continue
            try:
                width, height = image_size(image_path)
            except ValueError as exc:
                skipped.append(SkippedInput(str(image_path), str(exc)))
                continue
            builder = ImageBuilder(str(label_path), width, height, skipped)
            for number, class_field, box in _boxes_from_lines(text, width, height):
                if isinstance(box, str):
                    skipped.append(SkippedInput(f"{label_path} (line {number})", box))
                    continue
                class_id = int(class_field) if class_field.isdigit() and int(class_field) < len(classes) else None
                builder.add(box, class_id, f"line {number}", class_field)
            if builder.boxes:
                images.append(builder.build(image_path))
            else:
                skipped.append(SkippedInput(str(label_path), "no usable box left (see the line reports)"))
    return DetectionDataset(classes, images, str(root), skipped)


def yolo_lines(detections: Detections, width: int, height: int) -> str:
    """One image's boxes as YOLO label text (normalised centre, size)."""
    lines = []
    for (x1, y1, x2, y2), class_id in zip(detections.xyxy.tolist(), detections.class_id.tolist(), strict=True):
        cx, cy, w, h = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height
        lines.append(f"{class_id} {cx:.7f} {cy:.7f} {w:.7f} {h:.7f}\n")
    return "".join(lines)


def write_yolo(dataset: DetectionDataset, out_dir: str | Path, link_images: bool = False) -> Path:
    """Write `out_dir/images`, `labels`, `classes.txt` and a `data.yaml` that Ultralytics-style tools read."""
    out_dir = Path(out_dir)
    for image, name in zip(dataset.images, relative_names([i.path for i in dataset.images]), strict=True):
        place_image(image.path, out_dir / "images" / name, link_images)
        write_text_atomic(out_dir / "labels" / name.with_suffix(".txt"), yolo_lines(image.detections, image.width, image.height))
    write_text_atomic(out_dir / "classes.txt", "".join(f"{c}\n" for c in dataset.classes))
    data = {"path": ".", "train": "images", "val": "images", "names": dict(enumerate(dataset.classes))}
    write_text_atomic(out_dir / "data.yaml", yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return out_dir
