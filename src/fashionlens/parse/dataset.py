"""Photos with a label per pixel, as the parser trains on them: the index-PNG layout of CCP, LIP and ATR, or any
annotation format with segmentations (COCO polygons or RLE), painted into the same index PNGs.

The files are paired and checked once, when read (a mask of another size than its photo, an index outside
the label list, a missing photo or mask are reported by path and skipped); masks are loaded when used.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fashionlens.data.samples import SkippedInput
from fashionlens.holdout import holdout_part


@dataclass(frozen=True)
class MaskedImage:
    path: Path
    mask: Path  # one byte per pixel, an index into the dataset's `names`


@dataclass
class MaskDataset:
    names: list[str]  # the source's label names, in index order
    images: list[MaskedImage]
    source: str = ""
    skipped: list[SkippedInput] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.images)

    def part(self, name: str, val_fraction: float = 0.1, test_fraction: float = 0.15) -> MaskDataset:
        """The train, validation or test part, held out by file name as for the detector."""
        keep = [im for im in self.images if holdout_part(im.path, val_fraction, test_fraction) == name]
        return MaskDataset(self.names, keep, self.source, [])

    def load_mask(self, image: MaskedImage, size: tuple[int, int]) -> np.ndarray:
        from fashionlens.data.label_maps import load_index_mask

        return load_index_mask(image.mask, size, len(self.names))


def read_masks(root: str | Path, format: str | None = None) -> MaskDataset:
    """`root/images/*.jpg` + `root/masks/*.png` + `root/labels.txt`, or (`format`, detected from the layout) a COCO
    file or folder whose segmentations are painted into index PNGs; problems are listed in `skipped`."""
    from fashionlens.data.label_maps import read_mask_layout
    from fashionlens.detect.formats import detect_format

    root = Path(root)
    if (format or detect_format(root)) != "masks":
        return _painted(root, format)
    names, pairs, skipped = read_mask_layout(root)
    return MaskDataset(list(names), [MaskedImage(Path(i), Path(m)) for i, m in pairs], str(root), list(skipped))


def _painted(root: Path, format: str | None) -> MaskDataset:
    """Instance segmentations as label maps: index 0 is the background, then the dataset's classes; larger objects
    are painted first, so a smaller one on top of them (a belt on a dress) keeps its pixels. The PNGs go to the
    cache (keyed by the data's path), never beside the user's data."""
    import hashlib

    from PIL import Image

    from fashionlens.cache import default_cache_dir
    from fashionlens.detect.formats import read_dataset

    data = read_dataset(root, format=format, masks=True)
    names = ["null", *data.classes]
    folder = default_cache_dir() / "label-maps" / hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:16]
    folder.mkdir(parents=True, exist_ok=True)
    images, skipped = [], list(data.skipped)
    for position, item in enumerate(data.images):
        d = item.detections
        if d.mask is None or not d.mask.any():
            skipped.append(SkippedInput(str(item.path), "no segmentation to paint a label map from"))
            continue
        labels = np.zeros((item.height, item.width), np.uint8)
        for k in np.argsort(-d.mask.reshape(len(d), -1).sum(1), kind="stable"):
            labels[d.mask[k]] = d.class_id[k] + 1
        target = folder / f"{position:06d}-{item.path.stem}.png"
        Image.fromarray(labels, mode="L").save(target)
        images.append(MaskedImage(item.path, target))
    return MaskDataset(names, images, str(root), skipped)
