"""The garment parser: label-map reading and its checks, metrics, training on generated photos, save/load,
ONNX parity, `segment`; one garment one mask (instance splits, parser-only garments); polygons; colours."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import garments_in
from fashionlens.cli import app
from fashionlens.data.label_maps import read_mask_layout
from fashionlens.masks import mask_from_polygons, mask_iou, polygons_from_mask
from fashionlens.parse.inference import ParsedImage
from fashionlens.parse.labels import CCP_GROUPS, source_to_class
from fashionlens.parse.metrics import confusion, parsing_metrics
from fashionlens.pipeline.garment_masks import MaskRules
from fashionlens.taxonomy import LABEL_OF_PARSER_CLASS

runner = CliRunner()
NAMES = ["null", "skin", "shirt", "jeans"]  # generated photos: a red shirt over blue jeans on grey

# the rules before issue 29's operating point: the parser alone adds every kind from 1.5% of the photo at mean
# confidence 0.6, and a paired kind's box over two parts is two garments
EVERY_KIND = MaskRules(added={kind: (0.015, 0.6) for kind in set(LABEL_OF_PARSER_CLASS.values())}, split_pairs=True)


def _photo(i: int, w: int = 48, h: int = 64) -> tuple[Image.Image, np.ndarray]:
    rng = np.random.default_rng(i)
    x0 = int(rng.integers(4, 14))
    rgb = np.full((h, w, 3), 128, np.uint8)
    labels = np.zeros((h, w), np.uint8)
    rgb[8:32, x0:x0 + 24], labels[8:32, x0:x0 + 24] = (200, 30, 40), 2
    rgb[32:60, x0 + 2:x0 + 22], labels[32:60, x0 + 2:x0 + 22] = (40, 60, 160), 3
    rgb[2:8, x0 + 8:x0 + 16], labels[2:8, x0 + 8:x0 + 16] = (230, 180, 150), 1
    return Image.fromarray(rgb), labels


def _dataset(root: Path, n: int) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    (root / "labels.txt").write_text("\n".join(NAMES) + "\n")
    for i in range(n):
        image, labels = _photo(i)
        image.save(root / "images" / f"{i:04d}.jpg", quality=95)
        Image.fromarray(labels, mode="L").save(root / "masks" / f"{i:04d}.png")
    return root


def test_bad_masks_are_reported_by_path_and_skipped(tmp_path):
    root = _dataset(tmp_path / "d", 4)
    Image.fromarray(np.zeros((10, 10), np.uint8), mode="L").save(root / "masks" / "0000.png")  # wrong size
    Image.fromarray(np.full((64, 48), 9, np.uint8), mode="L").save(root / "masks" / "0001.png")  # index 9 of 4
    (root / "masks" / "0002.png").unlink()
    _photo(9)[0].save(root / "images" / "orphan.jpg")
    Image.fromarray(np.zeros((64, 48), np.uint8), mode="L").save(root / "masks" / "ghost.png")
    names, pairs, skipped = read_mask_layout(root)
    assert names == NAMES and [p.name for p, _ in pairs] == ["0003.jpg"]
    reasons = {Path(s.source).name: s.reason for s in skipped}
    assert "10x10" in reasons["0000.png"] and "index 9" in reasons["0001.png"]
    assert "no mask" in reasons["0002.jpg"] and "no mask" in reasons["orphan.jpg"] and "no photo" in reasons["ghost.png"]


def test_void_pixels_are_read_and_count_for_nothing(tmp_path):
    from fashionlens.data.label_maps import VOID
    from fashionlens.parse.labels import IGNORE, class_lut

    root = _dataset(tmp_path / "d", 2)
    _, labels = _photo(0)
    labels[:4] = VOID  # VOC's and LIP's unlabelled border
    Image.fromarray(labels, mode="L").save(root / "masks" / "0000.png")
    names, pairs, skipped = read_mask_layout(root)
    assert len(pairs) == 2 and not skipped
    lut = class_lut(names, CCP_GROUPS)
    assert lut[VOID] == IGNORE and lut[2] == list(CCP_GROUPS).index("top")
    m = parsing_metrics(confusion(lut[labels], np.zeros_like(labels), len(CCP_GROUPS)), list(CCP_GROUPS))
    assert m["pixel_accuracy"] == pytest.approx((labels == 0).sum() / (labels != VOID).sum())


def test_every_ccp_name_has_a_parser_class():
    names = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "clothing-parsing" / "labels.txt"
    if not names.is_file():
        pytest.skip("clothing-parsing not found in ../shared/datasets")
    classes = source_to_class(names.read_text().split(), CCP_GROUPS)
    assert len(set(classes)) == len(CCP_GROUPS)
    with pytest.raises(ValueError, match="'kimono'"):
        source_to_class(["null", "kimono"], CCP_GROUPS)


def test_metrics_from_one_confusion_matrix():
    classes = list(CCP_GROUPS)
    truth = np.array([[0, 0, classes.index("top"), classes.index("top")], [255] * 4], np.uint8)
    pred = np.array([[0, classes.index("top"), classes.index("top"), classes.index("jacket")], [0] * 4], np.uint8)
    m = parsing_metrics(confusion(truth, pred, len(classes)), classes)
    assert m["pixel_accuracy"] == pytest.approx(0.5)  # the ignored row does not count
    assert m["per_class"]["null"]["iou"] == pytest.approx(0.5)
    assert m["per_class"]["top"]["iou"] == pytest.approx(1 / 3)
    assert m["groups"]["top"] == pytest.approx(2 / 3)  # jacket and top are one group
    assert m["per_class"]["bag"]["iou"] is None and "bag" not in [k for k, v in m["groups"].items() if v is not None]


@pytest.fixture(scope="module")
def tiny_parser(tmp_path_factory):
    from fashionlens.parse.dataset import read_masks
    from fashionlens.parse.model import ParserConfig
    from fashionlens.parse.train import ParserTrainConfig, train_parser

    root = _dataset(tmp_path_factory.mktemp("parse") / "data", 40)
    out = root.parent / "model"
    result = train_parser(read_masks(root), out, parser=ParserConfig(input_size=(64, 48), channels=16),
                          config=ParserTrainConfig(epochs=6, views=2, batch_size=4, lr=5e-3, val_fraction=0.2,
                                                   test_fraction=0.1), progress=False)
    return root, out, result


def test_trained_parser_learns_saves_loads_and_matches_onnx(tiny_parser):
    from fashionlens.parse.inference import Parser, export_parser, parity
    from fashionlens.parse.model_io import load_parser

    root, out, result = tiny_parser
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["parser"]["groups"]["top"][:2] == ["top", "blouse"]  # the merges travel with the weights
    assert result["metrics"]["validation"]["miou"] > 0.4
    image, truth = _photo(123)
    eager, onnx = Parser(out, runtime="torch"), Parser(out)
    a, b = eager.parse_image(image), onnx.parse_image(image)
    assert a.photo_labels().shape == (64, 48) and (a.labels == b.labels).mean() > 0.99
    top = eager.classes.index("top")
    assert mask_iou(a.photo_labels() == top, truth == 2) > 0.5
    again = Parser(load_parser(out), runtime="torch").parse_image(image)
    assert (again.labels == a.labels).all()  # save and load predict the same
    assert parity(load_parser(out), export_parser(load_parser(out), out / "check.onnx", check=False)) > 0.999


def test_the_onnx_graph_parses_at_other_sizes_and_an_older_fixed_size_export_is_not_used(tiny_parser, tmp_path,
                                                                                         monkeypatch):
    import shutil

    from fashionlens.parse.inference import Parser, whole_garment_pixels, whole_photo_size

    _, out, _ = tiny_parser
    folder = tmp_path / "model"
    shutil.copytree(out, folder)
    record = json.loads((folder / "export.json").read_text())
    assert record["any_size"] is True
    image, _ = _photo(7)
    eager, onnx = Parser(folder, runtime="torch"), Parser(folder)
    for size in [(128, 96), whole_photo_size(onnx.input_size)]:
        a, b = eager.parse_image(image, size), onnx.parse_image(image, size)
        assert a.labels.shape == b.labels.shape and (a.labels == b.labels).mean() > 0.99
    larger = onnx.parse_image(image, (128, 96))
    assert larger.labels.shape == (128, 96)  # the photo fills the letterbox: its grid too
    pixels = whole_garment_pixels(onnx, image)
    assert pixels is None or pixels.shape == (image.height, image.width)
    del record["any_size"]  # an export from before graphs took any size: exported anew to the cache
    (folder / "export.json").write_text(json.dumps(record))
    monkeypatch.setenv("FASHIONLENS_CACHE", str(tmp_path / "cache"))
    again = Parser(folder)
    assert (again.parse_image(image, (128, 96)).labels == larger.labels).all()
    assert len(list((tmp_path / "cache" / "onnx").glob("parser-any_size-*.onnx"))) == 1


def test_training_keeps_the_last_epoch_or_the_best_one(tiny_parser, tmp_path):
    from fashionlens.parse.dataset import read_masks
    from fashionlens.parse.model import ParserConfig
    from fashionlens.parse.train import ParserTrainConfig, train_parser

    root, _, best = tiny_parser
    b = best["training"]
    assert b["kept_epoch"] == b["best_epoch"] and best["metrics"]["validation"]["group_miou"] > 0
    last = train_parser(read_masks(root), tmp_path / "last", parser=ParserConfig(input_size=(64, 48), channels=16),
                        config=ParserTrainConfig(epochs=6, views=2, batch_size=4, lr=5e-3, val_fraction=0.2,
                                                 test_fraction=0.1, keep="last", patience=1), progress=False)
    t = last["training"]
    assert t["kept_epoch"] == t["epochs_run"] == 6  # patience is for "best": the whole schedule ran, its end kept
    with pytest.raises(ValueError, match="keep must be one of"):
        train_parser(read_masks(root), tmp_path / "x", config=ParserTrainConfig(keep="first"), progress=False)


def test_interrupted_training_resumes_to_the_same_weights(tiny_parser, tmp_path, monkeypatch):
    """Killed after epoch 2 and run again, the parser trains through the one stem-cache loop to the weights of the
    unbroken run (each epoch's views and order come from the seed and the epoch), training no epoch twice."""
    from safetensors.torch import load_file

    from fashionlens.epoch_log import EpochLog
    from fashionlens.parse.dataset import read_masks
    from fashionlens.parse.model import ParserConfig
    from fashionlens.parse.train import ParserTrainConfig, train_parser

    root, unbroken, _ = tiny_parser
    logged = EpochLog.log

    def stop_at_3(self, stage, epoch, values):
        if epoch == 3:
            raise KeyboardInterrupt
        logged(self, stage, epoch, values)

    def train():
        return train_parser(read_masks(root), tmp_path / "model", parser=ParserConfig(input_size=(64, 48), channels=16),
                            config=ParserTrainConfig(epochs=6, views=2, batch_size=4, lr=5e-3, val_fraction=0.2,
                                                     test_fraction=0.1), progress=False)

    monkeypatch.setattr(EpochLog, "log", stop_at_3)
    with pytest.raises(KeyboardInterrupt):
        train()
    monkeypatch.undo()
    result = train()
    epochs = [line.split(",")[0] for line in (tmp_path / "model" / "logs" / "parser.csv").read_text().split()[1:]]
    assert epochs == ["1", "2", "3", "4", "5", "6"][:result["training"]["epochs_run"]]
    again, first = load_file(tmp_path / "model" / "weights.safetensors"), load_file(unbroken / "weights.safetensors")
    assert again.keys() == first.keys() and all((again[k] == first[k]).all() for k in first)


def test_segment_writes_label_maps_at_the_photo_size(tiny_parser, tmp_path):
    root, model, _ = tiny_parser
    photo = tmp_path / "big.jpg"
    _photo(5)[0].resize((96, 128)).save(photo)
    (tmp_path / "broken.jpg").write_bytes(b"not an image")
    result = runner.invoke(app, ["segment", str(photo), str(tmp_path / "broken.jpg"), "--out", str(tmp_path / "seg"),
                                 "--model", str(model), "--overlay"])
    assert result.exit_code == 0, result.output
    labels = np.asarray(Image.open(tmp_path / "seg" / "big.png"))
    assert labels.shape == (128, 96) and labels.max() < len(CCP_GROUPS)
    assert (tmp_path / "seg" / "labels.txt").read_text().split() == list(CCP_GROUPS)
    assert (tmp_path / "seg" / "big.overlay.jpg").is_file() and "broken.jpg" in result.output


def test_evaluate_parser_report(tiny_parser, tmp_path):
    root, model, _ = tiny_parser
    result = runner.invoke(app, ["evaluate-parser", str(model), str(root), "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert metrics["images"] == 40 and 0 <= metrics["miou"] <= 1 and "top" in metrics["groups"]
    assert list((tmp_path / "r").glob("worst_*.jpg")) and (tmp_path / "r" / "confusion.csv").is_file()


def _parsed(labels: np.ndarray) -> ParsedImage:
    return ParsedImage(labels.astype(np.uint8), np.ones(labels.shape, np.float32), list(CCP_GROUPS))


def test_two_shoes_in_one_box_are_two_garments_and_boxes_share_no_pixel():
    shoes = list(CCP_GROUPS).index("shoes")
    labels = np.zeros((100, 100), np.uint8)
    labels[80:95, 10:30] = shoes
    labels[80:95, 60:85] = shoes
    one = garments_in(_parsed(labels), [(5, 75, 90, 98)], ["shoe"], [0.9])
    assert list(one.data["class_name"]) == ["shoe", "shoe"]
    assert one.mask[0].sum() + one.mask[1].sum() == (labels == shoes).sum()
    two = garments_in(_parsed(labels), [(5, 75, 70, 98), (40, 75, 90, 98)], ["shoe", "shoe"], [0.9, 0.8])
    assert len(two) == 2 and not (two.mask[0] & two.mask[1]).any()
    assert two.mask[0][85, 20] and two.mask[1][85, 70]


def test_a_garment_only_the_parser_sees_is_added_and_masks_keep_to_their_kind():
    classes = list(CCP_GROUPS)
    labels = np.zeros((100, 100), np.uint8)
    labels[10:50, 20:80] = classes.index("top")
    labels[30:45, 40:55] = classes.index("skin")  # an arm over the shirt
    labels[50:90, 25:75] = classes.index("skirt")
    found = garments_in(_parsed(labels), [(15, 5, 85, 55)], ["shirt"], [0.8], EVERY_KIND)
    (shirt, skirt), sources = found.mask, list(found.data["source"])
    assert sources == ["detector", "parser"] and not shirt[35, 45] and shirt[20, 30]
    assert found.data["class_name"][1] == "skirt" and skirt.sum() == 40 * 50


def test_a_part_too_thin_for_a_small_photos_pixels_is_dropped_not_boxed_as_none():
    """A 20x20 photo on a 100x100 grid keeps every fifth cell: a 2-cell-wide shoe or skirt strip keeps no pixel."""
    classes = list(CCP_GROUPS)
    labels = np.zeros((100, 100), np.uint8)
    labels[80:95, 10:30] = classes.index("shoes")
    labels[40:100, 63:65] = classes.index("shoes")  # the pair's second part: 29% of the kind's pixels
    labels[10:90, 43:45] = classes.index("skirt")  # 1.6% of the grid: a parser-added garment
    parsed = ParsedImage(labels, np.ones(labels.shape, np.float32), classes, (20, 20))
    grid = garments_in(replace(parsed, size=None), [(5, 35, 90, 100)], ["shoe"], [0.9], EVERY_KIND)
    assert list(grid.data["class_name"]) == ["shoe", "shoe", "skirt"]  # at the grid's size both parts are kept
    found = garments_in(parsed, [(1, 7, 18, 20)], ["shoe"], [0.9], EVERY_KIND)
    assert list(zip(found.data["class_name"], found.data["source"], strict=True)) == [("shoe", "detector")]
    assert found.xyxy[0].tolist() == [1.0, 7.0, 18.0, 20.0] and found.mask.shape == (1, 20, 20) and found.mask[0].any()


@pytest.mark.parametrize("shape", ["rectangle", "ellipse", "L"])
def test_polygon_round_trip(shape):
    mask = np.zeros((120, 160), bool)
    yy, xx = np.mgrid[:120, :160]
    if shape == "rectangle":
        mask[20:90, 30:140] = True
    elif shape == "ellipse":
        mask = ((xx - 80) / 60) ** 2 + ((yy - 60) / 40) ** 2 <= 1
    else:
        mask[10:110, 20:60] = True
        mask[80:110, 20:150] = True
    polygons = polygons_from_mask(mask)
    assert len(polygons) == 1 and all(len(p) >= 6 and len(p) % 2 == 0 for p in polygons)
    assert mask_iou(mask_from_polygons(polygons, 120, 160), mask) > 0.95


def test_two_blobs_give_two_polygons():
    mask = np.zeros((50, 50), bool)
    mask[5:20, 5:20] = mask[30:45, 30:45] = True
    assert len(polygons_from_mask(mask)) == 2


def test_colours_come_from_the_garments_own_pixels():
    from fashionlens.colors import named_colors

    rgb = np.zeros((100, 100, 3), np.uint8)
    rgb[:] = (30, 60, 200)  # blue background
    rgb[10:40, 30:70] = (230, 180, 150)  # skin
    mask = np.zeros((100, 100), bool)
    mask[40:90, 25:75] = True
    rgb[mask] = (220, 30, 40)  # a red garment
    image = Image.fromarray(rgb)
    box = (15, 5, 85, 95)
    first = named_colors(image, box, mask=mask)[0]
    assert first.name == "red" and first.fraction > 0.9
    assert named_colors(image, box)[0].fraction < 0.6
    with pytest.raises(ValueError, match="no pixels"):
        named_colors(image, box, mask=np.zeros((100, 100), bool))


def test_coco_segmentations_become_label_maps_with_small_objects_on_top(tmp_path, monkeypatch):
    from fashionlens.parse.dataset import read_masks

    monkeypatch.setenv("FASHIONLENS_CACHE", str(tmp_path / "cache"))
    (tmp_path / "d" / "images").mkdir(parents=True)
    Image.new("RGB", (60, 80), (90, 90, 90)).save(tmp_path / "d" / "images" / "a.jpg")
    Image.new("RGB", (60, 80), (90, 90, 90)).save(tmp_path / "d" / "images" / "b.jpg")
    dress = [10, 10, 50, 10, 50, 70, 10, 70]
    belt = [10, 38, 50, 38, 50, 44, 10, 44]  # across the dress, drawn after it in the file
    coco = {"images": [{"id": 1, "file_name": "a.jpg", "width": 60, "height": 80},
                       {"id": 2, "file_name": "b.jpg", "width": 60, "height": 80}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 2, "segmentation": [belt]},
                            {"id": 2, "image_id": 1, "category_id": 1, "segmentation": [dress]},
                            {"id": 3, "image_id": 2, "category_id": 1, "bbox": [5, 5, 20, 20]}],  # a box, no mask
            "categories": [{"id": 1, "name": "dress"}, {"id": 2, "name": "belt"}]}
    (tmp_path / "d" / "annotations.json").write_text(json.dumps(coco))
    data = read_masks(tmp_path / "d")
    assert data.names == ["null", "dress", "belt"] and [im.path.name for im in data.images] == ["a.jpg"]
    assert any("b.jpg" in s.source and "no segmentation" in s.reason for s in data.skipped)
    labels = data.load_mask(data.images[0], (60, 80))
    assert labels[20, 30] == 1 and labels[40, 30] == 2 and labels[5, 5] == 0  # the belt stays on the dress
    assert source_to_class(data.names, dict(CCP_GROUPS)) == [list(CCP_GROUPS).index(n) for n in ("null", "dress", "belt")]
    assert not (tmp_path / "d" / "masks").exists()  # nothing written beside the user's data
