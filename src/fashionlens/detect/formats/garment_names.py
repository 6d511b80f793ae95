"""Clothing-parsing (CCP) label names as the detector's 10 colorful-fashion classes: one table, so CCP's label
maps become more street photos with boxes (`read_label_masks` turns each connected part into a box, so a pair of
shoes is two boxes and an arm-split jacket one).

A CCP name maps to the class a colorful-fashion annotator would have drawn for it: every top worn as the upper
garment is a `shirt`, every open or outer layer a `jacket`, one-pieces a `dress`. Names the detector has no class
for (jewellery, belts, socks, skin) map to None and give no box; clear glasses are not sunglasses.
"""

from __future__ import annotations

from pathlib import Path

from fashionlens.detect.detections import DetectionDataset

CCP_TO_GARMENT: dict[str, str | None] = {
    "sunglasses": "sunglass",
    "hat": "hat",
    **dict.fromkeys(("jacket", "blazer", "coat", "cardigan", "cape", "hoodie", "vest", "suit"), "jacket"),
    **dict.fromkeys(("shirt", "t-shirt", "top", "blouse", "bodysuit", "sweater", "jumper", "sweatshirt"), "shirt"),
    **dict.fromkeys(("pants", "jeans", "leggings"), "pants"),
    "shorts": "shorts",
    "skirt": "skirt",
    **dict.fromkeys(("dress", "romper"), "dress"),
    **dict.fromkeys(("bag", "purse", "wallet"), "bag"),
    **dict.fromkeys(("shoes", "boots", "heels", "flats", "sneakers", "sandals", "pumps", "loafers", "wedges", "clogs"),
                    "shoe"),
    **dict.fromkeys(("null", "skin", "hair", "accessories", "belt", "bra", "bracelet", "earrings", "glasses", "gloves",
                     "intimate", "necklace", "panties", "ring", "scarf", "socks", "stockings", "swimwear", "tie",
                     "tights", "watch"), None),
}
"""Every CCP label name -> a detector class, or None for no box."""


def read_extra_boxes(path: str | Path, classes: list[str], progress: bool = False) -> DetectionDataset:
    """Annotated photos in any format as boxes of `classes`; label maps go through `CCP_TO_GARMENT`."""
    from fashionlens.detect.formats import detect_format, read_dataset
    from fashionlens.detect.formats.label_masks import read_label_masks

    if detect_format(path) == "masks":
        return read_label_masks(path, list(classes), names_map=CCP_TO_GARMENT, progress=progress)
    return read_dataset(path, classes=list(classes), progress=progress)


__all__ = ["CCP_TO_GARMENT", "read_extra_boxes"]
