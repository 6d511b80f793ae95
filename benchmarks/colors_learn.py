"""Builds the shipped colour naming table (src/fashionlens/colors/names.npz) from the xkcd survey and the
dominant shade of each fashion-products "train" photo with a one-family `baseColour`: two tables from the same
votes, one for garments in a scene and one for studio product photos (table.SCENE_PARAMS, PRODUCT_PARAMS).

    python benchmarks/colors_learn.py            # rebuild names.npz
    python benchmarks/colors_learn.py --check    # only report how many cells would change

The dominant shade of a product photo: its non-backdrop pixels' most populated coarse CIELAB bin (8 L* x 8 a*
x 8 b* units), averaged; a model's skin or a print is then outvoted by the garment in most photos.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _shared import dataset  # noqa: E402
from colors_products import BASE_COLOUR_FAMILIES, product_rows  # noqa: E402

from fashionlens.colors import COLOR_FAMILIES  # noqa: E402
from fashionlens.colors.backdrop import backdrop_lightness, backdrop_mask, border  # noqa: E402
from fashionlens.colors.table import (PRODUCT_PARAMS, SCENE_PARAMS, TABLE_PATH, cell_votes, save_table,  # noqa: E402
                                      srgb_to_lab, table_from_votes)  # noqa: E402
from fashionlens.images import ImageError, load_image  # noqa: E402

BIN = 8.0


def dominant_shade(rgb: np.ndarray) -> np.ndarray:
    """Mean Lab of the most populated coarse Lab bin among a product photo's non-backdrop pixels."""
    lab = srgb_to_lab(rgb)
    level = backdrop_lightness(border(lab))
    keep = ~backdrop_mask(lab, level) if level is not None else np.ones(lab.shape[:2], bool)
    if keep.mean() < 0.05:
        keep[:] = True
    pixels = lab[keep]
    bins = np.floor(pixels / BIN).astype(np.int64)
    keys, inverse, counts = np.unique(bins, axis=0, return_inverse=True, return_counts=True)
    return pixels[inverse.ravel() == counts.argmax()].mean(0)


def product_examples() -> tuple[np.ndarray, np.ndarray]:
    """(Lab, family index) of every train photo whose baseColour has one family."""
    root = dataset("fashion-products")
    lab, family = [], []
    for row in product_rows("train"):
        families = BASE_COLOUR_FAMILIES[row["baseColour"]]
        if len(families) != 1:
            continue
        try:
            image = load_image(root / "images" / f"{row['id']}.jpg").convert("RGB")
        except ImageError:
            continue
        lab.append(dominant_shade(np.asarray(image, dtype=np.uint8)))
        family.append(COLOR_FAMILIES.index(families[0]))
    return np.array(lab), np.array(family)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report the change, do not write the table")
    parser.add_argument("--cache", type=Path, help="keep the product examples here (an .npz) between runs")
    args = parser.parse_args()
    if args.cache and args.cache.exists():
        with np.load(args.cache) as data:
            lab, family = data["lab"], data["family"]
    else:
        lab, family = product_examples()
        if args.cache:
            np.savez(args.cache, lab=lab, family=family)
    print(f"{len(lab)} product examples: " + ", ".join(
        f"{f} {(family == i).sum()}" for i, f in enumerate(COLOR_FAMILIES)))
    votes = cell_votes(lab, family, SCENE_PARAMS)  # the priors and near-neutral rules apply after the vote
    table, product = table_from_votes(votes, SCENE_PARAMS), table_from_votes(votes, PRODUCT_PARAMS)
    if TABLE_PATH.exists():
        with np.load(TABLE_PATH) as old:
            for key, new in (("fine", table), ("product", product)):
                if key in old:
                    print(f"{key}: {(old[key] != new).sum()} of {len(new)} cells change")
    if not args.check:
        save_table(table, product)
        print(f"wrote {TABLE_PATH}")


if __name__ == "__main__":
    main()
