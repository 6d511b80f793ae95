"""Street garments judged by eye (benchmarks/data/street-colours.csv): is the first colour of the right family?

Measured as the user gets it: `Analyzer().analyze(photo)` (default config), each labelled box matched to the
analysed item of largest IoU (at least 0.5, any label), its first colour's family checked against the families
the labeller accepts. Also the namer alone on the labelled box (`named_colors(photo, box)`), and how many
garments the pipeline did not find. The labels are from colorful-fashion TRAINING photos and are the tuning set
of the colour namer: these figures are tuning figures, not held-out ones.

    python benchmarks/colors_street.py --out street.json [--record]   # --record: benchmarks/results/colors.json
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _shared import dataset  # noqa: E402
from record import add_flag, record  # noqa: E402

from fashionlens.colors import estimate_balance, named_colors  # noqa: E402
from fashionlens.images import load_image  # noqa: E402

LABELS = Path(__file__).resolve().parent / "data" / "street-colours.csv"
MATCH_IOU = 0.5


@dataclass(frozen=True)
class LabelledGarment:
    file: str
    kind: str
    box: tuple[float, float, float, float]
    families: frozenset[str]


def labelled_garments(path: Path = LABELS) -> list[LabelledGarment]:
    with open(path, newline="") as fh:
        return [LabelledGarment(r["file"], r["class"], tuple(float(r[k]) for k in ("x1", "y1", "x2", "y2")),
                                frozenset(r["families"].split("|"))) for r in csv.DictReader(fh)]


def iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def matched_item(items, box):
    """The analysed item overlapping the labelled box most (IoU >= 0.5), or None."""
    best = max(items, key=lambda g: iou(g.box, box), default=None)
    return best if best is not None and iou(best.box, box) >= MATCH_IOU else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    add_flag(parser)
    args = parser.parse_args()
    from fashionlens.pipeline import Analyzer

    root = dataset("colorful-fashion") / "JPEGImages"
    garments = labelled_garments()
    analyzer = Analyzer()
    hits, misses = Counter(), Counter()
    unmatched = 0
    photos = sorted({g.file for g in garments})
    for file in photos:
        image = load_image(root / file)
        items = analyzer.analyze(image).items
        balance = estimate_balance(image)
        for g in (g for g in garments if g.file == file):
            box_first = named_colors(image, g.box, top=1, balance=balance)[0].family
            hits["box"] += box_first in g.families
            item = matched_item(items, g.box)
            if item is None:
                unmatched += 1
                continue
            first = item.colors[0].family if item.colors else None
            hits["pipeline"] += first in g.families
            if first not in g.families:
                misses[("|".join(sorted(g.families)), first)] += 1
    n, matched = len(garments), len(garments) - unmatched
    figures = {"garments": n, "photos": len(photos), "unmatched": unmatched,
               "pipeline_accuracy_matched": hits["pipeline"] / max(1, matched),
               "pipeline_accuracy_all": hits["pipeline"] / n, "true_box_accuracy": hits["box"] / n}
    print(f"{n} labelled garments on {len(photos)} training photos (the namer's tuning set)")
    print(f"pipeline, first colour family right: {hits['pipeline']}/{matched} matched garments = "
          f"{figures['pipeline_accuracy_matched']:.3f} ({unmatched} not found by the pipeline, counted wrong: "
          f"{figures['pipeline_accuracy_all']:.3f})")
    print(f"namer on the labelled box: {hits['box']}/{n} = {figures['true_box_accuracy']:.3f}")
    print("pipeline mistakes (accepted -> first):")
    for (accepted, got), count in misses.most_common(15):
        print(f"  {accepted:>24} -> {got!s:<8} {count}")
    if args.out:
        args.out.write_text(json.dumps(figures, indent=1))
    if args.record:
        record("colors", area="Colours", title="Colour naming (first colour's family)",
               data=f"{n} street garments on {len(photos)} colorful-fashion training photos, judged by eye",
               part="tuning", issue=29, guide="guides/colors.md",
               figures=[{"figure": "Street garments through the pipeline, of matched (tuning set)",
                         "value": round(figures["pipeline_accuracy_matched"], 3)}])


if __name__ == "__main__":
    main()
