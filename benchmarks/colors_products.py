"""fashion-products: is the first colour in the family of the shop's `baseColour`? On the held-out rows.

Rows are split by `fashionlens.holdout.holdout_part` on the image file name (`<id>.jpg`, validation 0.1, test
0.15): the naming table learns from "train" rows (benchmarks/colors_learn.py), its settings were chosen on
"validation" rows, and "test" rows are the reported figure. Measured two ways: `named_colors` on the whole photo
(the namer alone) and, with `--pipeline`, as the user gets it: the first colour of the main item (largest box)
of `Analyzer().analyze(photo)`. `baseColour` is mapped to the families it may be called (BASE_COLOUR_FAMILIES);
Multi, Metallic and NA name no colour and are left out. The label is noisy (the source says so) and names the
product, while the photo may also show a model's skin and hair: agreement is a floor on accuracy.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _shared import dataset  # noqa: E402
from record import add_flag, record  # noqa: E402

from fashionlens.colors import COLOR_FAMILIES, named_colors  # noqa: E402
from fashionlens.holdout import holdout_part  # noqa: E402
from fashionlens.images import ImageError, load_image  # noqa: E402

BASE_COLOUR_FAMILIES: dict[str, tuple[str, ...]] = {
    # the shop's word -> the families a person may call it, the most likely first
    "Black": ("black",), "White": ("white",), "Off White": ("white", "beige"), "Cream": ("beige", "white"),
    "Grey": ("grey",), "Grey Melange": ("grey",), "Charcoal": ("grey", "black"), "Steel": ("grey",),
    "Silver": ("grey", "white"),
    "Red": ("red",), "Maroon": ("red",), "Burgundy": ("red",), "Rust": ("orange", "brown", "red"),
    "Orange": ("orange",), "Peach": ("orange", "pink"), "Copper": ("brown", "orange"),
    "Yellow": ("yellow",), "Mustard": ("yellow",), "Gold": ("yellow", "brown"),
    "Green": ("green",), "Olive": ("green",), "Sea Green": ("green",), "Lime Green": ("green",),
    "Fluorescent Green": ("green",),
    "Blue": ("blue",), "Navy Blue": ("blue",), "Turquoise Blue": ("blue", "green"), "Teal": ("blue", "green"),
    "Purple": ("purple",), "Lavender": ("purple",), "Mauve": ("purple", "pink"),
    "Pink": ("pink",), "Rose": ("pink",), "Magenta": ("pink", "purple"),
    "Brown": ("brown",), "Coffee Brown": ("brown",), "Mushroom Brown": ("brown", "grey"), "Tan": ("brown", "beige"),
    "Taupe": ("brown", "grey", "beige"), "Bronze": ("brown", "yellow"),
    # Khaki is a sand beige to a drab olive in shops; all three families are fair names for it
    "Beige": ("beige",), "Khaki": ("beige", "brown", "green"), "Skin": ("beige", "pink"), "Nude": ("beige", "pink"),
}
EXCLUDED = {"Multi", "Metallic", "NA", ""}
assert {f for fs in BASE_COLOUR_FAMILIES.values() for f in fs} <= set(COLOR_FAMILIES)


def product_rows(part: str) -> list[dict]:
    """styles.csv rows with a colour label in this part (train, validation or test)."""
    with open(dataset("fashion-products") / "styles.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["baseColour"] not in EXCLUDED
                and holdout_part(Path(f"{r['id']}.jpg"), 0.1, 0.15) == part]
    unknown = {r["baseColour"] for r in rows} - set(BASE_COLOUR_FAMILIES)
    if unknown:
        sys.exit(f"styles.csv: baseColour {sorted(unknown)} has no families in BASE_COLOUR_FAMILIES")
    return rows


def main_item_colour(analyzer, image) -> str | None:
    """The first colour family of the largest item the pipeline reports."""
    items = analyzer.analyze(image).items
    if not items:
        return None
    main = max(items, key=lambda g: (g.box[2] - g.box[0]) * (g.box[3] - g.box[1]))
    return main.colors[0].family if main.colors else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", default="test", choices=("train", "validation", "test"))
    parser.add_argument("--limit", type=int, default=0, help="first N usable rows only (0: all)")
    parser.add_argument("--pipeline", action="store_true", help="also the main item of Analyzer().analyze")
    parser.add_argument("--out", type=Path, help="write the figures as JSON here")
    add_flag(parser)
    args = parser.parse_args()
    if args.record and args.part != "test":
        parser.error("--record writes the test part's figures only")
    root = dataset("fashion-products")
    rows = product_rows(args.part)[: args.limit or None]
    analyzer = None
    if args.pipeline:
        from fashionlens.pipeline import Analyzer

        analyzer = Analyzer()
    ways = ["namer (whole photo)"] + (["pipeline (main item)"] if analyzer else [])
    hits, seconds, confusion = Counter(), Counter(), {w: Counter() for w in ways}
    n = unreadable = 0
    for row in rows:
        try:
            image = load_image(root / "images" / f"{row['id']}.jpg")
        except ImageError:
            unreadable += 1
            continue
        n += 1
        accepted = BASE_COLOUR_FAMILIES[row["baseColour"]]
        for way in ways:
            start = time.perf_counter()
            if analyzer is None or way.startswith("namer"):
                got = named_colors(image, top=1)[0].family
            else:
                got = main_item_colour(analyzer, image)
            seconds[way] += time.perf_counter() - start
            hits[way] += got in accepted
            if got not in accepted:
                confusion[way][(row["baseColour"], got)] += 1
    print(f"fashion-products {args.part} rows: {n} images with a colour label ({unreadable} unreadable)")
    print(f"{'first colour family':<24}{'accuracy':>10}{'ms/image':>10}")
    for way in ways:
        print(f"{way:<24}{hits[way] / n:>10.4f}{1000 * seconds[way] / n:>10.1f}")
    for way in ways:
        print(f"most frequent disagreements, {way} (baseColour -> family):")
        for (truth, got), count in confusion[way].most_common(10):
            print(f"  {truth:>14} -> {got!s:<8} {count}")
    if args.out:
        args.out.write_text(json.dumps({"part": args.part, "images": n, "unreadable": unreadable,
                                        "accuracy": {w: hits[w] / n for w in ways}}, indent=1))
    if args.record:
        record_figures(args, n, {w: hits[w] / n for w in ways})


def record_figures(args, n: int, accuracy: dict[str, float]) -> None:
    """Into benchmarks/results/colors.json; the namer's figure only from a run over every test row."""
    rows = f"first {args.limit} test rows" if args.limit else "test rows"
    figures = [] if args.limit else [{"figure": "Products, the namer on the whole photo",
                                      "value": round(accuracy["namer (whole photo)"], 3)}]
    if "pipeline (main item)" in accuracy:
        figures.append({"figure": f"Products, main item of Analyzer().analyze ({rows})",
                        "value": round(accuracy["pipeline (main item)"], 3)})
    record("colors", area="Colours", title="Colour naming (first colour's family)",
           data=f"fashion-products {rows} ({n:,} photos) against the shop's baseColour", part="test", issue=29,
           figures=figures, guide="guides/colors.md")


if __name__ == "__main__":
    main()
