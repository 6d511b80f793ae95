"""How good are label maps made from boxes (`train-parser --box-data`)? On clothing-parsing photos the teacher never
trained on, boxes are made from the true masks (one per connected part, as `read_label_masks` makes them), the
teacher's parse is corrected by them (`box_guided_masks`), and both are scored against the true pixels, on the pixels
the box-guided maps keep, in one run.

    python benchmarks/parse_box_labels.py [--part validation] [--teacher PARSER]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from _shared import dataset as shared_dataset

from fashionlens.data.label_maps import VOID
from fashionlens.detect.formats.label_masks import read_label_masks
from fashionlens.holdout import holdout_part
from fashionlens.images import read_image_file
from fashionlens.parse import Parser, read_masks
from fashionlens.parse.box_labels import box_guided_masks
from fashionlens.parse.labels import class_lut, merge_table
from fashionlens.parse.metrics import confusion, parsing_metrics


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", default="validation", help="held-out part of clothing-parsing (validation or test)")
    ap.add_argument("--teacher", default=None, help="parser folder (default: the shipped one)")
    args = ap.parse_args()
    root = shared_dataset("clothing-parsing")
    teacher = Parser(Path(args.teacher) if args.teacher else None)
    classes, groups = teacher.classes, teacher.model.config.groups
    boxes = read_label_masks(root, classes=classes, names_map=merge_table(groups))
    boxes = boxes.subset([i for i, im in enumerate(boxes.images) if holdout_part(im.path, 0.1, 0.15) == args.part])
    data = read_masks(root)
    truth_of = {im.path.name: im for im in data.images}
    lut = class_lut(data.names, groups)
    n = len(classes)
    cm = {k: np.zeros((n, n), np.int64) for k in ("teacher, all pixels", "teacher, kept pixels", "box-guided, kept pixels")}
    kept = total = 0
    with tempfile.TemporaryDirectory() as tmp:
        guided = box_guided_masks(boxes, teacher, tmp)
        for item in guided.images:
            _, image = read_image_file(item.path)
            truth = lut[data.load_mask(truth_of[item.path.name], image.size)]
            parsed = teacher.parse_image(image).photo_labels()
            labels = np.asarray(Image.open(item.mask))
            keep = labels != VOID
            cm["teacher, all pixels"] += confusion(truth, parsed, n)
            cm["teacher, kept pixels"] += confusion(np.where(keep, truth, VOID), parsed, n)
            cm["box-guided, kept pixels"] += confusion(np.where(keep, truth, VOID), np.where(keep, labels, 0), n)
            kept, total = kept + int(keep.sum()), total + keep.size
    print(f"{len(guided)} {args.part} photos of clothing-parsing, boxes from their true masks; "
          f"box-guided maps keep {kept / total:.3f} of the pixels")
    scores = {}
    for name, matrix in cm.items():
        m = parsing_metrics(matrix, classes)
        scores[name] = m["group_miou"]
        groups_text = ", ".join(f"{g} {v:.3f}" for g, v in m["groups"].items() if v is not None)
        print(f"  {name:<24} pixel accuracy {m['pixel_accuracy']:.4f}, garment-group mIoU {m['group_miou']:.4f} ({groups_text})")
    print(f"box-guided / teacher on the same pixels: {scores['box-guided, kept pixels'] / scores['teacher, kept pixels']:.2f}x")


if __name__ == "__main__":
    main()
