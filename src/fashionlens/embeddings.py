"""Image embeddings for search and near-duplicate detection: L2-normalised backbone features."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fashionlens.backbones import DEFAULT_BACKBONE, Backbone, create_backbone
from fashionlens.data.samples import SkippedInput
from fashionlens.features import extract_features


@dataclass
class Embeddings:
    vectors: np.ndarray  # float32 [n_read, dim], unit length
    indices: list[int]  # position in the input list of each row
    sha256: list[str]
    phash: list[str]
    failures: list[SkippedInput] = field(default_factory=list)


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


def embed_paths(paths: list[Path], backbone: Backbone | str = DEFAULT_BACKBONE, *, use_cache: bool = True,
                progress: bool = True) -> Embeddings:
    """Embeddings of every readable image; unreadable ones are listed in `failures`."""
    if isinstance(backbone, str):
        backbone = create_backbone(backbone)
    feats = extract_features(backbone, [Path(p) for p in paths], use_cache=use_cache, progress=progress)
    return Embeddings(l2_normalize(feats.vectors), feats.indices, feats.sha256, feats.phash, feats.failures)
