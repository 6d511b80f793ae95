"""At what size to parse a photo of one garment for its colours (`fashionlens.parse.inference.whole_photo_size`).

CCP's held-out photos (the shipped parser's validation and test parts, or one of them) are cropped two ways, each with a tenth of
margin: to the whole outfit, and to its largest garment (what a product photo on a floor or a bed looks like). The
colours named from the parser's garment pixels at each size are compared with those named from the true garment
pixels: the first colour's family, and the Jaccard overlap of the families named. The parser's CPU time per photo
(one thread) is measured in the same run.

    .venv/bin/python benchmarks/parse_size_colours.py [--limit 200] [--parts validation test] [--record]
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from _shared import dataset
from PIL import Image
from record import add_flag, record

SIZES = [(384, 256), (288, 192), (256, 160), (192, 128)]


def crops(image: Image.Image, garment: np.ndarray, labels: np.ndarray):
    """(kind, box) of the outfit and of its largest garment, with a tenth of margin."""
    from fashionlens.detect.crop import padded_box
    from fashionlens.masks import mask_box

    areas = {c: int((labels == c).sum()) for c in np.unique(labels[garment])}
    for kind, mask in (("outfit", garment), ("garment", labels == max(areas, key=areas.get))):
        yield kind, padded_box(mask_box(mask), 0.1, image.width, image.height)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--limit", type=int, default=200, help="photos at most")
    parser.add_argument("--parts", nargs="+", default=["validation", "test"], choices=["validation", "test"],
                        help="the parser's held-out parts to crop from")
    add_flag(parser)
    args = parser.parse_args()
    from fashionlens.colors import garment_colors
    from fashionlens.parse.dataset import read_masks
    from fashionlens.parse.inference import Parser, garment_pixels, whole_photo_size
    from fashionlens.parse.labels import NOT_GARMENT, class_lut

    net = Parser(threads=1)
    chosen = whole_photo_size(net.input_size)
    data = read_masks(dataset("clothing-parsing"))
    lut = class_lut(data.names, net.model.config.groups)
    not_garment = [net.classes.index(n) for n in NOT_GARMENT]
    parts = [data.part(p) for p in args.parts]  # held out by file name, as the parser was trained
    scores = {(kind, size): [] for kind in ("outfit", "garment") for size in SIZES}
    seconds = dict.fromkeys(SIZES, 0.0)
    photos = 0
    for part in parts:
        for item in part.images:
            if photos >= args.limit:
                break
            image = Image.open(item.path).convert("RGB")
            labels = lut[part.load_mask(item, image.size)]
            garment = ~np.isin(labels, not_garment) & (labels < len(net.classes))
            if not garment.any():
                continue
            photos += 1
            for kind, box in crops(image, garment, labels):
                crop = image.crop(box)
                true = garment_colors(crop, mask=garment[box[1]:box[3], box[0]:box[2]])[0]
                truth, first = {c.family for c in true}, true[0].family
                for size in SIZES:
                    start = os.times()
                    pixels = garment_pixels(net.parse_image(crop, size))
                    end = os.times()
                    seconds[size] += end.user - start.user + end.system - start.system
                    named = garment_colors(crop, mask=pixels)[0]
                    found = {c.family for c in named}
                    scores[(kind, size)].append((named[0].family == first, len(truth & found) / len(truth | found)))
    print(f"{photos} CCP held-out photos ({' and '.join(args.parts)} parts), chosen size {chosen[0]}x{chosen[1]}")
    print(f"{'crop':8} {'size':>8} {'first family':>13} {'families (Jaccard)':>19} {'CPU ms':>7}")
    table = {}
    for (kind, size), rows in scores.items():
        same, jaccard = np.mean(rows, axis=0)
        cost = 1000 * seconds[size] / (2 * photos)
        table[(kind, size)] = (float(same), float(jaccard), cost)
        print(f"{kind:8} {size[0]:>4}x{size[1]:<3} {same:13.3f} {jaccard:19.3f} {cost:7.1f}")
    full = SIZES[0]
    ratio = table[("garment", chosen)][2] / table[("garment", full)][2]
    print(f"parse cost at {chosen[0]}x{chosen[1]} / {full[0]}x{full[1]}: {ratio:.2f}")
    if args.record:
        figures = [{"figure": f"Photo of one garment (CCP crop), first family as from its true pixels, parsed at "
                              f"{size[0]}x{size[1]}", "value": round(table[("garment", size)][0], 3)}
                   for size in (full, chosen)]
        figures += [{"figure": f"Whole outfit (CCP crop), first family as from its true pixels, parsed at "
                               f"{size[0]}x{size[1]}", "value": round(table[("outfit", size)][0], 3)}
                    for size in (full, chosen)]
        figures.append({"figure": f"Parse CPU time at {chosen[0]}x{chosen[1]} / at {full[0]}x{full[1]}",
                        "value": round(ratio, 2)})
        record("colors", area="Colours", title="Colour naming (first colour's family)",
               data=f"{photos} CCP photos of the parser's {' and '.join(args.parts)} parts, cropped to the outfit and "
                    f"to its largest garment", part="+".join(args.parts), issue=34, guide="guides/colors.md",
               figures=figures)


if __name__ == "__main__":
    main()
