"""Choose the detector's operating point on validation photos, as the pipeline shows items.

Per-class score thresholds on colorful-fashion's validation part, by coordinate descent on (garments found -
COST x wrong or duplicate items): COST 1 says a wrong card costs as much as a missed garment. Then whether a
paired kind's box over two parts becomes two items, which pairs of kinds on one box are two layers (a dress
under an open jacket; only while duplicates stay under 0.5% of items), and, kind by kind, the least size and parser confidence of
a garment the parser alone may add, judged on both validation parts: colorful-fashion's boxes and CCP's label
maps (clothing-parsing; there a true garment is a connected part covering 2% of the photo, found at mask or box
IoU 0.4, and an item is wrong when most of its pixels are not its kind's). A setting is kept only where it
finds more garments than it adds wrong items. The detections (score >= 0.05) and parses of the photos are
cached in build/, so a second run takes a minute or two. The photos are also split in two halves: thresholds tuned on one half and scored on
the other say what to expect on photos the choice never saw.

    python benchmarks/tune_operating_point.py [--cost 1.0] [--write src/fashionlens/assets/garment-detector]
"""

from __future__ import annotations

import argparse
import json
import pickle
import random
from dataclasses import replace
from pathlib import Path

import numpy as np

from _shared import dataset

from fashionlens.detect.detections import Detections
from fashionlens.detect.formats import read_dataset
from fashionlens.detect.inference import Detector
from fashionlens.detect.operating_point import OperatingPoint, select
from fashionlens.detect.overlaps import LAYERED
from fashionlens.detect.train import split_dataset
from fashionlens.detect.formats.label_masks import label_parts
from fashionlens.images import read_image_file
from fashionlens.parse import read_masks
from fashionlens.parse.inference import Parser
from fashionlens.parse.labels import class_lut
from fashionlens.pipeline.evaluate import match_garments
from fashionlens.pipeline.garment_masks import MaskRules, garment_masks
from fashionlens.pipeline.scoring import Tally, score_photo
from fashionlens.progress import progress_bar
from fashionlens.taxonomy import LABEL_OF_PARSER_CLASS

GRID = [round(float(x), 2) for x in np.arange(0.3, 0.86, 0.05)]
MAX_ITEMS = 12
MAX_DUPLICATES = 0.005  # share of items on a garment already shown that a layered pair may bring (target: 1%)


def cached_photos(part: str, cache: Path) -> list[dict]:
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    data = split_dataset(read_dataset(dataset("colorful-fashion")), 0.1, 0.15)[part]
    detector, parser = Detector(), Parser()
    photos = []
    with progress_bar(f"detect and parse ({part})", len(data)) as advance:
        for image in data.images:
            _, picture = read_image_file(image.path)
            found = detector.detect_image(picture, 0.05)
            photos.append({"truth": (image.detections.xyxy, [data.classes[c] for c in image.detections.class_id]),
                           "found": found, "parsed": parser.parse_image(picture)})
            advance(1)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(pickle.dumps(photos))
    return photos


def cached_label_maps(part: str, cache: Path) -> list[dict]:
    """CCP photos: raw detections, the parse, and the true garments (parser class, bool mask) over 2%."""
    if cache.exists():
        return pickle.loads(cache.read_bytes())
    detector, parser = Detector(), Parser()
    data = read_masks(dataset("clothing-parsing")).part(part)
    lut = class_lut(data.names, parser.model.config.groups)
    photos = []
    with progress_bar(f"detect and parse CCP ({part})", len(data)) as advance:
        for item in data.images:
            _, picture = read_image_file(item.path)
            labels = lut[data.load_mask(item, picture.size)]
            truths = [(name, part_mask) for name in LABEL_OF_PARSER_CLASS
                      for part_mask in label_parts(labels, parser.classes.index(name),
                                                   min_area=int(np.ceil(0.02 * labels.size)))]
            photos.append({"found": detector.detect_image(picture, 0.05), "parsed": parser.parse_image(picture),
                           "truths": truths, "labels": labels})
            advance(1)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(pickle.dumps(photos))
    return photos


def items(photo: dict, classes: list[str], point: OperatingPoint) -> Detections:
    shown = select(photo["found"], classes, point)[:MAX_ITEMS]
    rules = MaskRules(added=point.parser_items, split_pairs=point.split_pairs)
    found = garment_masks(photo["parsed"], shown, classes, rules)
    return found[np.argsort(-found.confidence, kind="stable")][:MAX_ITEMS]


def score_label_maps(photos: list[dict], classes: list[str], point: OperatingPoint) -> tuple[int, int, int]:
    """(true garments, found, wrong items) on CCP photos."""
    from fashionlens.taxonomy import PARSER_CLASSES

    total = found = wrong = 0
    for photo in photos:
        shown, truths = items(photo, classes, point), photo["truths"]
        total += len(truths)
        _, pairs = match_garments([m for _, m in truths], shown.xyxy, list(shown.mask))
        found += len(pairs)
        matched = {p for _, p in pairs}
        parser_classes = photo["parsed"].classes
        for p, (label, mask) in enumerate(zip(shown.data["class_name"], shown.mask, strict=True)):
            if p in matched or not mask.any():
                continue
            own = [parser_classes.index(c) for c in PARSER_CLASSES.get(label, (label,)) if c in parser_classes]
            wrong += np.isin(photo["labels"][mask], own).mean() < 0.5
    return total, found, wrong


def score(photos: list[dict], classes: list[str], point: OperatingPoint, masks: bool = False) -> Tally:
    """What the pipeline shows (with `masks`, after garment_masks: pairs split, parser items added)."""
    tally = Tally()
    for photo in photos:
        if masks:
            shown = items(photo, classes, point)
            labels = list(shown.data["class_name"])
        else:
            shown = select(photo["found"], classes, point)[:MAX_ITEMS]
            labels = [classes[c] for c in shown.class_id]
        scores, boxes = shown.confidence.tolist(), shown.xyxy.tolist()
        tally.add(score_photo(labels, scores, boxes, *reversed(photo["truth"]), set(classes)))
    return tally


def gain(tally: Tally, cost: float) -> float:
    wrong = sum(tally.false.values()) + sum(tally.duplicate.values()) + sum(tally.unlabelled.values())
    return sum(tally.found.values()) - cost * wrong


def tune_thresholds(photos, classes, cost: float, point: OperatingPoint) -> OperatingPoint:
    point = replace(point, thresholds={c: point.threshold(c) for c in classes})
    best = gain(score(photos, classes, point), cost)
    for _ in range(3):
        changed = False
        for c in classes:
            for value in GRID:
                trial = replace(point, thresholds={**point.thresholds, c: value})
                if (g := gain(score(photos, classes, trial), cost)) > best + 1e-9:
                    best, point, changed = g, trial, True
        if not changed:
            break
    return point


def line(name: str, tally: Tally) -> str:
    f = tally.figures()
    return (f"{name:<34} precision {f['precision']:.3f} recall {f['recall']:.3f} F1 {f['f1']:.3f} "
            f"duplicates {f['duplicates']} ({f['duplicate_share']:.1%}) items {f['items']}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cost", type=float, default=1.0, help="a wrong or duplicate item, in missed garments")
    ap.add_argument("--cache", type=Path, default=Path("build/operating-point/v2/validation.pkl"))
    ap.add_argument("--ccp-cache", type=Path, default=Path("build/operating-point/v2/ccp-validation.pkl"))
    ap.add_argument("--write", type=Path, help="store the chosen point in this detector folder's manifest.json")
    args = ap.parse_args()
    classes = Detector().classes
    photos = cached_photos("validation", args.cache)
    start = OperatingPoint(split_pairs=False)
    print(line("every class at 0.4 (before)", score(photos, classes, replace(start, default_threshold=0.4))))
    order = list(range(len(photos)))
    random.Random(0).shuffle(order)
    halves = [[photos[i] for i in order[: len(order) // 2]], [photos[i] for i in order[len(order) // 2:]]]
    crossed = Tally()
    for k in (0, 1):
        tuned = tune_thresholds(halves[k], classes, args.cost, start)
        for key, counts in vars(score(halves[1 - k], classes, tuned)).items():
            if isinstance(counts, dict):
                getattr(crossed, key).update(counts)
    print(line("thresholds tuned on the other half", crossed))
    point = tune_thresholds(photos, classes, args.cost, start)
    print(line("thresholds tuned on all (in sample)", score(photos, classes, point)))
    print("thresholds: " + ", ".join(f"{c} {v:.2f}" for c, v in point.thresholds.items()))
    base = score(photos, classes, point, masks=True)
    print(line("  after garment masks", base))
    split = score(photos, classes, replace(point, split_pairs=True), masks=True)
    print(line("  pairs split into two items", split))
    if gain(split, args.cost) > gain(base, args.cost):
        point, base = replace(point, split_pairs=True), split
    ccp = cached_label_maps("validation", args.ccp_cache)

    def both(trial: OperatingPoint) -> tuple[float, int, int, int]:
        tally, (total, found, wrong) = score(photos, classes, trial, masks=True), score_label_maps(ccp, classes, trial)
        return gain(tally, args.cost) + found - args.cost * wrong, sum(tally.found.values()), found, total

    best = both(point)
    print(f"  CCP validation: found {best[2] / best[3]:.3f} of {best[3]} garments")
    for pair in sorted(tuple(sorted(p)) for p in LAYERED):  # boxes of two kinds on one region kept as two layers
        trial = replace(point, layered=(*point.layered, pair))
        result = both(trial)
        duplicates = score(photos, classes, trial, masks=True).figures()["duplicate_share"]
        if result[0] > best[0] and duplicates <= MAX_DUPLICATES:
            print(f"  {pair[0]} and {pair[1]} on one box kept as two layers: found {result[1] - best[1]:+d} "
                  f"(colorful-fashion), {result[2] - best[2]:+d} (CCP); gain {result[0] - best[0]:+.0f}")
            best, point = result, trial
    for kind in sorted(set(LABEL_OF_PARSER_CLASS.values())):
        for share in (0.015, 0.03):
            for confidence in (0.6, 0.7, 0.8, 0.9):
                trial = replace(point, parser_items={**point.parser_items, kind: (share, confidence)})
                result = both(trial)
                if result[0] > best[0]:
                    print(f"  parser alone adds {kind} from {share:.1%} at confidence {confidence}: found "
                          f"{result[1] - best[1]:+d} (colorful-fashion), {result[2] - best[2]:+d} (CCP); "
                          f"gain {result[0] - best[0]:+.0f}")
                    best, point = result, trial
    print(f"  CCP validation: found {best[2] / best[3]:.3f} of {best[3]} garments")
    print(line("chosen (after garment masks)", score(photos, classes, point, masks=True)))
    chosen = {**point.to_json(), "source": None}
    chosen.pop("source")
    chosen["chosen_on"] = {"data": "validation parts (sha1 of file name, 10%): colorful-fashion (thresholds, pairs, "
                                   "layers, parser items), clothing-parsing (layers, parser items)",
                           "photos": len(photos), "label_map_photos": len(ccp), "cost_of_a_wrong_item": args.cost,
                           "command": "python benchmarks/tune_operating_point.py --write FOLDER"}
    print(json.dumps(chosen))
    if args.write:
        manifest_path = args.write / "manifest.json"
        manifest = json.loads(manifest_path.read_text())
        manifest["operating_point"] = chosen
        manifest_path.write_text(json.dumps(manifest, indent=2) + "\n")
        print(f"written to {manifest_path}")


if __name__ == "__main__":
    main()
