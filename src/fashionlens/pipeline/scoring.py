"""Scoring what a user sees: the finished items of one photo against its true boxes, at IoU 0.5.

Each item, strongest first, takes the unmatched true box of its own kind it overlaps most (a true positive).
An item that does not is a false positive, and a *duplicate* when the true garment it overlaps most (any kind)
was already taken by another item: a second card for one garment. Items of kinds the data does not label
(a belt where the data has no belts) are counted apart, as `unlabelled`, and never as true.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from fashionlens.boxes import box_iou

IOU = 0.5


@dataclass(frozen=True)
class ScoredItem:
    label: str
    score: float
    outcome: str  # "true", "false", "duplicate" or "unlabelled"


@dataclass
class PhotoScore:
    items: list[ScoredItem]
    truth: list[str]  # the true garments' kinds
    found: list[bool]  # per true garment: matched by an item of its kind

    @property
    def errors(self) -> int:
        return sum(i.outcome in ("false", "duplicate") for i in self.items) + self.found.count(False)


def score_photo(labels: list[str], scores: list[float], boxes, truth_labels: list[str], truth_boxes,
                known: set[str], iou: float = IOU) -> PhotoScore:
    """Greedy matching, strongest item first, as VOC and COCO match detections."""
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    overlaps = (box_iou(boxes, truth_boxes)
                if len(boxes) and len(truth_boxes) else None)
    taken = [False] * len(truth_labels)
    outcomes: dict[int, str] = {}
    for i in order:
        if labels[i] not in known:
            outcomes[i] = "unlabelled"
            continue
        if overlaps is None:
            outcomes[i] = "false"
            continue
        row = overlaps[i]
        same = [t for t in range(len(truth_labels)) if truth_labels[t] == labels[i] and not taken[t] and row[t] >= iou]
        if same:
            best = max(same, key=lambda t: row[t])
            taken[best] = True
            outcomes[i] = "true"
            continue
        nearest = int(row.argmax())
        outcomes[i] = "duplicate" if row[nearest] >= iou and taken[nearest] else "false"
    items = [ScoredItem(labels[i], float(scores[i]), outcomes[i]) for i in range(len(labels))]
    return PhotoScore(items, list(truth_labels), taken)


@dataclass
class Tally:
    """Counts over photos, per kind, and the figures they give."""

    true: Counter = field(default_factory=Counter)
    false: Counter = field(default_factory=Counter)
    duplicate: Counter = field(default_factory=Counter)
    unlabelled: Counter = field(default_factory=Counter)
    truth: Counter = field(default_factory=Counter)
    found: Counter = field(default_factory=Counter)
    photos: int = 0

    def add(self, photo: PhotoScore) -> None:
        self.photos += 1
        for item in photo.items:
            getattr(self, item.outcome)[item.label] += 1
        for kind, hit in zip(photo.truth, photo.found, strict=True):
            self.truth[kind] += 1
            self.found[kind] += hit

    def figures(self, kind: str | None = None) -> dict:
        def pick(c: Counter) -> int:
            return c[kind] if kind is not None else sum(c.values())

        true, false, dup, unl = pick(self.true), pick(self.false), pick(self.duplicate), pick(self.unlabelled)
        shown = true + false + dup + unl
        truth, found = pick(self.truth), pick(self.found)
        precision = true / shown if shown else None
        recall = found / truth if truth else None
        f1 = (2 * precision * recall / (precision + recall)
              if precision is not None and recall is not None and precision + recall else None)
        return {"items": shown, "true": true, "false": false, "duplicates": dup, "unlabelled": unl,
                "garments": truth, "found": found, "precision": precision, "recall": recall, "f1": f1,
                "duplicate_share": dup / shown if shown else None}

    def report(self, kinds: list[str]) -> dict:
        overall = self.figures()
        overall["items_per_photo"] = overall["items"] / max(1, self.photos)
        overall["garments_per_photo"] = overall["garments"] / max(1, self.photos)
        extra = sorted(set(self.unlabelled) - set(kinds))
        return {"photos": self.photos, "overall": overall,
                "per_class": {k: self.figures(k) for k in [*kinds, *extra]}}
