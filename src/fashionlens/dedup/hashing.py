"""The cheap stage's reading: every image's sha256, perceptual hashes and signature, decoded at a reduced scale in
worker threads."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fashionlens.data.samples import SkippedInput
from fashionlens.dedup import Fingerprints
from fashionlens.dedup.signature import SIGNATURE_DIM, signature
from fashionlens.decoding import ImageFileDataset, item_batches
from fashionlens.fingerprints import flipped_perceptual_hash, perceptual_hash, sha256_bytes
from fashionlens.progress import progress_bar


class _Fingerprinted(ImageFileDataset):
    def prepare(self, i: int, data: bytes, image) -> tuple[str, str, str, np.ndarray]:
        return sha256_bytes(data), perceptual_hash(image), flipped_perceptual_hash(image), signature(image)


def hash_images(paths: list[Path], *, progress: bool = True,
                workers: int = 1) -> tuple[list[int], Fingerprints, list[SkippedInput]]:
    """sha256, perceptual hash, mirrored hash and signature of every readable image (positions in `paths`), and
    failures. The cheap stage: a JPEG is decoded at a reduced scale, in `workers` threads beside this one."""
    kept, rows, failures = [], [], []
    with progress_bar("fingerprints", len(paths), progress) as advance:
        for batch in item_batches(_Fingerprinted(paths, min_size=64), 64, workers):
            for i, row, reason in batch:
                if reason is None:
                    kept.append(i)
                    rows.append(row)
                else:
                    failures.append(SkippedInput(str(paths[i]), reason))
            advance(len(batch))
    sha, ph, flipped, signatures = (list(column) for column in zip(*rows, strict=True)) if rows else ([], [], [], [])
    stacked = np.stack(signatures) if signatures else np.zeros((0, SIGNATURE_DIM), np.float32)
    return kept, Fingerprints(sha, ph, flipped, signatures=stacked), failures
