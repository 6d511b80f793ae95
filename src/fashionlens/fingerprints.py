"""Content fingerprints: sha256 of the bytes (exact copies) and a perceptual hash (re-encoded copies)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import imagehash
from PIL import Image


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def perceptual_hash(image: Image.Image) -> str:
    """64-bit DCT hash as 16 hex digits; equal for the same picture saved at another size or quality."""
    return str(imagehash.phash(image))


def duplicate_groups(sha256s: list[str], phashes: list[str | None]) -> list[int]:
    """A group id per image: images sharing a sha256 or a perceptual hash share a group (union-find)."""
    parent = list(range(len(sha256s)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for keys in (sha256s, phashes):
        first: dict[str, int] = {}
        for i, key in enumerate(keys):
            if key is None:
                continue
            if key in first:
                parent[find(i)] = find(first[key])
            else:
                first[key] = i
    return [find(i) for i in range(len(sha256s))]
