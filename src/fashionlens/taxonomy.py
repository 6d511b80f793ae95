"""One taxonomy: which parser classes a detector label's pixels are, and which attribute labels fit it.

A model gives an attribute only to garments of kinds it has classes for, and only labels that fit the kind:
the shipped clothing-small classifier names no category for a bag, and never calls a skirt "longsleeve".
Labels of models and detectors this table does not know are left unrestricted.
"""

from __future__ import annotations

# detector label -> the parser classes that are its pixels
PARSER_CLASSES: dict[str, tuple[str, ...]] = {
    "sunglass": ("glasses",), "hat": ("hat",), "jacket": ("jacket",), "shirt": ("top",), "pants": ("pants",),
    "shorts": ("shorts",), "skirt": ("skirt",), "dress": ("dress",), "bag": ("bag",), "shoe": ("shoes",),
}
# parser class -> the label a garment found by the parser alone gets (its detector label where there is one)
LABEL_OF_PARSER_CLASS: dict[str, str] = {
    **{c: label for label, classes in PARSER_CLASSES.items() for c in classes},
    "socks": "socks", "belt": "belt", "scarf": "scarf",
}
PAIRED = ("shoe",)
"""Kinds worn in pairs: one box over two separate parts is two garments."""

# task -> garment label -> the task's labels that fit that garment (a label missing here gets no such attribute)
FITTING: dict[str, dict[str, tuple[str, ...]]] = {
    "category": {  # the shipped clothing-small classifier
        "jacket": ("outwear",), "shirt": ("shirt", "longsleeve", "t-shirt"), "pants": ("pants",),
        "shorts": ("shorts",), "skirt": ("skirt",), "dress": ("dress",), "shoe": ("shoes",), "hat": ("hat",),
    },
    "type": {  # the shipped street-photo type head (CCP's names, merged as in taxonomy_types)
        "jacket": ("blazer", "cape", "coat", "jacket", "suit", "sweater", "sweatshirt", "vest"),
        "shirt": ("blouse", "shirt", "sweater", "sweatshirt", "t-shirt", "top", "vest"),
        "pants": ("jeans", "leggings", "pants"), "shorts": ("shorts",), "skirt": ("skirt",),
        "dress": ("dress", "romper"), "shoe": ("boots", "heels", "loafers", "sandals", "shoes", "sneakers"),
        "bag": ("bag",), "sunglass": ("glasses", "sunglasses"), "hat": ("hat",),
        "socks": ("socks", "stockings"), "belt": ("belt",), "scarf": ("scarf", "tie"),
    },
}


KIND_OF: dict[str, dict[str, str]] = {"category": {label: kind for kind, labels in FITTING["category"].items()
                                                   for label in labels}}
"""task -> label -> the garment kind it names: how a whole photo (a product shot) gets its kind from the
whole-photo classifier's category."""


def fitting_labels(task: str, garment_label: str | None) -> tuple[str, ...] | None:
    """The labels of `task` allowed on a garment: None means any (unknown task or no garment label), () none."""
    table = FITTING.get(task)
    if table is None or garment_label is None:
        return None
    return table.get(garment_label, ())
