"""Label maps (CCP, LIP, ATR layout) to boxes: parts of a label, the closing that joins an arm-split garment but not
two shoes, bad files reported by path and skipped, format detection; CCP itself when ../shared is present."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fashionlens.detect.formats import detect_format, read_dataset
from fashionlens.detect.formats.label_masks import label_parts, read_label_masks
from fashionlens.taxonomy_types import TYPE_IGNORE, TYPE_MERGES, type_of

NAMES = ["null", "skin", "hair", "jacket", "shoes", "clogs", "top"]
W, H = 60, 80


def _map() -> np.ndarray:
    """A jacket cut in two by a vertical arm (skin), a top, and two shoes with floor between them."""
    m = np.zeros((H, W), np.uint8)
    m[10:40, 10:50] = NAMES.index("jacket")
    m[10:40, 28:32] = NAMES.index("skin")  # the arm: 4 px of person between the jacket's halves
    m[40:60, 15:45] = NAMES.index("top")
    m[70:78, 12:24] = NAMES.index("shoes")
    m[70:78, 27:39] = NAMES.index("shoes")  # 3 px of floor (background) from the first shoe
    return m


def _write(root: Path, stem: str, labels: np.ndarray, mask_dir: str = "masks") -> None:
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / mask_dir).mkdir(exist_ok=True)
    rgb = np.full((*labels.shape, 3), 120, np.uint8)
    rgb[labels > 0] = (200, 40, 40)
    Image.fromarray(rgb).save(root / "images" / f"{stem}.jpg", quality=95)
    Image.fromarray(labels, mode="L").save(root / mask_dir / f"{stem}.png")


def _dataset(root: Path, n: int = 3, mask_dir: str = "masks") -> Path:
    for i in range(n):
        _write(root, f"{i:04d}", _map(), mask_dir)
    (root / "labels.txt").write_text("\n".join(NAMES) + "\n")
    return root


def test_two_separate_shoes_are_two_boxes_and_an_arm_split_jacket_one(tmp_path):
    ds = read_label_masks(_dataset(tmp_path / "d", 1))
    assert ds.classes == ["jacket", "shoes", "top"] and not ds.skipped
    d = ds.images[0].detections
    boxes = {ds.classes[c]: [] for c in range(len(ds.classes))}
    for box, c in zip(d.xyxy.tolist(), d.class_id.tolist(), strict=True):
        boxes[ds.classes[c]].append(box)
    assert boxes["jacket"] == [[10, 10, 50, 40]]  # one box over both halves
    assert sorted(boxes["shoes"]) == [[12, 70, 24, 78], [27, 70, 39, 78]]  # the floor keeps them apart
    assert boxes["top"] == [[15, 40, 45, 60]]
    assert ds.images[0].width == W and ds.images[0].height == H


def test_closing_bridges_the_person_but_never_the_background():
    m = _map()
    assert len(label_parts(m, NAMES.index("jacket"), close=0)) == 2  # without closing the arm splits it
    jacket = label_parts(m, NAMES.index("jacket"))
    assert len(jacket) == 1 and jacket[0].sum() == (m == NAMES.index("jacket")).sum()  # only its own pixels
    m[10:40, 28:32] = 0  # the same gap, but background: two parts
    assert len(label_parts(m, NAMES.index("jacket"))) == 2
    assert len(label_parts(_map(), NAMES.index("shoes"), close=1.0)) == 2  # even a wide closing keeps the shoes apart


def test_masks_names_map_ignore_and_small_parts(tmp_path):
    root = _dataset(tmp_path / "d", 1)
    m = _map()
    m[2:4, 2:4] = NAMES.index("clogs")  # 4 px: under the minimum area
    m[62:68, 40:50] = NAMES.index("clogs")
    _write(root, "0000", m)
    ds = read_label_masks(root, names_map={"clogs": "shoes", "top": "jacket"}, ignore=("null", "skin", "hair"),
                          min_area=0.002, masks=True)  # 0.2% of 60x80: 10 px
    assert ds.classes == ["jacket", "shoes"]
    counts = Counter(ds.classes[c] for c in ds.images[0].detections.class_id.tolist())
    assert counts == {"jacket": 2, "shoes": 3}  # the top is a jacket now (its own part); the speck is dropped
    d = ds.images[0].detections
    assert d.mask.shape == (5, H, W) and d.mask.dtype == bool
    for box, mask in zip(d.xyxy.astype(int).tolist(), d.mask, strict=True):  # each part's own pixels, inside its box
        ys, xs = np.nonzero(mask)
        assert [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1] == box
    assert read_label_masks(root).images[0].detections.mask is None  # masks only when asked
    with_skin = read_label_masks(root, ignore=("null",))
    assert "skin" in with_skin.classes and "hair" not in with_skin.classes  # classes are the names that occur
    fixed = read_label_masks(root, classes=["shoes"])
    assert fixed.classes == ["shoes"] and all(set(im.detections.class_id.tolist()) == {0} for im in fixed.images)
    assert any("jacket" in s.reason and "class list" in s.reason for s in fixed.skipped)


def test_bad_files_are_reported_by_path_and_skipped(tmp_path):
    root = _dataset(tmp_path / "d", 7)
    Image.fromarray(np.zeros((10, 10), np.uint8), mode="L").save(root / "masks" / "0000.png")  # wrong size
    bad = _map()
    bad[0, 0] = len(NAMES)  # one index past the label list
    Image.fromarray(bad, mode="L").save(root / "masks" / "0001.png")
    (root / "masks" / "0002.png").unlink()  # photo without mask
    (root / "images" / "0003.jpg").unlink()  # mask without photo
    (root / "masks" / "0004.png").write_bytes(b"not a png")
    (root / "images" / "0005.jpg").write_bytes(b"\xff\xd8 truncated")
    ds = read_label_masks(root)
    assert [im.path.name for im in ds.images] == ["0006.jpg"]
    reasons = {Path(s.source).name: s.reason for s in ds.skipped}
    assert set(reasons) == {"0000.png", "0001.png", "0002.jpg", "0003.png", "0004.png", "0005.jpg"}
    assert "10x10" in reasons["0000.png"] and f"index {len(NAMES)}" in reasons["0001.png"]
    assert "no mask" in reasons["0002.jpg"] and "no photo" in reasons["0003.png"]
    assert "unreadable" in reasons["0004.png"] and "readable" in reasons["0005.jpg"]


@pytest.mark.parametrize("mask_dir", ["masks", "annotations", "segmentations"])
def test_read_dataset_detects_the_layout(tmp_path, mask_dir):
    root = _dataset(tmp_path / "d", 2, mask_dir)
    assert detect_format(root) == "masks"
    ds = read_dataset(root)
    assert len(ds) == 2 and ds.classes == ["jacket", "shoes", "top"]
    assert read_dataset(root, format="masks", classes=["top"]).classes == ["top"]


def test_type_table_covers_every_ccp_name():
    names = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "clothing-parsing" / "labels.txt"
    if not names.is_file():
        pytest.skip("clothing-parsing not found in ../shared/datasets")
    for name in names.read_text().split():
        assert (name in TYPE_IGNORE) != (type_of(name) is not None), name
    assert set(TYPE_MERGES.values()).isdisjoint(TYPE_MERGES)  # one step: a merge target is itself a type
    assert not set(TYPE_MERGES.values()) & set(TYPE_IGNORE)


@pytest.mark.integration
def test_clothing_parsing_reads_into_sane_boxes(shared_datasets):
    root = shared_datasets / "clothing-parsing"
    if not root.is_dir():
        pytest.skip(f"clothing-parsing not found in {shared_datasets}")
    assert detect_format(root) == "masks"
    ds = read_dataset(root)
    assert len(ds) >= 715 and len(ds.skipped) <= 8  # 723 photos; one is all skin and background
    assert {"jacket", "jeans", "dress", "skirt", "shoes", "heels", "bag"} <= set(ds.classes)
    assert not {"null", "skin", "hair"} & set(ds.classes)
    parts = Counter()
    photos = Counter()
    for im in ds.images:
        names = [ds.classes[c] for c in im.detections.class_id.tolist()]
        parts.update(names)
        photos.update(set(names))
        assert (im.detections.xyxy[:, 2] <= im.width).all() and (im.detections.xyxy[:, 3] <= im.height).all()
    per_photo = sum(parts.values()) / len(ds)
    assert 6 <= per_photo <= 15, per_photo  # measured 10.5
    shoes = ("shoes", "boots", "heels", "flats", "sneakers", "sandals", "pumps", "loafers", "wedges", "clogs")
    shoe_parts = sum(parts[n] for n in shoes) / sum(photos[n] for n in shoes)
    assert 1.4 <= shoe_parts <= 2.0, shoe_parts  # measured 1.62: most pairs are two parts
    jacket_parts = sum(parts[n] for n in ("jacket", "coat", "blazer")) / sum(photos[n] for n in ("jacket", "coat", "blazer"))
    assert 1.0 <= jacket_parts <= 1.25, jacket_parts  # measured 1.10: arm-split jackets are one part


def test_every_ccp_name_maps_to_a_detector_class_or_none(tmp_path):
    from fashionlens.detect.formats.garment_names import CCP_TO_GARMENT, read_extra_boxes

    detector = ["sunglass", "hat", "jacket", "shirt", "pants", "shorts", "skirt", "dress", "bag", "shoe"]
    assert set(CCP_TO_GARMENT.values()) == {*detector, None}
    root = _dataset(tmp_path / "d", 1)  # jacket, shoes, top (CCP names) plus skin
    ds = read_extra_boxes(root, detector)
    assert ds.classes == detector and not ds.skipped
    counts = Counter(detector[c] for c in ds.images[0].detections.class_id.tolist())
    assert counts == {"jacket": 1, "shoe": 2, "shirt": 1}  # a CCP top is a shirt; two shoes stay two boxes
    names = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "clothing-parsing" / "labels.txt"
    if names.is_file():
        assert set(names.read_text().split()) == set(CCP_TO_GARMENT)
