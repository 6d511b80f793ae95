"""What every writer of image files does the same way: name images without collisions, put them in place."""

from __future__ import annotations

import os
import shutil
from pathlib import Path, PurePath

from PIL import Image

from fashionlens.atomic import atomic_path


def relative_names(paths: list[Path]) -> list[PurePath]:
    """Each image's path below the images' common folder, so same-named files in different folders stay apart."""
    if not paths:
        return []
    parents = [str(Path(p).resolve().parent) for p in paths]
    root = Path(os.path.commonpath(parents))
    return [PurePath(Path(p).resolve().relative_to(root)) for p in paths]


def place_image(source: Path, target: Path, link: bool) -> None:
    """Copy (or symlink) an image into a written dataset; an existing identical target is left alone."""
    if target.exists() and target.resolve() == Path(source).resolve():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    if link:
        if target.is_symlink() or target.exists():
            target.unlink()
        target.symlink_to(Path(source).resolve())
        return
    with atomic_path(target) as tmp:
        shutil.copyfile(source, tmp)


def save_image(image: Image.Image, path: Path) -> None:
    """Write atomically, in the format the suffix names (JPEG at quality 95)."""
    fmt = Image.registered_extensions().get(path.suffix.lower(), "JPEG")
    with atomic_path(path) as tmp:
        image.save(tmp, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
