import html
import json
import re

import numpy as np
import pytest
from PIL import Image

from fashionlens.classify.report import TaskPredictions, task_metrics, write_report

# 4 classes, 6 labelled rows and one unlabelled row (y_true == -1).
#   row  true  probs (a, b, c, d)        pred  top-3 hit
#   0    a     .70 .10 .10 .10            a     yes
#   1    a     .15 .60 .20 .05            b     yes (b, c, a)
#   2    b     .10 .80 .05 .05            b     yes
#   3    b     .05 .10 .25 .60            d     yes (d, c, b)
#   4    c     .10 .15 .70 .05            c     yes
#   5    c     .40 .30 .05 .25            a     no  (a, b, d)
#   6    -1    .00 .00 .00 1.0            d     (ignored)
# accuracy 3/6, top-3 5/6.
# a: P 1/2 R 1/2 F1 1/2; b: P 1/2 R 1/2 F1 1/2; c: P 1 R 1/2 F1 2/3; d: predicted once, never true -> 0.
# macro-F1 over classes seen in y_true or predictions (a, b, c, d) = (1/2 + 1/2 + 2/3 + 0) / 4 = 5/12.
CLASSES = ["a", "b", "c", "d"]
Y = np.array([0, 0, 1, 1, 2, 2, -1])
PROBS = np.array(
    [
        [0.70, 0.10, 0.10, 0.10],
        [0.15, 0.60, 0.20, 0.05],
        [0.10, 0.80, 0.05, 0.05],
        [0.05, 0.10, 0.25, 0.60],
        [0.10, 0.15, 0.70, 0.05],
        [0.40, 0.30, 0.05, 0.25],
        [0.00, 0.00, 0.00, 1.00],
    ]
)


def example(images=None) -> TaskPredictions:
    return TaskPredictions("category", CLASSES, Y, PROBS, images or [f"img{i}.jpg" for i in range(len(Y))])


def test_metrics_match_hand_computed_values():
    m = task_metrics(example())
    assert m["n"] == 6
    assert m["accuracy"] == pytest.approx(3 / 6)
    assert m["top3"] == pytest.approx(5 / 6)
    assert m["macro_f1"] == pytest.approx(5 / 12)
    assert list(m["per_class"]) == CLASSES
    assert m["per_class"]["a"] == pytest.approx({"precision": 0.5, "recall": 0.5, "f1": 0.5, "support": 2})
    assert m["per_class"]["c"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2})
    assert m["per_class"]["d"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    json.dumps(m)  # plain Python types only
    assert type(m["accuracy"]) is float and type(m["n"]) is int
    assert type(m["per_class"]["a"]["support"]) is int


def test_class_absent_from_split_does_not_lower_macro_f1():
    padded = np.hstack([PROBS, np.zeros((len(Y), 1))])
    m = task_metrics(TaskPredictions("category", CLASSES + ["e"], Y, padded, ["x"] * len(Y)))
    assert m["macro_f1"] == pytest.approx(5 / 12)
    assert m["per_class"]["e"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}


def test_unlabelled_rows_are_ignored():
    labelled = Y != -1
    without = TaskPredictions("category", CLASSES, Y[labelled], PROBS[labelled], ["x"] * int(labelled.sum()))
    assert task_metrics(example()) == task_metrics(without)
    # The unlabelled row is a confident "d"; counting it would raise d's precision above 0.
    assert task_metrics(example())["per_class"]["d"]["precision"] == 0.0


def test_top3_is_one_with_fewer_than_three_classes():
    p = TaskPredictions("sleeve", ["short", "long"], np.array([0, 1, 1]), np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7]]), ["a", "b", "c"])
    m = task_metrics(p)
    assert m["top3"] == 1.0
    assert m["accuracy"] == pytest.approx(2 / 3)


def test_task_without_labels_has_undefined_scores():
    p = TaskPredictions("pattern", CLASSES, np.array([-1, -1]), PROBS[:2], ["a", "b"])
    m = task_metrics(p)
    assert m["n"] == 0 and m["accuracy"] is None and m["top3"] is None and m["macro_f1"] is None


def test_rejects_misaligned_inputs():
    with pytest.raises(ValueError):
        task_metrics(TaskPredictions("t", CLASSES, Y[:3], PROBS, ["x"] * 3))
    with pytest.raises(ValueError):
        task_metrics(TaskPredictions("t", CLASSES, np.array([4]), PROBS[:1], ["x"]))


COLOURS = [(230, 20, 20), (20, 200, 20), (20, 20, 230), (240, 240, 20), (20, 230, 230), (230, 20, 230), (120, 120, 120)]


def make_images(tmp_path):
    """Each image a distinct solid colour, so a thumbnail can be traced back to its source."""
    paths = []
    for i, colour in enumerate(COLOURS):
        path = tmp_path / "photos" / f"img{i}.jpg"
        path.parent.mkdir(exist_ok=True)
        Image.new("RGB", (400, 300), colour).save(path, "JPEG")
        paths.append(str(path))
    return paths


def source_of(thumbnail) -> int:
    with Image.open(thumbnail) as im:
        assert im.format == "JPEG" and max(im.size) <= 160
        mean = np.asarray(im.convert("RGB"), dtype=float).reshape(-1, 3).mean(axis=0)
    return int(np.argmin([np.abs(mean - c).sum() for c in COLOURS]))


def test_report_folder(tmp_path):
    images = make_images(tmp_path)
    category = example(images)
    odd = TaskPredictions(
        "colour / tone",
        ["<b>&", "plain", "über"],
        np.array([0, 1, 2]),
        np.array([[0.2, 0.7, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8]]),
        images[:3],
    )
    out = tmp_path / "report"
    metrics = write_report([category, odd], out, title="run <1>", extra={"checkpoint": "best.pt"})

    expected = {"category": task_metrics(category), "colour / tone": task_metrics(odd)}
    assert metrics == expected
    assert json.loads((out / "metrics.json").read_text(encoding="utf-8")) == expected
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary["title"] == "run <1>" and summary["extra"] == {"checkpoint": "best.pt"}
    assert summary["counts"]["category"]["mistakes"] == 3

    pngs = sorted(out.glob("confusion_*.png"))
    assert [p.name for p in pngs] == ["confusion_category.png", "confusion_colour_tone.png"]
    for png in pngs:
        with Image.open(png) as im:
            im.verify()
            assert im.format == "PNG"

    page = (out / "index.html").read_text(encoding="utf-8")
    for task in expected:
        assert html.escape(task) in page
    assert "&lt;b&gt;&amp;" in page and "<b>&" not in page
    assert "run &lt;1&gt;" in page
    assert "&lt;b&gt;&amp; → plain (0.70)" in page
    assert not re.search(r'(?:src|href)="(?:https?:|/)', page)  # relative links only
    assert "<link" not in page and "<script" not in page
    for src in re.findall(r'src="([^"]+)"', page):
        assert (out / src).is_file()


def test_mistakes_sorted_by_confidence_with_path_ties(tmp_path):
    images = make_images(tmp_path)
    # Wrong rows: 0 (.6), 1 (.9), 2 (.9), 3 (.55), 5 (.8); row 4 is right, row 6 unlabelled but wrong-looking.
    probs = np.array(
        [
            [0.4, 0.6, 0.0],
            [0.05, 0.9, 0.05],
            [0.05, 0.9, 0.05],
            [0.45, 0.0, 0.55],
            [0.0, 0.0, 1.0],
            [0.0, 0.8, 0.2],
            [0.0, 0.99, 0.01],
        ]
    )
    y = np.array([0, 0, 0, 0, 2, 0, -1])
    # Tied rows 1 and 2: give row 2 the alphabetically earlier path, so a stable sort by row would fail.
    paths = list(images)
    photos = tmp_path / "photos"
    paths[1], paths[2] = str(photos / "z_img2.jpg"), str(photos / "a_img1.jpg")
    (photos / "img1.jpg").rename(paths[2])
    (photos / "img2.jpg").rename(paths[1])
    # Row 5's image is unreadable and must be skipped without stopping the report.
    paths[5] = str(photos / "broken.jpg")
    (photos / "broken.jpg").write_text("not a jpeg")

    p = TaskPredictions("fit", ["slim", "regular", "loose"], y, probs, paths)
    write_report([p], tmp_path / "out", max_mistakes=3)

    thumbs = sorted((tmp_path / "out" / "mistakes_fit").glob("*.jpg"))
    # Expected order: row 2 (.9, "a_img1"), row 1 (.9, "z_img2"), [row 5 (.8) skipped], row 0 (.6).
    # Row 2 shows the colour of the original img1 file, row 1 that of img2.
    assert [source_of(t) for t in thumbs] == [1, 2, 0]
    page = (tmp_path / "out" / "index.html").read_text(encoding="utf-8")
    captions = re.findall(r'<span class="path">([^<]+)</span>', page)
    assert captions == [html.escape(paths[2]), html.escape(paths[1]), html.escape(paths[0])]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text(encoding="utf-8"))
    assert summary["counts"]["fit"] == {
        "n": 6,
        "n_classes": 3,
        "unlabelled": 1,
        "mistakes": 5,
        "mistakes_shown": 3,
        "unreadable_images": 1,
    }
