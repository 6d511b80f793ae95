"""One garment, one mask: the parsed pixels inside a detected box whose class belongs to its kind.

Pixels that two boxes of one kind both claim go to the box whose centre is nearer (two shoes in overlapping
boxes), and no pixel is ever in two masks (where kinds share parser classes, the smaller box, the inner layer,
keeps it); a paired kind's box over two separate parts can become two garments; a garment the parser sees
clearly that no box covers is added, with the parser as its source, for the kinds and sizes the operating point
names (on street photos most such items were wrong: `benchmarks/pipeline_street.py`). All of it happens on the parser's grid (boxes scaled
into it); only the finished masks are brought to the photo's pixels, so the cost does not grow with the photo.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fashionlens.boxes import box_iou
from fashionlens.detect.crop import padded_box
from fashionlens.detect.detections import Detections
from fashionlens.masks import mask_box
from fashionlens.morphology import closing, connected_parts
from fashionlens.parse.inference import ParsedImage
from fashionlens.parse.labels import NOT_GARMENT
from fashionlens.taxonomy import LABEL_OF_PARSER_CLASS, PAIRED, PARSER_CLASSES


@dataclass
class _Garment:
    """One garment while its mask is worked out on the parser's grid (the stage's own working record)."""

    class_id: int
    score: float
    box: tuple[float, float, float, float] | None  # in the photo's pixels; None: its mask's box, once returned
    mask: np.ndarray  # bool, on the parser's grid
    source: str  # "detector" or "parser"


@dataclass(frozen=True)
class MaskRules:
    box_padding: float = 0.05  # a box is grown by this before taking its kind's pixels
    added: dict[str, tuple[float, float]] = field(default_factory=dict)  # kind -> (least photo share, least mean
    # parser confidence) of a garment the parser alone finds; kinds not named: none is added
    split_pairs: bool = True  # a paired kind's one box over two separate parts is two garments
    min_pair_share: float = 0.25  # each part of a split pair holds at least this share of the mask


def _kind_classes(label: str, parsed: ParsedImage) -> list[str]:
    return list(PARSER_CLASSES.get(label, [c for c in parsed.classes if c not in NOT_GARMENT]))


def _split_pair(g: _Garment, rules: MaskRules) -> list[_Garment]:
    parts, n = connected_parts(g.mask)
    if n < 2:
        return [g]
    sizes = np.bincount(parts.ravel())[1:]
    big = np.argsort(-sizes)[:2]
    if sizes[big[1]] < rules.min_pair_share * g.mask.sum():
        return [g]
    first = parts == big[0] + 1
    second = g.mask & ~first  # the rest, so no pixel is lost
    return [_Garment(g.class_id, g.score, None, m, g.source) for m in (first, second)]  # boxes from the masks


def item_classes(classes: list[str]) -> list[str]:
    """The class list of `garment_masks`' result: the detector's, then the parser's kinds it does not have."""
    return [*classes, *sorted(set(LABEL_OF_PARSER_CLASS.values()) - set(classes))]


def garment_masks(parsed: ParsedImage, found: Detections, classes: list[str],
                  rules: MaskRules = MaskRules()) -> Detections:
    """The garments of the shown detections `found` (boxes in the photo's pixels, `class_id` into `classes`), each
    with its mask in the photo's pixels: the detected ones in input order (a split pair's second part after
    them), then the added ones. Their `class_id` indexes `item_classes(classes)`; `data` holds each one's
    `class_name` and `source` ("detector" or "parser"); a split or added garment's box is its mask's."""
    height, width = parsed.labels.shape
    sx, sy = parsed.scale
    labels = [classes[c] for c in found.class_id]
    photo_boxes = found.xyxy.tolist()
    boxes = [(b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy) for b in photo_boxes]  # into the grid
    claims = []
    for box, label in zip(boxes, labels, strict=True):
        x1, y1, x2, y2 = padded_box(box, rules.box_padding, width, height)
        region = np.zeros((height, width), bool)
        region[y1:y2, x1:x2] = True
        claims.append(region & parsed.mask_of(_kind_classes(label, parsed)))
    for label in set(labels):  # pixels two boxes of one kind claim go to the nearer centre
        same = [i for i, lab in enumerate(labels) if lab == label]
        if len(same) < 2:
            continue
        contested = np.sum([claims[i] for i in same], axis=0) > 1
        if contested.any():
            ys, xs = np.nonzero(contested)
            centres = np.array([((boxes[i][0] + boxes[i][2]) / 2, (boxes[i][1] + boxes[i][3]) / 2) for i in same])
            nearest = np.argmin(np.hypot(xs[:, None] - centres[None, :, 0], ys[:, None] - centres[None, :, 1]), axis=1)
            for k, i in enumerate(same):
                claims[i][ys, xs] = nearest == k
    _exclusive(claims, boxes)
    scores = found.confidence if found.confidence is not None else np.ones(len(found), np.float32)
    garments = [_Garment(int(c), float(s), tuple(b), m, "detector")
                for c, s, b, m in zip(found.class_id, scores, photo_boxes, claims, strict=True)]
    extra = []
    for i, g in enumerate(garments):
        if rules.split_pairs and labels[i] in PAIRED and labels.count(labels[i]) == 1 and g.mask.any():
            first, *rest = _split_pair(g, rules)
            garments[i] = _Garment(g.class_id, g.score, g.box, first.mask, g.source)
            extra += rest
    covered = np.any([g.mask for g in garments + extra], axis=0) if garments else np.zeros((height, width), bool)
    names = item_classes(classes)
    for name, label in LABEL_OF_PARSER_CLASS.items():
        if label not in rules.added:
            continue
        share, min_confidence = rules.added[label]
        min_area = share * height * width
        free = parsed.mask_of([name]) & ~covered
        if free.sum() < min_area:
            continue
        parts, n = connected_parts(closing(free, iterations=2) | free)  # an arm-split part is one
        for k in range(1, n + 1):
            part = (parts == k) & free
            if part.sum() < min_area:
                continue
            confidence = float(parsed.confidence[part].mean())
            if confidence >= min_confidence and not _on_a_shown_box(part, boxes):
                extra.append(_Garment(names.index(label), confidence, None, part, "parser"))
    kept, masks, out_boxes = [], [], []
    for g in garments + extra:
        mask = parsed.to_photo(g.mask)
        box = mask_box(mask) if g.box is None else g.box
        if box is not None:  # a part too thin to survive the return to the photo's pixels is no garment
            kept.append(g)
            masks.append(mask)
            out_boxes.append(box)
    photo_width, photo_height = parsed.photo_size
    return Detections(np.asarray(out_boxes, np.float32).reshape(-1, 4), [g.class_id for g in kept],
                      [g.score for g in kept], np.asarray(masks, bool).reshape(-1, photo_height, photo_width),
                      {"class_name": [names[g.class_id] for g in kept], "source": [g.source for g in kept]})


def _on_a_shown_box(part: np.ndarray, boxes: list, iou: float = 0.5) -> bool:
    """A part whose box mostly coincides with a detected garment's would read as a second card for it."""
    if not boxes:
        return False
    return bool((box_iou([mask_box(part)], boxes) >= iou).any())


def _exclusive(claims: list[np.ndarray], boxes: list) -> None:
    """Pixels claimed twice go to the smaller box (the inner layer: a shirt inside an open jacket's box)."""
    if len(claims) < 2:
        return
    order = np.argsort([(b[2] - b[0]) * (b[3] - b[1]) for b in boxes], kind="stable")
    taken = np.zeros_like(claims[0])
    for i in order:
        claims[i] &= ~taken
        taken |= claims[i]
