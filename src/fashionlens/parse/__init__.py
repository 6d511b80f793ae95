"""Garment parsing: a class per pixel (garment kinds, skin, hair, background) from street photos.

Names are imported on first use, so `fashionlens --help` does not load PyTorch."""

from fashionlens.lazy import lazy_exports

_EXPORTS = {"MaskDataset": "dataset", "read_masks": "dataset", "ParsedImage": "inference", "Parser": "inference",
            "ParserConfig": "model", "ParserTrainConfig": "train", "train_parser": "train"}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
