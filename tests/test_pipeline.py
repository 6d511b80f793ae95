"""The analysis pipeline without the service: detection, whole-photo fallback, descriptions, errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.ops import box_iou

from conftest import SAMPLES, STREET
from fashionlens.catalog import Catalog
from fashionlens.catalog.similar import add_similar
from fashionlens.classify import Predictor, load_model
from fashionlens.defaults import default_classifier_dir
from fashionlens.images import ImageError, load_image
from fashionlens.pipeline import Analyzer, PipelineConfig


@pytest.fixture(scope="module")
def analyzer():
    return Analyzer()


def test_garments_are_detected_and_described(analyzer):
    result = analyzer.analyze(STREET / "ccp_0486.jpg")
    tasks = {t.name: t for m in analyzer.classifiers for t in m.tasks}
    assert len(result.items) >= 3 and not any(g.whole_image for g in result.items)
    assert [g.score for g in result.items] == sorted((g.score for g in result.items), reverse=True)
    for g in result.items:
        assert g.source == "parser" or g.score >= analyzer.point.threshold(g.label)
        assert g.label in analyzer.detector.classes or g.source == "parser"
        assert abs(float(np.linalg.norm(g.embedding)) - 1) < 1e-4
        fitting = tasks["category"].fitting(g.label)  # only categories that fit the garment's kind (its manifest's)
        assert [s.label for s in g.attributes.get("category", [])] == [
            s.label for s in g.attributes.get("category", []) if s.label in fitting]
        assert ("category" in g.attributes) == bool(fitting)
        types = tasks["type"].fitting(g.label)  # the street-photo type head: a type that fits, for every kind it knows
        assert ("type" in g.attributes) == bool(types) and all(s.label in types for s in g.attributes.get("type", []))
        assert g.mask is not None and g.mask.shape == (result.height, result.width)
        as_json = g.to_json()
        assert as_json["area"] == int(g.mask.sum()) and as_json["color_source"] in ("mask", "box")
        assert as_json["color_source"] == "box" or as_json["area"]
        assert all(len(p) >= 6 for p in as_json["polygons"]) and bool(as_json["polygons"]) == bool(as_json["area"])
    assert set(result.timings_ms) >= {"decode", "detect", "parse", "masks", "backbone", "attributes", "colors", "total"}


def test_analyses_export_as_coco_with_mask_segmentations(analyzer, tmp_path):
    from pycocotools.coco import COCO

    from fashionlens.masks import mask_from_segmentation, mask_iou
    from fashionlens.pipeline.coco_export import CocoExport

    export = CocoExport(analyzer.detector.classes)
    results = {}
    for name in ("ccp_0034.jpg", "ccp_0486.jpg"):
        results[name] = analyzer.analyze(STREET / name)
        export.add(name, results[name])
    data = export.to_dict()
    garments = [g for r in results.values() for g in r.items if not g.whole_image]
    assert len(data["images"]) == 2 and len(data["annotations"]) == len(garments) > 0
    coco = COCO()
    coco.dataset = data
    coco.createIndex()
    for ann, g in zip(data["annotations"], garments, strict=True):
        image = coco.imgs[ann["image_id"]]
        assert coco.cats[ann["category_id"]]["name"] == g.label and ann["score"] == pytest.approx(g.score, abs=1e-4)
        if g.mask is not None and g.mask.any():
            assert ann["area"] == int(g.mask.sum())
            assert mask_iou(mask_from_segmentation(ann["segmentation"], image["height"], image["width"]), g.mask) > 0.8


def test_a_bag_gets_no_category_and_a_disputed_label_is_kept():
    from fashionlens.attributes import _fitting
    from fashionlens.classify.inference import LabelScore
    from fashionlens.classify.tasks import TaskSpec
    from fashionlens.taxonomy import SHIPPED_FITS

    probs = np.array([0.7, 0.2, 0.1])
    fits = {kind: tuple(c for c in labels if c in ("longsleeve", "skirt", "pants"))
            for kind, labels in SHIPPED_FITS["category"].items()}
    task = TaskSpec("category", ("longsleeve", "skirt", "pants"), fits=fits, names_kind=False)
    assert _fitting(task, probs, "bag", 3) is None
    kept = _fitting(task, probs, "skirt", 3)
    assert kept == [LabelScore("skirt", pytest.approx(0.2))]  # the model's own probability, never renormalised
    assert [s.label for s in _fitting(task, probs, None, 3)] == list(task.classes)  # a whole photo


def test_bytes_and_path_give_the_same_analysis(analyzer):
    path = SAMPLES / "shoes_1.jpg"
    from_path, from_bytes = analyzer.analyze(path), analyzer.analyze(path.read_bytes())
    assert from_path.sha256 == from_bytes.sha256
    assert [g.to_json() for g in from_path.items] == [g.to_json() for g in from_bytes.items]


def test_a_photo_without_detections_is_described_whole():
    analyzer = Analyzer(PipelineConfig(detector=None))
    result = analyzer.analyze(SAMPLES / "hat_2.jpg")
    assert len(result.items) == 1 and result.items[0].whole_image
    item = result.items[0]
    assert item.box == (0.0, 0.0, float(result.width), float(result.height))
    assert item.label == item.attributes["category"][0].label == "hat"
    assert "detector" not in analyzer.models


def test_similar_items_share_the_garments_category(tmp_path):
    with Catalog.open(tmp_path / "c.db") as catalog:
        catalog.ingest(sorted(SAMPLES.glob("*.jpg")))
        analyzer = Analyzer(PipelineConfig(detector=None), embedder=catalog.embedder)
        analysis = analyzer.analyze(SAMPLES / "skirt_1.jpg")
        assert analysis.items[0].similar == []  # the pipeline knows no catalogue
        add_similar(analysis, catalog, 3, "category")
        garment = analysis.items[0]
    assert len(garment.similar) == 3
    assert garment.similar[0].image.endswith("skirt_1.jpg") and garment.similar[0].score > 0.95
    assert {h.attributes["category"] for h in garment.similar} == {garment.attributes["category"][0].label}


def test_bad_image_names_its_source(analyzer, tmp_path):
    with pytest.raises(ImageError, match="upload:x.jpg: not an image"):
        analyzer.analyze(b"GIF89a but not really", name="upload:x.jpg")
    blank = tmp_path / "blank.png"
    Image.new("RGB", (8, 8)).save(blank)
    assert analyzer.analyze(blank).width == 8  # tiny but valid: analysed, not refused


def test_the_sha256_is_the_encoded_files_whatever_form_the_photo_comes_in(analyzer):
    from fashionlens.fingerprints import sha256_bytes
    from fashionlens.images import encode_png

    path = SAMPLES / "shirt_1.jpg"
    by_path, by_bytes = analyzer.analyze(path), analyzer.analyze(path.read_bytes())
    assert by_path.sha256 == by_bytes.sha256 == sha256_bytes(path.read_bytes())
    picture = Image.open(path)
    by_image = analyzer.analyze(picture)
    assert by_image.sha256 == analyzer.analyze(picture.copy()).sha256  # the same pixels, one hash
    assert by_image.sha256 == sha256_bytes(encode_png(picture))  # a PIL image is its lossless PNG
    assert [g.label for g in by_image.items] == [g.label for g in analyzer.analyze(encode_png(picture)).items]


def test_one_garment_is_not_reported_as_two_classes(analyzer):
    for photo in STREET.glob("*.jpg"):
        items = analyzer.analyze(photo).items
        boxes = torch.tensor([g.box for g in items])
        overlap = box_iou(boxes, boxes).fill_diagonal_(0)
        layers = {frozenset(pair) for pair in analyzer.point.layered}
        for i, j in zip(*np.nonzero(overlap.numpy() >= analyzer.point.same_garment_iou), strict=True):
            assert frozenset((items[i].label, items[j].label)) in layers  # a dress under an open jacket, say
        masks = np.stack([g.mask for g in items])
        assert masks.sum(axis=0).max() <= 1  # no pixel is in two garments


def test_a_product_shot_is_one_item_of_the_kind_its_category_names(analyzer):
    """shirt_1.jpg, a short-sleeved shirt laid flat: the detector calls it a jacket (and pants), the whole-photo
    classifier a shirt; with no person in the photo the pipeline believes the classifier."""
    result = analyzer.analyze(SAMPLES / "shirt_1.jpg")
    assert len(result.items) == 1
    item = result.items[0]
    assert item.whole_image and item.label == "shirt" and item.source == "classifier"
    assert item.score == item.attributes["category"][0].score < 1.0
    assert item.attributes["category"][0].label in ("shirt", "t-shirt", "longsleeve")


def test_a_generated_product_shot_is_one_item(analyzer):
    picture = Image.new("RGB", (240, 320), "white")
    from PIL import ImageDraw

    draw = ImageDraw.Draw(picture)
    draw.polygon([(60, 60), (100, 45), (140, 45), (180, 60), (215, 110), (185, 130), (170, 110), (170, 280),
                  (70, 280), (70, 110), (55, 130), (25, 110)], fill=(40, 70, 160), outline=(20, 30, 80))
    result = analyzer.analyze(picture)
    assert len(result.items) == 1 and result.items[0].whole_image


def test_a_model_saved_with_test_time_flips_predicts_with_them_everywhere(tmp_path):
    """The pipeline and the catalogue share one backbone pass, so they must honour the manifest's `tta` as the
    Predictor does: the mean of each image's and its mirror's probabilities."""
    folder = tmp_path / "flips"
    shutil.copytree(default_classifier_dir(), folder, ignore=shutil.ignore_patterns("*.onnx", "export.json"))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["inference"] = {"tta": "flip"}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    paths = [SAMPLES / "shoes_1.jpg", SAMPLES / "pants_2.jpg"]
    classifier = load_model(folder).classifier
    flips = Predictor(classifier, "features").probabilities(paths).probs["category"]
    plain = Predictor(classifier, "features", tta=False).probabilities(paths).probs["category"]
    assert np.abs(flips - plain).max() > 1e-4  # otherwise this test could not tell the two apart

    analyzer = Analyzer(PipelineConfig(detector=None, classifiers=(str(folder),)))
    assert analyzer.models[f"attributes:{folder.name}"]["tta"] == "flip"
    for row, description in enumerate(analyzer.describe([load_image(p) for p in paths])):
        best = description.attributes["category"][0]
        assert best.label == classifier.tasks[0].classes[flips[row].argmax()]
        assert abs(best.score - flips[row].max()) <= 1e-4

    with Catalog.open(tmp_path / "c.db") as catalog:
        catalog.ingest(paths, classifier=str(folder))
        stored = {Path(item.source).name: item.predicted["category"] for item in catalog.list()}
    for row, path in enumerate(paths):
        assert abs(stored[path.name]["score"] - flips[row].max()) <= 1e-4
