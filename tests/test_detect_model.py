"""The detector: training on tiny generated photos, save/load, ONNX parity, the CLI, and the shipped model."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fashionlens.cli import app
from fashionlens.detect.detections import AnnotatedImage, DetectionDataset, Detections
from fashionlens.detect.formats import write_voc
from fashionlens.detect.inference import Detector, export_detector, parity
from fashionlens.detect.model import DetectorConfig
from fashionlens.detect.model_io import load_detector
from fashionlens.detect.train import DetectorTrainConfig, holdout_part, make_view, train_detector
from fashionlens.model_folder import ModelError

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = sorted((ROOT / "samples" / "clothing").glob("*.jpg"))
CLASSES = ["square", "bar"]
SIZE = (128, 96)  # height, width
runner = CliRunner()


def scene(rng: np.random.Generator) -> tuple[Image.Image, Detections]:
    """Noise with a red square and a blue horizontal bar at random places."""
    img = rng.normal(128, 25, (SIZE[0], SIZE[1], 3))
    boxes = []
    s = int(rng.integers(20, 34))
    x, y = int(rng.integers(0, SIZE[1] - s)), int(rng.integers(0, SIZE[0] // 2 - s))
    img[y:y + s, x:x + s] = (220, 30, 30)
    boxes.append([x, y, x + s, y + s])
    w, h = int(rng.integers(40, 80)), int(rng.integers(8, 14))
    x, y = int(rng.integers(0, SIZE[1] - w)), int(rng.integers(SIZE[0] // 2, SIZE[0] - h))
    img[y:y + h, x:x + w] = (30, 40, 220)
    boxes.append([x, y, x + w, y + h])
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)), Detections(boxes, [0, 1])


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> DetectionDataset:
    folder = tmp_path_factory.mktemp("scenes")
    rng = np.random.default_rng(0)
    images = []
    for i in range(24):
        image, dets = scene(rng)
        path = folder / f"scene_{i:02d}.png"
        image.save(path)
        images.append(AnnotatedImage(path, SIZE[1], SIZE[0], dets))
    return DetectionDataset(CLASSES, images, str(folder))


@pytest.fixture(scope="module")
def extra_scenes(tmp_path_factory) -> DetectionDataset:
    """More generated photos, as a second dataset (CCP's role): 8 photos, of which extra_14 and extra_16 fall in
    the test part at the default fractions (10% validation, 15% test)."""
    folder = tmp_path_factory.mktemp("extra")
    rng = np.random.default_rng(1)
    images = []
    for i in range(10, 18):
        image, dets = scene(rng)
        image.save(folder / f"extra_{i:02d}.png")
        images.append(AnnotatedImage(folder / f"extra_{i:02d}.png", SIZE[1], SIZE[0], dets))
    return DetectionDataset(CLASSES, images, str(folder))


TRAIN = DetectorTrainConfig(epochs=6, views=2, batch_size=4, lr=2e-3, val_fraction=0.25, test_fraction=0.0, patience=10,
                            ema_decay=0.9)


@pytest.fixture(scope="module")
def trained(scenes, extra_scenes, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("detector")
    train_detector(scenes, out, detector=DetectorConfig(classes=tuple(CLASSES), input_size=SIZE, channels=64),
                   config=TRAIN, extra=[extra_scenes], progress=False)
    return out


def test_training_loss_falls(trained):
    with open(trained / "logs" / "detector.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 6
    loss = [float(r["classification"]) + float(r["bbox_regression"]) for r in rows]
    assert loss[-1] < 0.8 * loss[0], loss
    assert all(0 <= float(r["raw_val_map50"]) <= 1 for r in rows)  # the raw weights are scored beside the average


def test_extra_data_trains_but_its_test_part_stays_out(trained, extra_scenes):
    from fashionlens.detect.train import extra_training_images

    used = extra_training_images([extra_scenes], CLASSES, 0.1, 0.15)
    tested = [im for im in extra_scenes.images if holdout_part(im.path, 0.1, 0.15) == "test"]
    assert tested and len(used) == len(extra_scenes) - len(tested)  # names chosen so that some are held out
    assert not {im.path for im in used} & {im.path for im in tested}
    manifest = json.loads((trained / "manifest.json").read_text())
    assert manifest["data"]["extra"] == [{"source": extra_scenes.source, "train": len(extra_training_images(
        [extra_scenes], CLASSES, TRAIN.val_fraction, TRAIN.test_fraction))}]
    with pytest.raises(ValueError, match="differ"):
        extra_training_images([DetectionDataset(["other"], [], "elsewhere")], CLASSES, 0.1, 0.15)


def test_training_resumes_without_redoing_epochs(scenes, extra_scenes, trained):
    """Rerunning the same command finds the checkpoint (and the weight average): no epoch is trained twice."""
    train_detector(scenes, trained, detector=DetectorConfig(classes=tuple(CLASSES), input_size=SIZE, channels=64),
                   config=TRAIN, extra=[extra_scenes], progress=False)
    with open(trained / "logs" / "detector.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 6


def test_save_load_round_trip_and_onnx_parity(trained, scenes, tmp_path):
    loaded = load_detector(trained)
    assert loaded.config.classes == tuple(CLASSES)
    onnx = export_detector(loaded, tmp_path / "det.onnx")
    assert parity(loaded, onnx) < 1e-3
    paths = [im.path for im in scenes.images[:6]]
    eager = Detector(loaded, runtime="torch").detect(paths, min_score=0.2, raw=True)
    fast = Detector(load_detector(trained), runtime="onnx").detect(paths, min_score=0.2, raw=True)
    for a, b in zip(eager.images, fast.images, strict=True):
        assert len(a.detections) == len(b.detections)
        np.testing.assert_allclose(a.detections.xyxy, b.detections.xyxy, atol=0.5)
    one = Detector(loaded, runtime="onnx").detect_image(Image.open(paths[0]).convert("RGB"), min_score=0.2)
    np.testing.assert_allclose(one.xyxy, fast.images[0].detections.xyxy, atol=1e-3)  # one decoded image, same boxes


def test_damaged_weights_are_refused(trained, tmp_path):
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("manifest.json", "weights.safetensors"):
        (copy / name).write_bytes((trained / name).read_bytes())
    with open(copy / "weights.safetensors", "r+b") as fh:
        fh.seek(-8, 2)
        fh.write(b"\0" * 8)
    with pytest.raises(ModelError, match="does not match the manifest"):
        load_detector(copy)


def test_views_mirror_boxes_and_keep_them_inside(scenes):
    item = scenes.images[0]
    image = Image.open(item.path).convert("RGB")
    _, boxes, labels, scale = make_view(image, item.detections, 1, SIZE, seed=0, index=0)
    expected = item.detections.xyxy.copy()
    expected[:, [0, 2]] = SIZE[1] - expected[:, [2, 0]]
    np.testing.assert_allclose(boxes, expected * scale, atol=1e-4)
    for view in range(2, 8):
        boxed, boxes, labels, _ = make_view(image, item.detections, view, SIZE, seed=0, index=0)
        assert boxed.size == (SIZE[1], SIZE[0]) and len(boxes) == len(labels) >= 1
        assert (boxes >= -1e-3).all() and (boxes[:, [0, 2]] <= SIZE[1] + 1e-3).all() and (boxes[:, [1, 3]] <= SIZE[0] + 1e-3).all()


def test_holdout_part_is_stable_and_proportional():
    parts = [holdout_part(Path(f"img_{i}.jpg"), 0.1, 0.15) for i in range(4000)]
    assert parts == [holdout_part(Path(f"/elsewhere/img_{i}.jpg"), 0.1, 0.15) for i in range(4000)]
    assert 0.12 < parts.count("test") / 4000 < 0.18 and 0.07 < parts.count("validation") / 4000 < 0.13


def test_cli_detect_json_draw_and_bad_file(trained, scenes, tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    good = scenes.images[0].path
    result = runner.invoke(app, ["detect", str(good), str(bad), "--model", str(trained), "--json", "--min-score", "0.05",
                                 "--draw", str(tmp_path / "drawn")])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1 and lines[0]["image"] == str(good)
    assert (lines[0]["width"], lines[0]["height"]) == (SIZE[1], SIZE[0])
    for det in lines[0]["detections"]:
        assert det["label"] in CLASSES and 0.05 <= det["score"] <= 1 and len(det["box"]) == 4
    assert "broken.jpg" in result.stderr
    assert len(list((tmp_path / "drawn").rglob("*.jpg"))) + len(list((tmp_path / "drawn").rglob("*.png"))) == 1


def test_cli_evaluate_detector_writes_report(trained, scenes, tmp_path):
    data = write_voc(scenes, tmp_path / "voc")
    result = runner.invoke(app, ["evaluate-detector", str(trained), str(data), "--out", str(tmp_path / "report")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "report" / "metrics.json").read_text())
    assert 0.0 <= metrics["map50"] <= 1.0 and set(metrics["per_class"]) == set(CLASSES)


def test_cli_detect_refuses_a_folder_that_is_not_a_model(tmp_path, scenes):
    result = runner.invoke(app, ["detect", str(scenes.images[0].path), "--model", str(tmp_path)])
    assert result.exit_code == 2 and "manifest.json" in result.output


# The classes a detector trained on street photos should find in each shipped single-garment sample.
EXPECTED = {"dress": {"dress"}, "hat": {"hat"}, "longsleeve": {"shirt", "jacket"}, "outwear": {"jacket"},
            "pants": {"pants"}, "shirt": {"shirt", "jacket"}, "shoes": {"shoe"}, "shorts": {"shorts", "pants"},
            "skirt": {"skirt", "dress"}, "t-shirt": {"shirt"}}


def test_shipped_detector_finds_garments_in_sample_photos():
    detector = Detector()
    result = detector.detect(SAMPLES, min_score=0.2, raw=True)
    assert len(result.images) == len(SAMPLES)
    hits = 0
    for item in result.images:
        expected = EXPECTED[item.path.stem.rsplit("_", 1)[0]]
        found = {detector.classes[c] for c in item.detections.class_id}
        hits += bool(found & expected)
    assert hits / len(SAMPLES) >= 0.8, f"{hits}/{len(SAMPLES)} samples with the right garment found"


@pytest.mark.integration
def test_shipped_detector_map_on_held_out_street_photos(shared_datasets):
    from fashionlens.detect.formats import read_voc
    from fashionlens.detect.train import split_dataset

    detector = Detector()
    split = detector.model.manifest["data"]["split"]
    data = read_voc(shared_datasets / "colorful-fashion")
    test = split_dataset(data, split["val_fraction"], split["test_fraction"])["test"]
    metrics, failures = detector.evaluate(test.subset(range(120)))
    assert not failures
    assert metrics["map50"] >= 0.55, metrics
