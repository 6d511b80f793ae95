"""Single products, as `analyze` describes them: is a photo of one garment one item of the right kind?

clothing-small's validation photos (one garment each, varied backgrounds; the folder names its category) and
fashion-products thumbnails (every 20th row of styles.csv whose articleType names a garment kind; a model often
wears the product, and then other garments are real too, so there the figure is the strongest item's kind).
Also, on clothing-small, how often the whole-photo classifier and the detector's strongest box name the right
kind: the measurement that decides whom the pipeline believes for a product shot.

    python benchmarks/product_shots.py [--every 20] [--out FILE.json]
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import Counter
from pathlib import Path

from _shared import dataset

from fashionlens.images import ImageError, read_image_file
from fashionlens.pipeline import Analyzer, PipelineConfig
from fashionlens.progress import progress_bar

ARTICLE_KIND = {
    "Tshirts": "shirt", "Shirts": "shirt", "Tops": "shirt", "Sweatshirts": "shirt", "Sweaters": "shirt",
    "Jeans": "pants", "Trousers": "pants", "Track Pants": "pants", "Shorts": "shorts", "Skirts": "skirt",
    "Dresses": "dress", "Jackets": "jacket", "Casual Shoes": "shoe", "Sports Shoes": "shoe", "Formal Shoes": "shoe",
    "Heels": "shoe", "Flats": "shoe", "Sandals": "shoe", "Flip Flops": "shoe", "Handbags": "bag", "Caps": "hat",
}


def run(analyzer: Analyzer, photos: list[tuple[Path, str]], title: str) -> dict:
    counts = Counter()
    with progress_bar(title, len(photos)) as advance:
        for path, kind in photos:
            advance(1)
            try:
                _, image = read_image_file(path)
            except ImageError:
                counts["unreadable"] += 1
                continue
            items = analyzer.analyze(image).items
            counts["photos"] += 1
            counts["one item"] += len(items) == 1
            counts["one item, right kind"] += len(items) == 1 and items[0].label == kind
            counts["strongest item right kind"] += bool(items) and max(items, key=lambda g: g.score).label == kind
            counts["whole photo"] += bool(items) and items[0].whole_image
    n = max(1, counts["photos"])
    figures = {k: round(v / n, 4) for k, v in counts.items() if k not in ("photos", "unreadable")}
    print(f"{title}: {counts['photos']} photos; " + ", ".join(f"{k} {v:.3f}" for k, v in figures.items()))
    return {"photos": counts["photos"], **figures}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--every", type=int, default=20, help="fashion-products: every Nth usable row")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    analyzer = Analyzer(PipelineConfig(similar_k=0))
    small = dataset("clothing-small") / "validation"
    category = next(t for m in analyzer.classifiers for t in m.tasks if t.names_kind)
    singles = [(p, category.kind_of(p.parent.name)) for p in sorted(small.glob("*/*")) if p.is_file()]
    products = dataset("fashion-products")
    rows = []
    with open(products / "styles.csv", newline="") as fh:
        rows = [(products / "images" / f"{r['id']}.jpg", ARTICLE_KIND[r["articleType"]])
                for r in csv.DictReader(fh) if r["articleType"] in ARTICLE_KIND]
    report = {"clothing-small validation": run(analyzer, singles, "clothing-small validation"),
              "fashion-products": run(analyzer, rows[:: args.every], f"fashion-products, every {args.every}th")}
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
