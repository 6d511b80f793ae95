"""Label maps (one index per pixel, as CCP, LIP and ATR ship them) turned into boxes: one box per garment part.

Layout: photos in `images/`, one PNG per photo in `masks/` (or `annotations/`, `segmentations/`) whose bytes
index the names in `labels.txt` (one a line; line 0 is the background). Pairing and the checks (a missing
photo or mask, a mask of another size than its photo, an index outside the label list, an unreadable file)
live in `fashionlens.data.label_maps` (`read_mask_layout`, `load_index_mask`, re-exported here), free of
detection types, so the garment parser reads its training masks through the same code.

A label map has one label per pixel, not per garment: two shoes are one label's pixels, and a jacket can be cut
in two by an arm, a bag or a strap. Each label's pixels are therefore closed first (a morphological closing
whose radius grows with the label's size, never bridging background), and each connected part becomes one box:
an arm-split jacket is one part, while two shoes with floor between them stay two.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fashionlens.data.label_maps import IMAGE_DIRS, LABEL_FILES, MASK_DIRS, load_index_mask, read_mask_layout
from fashionlens.data.samples import SkippedInput
from fashionlens.detect.detections import AnnotatedImage, DetectionDataset, Detections
from fashionlens.detect.formats.checks import image_size
from fashionlens.morphology import connected_parts, distance_to_background
from fashionlens.progress import progress_bar

DEFAULT_IGNORE = ("null", "skin", "hair")
DEFAULT_MIN_AREA = 0.0004
"""A part under this share of the photo's pixels is dropped (about 60 px on a 320x484 CCP photo): specks left by
resizing the masks with nearest neighbour, and garments too small to crop."""
DEFAULT_CLOSE = 0.25
"""The closing radius as a share of the square root of the label's pixel count (at least `MIN_CLOSE_PX`): about
30 px for a jacket on a CCP photo, 8-10 px for a pair of shoes. Measured on CCP (parts per photo that holds the
label, parts of at least `DEFAULT_MIN_AREA`): jacket 1.98 without closing, 1.24 / 1.14 / 1.10 at 0.15 / 0.2 / 0.25;
shoes of every kind 1.71 without closing (a heel's strap and tip are parts of their own), 1.62 at 0.25, where the
changes from 0.15 are straps and heel tips joining their shoe. A fixed 25 px radius also brings jackets to 1.04,
but joins a pair of shoes whenever their legs meet within reach; a closing that may bridge background merges
shoes across the floor already at 6 px (1.47 against 1.65 for the same radius kept to the person)."""
MIN_CLOSE_PX = 3
_EIGHT = 8  # diagonal neighbours touch


def is_mask_layout(root: str | Path) -> bool:
    """Whether `root` holds a label list, a photo folder and a folder of PNG label maps."""
    root = Path(root)
    if not any((root / n).is_file() for n in LABEL_FILES) or not any((root / d).is_dir() for d in IMAGE_DIRS):
        return False
    return any(any((root / d).glob("*.png")) for d in MASK_DIRS if (root / d).is_dir())


def _closing(mask: np.ndarray, radius: int) -> np.ndarray:
    """Closing with a disk of `radius` by two distance transforms (the time does not grow with the radius); the
    mask is padded by the radius, so pixels on its edge are never eroded."""
    padded = np.pad(mask, radius)
    dilated = distance_to_background(~padded) <= radius
    return (distance_to_background(dilated) > radius)[radius:-radius, radius:-radius]


def close_radius(pixels: int, close: float) -> int:
    """Closing radius in pixels for a label of `pixels` pixels (0: no closing)."""
    return 0 if close <= 0 else max(MIN_CLOSE_PX, int(round(close * np.sqrt(pixels))))


def _parts(labels: np.ndarray, value: int, window: tuple[slice, slice], close: float, min_area: int,
           background: int) -> list[tuple[list[float], np.ndarray]]:
    """[(box in the map's pixels, the part's pixels inside `window`)], largest first."""
    region = labels[window]  # a closing never leaves the convex hull, so the label's box is enough
    own = region == value
    parts, n = connected_parts(own, _EIGHT)
    if n > 1:  # closing only ever joins parts, so one part needs none
        radius = close_radius(int(own.sum()), close)
        if radius:
            parts, n = connected_parts(own | (_closing(own, radius) & (region != background)), _EIGHT)
            parts[~own] = 0
    areas = np.bincount(parts.ravel(), minlength=n + 1)[1:]
    y0, x0 = window[0].start, window[1].start
    out = []
    for k in np.argsort(-areas, kind="stable"):
        if areas[k] < max(1, min_area):
            break
        part = parts == k + 1
        ys, xs = np.nonzero(part)
        out.append(([float(x0 + xs.min()), float(y0 + ys.min()), float(x0 + xs.max() + 1), float(y0 + ys.max() + 1)],
                    part))
    return out


def label_parts(labels: np.ndarray, value: int, *, close: float = DEFAULT_CLOSE, min_area: int = 1,
                background: int = 0) -> list[np.ndarray]:
    """The connected parts of one label's pixels (bool masks of the map's size), largest first.

    The label's pixels are closed with a disk before the parts are found, but the closing may only add pixels that
    belong to the person (any label but `background`): a jacket cut by an arm or a bag strap joins up, two shoes with
    floor between them do not. The parts hold only the label's own pixels; parts under `min_area` are dropped.
    """
    ys, xs = np.nonzero(labels == value)
    if not len(ys):
        return []
    window = (slice(ys.min(), ys.max() + 1), slice(xs.min(), xs.max() + 1))
    out = []
    for _, part in _parts(labels, value, window, close, min_area, background):
        full = np.zeros(labels.shape, bool)
        full[window] = part
        out.append(full)
    return out


def _label_windows(labels: np.ndarray) -> list[tuple[int, tuple[slice, slice]]]:
    """[(label value, the slices of its bounding box)] for each value above 0 in the map, ascending (what
    `ndimage.find_objects` gives, without the absent values)."""
    ys, xs = np.nonzero(labels)
    values = labels[ys, xs]
    out = []
    for value in np.unique(values).tolist():
        own = values == value
        out.append((value, (slice(int(ys[own].min()), int(ys[own].max()) + 1),
                            slice(int(xs[own].min()), int(xs[own].max()) + 1))))
    return out


def read_label_masks(root: str | Path, classes: list[str] | None = None, *, names_map: dict[str, str] | None = None,
                     ignore: tuple[str, ...] | list[str] = DEFAULT_IGNORE, min_area: float = DEFAULT_MIN_AREA,
                     close: float = DEFAULT_CLOSE, masks: bool = False, progress: bool = False) -> DetectionDataset:
    """One box per connected part of each label in the label-map layout (see the module's docstring).

    `names_map` maps source names to class names (several to one merges them); names in `ignore` (before or after
    mapping) give no boxes. `classes` fixes the class list; parts of other classes are then reported per photo and
    skipped. Without it, the classes are the mapped names that occur, in the label file's order. `min_area` is a
    share of the photo's pixels; `close` scales the closing radius (0: none). `masks` also fills `Detections.mask`
    with each part's own pixels (bool, photo size; held in memory, about 1.2 GB for CCP's 7,600 parts). Bad input
    is reported in `skipped` by path with the reason, never fatal. Label 0 is the background: it never gives boxes.
    """
    root = Path(root)
    names, pairs, skipped = read_mask_layout(root, check=False)
    skipped = list(skipped)
    names_map = dict(names_map or {})
    ignored = set(ignore)
    class_of = []  # source index -> class name, or None
    for name in names:
        mapped = names_map.get(name, name)
        class_of.append(None if name in ignored or mapped is None or mapped in ignored else mapped)
    background = 0
    if classes is not None:
        class_list = list(classes)
    else:
        class_list = list(dict.fromkeys(c for c in class_of if c is not None))
    index = {name: i for i, name in enumerate(class_list)}
    images: list[AnnotatedImage] = []
    used: set[str] = set()
    with progress_bar("reading label maps", len(pairs), enabled=progress) as advance:
        for photo, mask_path in pairs:
            advance()
            try:
                width, height = image_size(photo)
            except ValueError as exc:
                skipped.append(SkippedInput(str(photo), str(exc)))
                continue
            try:
                labels = load_index_mask(mask_path, (width, height), len(names))
            except ValueError as exc:
                skipped.append(SkippedInput(str(mask_path), str(exc)))
                continue
            boxes, class_ids, part_masks, unknown = [], [], [], []
            smallest = min_area * width * height
            for value, window in _label_windows(labels):
                name = class_of[value]
                if name is None:
                    continue
                if name not in index:
                    unknown.append(names[value])
                    continue
                for box, part in _parts(labels, value, window, close, int(np.ceil(smallest)), background):
                    boxes.append(box)
                    class_ids.append(index[name])
                    if masks:
                        full = np.zeros((height, width), bool)
                        full[window] = part
                        part_masks.append(full)
            if unknown:
                skipped.append(SkippedInput(str(mask_path), f"labels outside the class list: {', '.join(unknown)}"))
            if not boxes:
                skipped.append(SkippedInput(str(mask_path), "no garment part left (all background, ignored or too small)"))
                continue
            extra = {"mask": np.stack(part_masks)} if masks else {}
            detections = Detections(np.asarray(boxes, np.float32), np.asarray(class_ids, np.int64), **extra)
            images.append(AnnotatedImage(photo, width, height, detections))
            used.update(class_list[c] for c in class_ids)
    if classes is None:  # keep only classes that give a box, in the label file's order
        kept = [c for c in class_list if c in used]
        if kept != class_list:
            remap = np.array([kept.index(c) if c in used else -1 for c in class_list], np.int64)
            for im in images:
                im.detections.class_id = remap[im.detections.class_id]
            class_list = kept
    return DetectionDataset(class_list, images, str(root), skipped)


__all__ = ["DEFAULT_CLOSE", "DEFAULT_IGNORE", "DEFAULT_MIN_AREA", "close_radius", "is_mask_layout", "label_parts",
           "load_index_mask", "read_label_masks", "read_mask_layout"]
