"""The operating point: per-class thresholds from the detector's manifest, one item per garment, and how the
finished items are scored against true boxes."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from conftest import garments_in
from fashionlens.defaults import default_detector_dir
from fashionlens.detect.detections import Detections
from fashionlens.detect.inference import Detector
from fashionlens.detect.operating_point import OperatingPoint, select
from fashionlens.parse.inference import ParsedImage
from fashionlens.pipeline.garment_masks import MaskRules
from fashionlens.pipeline.scoring import Tally, score_photo

CLASSES = ["jacket", "shirt", "shoe", "bag", "dress"]


def found(*rows) -> Detections:
    """Detections from (class, score, x1, y1, x2, y2) rows."""
    return Detections(np.array([r[2:] for r in rows], np.float32), [CLASSES.index(r[0]) for r in rows],
                      [r[1] for r in rows])


def shown(d: Detections) -> list[tuple[str, float]]:
    return [(CLASSES[c], round(float(s), 2)) for c, s in zip(d.class_id, d.confidence, strict=True)]


def test_each_class_keeps_its_own_threshold():
    point = OperatingPoint(thresholds={"jacket": 0.5, "shoe": 0.7}, default_threshold=0.4)
    d = select(found(("jacket", 0.55, 0, 0, 50, 50), ("shoe", 0.65, 100, 100, 120, 120),
                     ("bag", 0.45, 200, 0, 250, 50)), CLASSES, point)
    assert shown(d) == [("jacket", 0.55), ("bag", 0.45)]
    assert point.lowest == 0.4


def test_the_halves_of_an_open_jacket_are_one_item():
    point = OperatingPoint(default_threshold=0.3)
    inside = select(found(("jacket", 0.8, 10, 10, 110, 200), ("jacket", 0.6, 10, 12, 58, 190),
                          ("jacket", 0.5, 62, 12, 110, 195)), CLASSES, point)
    assert shown(inside) == [("jacket", 0.8)]  # a box around both halves: the halves go
    alone = select(found(("jacket", 0.7, 10, 10, 58, 200), ("jacket", 0.6, 62, 15, 110, 195)), CLASSES, point)
    assert len(alone) == 1 and alone.xyxy[0].tolist() == [10, 10, 110, 200]  # two halves alone: one box around them


def test_each_shoe_stays_one_item():
    point = OperatingPoint(default_threshold=0.3)
    pair = select(found(("shoe", 0.9, 0, 100, 100, 140), ("shoe", 0.8, 0, 100, 45, 140),
                        ("shoe", 0.7, 55, 100, 100, 140)), CLASSES, point)
    assert sorted(pair.xyxy[:, 2].tolist()) == [45, 100]  # the box over both shoes goes, each shoe stays
    twice = select(found(("shoe", 0.5, 0, 100, 50, 140), ("shoe", 0.8, 2, 102, 46, 138)), CLASSES, point)
    assert shown(twice) == [("shoe", 0.8)]  # one shoe boxed twice: the stronger box


def test_one_garment_is_one_class():
    d = select(found(("jacket", 0.6, 0, 0, 100, 100), ("shirt", 0.9, 2, 2, 100, 98)), CLASSES,
               OperatingPoint(default_threshold=0.3))
    assert shown(d) == [("shirt", 0.9)]


def test_a_dress_under_an_open_jacket_stays_when_the_point_names_the_layers():
    rows = (("jacket", 0.8, 0, 0, 100, 160), ("dress", 0.7, 5, 10, 95, 170))
    assert shown(select(found(*rows), CLASSES, OperatingPoint(default_threshold=0.3))) == [("jacket", 0.8)]
    point = OperatingPoint(default_threshold=0.3, layered=(("dress", "jacket"),))
    assert shown(select(found(*rows), CLASSES, point)) == [("jacket", 0.8), ("dress", 0.7)]
    assert shown(select(found(("jacket", 0.8, 0, 0, 100, 160), ("shirt", 0.7, 5, 10, 95, 170)), CLASSES, point)) == [
        ("jacket", 0.8)]  # only the pairs named
    assert OperatingPoint.from_json(point.to_json(), "manifest").layered == point.layered


@pytest.mark.slow
def test_thresholds_are_read_from_the_detectors_manifest(tmp_path):
    shipped = Detector().operating_point
    assert shipped.source == "manifest" and set(shipped.thresholds) == set(Detector().classes)
    folder = tmp_path / "detector"
    shutil.copytree(default_detector_dir(), folder, ignore=shutil.ignore_patterns("*.onnx", "export.json"))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["operating_point"]["thresholds"]["shoe"] = 0.91
    (folder / "manifest.json").write_text(json.dumps(manifest))
    point = Detector(folder).operating_point
    assert point.threshold("shoe") == 0.91 and point.threshold("bag") == shipped.threshold("bag")
    override = Detector(folder).point_for(0.25)
    assert override.threshold("shoe") == 0.25 and override.source == "min_score"
    del manifest["operating_point"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert Detector(folder).operating_point.source == "built-in"


def test_items_are_scored_as_true_false_duplicate_or_unlabelled():
    truth = [[0, 0, 100, 100], [200, 0, 300, 100]]
    photo = score_photo(["jacket", "jacket", "shirt", "belt", "bag"], [0.9, 0.8, 0.7, 0.6, 0.5],
                        [[0, 0, 100, 100], [2, 2, 98, 100], [200, 0, 300, 100], [0, 0, 10, 10], [400, 0, 450, 50]],
                        ["jacket", "shirt"], truth, set(CLASSES))
    assert [i.outcome for i in photo.items] == ["true", "duplicate", "true", "unlabelled", "false"]
    tally = Tally()
    tally.add(photo)
    f = tally.figures()
    assert (f["precision"], f["recall"], f["duplicates"]) == (pytest.approx(2 / 5), 1.0, 1)


def parsed_jacket_over_shirt() -> ParsedImage:
    classes = ["null", "skin", "hair", "jacket", "top"]
    labels = np.zeros((100, 100), np.uint8)
    labels[10:90, 20:80] = 3  # an open jacket...
    labels[15:85, 40:60] = 4  # ...with the shirt under it showing between its halves
    return ParsedImage(labels, np.ones((100, 100), np.float32), classes)


def test_no_pixel_is_in_two_masks():
    parsed = parsed_jacket_over_shirt()
    boxes, labels = [(20, 10, 80, 90), (38, 14, 62, 86)], ["jacket", "unknown-kind"]  # the second claims any garment
    masks = garments_in(parsed, boxes, labels, [0.9, 0.8]).mask
    assert not (masks[0] & masks[1]).any()
    assert masks[1][50, 50] and not masks[0][50, 50]  # the inner layer keeps what lies inside its box


def test_the_parser_alone_adds_only_the_kinds_the_operating_point_names():
    parsed = parsed_jacket_over_shirt()
    assert len(garments_in(parsed, [], [], [])) == 0
    shirts = garments_in(parsed, [], [], [], MaskRules(added={"shirt": (0.01, 0.5)}))
    assert list(zip(shirts.data["class_name"], shirts.data["source"], strict=True)) == [("shirt", "parser")]


def test_a_shirt_under_an_open_jacket_keeps_its_own_colour():
    """Two garments, one over the other: each mask holds only its own pixels, so each is named its own colour."""
    from PIL import Image

    from fashionlens.colors import named_colors

    parsed = parsed_jacket_over_shirt()
    pixels = np.full((100, 100, 3), (120, 130, 120), np.uint8)  # a street behind
    pixels[parsed.labels == 3] = (200, 25, 35)  # the red jacket
    pixels[parsed.labels == 4] = (245, 245, 242)  # the white shirt
    photo = Image.fromarray(pixels)
    found = garments_in(parsed, [(20, 10, 80, 90), (38, 14, 62, 86)], ["jacket", "shirt"], [0.9, 0.8])
    (jacket_box, shirt_box), (jacket, shirt) = found.xyxy.tolist(), found.mask
    assert named_colors(photo, jacket_box, mask=jacket)[0].family == "red"
    assert named_colors(photo, shirt_box, mask=shirt)[0].family == "white"
