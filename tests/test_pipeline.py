"""The analysis pipeline without the service: detection, whole-photo fallback, descriptions, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.ops import box_iou

from conftest import SAMPLES
from fashionlens.catalog import Catalog
from fashionlens.images import ImageError
from fashionlens.pipeline import Analyzer, PipelineConfig


@pytest.fixture(scope="module")
def analyzer():
    return Analyzer()


def test_garments_are_detected_and_described(analyzer):
    result = analyzer.analyze(SAMPLES / "pants_2.jpg")
    assert result.items and not any(g.whole_image for g in result.items)
    assert [g.score for g in result.items] == sorted((g.score for g in result.items), reverse=True)
    for g in result.items:
        assert g.label in analyzer.detector.classes and g.score >= analyzer.config.min_score
        assert abs(float(np.linalg.norm(g.embedding)) - 1) < 1e-4
        assert len(g.attributes["category"]) == analyzer.config.top_k
    assert set(result.timings_ms) >= {"decode", "detect", "backbone", "attributes", "colors", "total"}


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
        analyzer = Analyzer(PipelineConfig(detector=None, similar_k=3), catalog=catalog)
        garment = analyzer.analyze(SAMPLES / "skirt_1.jpg").items[0]
    assert len(garment.similar) == 3
    assert garment.similar[0].image.endswith("skirt_1.jpg") and garment.similar[0].score > 0.95
    assert {h.attributes["category"] for h in garment.similar} == {garment.attributes["category"][0].label}


def test_bad_image_names_its_source(analyzer, tmp_path):
    with pytest.raises(ImageError, match="upload:x.jpg: not an image"):
        analyzer.analyze(b"GIF89a but not really", name="upload:x.jpg")
    blank = tmp_path / "blank.png"
    Image.new("RGB", (8, 8)).save(blank)
    assert analyzer.analyze(blank).width == 8  # tiny but valid: analysed, not refused


def test_one_garment_is_not_reported_as_two_classes(analyzer):
    """shirt_1.jpg: the detector finds one box as both jacket and pants; the pipeline keeps the better one."""
    result = analyzer.analyze(SAMPLES / "shirt_1.jpg")
    boxes = torch.tensor([g.box for g in result.items])
    overlap = box_iou(boxes, boxes).fill_diagonal_(0)
    assert float(overlap.max()) <= analyzer.config.same_garment_iou
