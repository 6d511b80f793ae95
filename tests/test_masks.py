"""Masks: polygons <-> masks on COCO's pixel-edge coordinates, `Detections.mask`, and `crop --mask`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage
from typer.testing import CliRunner

from fashionlens.cli import app
from fashionlens.detect.detections import Detections
from fashionlens.masks import (mask_box, mask_from_polygons, mask_from_segmentation, mask_iou, mask_to_rle,
                               polygons_from_mask)

H, W = 60, 80


def _shape(name: str) -> np.ndarray:
    yy, xx = np.mgrid[:H, :W]
    mask = np.zeros((H, W), bool)
    if name == "rectangle":  # small on purpose: a half-pixel loss per edge would cost ~8% of it
        mask[10:30, 5:40] = True
    elif name == "ellipse":
        mask = ((xx - 40) / 30) ** 2 + ((yy - 30) / 20) ** 2 <= 1
    elif name == "L":
        mask[5:50, 10:20] = True
        mask[40:50, 10:60] = True
    elif name == "touching the border":
        mask[0:25, 50:80] = True
    return mask


@pytest.mark.parametrize("name", ["rectangle", "ellipse", "L", "touching the border"])
def test_polygon_mask_polygon_round_trip(name):
    mask = _shape(name)
    polygons = polygons_from_mask(mask)
    assert len(polygons) == 1 and len(polygons[0]) >= 6 and len(polygons[0]) % 2 == 0
    back = mask_from_polygons(polygons, H, W)
    assert mask_iou(back, mask) > 0.95
    assert polygons_from_mask(back) and mask_iou(mask_from_polygons(polygons_from_mask(back), H, W), mask) > 0.95
    xs, ys = polygons[0][0::2], polygons[0][1::2]
    assert 0 <= min(xs) and max(xs) <= W and 0 <= min(ys) and max(ys) <= H


def test_polygons_sit_on_pixel_edges_as_coco_draws_them():
    mask = _shape("rectangle")  # columns 5..39, rows 10..29
    assert polygons_from_mask(mask) == [[5.0, 10.0, 5.0, 30.0, 40.0, 30.0, 40.0, 10.0]]
    assert np.array_equal(mask_from_polygons(polygons_from_mask(mask), H, W), mask)
    assert mask_box(mask) == (5.0, 10.0, 40.0, 30.0) and mask_box(np.zeros((H, W), bool)) is None


def test_thin_parts_and_lone_pixels_still_make_polygons():
    line = np.zeros((H, W), bool)
    line[20, 5:60] = True  # one pixel high: OpenCV traces it as two points
    polygons = polygons_from_mask(line)
    assert len(polygons) == 1 and len(polygons[0]) >= 6
    assert np.array_equal(mask_from_polygons(polygons, H, W), line)
    speck = np.zeros((H, W), bool)
    speck[3, 3] = True
    assert polygons_from_mask(speck) == []  # under min_area
    assert np.array_equal(mask_from_polygons(polygons_from_mask(speck, min_area=0), H, W), speck)


def test_two_blobs_give_two_polygons_largest_first_and_specks_are_dropped():
    mask = np.zeros((H, W), bool)
    mask[5:15, 5:15] = True  # 100 px
    mask[30:45, 40:70] = True  # 450 px
    mask[55, 2] = mask[55, 3] = True  # a 2-pixel speck
    polygons = polygons_from_mask(mask)
    assert len(polygons) == 2 and min(polygons[0][0::2]) == 40.0 and min(polygons[1][0::2]) == 5.0
    assert mask_iou(mask_from_polygons(polygons, H, W), mask) > 0.99


def test_simplification_reduces_points_within_the_tolerance():
    mask = _shape("ellipse")
    fine, coarse = polygons_from_mask(mask, tolerance=0), polygons_from_mask(mask, tolerance=2.0)
    assert len(coarse[0]) < len(fine[0]) / 3
    assert mask_iou(mask_from_polygons(coarse, H, W), mask) > 0.93


def test_segmentations_rle_and_bad_input():
    mask = _shape("L")
    rle = mask_to_rle(mask)
    json.dumps(rle)  # JSON-ready
    assert np.array_equal(mask_from_segmentation(rle, H, W), mask)
    with pytest.raises(ValueError, match="size"):
        mask_from_segmentation(rle, H + 1, W)
    assert not mask_from_polygons([], H, W).any()
    with pytest.raises(ValueError, match="at least 6"):
        mask_from_polygons([[1, 1, 5, 5]], H, W)  # 4 values: pycocotools would read a bbox
    with pytest.raises(ValueError, match="shapes"):
        mask_iou(mask, mask[:10])
    assert mask_iou(np.zeros((3, 3), bool), np.zeros((3, 3), bool)) == 0.0
    half = mask.copy()
    half[:, 15:] = False
    assert mask_iou(half, mask) == pytest.approx(half.sum() / mask.sum())


def test_detections_carry_masks_through_indexing_and_validate_them():
    masks = np.zeros((3, H, W), bool)
    for i in range(3):
        masks[i, 10 * i:10 * i + 5, :5] = True
    d = Detections([[0, 0, 5, 5], [0, 10, 5, 15], [0, 20, 5, 25]], [0, 1, 2], [0.9, 0.8, 0.7], mask=masks)
    assert d.mask.shape == (3, H, W)
    picked = d[np.array([False, True, True])]
    assert np.array_equal(picked.mask, masks[1:]) and picked.class_id.tolist() == [1, 2]
    one = d[2]
    assert len(one) == 1 and one.mask.shape == (1, H, W) and np.array_equal(one.mask[0], masks[2])
    assert d[::-1].mask[0].sum() == masks[2].sum() and d[[0]].mask.shape == (1, H, W)
    assert Detections([[0, 0, 1, 1]], [0])[0].mask is None  # without masks: unchanged
    assert Detections([[0, 0, 1, 1]], [0], mask=np.ones((1, 4, 4), np.uint8)).mask.dtype == bool

    with pytest.raises(ValueError, match=r"mask has shape \(2, 60, 80\), expected \(3, height, width\)"):
        Detections(d.xyxy, d.class_id, mask=masks[:2])
    with pytest.raises(ValueError, match="expected"):
        Detections(d.xyxy[:1], d.class_id[:1], mask=masks[0])  # [H, W] for one box: ambiguous, refused
    with pytest.raises(ValueError, match="threshold"):
        Detections(d.xyxy, d.class_id, mask=masks.astype(np.float32) * 0.7)

    empty = Detections.empty(True, mask_size=(H, W))
    assert len(empty) == 0 and empty.mask.shape == (0, H, W) and Detections.empty().mask is None


def _coco_with_polygons(tmp_path) -> tuple[np.ndarray, np.ndarray]:
    """A green photo with a red L-shaped garment (polygons) and a box-only bag; returns (the photo, the mask the
    polygons draw: simplification moves the L's inner corner a little)."""
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[:] = (30, 160, 60)
    garment = _shape("L")
    polygons = polygons_from_mask(garment)
    garment = mask_from_polygons(polygons, H, W)
    rgb[garment] = (210, 30, 40)
    (tmp_path / "images").mkdir()
    Image.fromarray(rgb).save(tmp_path / "images" / "look.png")
    coco = {
        "images": [{"id": 1, "file_name": "look.png", "width": W, "height": H}],
        "categories": [{"id": 1, "name": "shirt"}, {"id": 2, "name": "bag"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 1, "segmentation": polygons},
            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [62, 2, 15, 15]},
        ],
    }
    (tmp_path / "annotations.json").write_text(json.dumps(coco))
    return rgb, garment


@pytest.mark.parametrize("mode", ["white", "transparent"])
def test_crop_command_masks_outside_the_garment(tmp_path, mode):
    rgb, garment = _coco_with_polygons(tmp_path)
    result = CliRunner().invoke(app, ["crop", str(tmp_path), "--out", str(tmp_path / "crops"), "--mask", mode])
    assert result.exit_code == 0, result.output
    text = "".join(result.output.split())
    assert "nomaskforthisobject" in text and "│total│1│" in text  # the box-only bag: reported, not fatal
    suffix = "png" if mode == "transparent" else "jpg"
    (written,) = (tmp_path / "crops" / "shirt").glob(f"*.{suffix}")
    crop = np.asarray(Image.open(written))
    inside = garment[5:50, 10:60]  # the L's box: rows 5..49, columns 10..59
    assert crop.shape[:2] == inside.shape and inside.any() and not inside.all()
    if mode == "transparent":
        assert crop.shape[2] == 4
        assert (crop[~inside, 3] == 0).all() and (crop[inside, 3] == 255).all()
        assert np.array_equal(crop[inside, :3], rgb[5:50, 10:60][inside])
    else:
        # JPEG (chroma at half resolution, 8x8 blocks) bleeds colour a few pixels across the edge: judge beyond it
        outside_by, inside_by = ndimage.distance_transform_edt(~inside), ndimage.distance_transform_edt(inside)
        assert (crop[outside_by >= 4] >= 245).all() and (crop[~inside] >= 200).mean() > 0.9
        assert np.abs(crop[inside_by >= 3].astype(int) - (210, 30, 40)).max() <= 12

    plain = CliRunner().invoke(app, ["crop", str(tmp_path), "--out", str(tmp_path / "plain")])
    assert plain.exit_code == 0 and len(list((tmp_path / "plain").rglob("*.jpg"))) == 2  # no --mask: every box
    bad = CliRunner().invoke(app, ["crop", str(tmp_path), "--out", str(tmp_path / "x"), "--mask", "black"])
    assert bad.exit_code == 2 and "must be one of" in bad.output


def test_square_crops_keep_the_whole_object_centred_on_white(tmp_path):
    from fashionlens.detect.crop import cut_out

    _coco_with_polygons(tmp_path)
    result = CliRunner().invoke(app, ["crop", str(tmp_path), "--out", str(tmp_path / "sq"), "--square",
                                      "--mask", "transparent"])
    assert result.exit_code == 0, result.output
    (written,) = (tmp_path / "sq" / "shirt").glob("*.png")
    crop = np.asarray(Image.open(written))
    assert crop.shape == (50, 50, 4)  # the L's 50x45 box on a 50x50 square, transparent where it was padded
    assert (crop[:2, :, 3] == 0).all() and (crop[-2:, :, 3] == 0).all() and crop[10:40, :, 3].any()

    image = Image.new("RGB", (100, 40), (0, 0, 255))
    tall = cut_out(image, (10, 0, 30, 40), square=True)  # a 20x40 box: 10 px of white either side
    pixels = np.asarray(tall)
    assert tall.size == (40, 40) and (pixels[:, :8] == 255).all() and (pixels[:, 12:28] == (0, 0, 255)).all()
    inside = np.zeros((40, 100), bool)
    inside[5:35, 15:25] = True
    blanked = np.asarray(cut_out(image, (10, 0, 30, 40), inside=inside, mask="white"))
    assert blanked.shape == (40, 20, 3) and (blanked[0] == 255).all() and (blanked[20, 5:15] == (0, 0, 255)).all()
