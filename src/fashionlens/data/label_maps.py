"""Label-map datasets (CCP, LIP, ATR): photos, one index PNG per photo, and the list of label names.

Pairing and checking happen here once, for every reader of this layout (the parser's training masks, the
mask-to-box reader): a missing photo or mask, a mask of another size than its photo, or an index outside the
label list is reported by path and skipped.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from fashionlens.data.samples import SkippedInput
from fashionlens.images import IMAGE_SUFFIXES

MASK_DIRS = ("masks", "annotations", "segmentations", "labels")
IMAGE_DIRS = ("images", "image", "JPEGImages")
LABEL_FILES = ("labels.txt", "label_names.txt", "classes.txt")
VOID = 255  # the index VOC, LIP and box-guided label maps give pixels that count for nothing (never a label)


def load_index_mask(path: str | Path, size: tuple[int, int] | None, n_labels: int) -> np.ndarray:
    """One byte per pixel (VOID allowed); a ValueError says why the file cannot serve (size is the photo's width,
    height)."""
    try:
        with Image.open(path) as im:
            if im.mode not in ("L", "P", "I", "I;16"):
                raise ValueError(f"mode {im.mode} is not a label map (one index per pixel)")
            mask = np.asarray(im)
    except (OSError, UnidentifiedImageError) as exc:
        raise ValueError(f"unreadable mask ({exc})") from None
    if size is not None and (mask.shape[1], mask.shape[0]) != tuple(size):
        raise ValueError(f"mask is {mask.shape[1]}x{mask.shape[0]}, its photo {size[0]}x{size[1]}")
    top = int(mask[mask != VOID].max(initial=0))
    if top >= n_labels:
        raise ValueError(f"index {top} outside the {n_labels} labels")
    return mask.astype(np.uint8)


def read_mask_layout(root: str | Path, check: bool = True) -> tuple[list[str], list[tuple[Path, Path]], list[SkippedInput]]:
    """(label names, [(photo, mask)], skipped): photos and masks paired by stem; with `check`, every pair is
    opened once to check sizes and indices."""
    root = Path(root)
    label_file = next((root / n for n in LABEL_FILES if (root / n).is_file()), None)
    mask_dir = next((root / d for d in MASK_DIRS if (root / d).is_dir()), None)
    image_dir = next((root / d for d in IMAGE_DIRS if (root / d).is_dir()), None)
    if label_file is None or mask_dir is None or image_dir is None:
        raise FileNotFoundError(f"{root}: expected {' or '.join(LABEL_FILES)}, a mask folder ({', '.join(MASK_DIRS)}) "
                                f"and a photo folder ({', '.join(IMAGE_DIRS)})")
    names = [line.strip() for line in label_file.read_text(encoding="utf-8").splitlines() if line.strip()]
    photos = {p.stem: p for p in sorted(image_dir.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
    masks = {p.stem: p for p in sorted(mask_dir.iterdir()) if p.suffix.lower() == ".png"}
    skipped = [SkippedInput(str(masks[s]), "no photo with this name") for s in sorted(masks.keys() - photos.keys())]
    skipped += [SkippedInput(str(photos[s]), "no mask with this name") for s in sorted(photos.keys() - masks.keys())]
    pairs = []
    for stem in sorted(photos.keys() & masks.keys()):
        if check:
            try:
                with Image.open(photos[stem]) as im:
                    size = im.size
            except (OSError, UnidentifiedImageError) as exc:
                skipped.append(SkippedInput(str(photos[stem]), f"unreadable photo ({exc})"))
                continue
            try:
                load_index_mask(masks[stem], size, len(names))
            except ValueError as exc:
                skipped.append(SkippedInput(str(masks[stem]), str(exc)))
                continue
        pairs.append((photos[stem], masks[stem]))
    return names, pairs, skipped
