"""Class-per-folder trees, optionally under train/, validation/ and test/."""

from __future__ import annotations

from pathlib import Path

from fashionlens.data.samples import SPLIT_ALIASES, LabeledImages, Sample, SkippedInput
from fashionlens.images import IMAGE_SUFFIXES



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
