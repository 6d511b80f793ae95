"""The fine garment `type` vocabulary: CCP's label names, with the rare ones merged into a close sibling.

The type head is trained on crops of CCP's labelled parts (`fashionlens crop` on the label maps, one crop per
connected part), on the photos the detector also trains on (train + validation parts by file name); the test
photos are its benchmark. A name is kept as its own type when it has about 15 training crops or more; rarer ones
merge into a sibling (`TYPE_MERGES`), as do names the annotators use for one same look (bag and purse); names
that are no garment, or too small and too few to crop usefully, give no type (`TYPE_IGNORE`). The counts in the
comments are train + validation crops (`read_label_masks` with its defaults); `make default-types` rebuilds the shipped head (`defaults.default_type_classifier_dir()`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

TYPE_MERGES: dict[str, str] = {
    # shoes: flats and clogs are plain shoes; pumps and wedges are heeled
    "flats": "shoes",  # 9 train+validation crops
    "clogs": "shoes",  # 0
    "pumps": "heels",  # 7
    "wedges": "heels",  # 2
    # tops and knitwear
    "jumper": "sweater",  # 12; the British word for the same garment
    "cardigan": "sweater",  # 10; knitted, open at the front
    "hoodie": "sweatshirt",  # 1
    "bodysuit": "top",  # 7
    "bra": "top",  # 0
    "intimate": "top",  # 0
    "swimwear": "top",  # 0
    # bags: CCP's annotators call the same handbags and shoulder bags "bag" or "purse" (24 crops of each looked
    # at side by side show no difference), and a head trained on both names told them apart no better than
    # chance (validation purse recall 0.17, precision 0.40); wallets are rare and look like clutches
    "purse": "bag",  # 166
    "wallet": "bag",  # 17
    # bottoms and legwear
    "panties": "shorts",  # 0
    "tights": "stockings",  # 4
}
"""Source name -> the type it is counted as (one step: every target is a type of its own)."""

TYPE_IGNORE: tuple[str, ...] = (
    "null", "skin", "hair",  # not garments
    "accessories",  # CCP's catch-all (hair clips, brooches, bits of jewellery): no one look to learn
    "bracelet", "earrings", "necklace", "ring", "watch",  # jewellery: a few pixels, and no detector or parser kind
    "gloves",  # the parser counts them as accessories: no garment of theirs ever reaches the type head
)
"""Source names that give no type crop."""


def type_of(name: str) -> str | None:
    """The type a source label counts as, or None for an ignored one."""
    if name in TYPE_IGNORE:
        return None
    return TYPE_MERGES.get(name, name)


def merge_type_folders(crops: str | Path) -> dict[str, int]:
    """Fold a `fashionlens crop` output (one folder per source label) into type folders, in place: merged
    labels' crops move into their type's folder, ignored labels' folders are removed. Returns crops per type.

    Crop names are `<photo>_<n>.jpg` with n counting every part of the photo, so merging never collides."""
    crops = Path(crops)
    if not crops.is_dir():
        raise FileNotFoundError(f"{crops}: no crop folder")
    for folder in sorted(p for p in crops.iterdir() if p.is_dir()):
        target = type_of(folder.name)
        if target is None:
            shutil.rmtree(folder)
        elif target != folder.name:
            (crops / target).mkdir(exist_ok=True)
            for crop in sorted(folder.iterdir()):
                destination = crops / target / crop.name
                if destination.exists():
                    raise FileExistsError(f"{destination}: already there, cannot merge {crop}")
                crop.rename(destination)
            folder.rmdir()
    return {p.name: sum(1 for _ in p.iterdir()) for p in sorted(crops.iterdir()) if p.is_dir()}


if __name__ == "__main__":  # python -m fashionlens.taxonomy_types CROPS: the step `make default-types` runs
    import sys

    for type_name, count in merge_type_folders(sys.argv[1]).items():
        print(f"{type_name}\t{count}")
