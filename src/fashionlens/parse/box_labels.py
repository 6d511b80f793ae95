"""Label maps for photos that have only boxes: a teacher parser labels every pixel, and the boxes correct it.

Street photos with garment boxes are far more common than photos with a label per pixel (colorful-fashion has
three times CCP's photos). The teacher's own mistakes are mostly of kind, not of shape: a dress read as a top over
a skirt, a bag where there is none. The boxes fix exactly that: a garment pixel is kept where a box of its own kind
covers it, takes the kind of the smallest box that covers it where only boxes of other kinds do, and counts for
nothing where no box covers it. Pixels the teacher is unsure of count for nothing too. The label maps are written
to the cache (keyed by the boxes, the teacher's weights and these rules), never beside the user's data.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
from PIL import Image

from fashionlens.data.label_maps import VOID
from fashionlens.data.samples import SkippedInput
from fashionlens.detect.detections import DetectionDataset
from fashionlens.images import ImageError, read_image_file
from fashionlens.parse.dataset import MaskDataset, MaskedImage
from fashionlens.parse.inference import Parser
from fashionlens.parse.labels import NOT_GARMENT
from fashionlens.progress import progress_bar
from fashionlens.taxonomy import PARSER_CLASSES

MIN_CONFIDENCE = 0.5
RULES_VERSION = 1  # part of the cache key: bump when the rules below change


def box_kinds(box_classes: list[str], parser_classes: list[str]) -> dict[int, int]:
    """Box class index -> parser class index: by the detector's taxonomy, or by name where a box class is a parser
    class; box classes with neither, or of background, skin or hair, guide nothing."""
    out = {}
    for i, name in enumerate(box_classes):
        kinds = PARSER_CLASSES.get(name, (name,))
        if kinds[0] in parser_classes and kinds[0] not in NOT_GARMENT:
            out[i] = parser_classes.index(kinds[0])
    return out


def guide_by_boxes(labels: np.ndarray, confidence: np.ndarray, boxes: np.ndarray, kinds: np.ndarray,
                   guided: list[int], min_confidence: float = MIN_CONFIDENCE) -> np.ndarray:
    """The teacher's labels [h, w] corrected by boxes (x1, y1, x2, y2 in the same grid) of parser classes `kinds`;
    only pixels of the `guided` classes (the kinds boxes can name) are judged by boxes. VOID marks pixels that count
    for nothing."""
    out = labels.copy()
    h, w = labels.shape
    cover = np.zeros((len(boxes), h, w), bool)
    for k, (x1, y1, x2, y2) in enumerate(np.round(boxes).astype(int)):
        cover[k, max(0, y1):max(0, y2), max(0, x1):max(0, x2)] = True
    judged = np.isin(labels, guided)
    own = np.zeros((h, w), bool)
    for k, kind in enumerate(kinds):
        own |= cover[k] & (labels == kind)
    areas = np.asarray([(b[2] - b[0]) * (b[3] - b[1]) for b in boxes], np.float64)
    smallest = np.full((h, w), -1)
    for k in np.argsort(-areas, kind="stable"):  # smaller boxes painted last win
        smallest[cover[k]] = kinds[k]
    relabel = judged & ~own & (smallest >= 0)
    out[relabel] = smallest[relabel]
    out[judged & ~own & (smallest < 0)] = VOID
    out[confidence < min_confidence] = VOID
    return out


def box_guided_masks(data: DetectionDataset, teacher: Parser, folder: str | Path, *,
                     min_confidence: float = MIN_CONFIDENCE, progress: bool = False) -> MaskDataset:
    """A MaskDataset (names: the teacher's classes) of box-guided label maps at each photo's size; photos that cannot
    be read are listed in `skipped`. Reruns reuse the maps already written."""
    classes = teacher.classes
    kind_of = box_kinds(data.classes, classes)
    guided = sorted(set(kind_of.values()))
    key = hashlib.sha256(json.dumps([data.source, data.classes, teacher.model.weights_sha256, min_confidence,
                                     RULES_VERSION]).encode()).hexdigest()[:16]
    folder = Path(folder) / key
    folder.mkdir(parents=True, exist_ok=True)
    images, skipped = [], list(data.skipped)
    unguided = sorted({data.classes[c] for im in data.images for c in im.detections.class_id if int(c) not in kind_of})
    if unguided:
        skipped.append(SkippedInput(data.source, f"box classes {unguided} are no parser class: their boxes guide nothing"))
    with progress_bar("labelling photos by boxes", len(data), progress) as advance:
        for position, item in enumerate(data.images):
            advance()
            target = folder / f"{position:06d}-{item.path.stem}.png"
            if not target.is_file():
                try:
                    _, image = read_image_file(item.path)
                except ImageError as exc:
                    skipped.append(SkippedInput(str(item.path), exc.reason))
                    continue
                parsed = teacher.parse_image(image)
                d = item.detections
                keep = [k for k, c in enumerate(d.class_id) if int(c) in kind_of]
                sx, sy = parsed.scale
                boxes = d.xyxy[keep] * np.array([sx, sy, sx, sy], np.float32)
                kinds = np.asarray([kind_of[int(d.class_id[k])] for k in keep], int)
                grid = guide_by_boxes(parsed.labels, parsed.confidence, boxes, kinds, guided, min_confidence)
                Image.fromarray(parsed.to_photo(grid), mode="L").save(target.with_suffix(".tmp.png"))
                target.with_suffix(".tmp.png").replace(target)
            images.append(MaskedImage(item.path, target))
    source = f"{data.source} (labelled by boxes, teacher {teacher.model.weights_sha256[:12]})"
    return MaskDataset(list(classes), images, source, skipped)
