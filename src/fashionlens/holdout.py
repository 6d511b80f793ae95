"""Held-out parts chosen by a hash of each file's name: the same photo is in the same part for every model
trained on it (detector, parser, type head), on every machine and every subset."""

from __future__ import annotations

import hashlib
from pathlib import Path

PARTS = ("train", "validation", "test")


def holdout_part(path: Path, val_fraction: float, test_fraction: float) -> str:
    """train, validation or test, from a hash of the file name: stable across runs, machines and subsets."""
    u = int(hashlib.sha1(path.name.encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "test" if u < test_fraction else "validation" if u < test_fraction + val_fraction else "train"
