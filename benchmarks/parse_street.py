"""Garments in street photos the parser never saw (clothing-parsing's held-out test part): parsing mIoU, the
share of garments covering 2%+ of the photo that the pipeline finds (mask or box IoU >= 0.4; true and found
garments matched one to one for the largest total IoU, as an instance-mask evaluation pairs them) with polygons, how
often their `type` is CCP's own label (per class), and how often their first colour is the one the palette
names from the garment's true pixels, against colours read from the whole box as before.

    python benchmarks/parse_street.py [--part test] [--model PARSER] [--types TYPE_HEAD] [--no-square] [--record]

--record writes the parsing figures to benchmarks/results/parse-street.json.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torchvision.ops import box_iou

from _shared import dataset as shared_dataset
from record import add_flag, record

from fashionlens.colors import named_colors
from fashionlens.detect.formats.label_masks import label_parts
from fashionlens.images import read_image_file
from fashionlens.masks import mask_box, mask_iou
from fashionlens.parse import Parser, read_masks
from fashionlens.parse.evaluate import evaluate_parser
from fashionlens.parse.labels import class_lut
from fashionlens.pipeline import Analyzer, PipelineConfig
from fashionlens.taxonomy import LABEL_OF_PARSER_CLASS
from fashionlens.taxonomy_types import type_of



def true_garments(labels: np.ndarray, source: np.ndarray, classes: list[str], names: list[str], min_share: float):
    """(parser class, mask, true type) of each garment part covering at least `min_share` of the photo, split into
    parts by the closing rule that `crop --format masks` uses; the type is the part's most frequent source label,
    merged as the type head's classes are (None: no type)."""
    out = []
    for name in LABEL_OF_PARSER_CLASS:
        for part in label_parts(labels, classes.index(name), min_area=int(np.ceil(min_share * labels.size))):
            out.append((name, part, type_of(names[int(np.bincount(source[part]).argmax())])))
    return out


def match_scores(truths: list[np.ndarray], items) -> np.ndarray:
    """[true garment, found garment]: the larger of mask IoU and box IoU (the target's "found")."""
    if not truths or not items:
        return np.zeros((len(truths), len(items)))
    boxes = box_iou(torch.tensor([mask_box(m) for m in truths]), torch.tensor([g.box for g in items])).numpy()
    masks = np.array([[mask_iou(m, g.mask) if g.mask is not None else 0.0 for g in items] for m in truths])
    return np.maximum(boxes, masks)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--part", default="test")
    ap.add_argument("--model", default="default")
    ap.add_argument("--types", default="types", help="type head folder (default: the shipped one)")
    ap.add_argument("--square", action=argparse.BooleanOptionalAction, default=PipelineConfig.crop_square)
    ap.add_argument("--min-share", type=float, default=0.02)
    add_flag(ap)
    args = ap.parse_args()
    dataset = read_masks(shared_dataset("clothing-parsing")).part(args.part)
    parser = Parser(None if args.model == "default" else Path(args.model))
    metrics, _ = evaluate_parser(parser, dataset)
    print(f"parsing, {metrics['images']} {args.part} photos: pixel accuracy {metrics['pixel_accuracy']:.4f}, "
          f"mIoU {metrics['miou']:.4f}, garment-group mIoU {metrics['group_miou']:.4f}")
    print("  groups: " + ", ".join(f"{k} {v:.3f}" for k, v in metrics["groups"].items() if v is not None))
    print("  classes: " + ", ".join(f"{k} {v['iou']:.3f}" for k, v in metrics["per_class"].items() if v["iou"] is not None))
    analyzer = Analyzer(PipelineConfig(parser=args.model, classifiers=("default", args.types), similar_k=0,
                                       crop_square=args.square))
    lut = class_lut(dataset.names, parser.model.config.groups)
    found, polygons, colour_mask, colour_box, total = Counter(), 0, 0, 0, Counter()
    typed, type_right = Counter(), Counter()
    times, loose = [], 0
    for item in dataset.images:
        _, image = read_image_file(item.path)
        source = dataset.load_mask(item, image.size)
        truth = lut[source]
        start = time.perf_counter()
        result = analyzer.analyze(image)
        times.append((time.perf_counter() - start) * 1000)
        garments = true_garments(truth, source, parser.classes, dataset.names, args.min_share)
        for name, *_ in garments:
            total[name] += 1
        iou = match_scores([mask for _, mask, _ in garments], result.items)
        loose += int((iou.max(axis=1) >= 0.4).sum()) if iou.size else 0
        for t, p in zip(*linear_sum_assignment(iou, maximize=True), strict=True):
            if iou[t, p] < 0.4:
                continue
            (name, mask, true_type), g = garments[t], result.items[p]
            if true_type is not None:
                typed[true_type] += 1
                said = g.attributes.get("type")
                type_right[true_type] += bool(said) and said[0].label == true_type
            found[name] += 1
            polygons += bool(g.polygons)
            true_colour = named_colors(image, mask=mask)[0].name
            colour_mask += bool(g.colors) and g.colors[0].name == true_colour
            colour_box += named_colors(image, g.box)[0].name == true_colour
    n, hit = sum(total.values()), sum(found.values())
    print(f"garments covering {args.min_share:.0%}+: {n}; found {hit / n:.3f} ({hit}; each garment found matches one "
          f"true garment at most, {loose / n:.3f} if one may stand for two), with polygons {polygons / max(1, hit):.3f}")
    print("  found per class: " + ", ".join(f"{k} {found[k]}/{total[k]}" for k in total))
    n_typed = sum(typed.values())
    print(f"type top-1 of the found garments: {sum(type_right.values()) / max(1, n_typed):.3f} of {n_typed}")
    print("  per type: " + ", ".join(f"{k} {type_right[k]}/{typed[k]}" for k in sorted(typed, key=lambda k: -typed[k])))
    print(f"first colour equals the true pixels' colour: from the mask {colour_mask / max(1, hit):.3f}, "
          f"from the box {colour_box / max(1, hit):.3f} (ratio {colour_mask / max(1, colour_box):.2f}x)")
    print(f"Analyzer.analyze per photo (decode excluded): p50 {np.percentile(times, 50):.1f} ms, "
          f"p90 {np.percentile(times, 90):.1f} ms")
    if args.record:
        groups = ", ".join(k for k, v in metrics["groups"].items() if v is not None)
        classes = len(metrics["per_class"])
        record("parse-street", area="Parse", title="Shipped garment parser",
               data=f"Clothing Co-Parsing: {metrics['images']} held-out {args.part} photos", part=args.part, issue=14,
               guide="guides/parse.md",
               figures=[{"figure": f"mIoU over the garment groups {groups}", "value": round(metrics["group_miou"], 3)},
                        {"figure": f"Pixel accuracy ({classes} classes)", "value": round(metrics["pixel_accuracy"], 3)},
                        {"figure": f"mIoU ({classes} classes)", "value": round(metrics["miou"], 3)}])


if __name__ == "__main__":
    main()
