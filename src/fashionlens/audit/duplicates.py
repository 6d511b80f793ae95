"""Copies among the audited images, found by the project's `dedup` from the feature cache, with each copy's label
and split.

The audit has the features' sha256 and perceptual hash of every image already; dedup's signatures, mirrored
hashes and pair verifications sit in the same cache, so a second audit reads no image for this stage, and the
embedding candidates come from the audit's one neighbour search instead of a search of their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fashionlens.audit.findings import DuplicateGroup
from fashionlens.cache import FeatureCache
from fashionlens.data.samples import LabeledImages, SkippedInput
from fashionlens.dedup import CANDIDATES, EXACT, cached_fingerprints, copy_pairs, covering_groups


@dataclass
class Copies:
    """Verified copies among the readable images (positions in the audit's feature rows)."""

    pairs: np.ndarray  # int64 [m, 2]: verified copy pairs, byte-identical files aside (those share a sha256)
    groups: list[tuple[str, list[int]]]  # (kind, positions): an image, then every image linked to it directly
    failures: list[SkippedInput] = field(default_factory=list)  # files that could not be read again


def find_copies(paths: list[Path], sha256: list[str], phash: list[str], cache: FeatureCache, *,
                vector_pairs: np.ndarray | None = None, progress: bool = True) -> Copies:
    """dedup's verified copies: candidates from the hashes, the signatures and `vector_pairs` (pairs of
    positions whose embeddings are within dedup's candidate cosine or among each other's nearest neighbours;
    None: no embedding candidates)."""
    kept, fingerprints, failures = cached_fingerprints(paths, sha256, phash, cache, progress=progress)
    kept_rows = np.asarray(kept, np.int64)
    candidates = None
    if vector_pairs is not None and len(vector_pairs):
        position = np.full(len(paths), -1, np.int64)
        position[kept_rows] = np.arange(len(kept_rows))
        mapped = position[np.asarray(vector_pairs, np.int64)]
        candidates = mapped[(mapped >= 0).all(1)]
    pairs = copy_pairs([paths[i] for i in kept], fingerprints, CANDIDATES, progress=progress, cache=cache,
                       candidates=candidates)
    groups = [(g.kind, kept_rows[g.members].tolist()) for g in covering_groups(fingerprints, pairs)]
    return Copies(kept_rows[pairs] if len(pairs) else np.zeros((0, 2), np.int64), groups, failures)


def duplicate_groups(data: LabeledImages, rows: list[int], copies: Copies) -> list[DuplicateGroup]:
    """Groups of copies among the samples at `rows` (the readable ones), conflicts and leaks first.

    Every verified copy shares a group with the image it was verified against, so no copy filed under another
    label or split goes unnoticed; links are not chained, so a few false ones cannot join look-alikes.
    """
    groups = [_group(data, [rows[k] for k in members], kind != EXACT) for kind, members in copies.groups]
    groups.sort(key=lambda g: (not g.conflict, not g.leak, -len(g.images), g.images[0]))
    return groups


def _group(data: LabeledImages, members: list[int], near: bool) -> DuplicateGroup:
    samples = [data.samples[i] for i in members]
    if len(data.tasks) == 1:
        labels = [s.labels.get(data.tasks[0]) for s in samples]
    else:
        labels = [{t: s.labels.get(t) for t in data.tasks} for s in samples]
    return DuplicateGroup([str(s.path) for s in samples], labels, [s.split for s in samples], near, members)
