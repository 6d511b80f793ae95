"""Detection evaluation (COCO mAP, PR curve, worst misses), crops per class, drawing, and the `crop` command."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fashionlens.cli import app
from fashionlens.detect.crop import crop_objects, padded_box
from fashionlens.detect.detections import AnnotatedImage, DetectionDataset, Detections
from fashionlens.detect.draw import draw_detections, draw_to_folder, drawing_order
from fashionlens.detect.evaluate import evaluate_detections
from fashionlens.detect.formats import write_voc

CLASSES = ["shirt", "pants", "shoe"]
W, H = 160, 200


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> DetectionDataset:
    """Twelve generated images, each with a shirt, pants and two shoes, in varying places."""
    root = tmp_path_factory.mktemp("det")
    rng = np.random.default_rng(0)
    images = []
    for i in range(12):
        path = root / f"img{i:02d}.png"
        Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(path)
        dx, dy = rng.integers(0, 30, 2)
        boxes = np.array([[40, 20, 120, 90], [50, 90, 110, 170], [45, 170, 75, 195], [85, 170, 115, 195]], float)
        boxes[:, [0, 2]] += dx - 15
        boxes[:, [1, 3]] += np.clip(dy - 15, -15, 4)
        images.append(AnnotatedImage(path, W, H, Detections(boxes, [0, 1, 2, 2])))
    return DetectionDataset(CLASSES, images, str(root))


def perfect(dataset: DetectionDataset) -> list[Detections]:
    return [Detections(i.detections.xyxy, i.detections.class_id, np.linspace(0.9, 0.6, len(i.detections)))
            for i in dataset.images]


def test_perfect_predictions_score_map_one_and_write_the_report(dataset, tmp_path):
    metrics = evaluate_detections(dataset, perfect(dataset), out_dir=tmp_path)
    assert metrics["map50"] == pytest.approx(1.0) and metrics["map50_95"] == pytest.approx(1.0)
    assert metrics["images"] == 12
    assert metrics["per_class"] == {"shirt": {"ap50": 1.0, "ap50_95": 1.0, "n": 12},
                                    "pants": {"ap50": 1.0, "ap50_95": 1.0, "n": 12},
                                    "shoe": {"ap50": 1.0, "ap50_95": 1.0, "n": 24}}
    assert json.loads((tmp_path / "metrics.json").read_text()) == metrics
    assert Image.open(tmp_path / "pr_curve.png").size[0] > 300
    assert not list((tmp_path / "worst").glob("*.jpg"))  # nothing missed
    assert "pr_curve.png" in (tmp_path / "index.html").read_text()


def test_shifted_boxes_score_less_and_the_worst_misses_are_drawn(dataset, tmp_path):
    predictions = perfect(dataset)
    predictions[3] = Detections(predictions[3].xyxy + [30, 0, 30, 0], predictions[3].class_id, predictions[3].confidence)
    for p in predictions[6:]:
        p.xyxy[:] += 4  # still matched at IoU 0.5, not at 0.95
    metrics = evaluate_detections(dataset, predictions, out_dir=tmp_path, score_threshold=0.5)
    assert metrics["map50"] < 1.0 and metrics["map50_95"] < metrics["map50"]
    assert metrics["per_class"]["shoe"]["ap50"] < 1.0
    worst = sorted((tmp_path / "worst").glob("*.jpg"))
    assert [p.name for p in worst] == ["001_img03.jpg"]  # the only image with misses at IoU 0.5
    drawn = np.asarray(Image.open(worst[0]), dtype=int)
    gt_top_left = dataset.images[3].detections.xyxy[0].astype(int)
    assert drawn.shape == (H, W, 3)
    assert drawn[gt_top_left[1] + 20, gt_top_left[0], 1] > 150 > drawn[gt_top_left[1] + 20, gt_top_left[0], 0]  # green edge
    assert "worst/001_img03.jpg" in (tmp_path / "index.html").read_text()


def test_no_predictions_score_zero_and_wrong_lengths_are_refused(dataset):
    metrics = evaluate_detections(dataset, [Detections.empty(True) for _ in dataset.images])
    assert metrics["map50"] == 0.0 and metrics["per_class"]["pants"]["ap50"] == 0.0
    with pytest.raises(ValueError, match="11 predictions for 12 images"):
        evaluate_detections(dataset, perfect(dataset)[:11])


def test_class_without_ground_truth_has_no_ap(dataset):
    four = DetectionDataset(CLASSES + ["hat"], dataset.images, dataset.source)
    metrics = evaluate_detections(four, perfect(dataset))
    assert metrics["per_class"]["hat"] == {"ap50": None, "ap50_95": None, "n": 0}
    assert metrics["map50"] == pytest.approx(1.0)


def test_padded_box_grows_by_a_fraction_of_the_box_and_clips():
    assert padded_box([20, 40, 60, 60], 0.25, 100, 100) == (10, 35, 70, 65)
    assert padded_box([2, 2, 50, 98], 0.5, 100, 100) == (0, 0, 74, 100)


def test_crops_are_written_per_class_with_padding(dataset, tmp_path):
    report = crop_objects(dataset.subset(range(3)), tmp_path, padding=0.1, progress=False)
    assert report.counts == {"pants": 3, "shirt": 3, "shoe": 6}
    assert sorted(p.name for p in (tmp_path / "shoe").iterdir())[:2] == ["img00_3.jpg", "img00_4.jpg"]
    x1, y1, x2, y2 = dataset.images[0].detections.xyxy[0]
    assert Image.open(tmp_path / "shirt" / "img00_1.jpg").size == (round((x2 - x1) * 1.2), round((y2 - y1) * 1.2))


def test_crops_from_detected_pairs_skip_unreadable_images(dataset, tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 truncated")
    pairs = [(dataset.images[0].path, Detections([[0, 0, 10, 10]], [1], [0.8])), (broken, Detections([[0, 0, 5, 5]], [0]))]
    report = crop_objects(pairs, tmp_path / "out", classes=CLASSES, progress=False)
    assert report.counts == {"pants": 1}
    assert [s.source for s in report.skipped] == [str(broken)]
    with pytest.raises(ValueError, match="padding"):
        crop_objects(pairs, tmp_path / "out", padding=-0.1, classes=CLASSES)


def test_drawing_keeps_the_size_and_changes_pixels_only_at_the_boxes():
    image = Image.new("RGB", (200, 150), (128, 128, 128))
    drawn = draw_detections(image, Detections([[50, 40, 150, 120]], [1], [0.87]), CLASSES)
    assert drawn.size == image.size and image.getpixel((50, 80)) == (128, 128, 128)  # the input is untouched
    before, after = np.asarray(image, int), np.asarray(drawn, int)
    changed = np.abs(after - before).sum(axis=2) > 0
    assert changed[40:121, 50:151].sum() > 2 * 80  # outline and label inside the box area
    assert not changed[130:, :].any() and not changed[:, :40].any()  # nothing far from the box


@pytest.mark.parametrize("order", [(0, 1), (1, 0)], ids=["strong-first", "weak-first"])
def test_the_stronger_of_two_overlapping_labels_is_painted_on_top(order):
    """Issue 29: a shoe at 0.79 showed as `pants 0.30`. The labels sit above boxes two pixels apart: the shoe's
    label must come out exactly as it does when drawn alone."""
    boxes, class_ids, scores = [[42, 42, 180, 140], [40, 40, 180, 140]], [2, 1], [0.79, 0.30]  # shoe, pants
    detections = Detections([boxes[i] for i in order], [class_ids[i] for i in order], [scores[i] for i in order])
    blank = Image.new("RGB", (200, 150), "white")
    both = np.asarray(draw_detections(blank, detections, CLASSES))
    alone = np.asarray(draw_detections(blank, Detections(boxes[:1], class_ids[:1], scores[:1]), CLASSES))
    label = (alone != 255).any(axis=2)
    label[42:] = False  # above the shoe's box: its label, not its outline
    assert label.sum() > 200 and (both[label] == alone[label]).all()


def test_drawing_order_is_weakest_first_and_input_order_without_scores():
    assert drawing_order(Detections([[0, 0, 9, 9]] * 3, [0, 1, 2], [0.5, 0.9, 0.1])) == [2, 0, 1]
    assert drawing_order(Detections([[0, 0, 9, 9]] * 3, [0, 1, 2])) == [0, 1, 2]


def test_draw_to_folder_writes_each_image_and_reports_unreadable_ones(dataset, tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_text("text")
    pairs = [(i.path, i.detections) for i in dataset.images[:2]] + [(broken, Detections.empty())]
    report = draw_to_folder(pairs, tmp_path / "drawn", CLASSES, progress=False)
    assert [p.name for p in report.written] == ["img00.png", "img01.png"]
    assert Image.open(report.written[0]).size == (W, H)
    assert [s.source for s in report.skipped] == [str(broken)]


def test_crop_command_reports_counts_and_skipped_files(dataset, tmp_path):
    write_voc(dataset.subset(range(2)), tmp_path / "voc")
    (tmp_path / "voc" / "Annotations" / "bad.xml").write_text("<annotation>")
    result = CliRunner().invoke(app, ["crop", str(tmp_path / "voc"), "--out", str(tmp_path / "crops"), "--padding", "0.2"])
    assert result.exit_code == 0, result.output
    text = "".join(result.output.split())  # Rich wraps long paths at the console width
    assert "bad.xml:badXML" in text
    assert "│shoe│4│" in text and "│total│8│" in text
    assert len(list((tmp_path / "crops" / "shoe").glob("*.jpg"))) == 4
    wrong = CliRunner().invoke(app, ["crop", str(tmp_path / "voc"), "--out", str(tmp_path / "c2"), "--format", "pascal"])
    assert wrong.exit_code == 2 and "must be one of" in wrong.output
