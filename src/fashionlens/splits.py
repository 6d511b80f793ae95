"""Reproducible, stratified, duplicate-aware splits: copies of one picture never straddle two splits.

Copies are byte-identical files, images with the same perceptual hash (re-encoded or resized) and the pairs
that dedup's verification confirmed (turned, rotated, letterboxed, greyscale... versions from an augmented
export), grouped transitively through fashionlens.dedup. An unverified hash threshold is not the default
here: chained transitively over a catalogue of small, similar thumbnails it merges unrelated products
(6 bits joined 2,558 of fashion-products' 12,000 images into one group, 2 bits 330; 0 bits: largest group 8).
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from sklearn.model_selection import StratifiedGroupKFold

from fashionlens.dedup import Fingerprints, Thresholds, group_labels, near_pairs

SPLIT_MAX_HAMMING = 0


@dataclass(frozen=True)
class Leak:
    """A group of copies that a given layout put into more than one split."""

    members: list[int]  # positions, ascending
    splits: list[str]  # the given split of each member


@dataclass(frozen=True)
class Split:
    train: list[int]
    validation: list[int]
    test: list[int]
    duplicate_images: int  # images that have at least one copy in the set
    duplicate_groups: int  # sets of copies, each kept inside one split
    dropped_leaks: int  # training images removed because a copy sits in a given validation/test split
    leaks: list[Leak] = field(default_factory=list)  # the groups that straddled the given splits

    def summary(self) -> dict:
        return {
            "train": len(self.train),
            "validation": len(self.validation),
            "test": len(self.test),
            "duplicate_images": self.duplicate_images,
            "duplicate_groups": self.duplicate_groups,
            "dropped_leaks": self.dropped_leaks,
            "leaking_groups": len(self.leaks),
        }


def _holdout(indices: list[int], strata: list[str], groups: list[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Split `indices` into (rest, held out) with about `fraction` held out, by whole groups."""
    if fraction <= 0 or len(indices) < 2:
        return indices, []
    y = np.array([strata[i] for i in indices])
    largest_class = max(Counter(y.tolist()).values())
    n_splits = max(2, min(round(1 / fraction), largest_class))  # sklearn needs a class with n_splits members
    g = np.array([groups[i] for i in indices])
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "least populated class has only N members"
        rest, held = next(splitter.split(np.zeros(len(y)), y, g))
    return [indices[i] for i in rest], [indices[i] for i in held]


def make_split(
    strata: list[str],
    sha256s: list[str],
    phashes: list[str | None],
    layout: list[str | None] | None = None,
    *,
    validation: float = 0.15,
    test: float = 0.0,
    seed: int = 0,
    max_hamming: int = SPLIT_MAX_HAMMING,
    copies: np.ndarray | None = None,
) -> Split:
    """`strata` is the label to balance on, per image; `layout` is a split given by the data, if any.

    A given layout is kept, except that training images with a copy in validation or test are dropped; the
    groups that straddled it are named in `leaks`. Where the layout has no validation split, one is carved out
    of train by whole duplicate groups. `max_hamming` -1 groups byte-identical files only; `copies` (pairs of
    positions, from `dedup.copy_pairs`) are grouped too.
    """
    fingerprints = Fingerprints(list(sha256s), list(phashes))
    links = near_pairs(fingerprints, Thresholds(max_hamming=max_hamming))
    if copies is not None:
        links = np.concatenate([links, np.asarray(copies, np.int64).reshape(-1, 2)])
    groups = group_labels(fingerprints, transitive=True, pairs=links).tolist()
    sizes = Counter(groups)
    dup_images = sum(n for n in sizes.values() if n > 1)
    dup_groups = sum(1 for n in sizes.values() if n > 1)
    everything = list(range(len(strata)))
    layout = layout or [None] * len(strata)
    leaks: list[Leak] = []
    if any(layout):
        given = {name: [i for i in everything if layout[i] == name] for name in ("train", "validation", "test")}
        leaks = _straddling(groups, layout)
        train, val, held_test = given["train"], given["validation"], given["test"]
        if not val:
            train, val = _holdout(train, strata, groups, validation, seed)
    else:
        rest, held_test = _holdout(everything, strata, groups, test, seed)
        val_fraction = validation / (1 - test) if test else validation
        train, val = _holdout(rest, strata, groups, val_fraction, seed + 1)
    held_groups = {groups[i] for i in val + held_test}
    kept = [i for i in train if groups[i] not in held_groups]
    return Split(sorted(kept), sorted(val), sorted(held_test), dup_images, dup_groups, len(train) - len(kept), leaks)


def _straddling(groups: list[int], layout: list[str | None]) -> list[Leak]:
    members: dict[int, list[int]] = {}
    for i, group in enumerate(groups):
        members.setdefault(group, []).append(i)
    return [Leak(rows, [str(layout[i]) for i in rows]) for rows in members.values()
            if len({layout[i] for i in rows}) > 1]
