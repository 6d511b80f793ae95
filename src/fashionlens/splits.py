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


def stratified_group_folds(y: np.ndarray, groups: np.ndarray, n_splits: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """sklearn's StratifiedGroupKFold folds as (rest, held) positions, shuffled by `seed`, without its warning that
    a class has fewer members than folds (small classes are expected here)."""
    splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "least populated class has only N members"
        return list(splitter.split(np.zeros(len(y)), y, groups))


def _holdout(indices: list[int], strata: list[str], groups: list[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Split `indices` into (rest, held out) with about `fraction` held out, by whole groups."""
    if fraction <= 0 or len(indices) < 2:
        return indices, []
    y = np.array([strata[i] for i in indices])
    largest_class = max(Counter(y.tolist()).values())
    if largest_class < 2:  # nothing to stratify: no class has an image to spare
        return indices, []
    n_splits = max(2, min(round(1 / fraction), largest_class))  # sklearn needs a class with n_splits members
    g = np.array([groups[i] for i in indices])
    rest, held = stratified_group_folds(y, g, n_splits, seed)[0]
    return [indices[i] for i in rest], [indices[i] for i in held]


def _groups(sha256s: list[str], phashes: list[str | None], max_hamming: int, copies: np.ndarray | None
            ) -> tuple[list[int], int, int]:
    """(group id per image, images with a copy, groups of copies); `copies` (pairs of positions, from
    `dedup.dataset_copy_pairs`) are grouped too."""
    fingerprints = Fingerprints(list(sha256s), list(phashes))
    links = near_pairs(fingerprints, Thresholds(max_hamming=max_hamming))
    if copies is not None:
        links = np.concatenate([links, np.asarray(copies, np.int64).reshape(-1, 2)])
    groups = group_labels(fingerprints, transitive=True, pairs=links).tolist()
    sizes = Counter(groups)
    return groups, sum(n for n in sizes.values() if n > 1), sum(1 for n in sizes.values() if n > 1)


def copy_groups(sha256s: list[str], phashes: list[str | None], copies: np.ndarray | None = None,
                max_hamming: int = SPLIT_MAX_HAMMING) -> np.ndarray:
    """A group id per image: the copies the splits keep together (equal bytes, a perceptual hash within
    `max_hamming`, the `copies` pairs), chained."""
    return np.asarray(_groups(sha256s, phashes, max_hamming, copies)[0], np.int64)


def _without_leaks(train: list[int], val: list[int], test: list[int], groups: list[int], dup_images: int,
                   dup_groups: int, leaks: list[Leak] | None = None) -> Split:
    """The split, with the training images dropped that have a copy in validation or test."""
    held_groups = {groups[i] for i in val + test}
    kept = [i for i in train if groups[i] not in held_groups]
    return Split(sorted(kept), sorted(val), sorted(test), dup_images, dup_groups, len(train) - len(kept), leaks or [])


def _straddling(groups: list[int], layout: list[str | None]) -> list[Leak]:
    members: dict[int, list[int]] = {}
    for i, group in enumerate(groups):
        members.setdefault(group, []).append(i)
    return [Leak(rows, [str(layout[i]) for i in rows]) for rows in members.values()
            if len({layout[i] for i in rows}) > 1]


def _scored(n: int, scored: list[bool] | None) -> tuple[list[int], list[int]]:
    """(images that may be held out, images that always train)."""
    if scored is not None and len(scored) != n:
        raise ValueError(f"scored has {len(scored)} entries for {n} images")
    if scored is None:
        return list(range(n)), []
    return [i for i in range(n) if scored[i]], [i for i in range(n) if not scored[i]]


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
    scored: list[bool] | None = None,
    copies: np.ndarray | None = None,
) -> Split:
    """`strata` is the label to balance on, per image; `layout` is a split given by the data, if any.

    A given layout is kept, except that training images with a copy in validation or test are dropped; the
    groups that straddled it are named in `leaks`. Where the layout has no validation split, one is carved out
    of train by whole duplicate groups. `max_hamming` -1 groups byte-identical files only; `copies` (pairs of
    positions, from `dedup.dataset_copy_pairs`) are grouped too. `scored`: only these images may be held out
    (the kind of image the model is for); the others always train.
    """
    groups, dup_images, dup_groups = _groups(sha256s, phashes, max_hamming, copies)
    candidates, always_train = _scored(len(strata), scored)
    layout = layout or [None] * len(strata)
    leaks: list[Leak] = []
    if any(layout):
        given = {name: [i for i in range(len(strata)) if layout[i] == name] for name in ("train", "validation", "test")}
        leaks = _straddling(groups, layout)
        train, val, held_test = given["train"], given["validation"], given["test"]
        if not val:
            train, val = _holdout(train, strata, groups, validation, seed)
    else:
        rest, held_test = _holdout(candidates, strata, groups, test, seed)
        val_fraction = validation / (1 - test) if test else validation
        train, val = _holdout(rest, strata, groups, val_fraction, seed + 1)
        train = train + always_train
    return _without_leaks(train, val, held_test, groups, dup_images, dup_groups, leaks)


def parse_fold(text: str) -> tuple[int, int]:
    """`"2/5"` -> (2, 5): the second of five folds, counted from 1."""
    index, sep, folds = text.partition("/")
    try:
        fold = (int(index), int(folds))
    except ValueError:
        fold = None
    if not sep or fold is None or not 1 <= fold[0] <= fold[1] or fold[1] < 2:
        raise ValueError(f"fold {text!r}: expected I/K with 1 <= I <= K and K >= 2, e.g. 1/5")
    return fold


def make_folds(
    strata: list[str],
    sha256s: list[str],
    phashes: list[str | None],
    folds: int,
    *,
    validation: float = 0.15,
    seed: int = 0,
    max_hamming: int = SPLIT_MAX_HAMMING,
    scored: list[bool] | None = None,
    copies: np.ndarray | None = None,
) -> list[Split]:
    """K splits for cross-validation: the test parts are stratified, hold whole duplicate groups, and together
    hold every scored image exactly once. Each split's validation part (for early stopping; none with
    `validation` 0) is carved from the other folds' scored images; every other image trains. A layout given
    by the data is not used: cross-validation pools all images. `copies` as for `make_split`.
    """
    groups, dup_images, dup_groups = _groups(sha256s, phashes, max_hamming, copies)
    candidates, always_train = _scored(len(strata), scored)
    n_groups = len({groups[i] for i in candidates})
    if not 2 <= folds <= n_groups:
        raise ValueError(f"{folds} folds: need at least 2, and at most the {n_groups} groups of distinct images")
    y = np.array([strata[i] for i in candidates])
    largest_class = max(Counter(y.tolist()).values())
    if largest_class < folds:
        raise ValueError(f"{folds} folds: no class has {folds} images to hold out (the largest has {largest_class})")
    g = np.array([groups[i] for i in candidates])
    splits = []
    for rest, held in stratified_group_folds(y, g, folds, seed):
        train, val = _holdout([candidates[i] for i in rest], strata, groups, validation, seed + 1)
        test = [candidates[i] for i in held]
        splits.append(_without_leaks(train + always_train, val, test, groups, dup_images, dup_groups))
    return splits
