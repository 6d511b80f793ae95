"""Detection annotations: VOC, YOLO, COCO and polygon JSON round trips, polygons to boxes, and broken files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fashionlens.detect.detections import AnnotatedImage, DetectionDataset, Detections
from fashionlens.detect.formats import (coco_dict, detect_format, read_coco, read_dataset, read_polygons, read_voc,
                                        read_yolo, to_coco_results, write_coco, write_voc, write_yolo)

CLASSES = ["shirt", "pants", "shoe"]
W, H = 80, 120


def sources(dataset: DetectionDataset) -> str:
    return "\n".join(f"{s.source}: {s.reason}" for s in dataset.skipped)


@pytest.fixture()
def dataset(tmp_path) -> DetectionDataset:
    """Three generated images (one in a subfolder, two sharing a stem) with fractional-coordinate boxes."""
    boxes = [
        Detections([[10.5, 20.25, 60, 70], [0, 80, 30.5, 120]], [0, 2]),
        Detections([[5, 5, 75, 115]], [1]),
        Detections([[20, 30, 40, 50], [41, 30, 61, 50], [1, 1, 79, 119]], [2, 2, 0]),
    ]
    images = []
    for i, (name, detections) in enumerate(zip(["a.jpg", "sub/b.png", "c.jpg"], boxes, strict=True)):
        path = tmp_path / "src" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (W, H), (40 * i, 90, 200)).save(path)
        images.append(AnnotatedImage(path, W, H, detections))
    return DetectionDataset(CLASSES, images, str(tmp_path / "src"))


def by_name(dataset: DetectionDataset) -> dict[str, AnnotatedImage]:
    return {image.path.name: image for image in dataset.images}


@pytest.mark.parametrize("writer, fmt", [(write_voc, "voc"), (write_yolo, "yolo"), (write_coco, "coco")])
def test_round_trip_keeps_boxes_classes_and_sizes(dataset, tmp_path, writer, fmt):
    writer(dataset, tmp_path / fmt)
    assert detect_format(tmp_path / fmt) == fmt
    again = read_dataset(tmp_path / fmt)
    assert again.classes == CLASSES
    assert not again.skipped, sources(again)
    assert sorted(by_name(again)) == sorted(by_name(dataset))
    for name, original in by_name(dataset).items():
        copy = by_name(again)[name]
        assert (copy.width, copy.height) == (W, H)
        np.testing.assert_allclose(copy.detections.xyxy, original.detections.xyxy, atol=1e-3)
        np.testing.assert_array_equal(copy.detections.class_id, original.detections.class_id)


def test_written_datasets_symlink_images_on_request(dataset, tmp_path):
    write_yolo(dataset, tmp_path / "linked", link_images=True)
    linked = tmp_path / "linked" / "images" / "sub" / "b.png"
    assert linked.is_symlink() and linked.resolve() == (tmp_path / "src" / "sub" / "b.png").resolve()


def test_to_coco_results_uses_written_ids_and_xywh():
    predictions = [Detections([[10, 20, 30, 60]], [2], [0.9]), Detections.empty(True)]
    assert to_coco_results(predictions) == [{"image_id": 1, "category_id": 3, "bbox": [10, 20, 20, 40], "score": 0.9}]
    with pytest.raises(ValueError, match="no confidence"):
        to_coco_results([Detections([[0, 0, 1, 1]], [0])])


def make_image(path: Path, size=(W, H)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (128, 128, 128)).save(path)
    return path


def test_coco_segmentation_polygons_and_rle_become_boxes(tmp_path):
    from pycocotools import mask as mask_utils

    make_image(tmp_path / "images" / "p.jpg")
    mask = np.zeros((H, W), np.uint8, order="F")
    mask[40:90, 15:35] = 1  # rows 40..89, columns 15..34
    rle = mask_utils.encode(mask)
    rle["counts"] = rle["counts"].decode()
    coco = {
        "images": [{"id": 7, "file_name": "p.jpg", "width": W, "height": H}],
        "categories": [{"id": 5, "name": "pants"}, {"id": 2, "name": "shirt"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 2, "segmentation": [[10, 10, 50, 12, 30, 40], [5, 20, 12, 22, 8, 30]]},
            {"id": 2, "image_id": 7, "category_id": 5, "segmentation": rle, "iscrowd": 1},
        ],
    }
    (tmp_path / "instances.json").write_text(json.dumps(coco))
    result = read_dataset(tmp_path)
    assert result.classes == ["shirt", "pants"]  # category id order
    image = result.images[0]
    np.testing.assert_allclose(image.detections.xyxy, [[5, 10, 50, 40], [15, 40, 35, 90]])
    np.testing.assert_array_equal(image.detections.class_id, [0, 1])


def test_yolo_polygon_line_becomes_its_box(tmp_path):
    make_image(tmp_path / "images" / "x.jpg")
    (tmp_path / "labels").mkdir()
    (tmp_path / "labels" / "x.txt").write_text("1 0.1 0.2 0.5 0.25 0.3 0.75\n")
    (tmp_path / "data.yaml").write_text("names: [shirt, pants]\n")
    result = read_dataset(tmp_path)
    np.testing.assert_allclose(result.images[0].detections.xyxy, [[8, 24, 40, 90]], atol=1e-4)
    assert result.classes == ["shirt", "pants"] and result.images[0].detections.class_id.tolist() == [1]


def test_deepfashion2_style_json_polygons_become_boxes(tmp_path):
    make_image(tmp_path / "image" / "000001.jpg")
    anno = {"source": "user", "pair_id": 1,
            "item2": {"category_name": "trousers", "category_id": 8, "bounding_box": [0, 0, 1, 1],
                      "segmentation": [[20, 60, 50, 60, 45, 110, 25, 115]]},
            "item1": {"category_name": "short sleeve top", "category_id": 1,
                      "segmentation": [[10, 10, 60, 12, 40, 50], [12, 5, 30, 8, 20, 30]]}}
    (tmp_path / "annos").mkdir()
    (tmp_path / "annos" / "000001.json").write_text(json.dumps(anno))
    result = read_dataset(tmp_path)
    assert detect_format(tmp_path) == "polygons"
    assert result.classes == ["short sleeve top", "trousers"]
    np.testing.assert_allclose(result.images[0].detections.xyxy, [[10, 5, 60, 50], [20, 60, 50, 115]])
    assert result.images[0].detections.class_id.tolist() == [0, 1]


def test_kfashion_style_json_polygons_become_boxes_per_garment_part(tmp_path):
    make_image(tmp_path / "images" / "street" / "1001.jpg")
    label = {"이미지 정보": {"이미지 식별자": 1001, "이미지 파일명": "1001.jpg", "이미지 너비": W, "이미지 높이": H},
             "데이터셋 정보": {"데이터셋 상세설명": {
                 "렉트좌표": {"상의": [{"X좌표": 9, "Y좌표": 9, "가로": 50, "세로": 40}], "하의": [{}]},
                 "폴리곤좌표": {
                     "상의": [{"X좌표1": 12, "Y좌표1": 10, "X좌표2": 58, "Y좌표2": 14, "X좌표3": 30, "Y좌표3": 48}],
                     "하의": [{}],
                     "아우터": [{"X좌표2": 70, "Y좌표2": 100, "X좌표1": 5, "Y좌표1": 30, "X좌표3": 20, "Y좌표3": 110}]}}}}
    (tmp_path / "labels" / "street").mkdir(parents=True)
    (tmp_path / "labels" / "street" / "1001.json").write_text(json.dumps(label, ensure_ascii=False), encoding="utf-8")
    result = read_polygons(tmp_path)
    assert result.classes == sorted(["상의", "아우터"])
    image = result.images[0]
    boxes = dict(zip((result.classes[c] for c in image.detections.class_id), image.detections.xyxy.tolist(), strict=True))
    assert boxes == {"상의": [12, 10, 58, 48], "아우터": [5, 30, 70, 110]}


@pytest.fixture()
def voc_root(tmp_path) -> Path:
    """A VOC folder with one good file and one of each broken kind."""
    root = tmp_path / "voc"
    (root / "Annotations").mkdir(parents=True)
    (root / "labels.txt").write_text("shirt\npants\n")

    def xml(name, objects, filename=None, size=(W, H)):
        body = "".join(f"<object><name>{c}</name><difficult>0</difficult><bndbox><xmin>{b[0]}</xmin><ymin>{b[1]}</ymin>"
                       f"<xmax>{b[2]}</xmax><ymax>{b[3]}</ymax></bndbox></object>" for c, b in objects)
        (root / "Annotations" / f"{name}.xml").write_text(
            f"<annotation><filename>{filename or name + '.jpg'}</filename><size><width>{size[0]}</width>"
            f"<height>{size[1]}</height><depth>3</depth></size>{body}</annotation>")
        if filename != "missing.jpg":
            make_image(root / "JPEGImages" / f"{name}.jpg")

    xml("good", [("shirt", (10, 10, 40, 50)), ("pants", (-1.5, 60, 81, 121.5))])  # second: clipped (<= 2 px out)
    xml("outside", [("shirt", (10, 10, 40, 50)), ("pants", (50, 60, 95, 110))])  # 15 px past the right edge
    xml("unknown", [("hat", (10, 10, 40, 50)), ("shirt", (5, 5, 20, 20))])
    xml("degenerate", [("shirt", (30, 30, 30, 60))])
    xml("nothing", [])
    xml("missing", [("shirt", (1, 1, 5, 5))], filename="missing.jpg")
    xml("resized", [("shirt", (1, 1, 5, 5))], size=(160, 240))
    (root / "Annotations" / "bad.xml").write_text("<annotation><object><name>shirt</name>")
    make_image(root / "JPEGImages" / "bad.jpg")
    return root


def test_voc_broken_files_and_boxes_are_reported_by_path_and_skipped(voc_root):
    result = read_voc(voc_root)
    ann = voc_root / "Annotations"
    reasons = {s.source: s.reason for s in result.skipped}
    assert sorted(i.path.name for i in result.images) == ["good.jpg", "outside.jpg", "unknown.jpg"]
    good = by_name(result)["good.jpg"]
    np.testing.assert_allclose(good.detections.xyxy, [[10, 10, 40, 50], [0, 60, 80, 120]])  # clipped
    assert "bad XML" in reasons[str(ann / "bad.xml")]
    assert "outside the 80x120 image" in reasons[f"{ann / 'outside.xml'} (object 2)"]
    assert len(by_name(result)["outside.jpg"].detections) == 1
    assert "unknown class 'hat'" in reasons[f"{ann / 'unknown.xml'} (object 1)"]
    assert "degenerate" in reasons[f"{ann / 'degenerate.xml'} (object 1)"]
    assert "no usable box" in reasons[str(ann / "degenerate.xml")]
    assert "no <object>" in reasons[str(ann / "nothing.xml")]
    assert "not found" in reasons[str(ann / "missing.xml")]
    assert "160x240" in reasons[str(ann / "resized.xml")]


def test_voc_without_class_file_takes_sorted_names_and_keeps_unlisted_classes(voc_root):
    (voc_root / "labels.txt").unlink()
    result = read_voc(voc_root)
    assert result.classes == ["hat", "pants", "shirt"]
    assert len(by_name(result)["unknown.jpg"].detections) == 2


def test_yolo_broken_files_are_reported_by_path_and_skipped(tmp_path):
    (tmp_path / "labels").mkdir()
    (tmp_path / "classes.txt").write_text("shirt\npants\n")
    for name in ("good", "empty", "unknown", "nolabel", "outside"):
        make_image(tmp_path / "images" / f"{name}.jpg")
    (tmp_path / "images" / "broken.jpg").write_bytes(b"not a jpeg")
    labels = {"good": "0 0.5 0.5 0.5 0.5\n1 0.5 0.5 0.2 0.2\n", "empty": "", "unknown": "7 0.5 0.5 0.2 0.2\n",
              "outside": "0 0.5 0.5 0.2 0.2\n1 1.2 0.5 0.3 0.2\n0 0.5 0.5\n", "orphan": "0 0.5 0.5 0.2 0.2\n",
              "broken": "0 0.5 0.5 0.2 0.2\n"}
    for name, text in labels.items():
        (tmp_path / "labels" / f"{name}.txt").write_text(text)
    result = read_yolo(tmp_path)
    reasons = {s.source: s.reason for s in result.skipped}
    lab, img = tmp_path / "labels", tmp_path / "images"
    assert sorted(i.path.name for i in result.images) == ["good.jpg", "outside.jpg"]
    np.testing.assert_allclose(by_name(result)["good.jpg"].detections.xyxy, [[20, 30, 60, 90], [32, 48, 48, 72]])
    assert "empty label file" in reasons[str(lab / "empty.txt")]
    assert "unknown class '7'" in reasons[f"{lab / 'unknown.txt'} (line 1)"]
    assert "outside" in reasons[f"{lab / 'outside.txt'} (line 2)"]
    assert "expected 5 fields" in reasons[f"{lab / 'outside.txt'} (line 3)"]
    assert "no label file" in reasons[str(img / "nolabel.jpg")]
    assert "image not found" in reasons[str(lab / "orphan.txt")]
    assert "not a readable image" in reasons[str(img / "broken.jpg")]


def test_coco_broken_entries_are_reported_and_the_rest_is_read(tmp_path):
    make_image(tmp_path / "ok.jpg")
    make_image(tmp_path / "other.jpg")
    coco = {"images": [{"id": 1, "file_name": "ok.jpg"}, {"id": 2, "file_name": "gone.jpg"},
                       {"id": 3, "file_name": "other.jpg"}],
            "categories": [{"id": 1, "name": "shirt"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 20]},
                            {"id": 2, "image_id": 1, "category_id": 9, "bbox": [1, 2, 10, 20]},
                            {"id": 3, "image_id": 2, "category_id": 1, "bbox": [1, 2, 10, 20]},
                            {"id": 4, "image_id": 3, "category_id": 1, "bbox": [70, 2, 30, 20]},
                            {"id": 5, "image_id": 9, "category_id": 1, "bbox": [1, 2, 10, 20]}]}
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(coco))
    result = read_coco(path)
    text = sources(result)
    assert [i.path.name for i in result.images] == ["ok.jpg"]
    np.testing.assert_allclose(result.images[0].detections.xyxy, [[1, 2, 11, 22]])
    assert "(annotation 2): unknown class 'category_id 9'" in text
    assert "gone.jpg): image not found" in text
    assert "other.jpg) (annotation 4): box" in text and "outside" in text
    assert "image_id 9" in text
    (tmp_path / "broken.json").write_text("{not json")
    with pytest.raises(ValueError, match="broken.json: bad JSON"):
        read_coco(tmp_path / "broken.json")


def test_read_dataset_names_what_it_looked_for(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="cannot tell the annotation format"):
        read_dataset(tmp_path / "empty")
    with pytest.raises(ValueError, match="unknown annotation format"):
        read_dataset(tmp_path / "empty", format="pascal")


@pytest.mark.integration
def test_colorful_fashion_reads_every_image_and_the_ten_classes(shared_datasets, tmp_path):
    root = shared_datasets / "colorful-fashion"
    result = read_voc(root)
    image_skips = [s for s in result.skipped if s.source.endswith(".xml")]  # not "... (object n)": one box
    # README says 2,144 images; the folder holds 2,145 annotation files, each with its image
    assert len(result) + len(image_skips) == len(list((root / "Annotations").glob("*.xml")))
    assert len(result) >= 2144
    assert result.classes == ["sunglass", "hat", "jacket", "shirt", "pants", "shorts", "skirt", "dress", "bag", "shoe"]
    counts = np.bincount(np.concatenate([i.detections.class_id for i in result.images]), minlength=10)
    assert counts.sum() >= 8298 - len(result.skipped) and counts.min() > 200
    subset = result.subset(range(20))
    again = read_dataset(write_coco(subset, tmp_path / "coco", link_images=True))
    for a, b in zip(subset.images, again.images, strict=True):
        np.testing.assert_allclose(a.detections.xyxy, b.detections.xyxy)


def _ellipse_and_rectangle(height=H, width=W) -> np.ndarray:
    yy, xx = np.mgrid[:height, :width]
    masks = np.zeros((2, height, width), bool)
    masks[0] = ((xx - 40) / 25) ** 2 + ((yy - 40) / 30) ** 2 <= 1
    masks[1, 80:110, 10:50] = True
    return masks


def test_coco_results_carry_segmentation_that_reads_back_as_the_mask():
    from fashionlens.masks import mask_from_polygons, mask_iou

    masks = _ellipse_and_rectangle()
    with_masks = Detections([[15, 10, 65, 70], [10, 80, 50, 110]], [0, 1], [0.9, 0.6], mask=masks)
    results = to_coco_results([with_masks, Detections.empty(True)])
    assert [r["category_id"] for r in results] == [1, 2]
    for record, mask in zip(results, masks, strict=True):
        assert record["area"] == int(mask.sum()) and isinstance(record["segmentation"], list)
        assert mask_iou(mask_from_polygons(record["segmentation"], H, W), mask) > 0.9
    assert results[1]["bbox"] == [10, 80, 40, 30] and results[0]["score"] == 0.9
    plain = to_coco_results([Detections(with_masks.xyxy, with_masks.class_id, with_masks.confidence)])
    assert all("segmentation" not in r and "area" not in r for r in plain)  # without masks: as before
    no_mask_row = masks.copy()
    no_mask_row[1] = False  # an object without a mask among ones with
    mixed = to_coco_results([Detections(with_masks.xyxy, with_masks.class_id, with_masks.confidence, no_mask_row)])
    assert "segmentation" in mixed[0] and "segmentation" not in mixed[1]
    speck = np.zeros((1, H, W), bool)
    speck[0, 5, 5] = True  # too small for a polygon: written as RLE, so the mask is not lost
    (tiny,) = to_coco_results([Detections([[5, 5, 6, 6]], [0], [0.5], mask=speck)])
    assert set(tiny["segmentation"]) == {"size", "counts"} and tiny["area"] == 1


def test_coco_results_with_masks_score_full_segm_ap_in_pycocotools(tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    masks = _ellipse_and_rectangle()
    truth = Detections([[15, 10, 65, 70], [10, 80, 50, 110]], [0, 1], mask=masks)
    path = make_image(tmp_path / "a.png")
    gt = COCO()
    gt.dataset = coco_dict(DetectionDataset(CLASSES, [AnnotatedImage(path, W, H, truth)]))
    gt.createIndex()
    predicted = Detections(truth.xyxy, truth.class_id, [0.9, 0.8], mask=masks)
    evaluation = COCOeval(gt, gt.loadRes(to_coco_results([predicted])), "segm")
    evaluation.evaluate(), evaluation.accumulate()
    assert evaluation.eval["precision"][0, :, :2, 0, -1].min() == pytest.approx(1.0)  # AP@0.5, both classes


def test_coco_masks_round_trip_through_write_and_read(dataset, tmp_path):
    from fashionlens.masks import mask_iou

    masks = _ellipse_and_rectangle()
    masks[1] = False  # the second object has a box only
    image = dataset.images[0]
    image.detections = Detections(image.detections.xyxy, image.detections.class_id, mask=masks)
    json_path = write_coco(dataset, tmp_path / "coco")
    written = json.loads(json_path.read_text())["annotations"]
    assert written[0]["area"] == int(masks[0].sum()) and "segmentation" not in written[1]
    assert read_coco(json_path).images[0].detections.mask is None  # masks are decoded only on request
    back = by_name(read_dataset(tmp_path / "coco", masks=True))
    got = back["a.jpg"].detections.mask
    assert got.shape == (2, H, W) and mask_iou(got[0], masks[0]) > 0.95 and not got[1].any()
    assert back["b.png"].detections.mask is None  # no segmentation in that image at all
    np.testing.assert_allclose(back["a.jpg"].detections.xyxy, image.detections.xyxy, atol=1e-3)


def test_coco_rle_and_broken_segmentations_become_masks_or_reports(tmp_path):
    from pycocotools import mask as mask_utils

    make_image(tmp_path / "images" / "p.jpg")
    mask = np.zeros((H, W), np.uint8, order="F")
    mask[40:90, 15:35] = 1
    rle = mask_utils.encode(mask)
    rle["counts"] = rle["counts"].decode()
    coco = {
        "images": [{"id": 7, "file_name": "p.jpg", "width": W, "height": H}],
        "categories": [{"id": 1, "name": "shirt"}, {"id": 2, "name": "pants"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 2, "segmentation": rle, "iscrowd": 1},
            {"id": 2, "image_id": 7, "category_id": 1, "bbox": [1, 1, 10, 10], "segmentation": [[1, 1, 5, 5]]},
            {"id": 3, "image_id": 7, "category_id": 9, "segmentation": [[1, 1, 9, 1, 9, 9]]},  # unknown class
        ],
    }
    (tmp_path / "instances.json").write_text(json.dumps(coco))
    result = read_dataset(tmp_path, masks=True)
    detections = result.images[0].detections
    assert len(detections) == 2 and detections.mask.shape == (2, H, W)  # rows follow the kept boxes
    assert np.array_equal(detections.mask[0], mask.astype(bool)) and not detections.mask[1].any()
    assert "(annotation 2): segmentation not usable" in sources(result) and "box kept" in sources(result)
    assert "unknown class" in sources(result)


def test_per_object_data_travels_with_every_selection():
    found = Detections(np.array([[0, 0, 10, 10], [5, 5, 20, 20], [1, 1, 2, 2]], np.float32), [0, 1, 0], [0.9, 0.5, 0.7],
                       data={"class_name": ["shirt", "bag", "shirt"], "source": ["detector", "parser", "detector"]})
    strongest = found[np.argsort(-found.confidence)][:2]
    assert list(strongest.data["class_name"]) == ["shirt", "shirt"] and list(strongest.data["source"]) == ["detector"] * 2
    assert list(found[found.confidence > 0.6].data["class_name"]) == ["shirt", "shirt"]
    with pytest.raises(ValueError, match=r"data\['source'\] has 1 values for 3 boxes"):
        Detections(found.xyxy, found.class_id, data={"source": ["parser"]})
