"""fashion-products: named_colors vs the catalogue's `baseColour`, with and without white-backdrop removal.

`baseColour` is mapped to the palette by BASE_COLOUR_MAP below; colours with no single palette name (Multi,
Metallic, NA) are left out. Top-1: the largest colour is the labelled one; top-2: it is one of the two largest.
The label is noisy (the source says so) and names the product, while the photo may also show a model's skin
and hair, so agreement is a floor on what the method gets right, not its accuracy.
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _shared import dataset  # noqa: E402

from fashionlens.colors import COLOR_NAMES, named_colors  # noqa: E402
from fashionlens.images import ImageError, load_image  # noqa: E402

BASE_COLOUR_MAP = {
    "Black": "black", "White": "white", "Off White": "white", "Blue": "blue", "Navy Blue": "navy",
    "Turquoise Blue": "sky blue", "Brown": "brown", "Coffee Brown": "brown", "Mushroom Brown": "brown",
    "Tan": "brown", "Taupe": "brown", "Copper": "brown", "Bronze": "brown", "Grey": "grey", "Grey Melange": "grey",
    "Charcoal": "grey", "Steel": "silver", "Silver": "silver", "Red": "red", "Rust": "orange", "Orange": "orange",
    "Peach": "orange", "Green": "green", "Olive": "green", "Teal": "green", "Sea Green": "green",
    "Lime Green": "green", "Fluorescent Green": "neon", "Pink": "pink", "Rose": "pink", "Magenta": "pink",
    "Purple": "purple", "Lavender": "lavender", "Mauve": "lavender", "Yellow": "yellow", "Mustard": "yellow",
    "Beige": "beige", "Cream": "beige", "Skin": "beige", "Nude": "beige", "Gold": "gold", "Khaki": "khaki",
    "Maroon": "wine", "Burgundy": "wine",
}
EXCLUDED = {"Multi", "Metallic", "NA", ""}
assert set(BASE_COLOUR_MAP.values()) <= set(COLOR_NAMES)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--start", type=int, default=0,
                        help="skip rows before this CSV row (3000: rows the palette constants were not tuned on)")
    parser.add_argument("--limit", type=int, default=0, help="first N usable rows only (0: all)")
    parser.add_argument("--category", default="", help="only this masterCategory (e.g. Apparel)")
    args = parser.parse_args()
    root = dataset("fashion-products")
    rows = []
    with open(root / "styles.csv", newline="") as fh:
        for k, row in enumerate(csv.DictReader(fh)):
            wrong_category = args.category and row["masterCategory"] != args.category
            if k < args.start or row["baseColour"] in EXCLUDED or wrong_category:
                continue
            if row["baseColour"] not in BASE_COLOUR_MAP:
                sys.exit(f"styles.csv: baseColour {row['baseColour']!r} has no palette name in BASE_COLOUR_MAP")
            rows.append(row)
    if args.limit:
        rows = rows[: args.limit]
    ways = {"backdrop removed (auto)": None, "no removal": False}
    hits = {w: Counter() for w in ways}
    confusion = {w: Counter() for w in ways}
    seconds = Counter()
    unreadable = 0
    n = 0
    for row in rows:
        try:
            image = load_image(root / "images" / f"{row['id']}.jpg")
        except ImageError:
            unreadable += 1
            continue
        truth = BASE_COLOUR_MAP[row["baseColour"]]
        n += 1
        for way, removal in ways.items():
            start = time.perf_counter()
            names = [c.name for c in named_colors(image, top=2, remove_background=removal)]
            seconds[way] += time.perf_counter() - start
            hits[way]["top1"] += names[:1] == [truth]
            hits[way]["top2"] += truth in names
            if names[:1] != [truth]:
                confusion[way][(truth, names[0])] += 1
    print(f"fashion-products{' ' + args.category if args.category else ''} rows {args.start}+: {n} images with a "
          f"single-colour label ({unreadable} unreadable)")
    print(f"{'method':<26}{'top-1':>8}{'top-2':>8}{'ms/image':>10}")
    for way in ways:
        print(f"{way:<26}{hits[way]['top1'] / n:>8.4f}{hits[way]['top2'] / n:>8.4f}{1000 * seconds[way] / n:>10.2f}")
    a, b = ways
    print(f"top-1 ratio removed/no removal: {hits[a]['top1'] / max(1, hits[b]['top1']):.2f}x")
    print("most frequent top-1 disagreements (label -> predicted), backdrop removed:")
    for (truth, got), count in confusion[a].most_common(12):
        print(f"  {truth:>9} -> {got:<9} {count}")


if __name__ == "__main__":
    main()
