"""Photos with a label per pixel, as the parser trains on them: the index-PNG layout of CCP, LIP and ATR.

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


def read_masks(root: str | Path) -> MaskDataset:
    """`root/images/*.jpg` + `root/masks/*.png` + `root/labels.txt`; problems are listed in `skipped`."""
    from fashionlens.data.label_maps import read_mask_layout

    names, pairs, skipped = read_mask_layout(root)
    return MaskDataset(list(names), [MaskedImage(Path(i), Path(m)) for i, m in pairs], str(root), list(skipped))
