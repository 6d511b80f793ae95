"""The parser's label set: CCP's names, with rare or overlapping ones merged into one of them.

Every merge is recorded in the model manifest, so a model trained on another grouping (or on LIP/ATR names)
carries its own. Background must be class 0: padding and unlabelled pixels count as it.
"""

from __future__ import annotations

import numpy as np

from fashionlens.data.label_maps import VOID

IGNORE = VOID  # label of pixels that count for nothing: letterbox padding, and VOID pixels of the source maps

# model class -> source names merged into it (a class always includes its own name)
CCP_GROUPS: dict[str, tuple[str, ...]] = {
    "null": ("null",),
    "skin": ("skin",),
    "hair": ("hair",),
    "jacket": ("jacket", "blazer", "cape", "cardigan", "coat", "suit", "vest"),
    "top": ("top", "blouse", "bodysuit", "bra", "hoodie", "intimate", "jumper", "shirt", "sweater", "sweatshirt",
            "swimwear", "t-shirt"),
    "pants": ("pants", "jeans", "leggings"),
    "shorts": ("shorts", "panties"),
    "skirt": ("skirt",),
    "dress": ("dress", "romper"),
    "shoes": ("shoes", "boots", "clogs", "flats", "heels", "loafers", "pumps", "sandals", "sneakers", "wedges"),
    "socks": ("socks", "stockings", "tights"),
    "bag": ("bag", "purse", "wallet"),
    "hat": ("hat",),
    "glasses": ("glasses", "sunglasses"),
    "belt": ("belt",),
    "scarf": ("scarf", "tie"),
    "accessories": ("accessories", "bracelet", "earrings", "gloves", "necklace", "ring", "watch"),
}

NOT_GARMENT = ("null", "skin", "hair")
"""Classes that are never a garment's pixels."""

# the groups the parsing target is scored on: group -> model classes
SCORE_GROUPS: dict[str, tuple[str, ...]] = {
    "top": ("jacket", "top"),
    "bottom": ("pants", "shorts", "skirt"),
    "dress": ("dress",),
    "footwear": ("shoes",),
    "bag": ("bag",),
}


def merge_table(groups: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """source name -> model class."""
    table: dict[str, str] = {}
    for cls, names in groups.items():
        for name in (cls, *names):
            if table.setdefault(name, cls) != cls:
                raise ValueError(f"label {name!r} is merged into both {table[name]!r} and {cls!r}")
    return table


def source_to_class(source_names: list[str], groups: dict[str, tuple[str, ...]], source: str = "") -> list[int]:
    """For each source label index, the model class index; names no group lists are refused by name."""
    table, classes = merge_table(groups), list(groups)
    unknown = [n for n in source_names if n not in table]
    if unknown:
        raise ValueError(f"{source}: labels {unknown} are in no parser class; add them to a group")
    return [classes.index(table[n]) for n in source_names]


def class_lut(source_names: list[str], groups: dict[str, tuple[str, ...]], source: str = "") -> np.ndarray:
    """A 256-entry table from a source map's byte to the model class; VOID (and any unnamed index) to IGNORE."""
    lut = np.full(256, IGNORE, np.uint8)
    lut[:len(source_names)] = source_to_class(source_names, groups, source)
    return lut
