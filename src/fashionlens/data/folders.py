"""Class-per-folder trees, optionally under train/, validation/ and test/."""

from __future__ import annotations

from pathlib import Path

from fashionlens.data.samples import SPLIT_ALIASES, LabeledImages, Sample, SkippedInput
from fashionlens.images import IMAGE_SUFFIXES, is_image_file



def read_folder(root: str | Path, task: str = "category") -> LabeledImages:
    """`root/<class>/*.jpg`, or `root/<split>/<class>/*.jpg` when split folders are present."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: data folder not found")
    subdirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    split_dirs = [p for p in subdirs if p.name.lower() in SPLIT_ALIASES]
    layout = [(SPLIT_ALIASES[p.name.lower()], p) for p in split_dirs] if split_dirs else [(None, root)]
    samples: list[Sample] = []
    skipped: list[SkippedInput] = []
    for split, folder in layout:
        for class_dir in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
            for path in sorted(class_dir.rglob("*")):
                if not path.is_file() or path.name.startswith("."):
                    continue
                if path.suffix.lower() not in IMAGE_SUFFIXES:
                    skipped.append(SkippedInput(str(path), f"not an image file type ({path.suffix or 'no suffix'})"))
                    continue
                samples.append(Sample(path, {task: class_dir.name}, split))
    if not samples:
        raise ValueError(f"{root}: no images found in class folders (expected {root}/<class>/<image>)")
    return LabeledImages(samples, [task], str(root), skipped)


def class_folder_labels(root: str | Path) -> dict[Path, str] | None:
    """Each image's class when `root` is laid out as `read_folder` reads it: images only in class folders one level
    down (`root/<class>/<image>`, or under split folders), at least two classes. None for any other folder (photos
    sorted by date are not classes)."""
    root = Path(root)
    images = [p for p in root.rglob("*") if is_image_file(p)]
    labels: dict[Path, str] = {}
    for path in images:
        parts = path.relative_to(root).parts
        if len(parts) == 3 and parts[0].lower() in SPLIT_ALIASES:
            parts = parts[1:]
        if len(parts) != 2:
            return None
        labels[path] = parts[0]
    return labels if len(set(labels.values())) >= 2 else None
