"""Which detections become items: the operating point, chosen on validation photos and kept in the detector's
manifest (`"operating_point"`), so `detect`, `analyze`, the API and the page show the same garments.

One garment is one item. After each class's own score threshold: of two boxes of different classes on one
garment (IoU >= `same_garment_iou`) the stronger stays, unless the pair is one worn in layers (`layered`: a dress
under an open jacket, chosen on validation); a box of one class lying mostly inside a larger box of
the same class is the same garment boxed twice, and the stronger box stays; a larger box around two of them is one
garment (an open jacket's halves go), unless the kind is worn in pairs, where the box over two shoes goes
instead (the data labels each shoe); two side-by-side boxes of one
kind that span the same height and meet in the middle (the halves of an open coat with nothing around them)
become one box.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

import numpy as np

from fashionlens.detect.detections import Detections
from fashionlens.detect.overlaps import suppress_cross_class
from fashionlens.taxonomy import PAIRED

FALLBACK_THRESHOLD = 0.5


@dataclass(frozen=True)
class OperatingPoint:
    thresholds: dict[str, float] = field(default_factory=dict)  # class -> lowest score shown
    default_threshold: float = FALLBACK_THRESHOLD  # for classes without their own
    same_garment_iou: float = 0.7  # boxes of different classes overlapping this much are one garment
    layered: tuple[tuple[str, str], ...] = ()  # ... except these pairs, worn one over the other
    part_inside: float = 0.8  # a same-class box with this share of its area inside a larger one is a part of it
    merge_halves: tuple[str, ...] = ("jacket",)  # kinds whose side-by-side halves are one garment (open coats)
    parser_items: dict[str, tuple[float, float]] = field(default_factory=dict)  # kind -> (least photo share, least
    # mean confidence) of a garment the parser alone finds and the pipeline shows
    split_pairs: bool = True  # one box of a paired kind over two separate parts is two items
    source: str = "built-in"  # where it came from: "built-in", the detector's "manifest", or "config"

    def threshold(self, label: str) -> float:
        return self.thresholds.get(label, self.default_threshold)

    @property
    def lowest(self) -> float:
        return min([self.default_threshold, *self.thresholds.values()])

    def to_json(self) -> dict:
        """Plain JSON types (lists, not tuples), so a stored document equals the one just made."""
        data = asdict(self)
        data["merge_halves"] = list(self.merge_halves)
        data["layered"] = [list(pair) for pair in self.layered]
        data["parser_items"] = {k: list(v) for k, v in self.parser_items.items()}
        return data

    @classmethod
    def from_json(cls, data: dict, source: str) -> OperatingPoint:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "source"}
        if "merge_halves" in known:
            known["merge_halves"] = tuple(known["merge_halves"])
        if "layered" in known:
            known["layered"] = tuple(tuple(pair) for pair in known["layered"])
        if "parser_items" in known:
            known["parser_items"] = {k: tuple(v) for k, v in known["parser_items"].items()}
        return replace(cls(**known), source=source)


def select(found: Detections, classes: list[str], point: OperatingPoint) -> Detections:
    """The detections shown as items, strongest first."""
    if not len(found):
        return found
    limits = np.array([point.threshold(c) for c in classes], np.float32)
    found = found[found.confidence >= limits[found.class_id]]
    found = found[np.argsort(-found.confidence, kind="stable")]
    found = suppress_cross_class(found, classes, point.same_garment_iou,
                                 layered=frozenset(frozenset(pair) for pair in point.layered))
    found = _parts_of_one_garment(found, classes, point.part_inside)
    found = _joined_halves(found, classes, point.merge_halves)
    return found[np.argsort(-found.confidence, kind="stable")]


def _inside(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[len(a), len(b)]: the share of each box of `a` that lies inside each box of `b`."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    return inter / np.maximum(np.prod(a[:, 2:] - a[:, :2], axis=1), 1e-9)[:, None]


def _parts_of_one_garment(found: Detections, classes: list[str], share: float) -> Detections:
    """Drop same-class boxes inside larger ones; for paired kinds, drop a larger box holding two of them."""
    if len(found) < 2:
        return found
    inside = _inside(found.xyxy, found.xyxy)
    area = found.area
    drop = set()
    for j in range(len(found)):  # j: the larger box
        holds = [i for i in range(len(found)) if i != j and found.class_id[i] == found.class_id[j]
                 and area[i] < area[j] and inside[i, j] >= share]
        if not holds:
            continue
        if len(holds) >= 2:  # two shoes in a box over both, or two halves of an open jacket in one around them
            drop.update([j] if classes[found.class_id[j]] in PAIRED else holds)
        else:  # one garment boxed twice: the stronger box stays
            i = holds[0]
            drop.add(j if found.confidence[i] > found.confidence[j] else i)
    return found[np.asarray([i for i in range(len(found)) if i not in drop], np.int64)]


def _joined_halves(found: Detections, classes: list[str], kinds: tuple[str, ...]) -> Detections:
    """Two boxes of one kind side by side, over the same rows, meeting in the middle: one box around both."""
    boxes, keep = found.xyxy.copy(), np.ones(len(found), bool)
    for k in range(len(found)):
        if not keep[k] or classes[found.class_id[k]] not in kinds:
            continue
        for m in range(k + 1, len(found)):
            if not keep[m] or found.class_id[m] != found.class_id[k]:
                continue
            a, b = boxes[k], boxes[m]
            rows = (min(a[3], b[3]) - max(a[1], b[1])) / max(min(a[3] - a[1], b[3] - b[1]), 1e-9)
            width = max(a[2], b[2]) - min(a[0], b[0])
            gap = max(a[0], b[0]) - min(a[2], b[2])  # negative where they overlap
            overlap_x = -gap / max(min(a[2] - a[0], b[2] - b[0]), 1e-9)
            if rows >= 0.6 and gap <= 0.15 * width and overlap_x <= 0.5:
                boxes[k] = [min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3])]
                keep[m] = False
    joined = Detections(boxes, found.class_id, found.confidence, found.mask, found.data)
    return joined[keep]
