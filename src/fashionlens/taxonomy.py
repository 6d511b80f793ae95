"""One taxonomy: which parser classes a detector label's pixels are, and which attribute labels fit it.

A model gives an attribute only to garments of kinds it has classes for, and only labels that fit the kind, as
its manifest declares (`TaskSpec.fits`): the shipped clothing-small classifier names no category for a bag, and
never calls a skirt "longsleeve". A model that declares nothing is left unrestricted.
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

# The kinds the shipped attribute models' classes fit, as their manifests declare them (`declare_fits` writes
# them there after a retrain: `make default-model`, `make default-types`); the runtime reads only the manifests.
SHIPPED_FITS: dict[str, dict[str, tuple[str, ...]]] = {
    "category": {  # the shipped clothing-small classifier; each class names one kind
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
NAMES_KIND = ("category",)


def declare_fits(folder: str) -> None:
    """Write the shipped fits into a shipped model folder's manifest (its tasks' `fits` and `names_kind`)."""
    import json
    from pathlib import Path

    from fashionlens.model_folder import MANIFEST_FILE, write_json_atomic

    path = Path(folder) / MANIFEST_FILE
    manifest = json.loads(path.read_text())
    for task in manifest["tasks"]:
        if task["name"] in SHIPPED_FITS:
            task["fits"] = {kind: list(labels) for kind, labels in SHIPPED_FITS[task["name"]].items()}
            task["names_kind"] = task["name"] in NAMES_KIND
    write_json_atomic(path, manifest)


if __name__ == "__main__":  # python -m fashionlens.taxonomy MODEL_FOLDER...
    import sys

    for argument in sys.argv[1:]:
        declare_fits(argument)
