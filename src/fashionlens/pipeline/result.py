"""What analysing one photo yields: its garments with box, attributes, colours and similar catalogue items.

`Analysis.to_json()` is the document `POST /v1/analyze` returns and the history stores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from fashionlens.attributes import Disputed
from fashionlens.classify.inference import LabelScore
from fashionlens.colors import ColorShare
from fashionlens.masks import polygons_from_mask


@dataclass
class Garment:
    label: str  # the detector's class, or the category predicted for a whole product photo
    score: float
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in the photo's pixels
    attributes: dict[str, list[LabelScore]]  # task -> best labels first
    colors: list[ColorShare]
    embedding: np.ndarray  # unit length, in the catalogue's embedding space
    similar: list = field(default_factory=list)  # catalogue hits (`catalog.search.Hit`), added where a catalogue is
    whole_image: bool = False  # nothing was detected: the photo was analysed as one item
    mask: np.ndarray | None = None  # bool [H, W]: the garment's own pixels (None without a parser)
    source: str = "detector"  # who found it: "detector", "parser", or "classifier" for a whole photo
    color_source: str = "box"  # "mask": colours of the garment's own pixels; "box"/"image" where it had none
    disputed: list[Disputed] = field(default_factory=list)

    @cached_property
    def polygons(self) -> list[list[float]]:
        """Traced once, however often the JSON is built (the service both stores and returns it)."""
        return polygons_from_mask(self.mask) if self.mask is not None else []

    def to_json(self) -> dict:
        return {
            "label": self.label, "score": round(self.score, 4), "box": [round(v, 1) for v in self.box],
            "whole_image": self.whole_image, "source": self.source,
            "polygons": self.polygons, "area": int(self.mask.sum()) if self.mask is not None else None,
            "attributes": {task: [{"label": s.label, "score": round(s.score, 4)} for s in scores]
                           for task, scores in self.attributes.items()},
            "colors": [c.to_json() for c in self.colors], "color_source": self.color_source,
            "disputed": [d.to_json() for d in self.disputed],
            "similar": [{"id": h.id, "score": round(h.score, 4), "image": h.image, "sha256": h.sha256,
                         "attributes": h.attributes}
                        for h in self.similar],
        }


@dataclass
class Analysis:
    sha256: str
    width: int
    height: int
    items: list[Garment]
    models: dict[str, dict]  # role -> {"name", "sha256", ...}: what produced this result
    timings_ms: dict[str, float]  # stage -> milliseconds

    def to_json(self) -> dict:
        return {"sha256": self.sha256, "width": self.width, "height": self.height,
                "items": [g.to_json() for g in self.items], "models": self.models,
                "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()}}
