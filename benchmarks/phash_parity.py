"""Not a benchmark: fashionlens's perceptual hash (numpy, in the base install) against imagehash.phash, which
catalogues and feature caches were filled with, on every photo under the shared datasets and its mirror image.
Prints the count of differing hashes (0 expected) and each one. Needs imagehash (the dev extra).

    python benchmarks/phash_parity.py [--limit N]
"""

from __future__ import annotations

import argparse
import imagehash
from _shared import DATASETS
from PIL import Image, ImageOps

from fashionlens.fingerprints import perceptual_hash


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="only the first N files (sorted)")
    args = parser.parse_args()
    files = sorted(p for p in DATASETS.rglob("*") if p.suffix.lower() in {".jpg", ".jpeg", ".png"})[:args.limit]
    hashes = differing = 0
    for path in files:
        with Image.open(path) as image:
            image.load()
            for picture in (image, ImageOps.mirror(image)):
                hashes += 1
                ours, theirs = perceptual_hash(picture), str(imagehash.phash(picture))
                if ours != theirs:
                    differing += 1
                    print(f"differs: {path} ours {ours} imagehash {theirs}")
    print(f"{len(files)} files, {hashes} hashes (each file and its mirror), {differing} differing")


if __name__ == "__main__":
    main()
