"""Content fingerprints: sha256 of the bytes (exact copies) and a perceptual hash (re-encoded copies)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import imagehash
import numpy as np
from PIL import Image, ImageOps


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


def flipped_perceptual_hash(image: Image.Image) -> str:
    """The perceptual hash of the mirror image: compared with the other image's hash, it finds flipped copies."""
    return perceptual_hash(ImageOps.mirror(image))


def hash_codes(phashes: list[str]) -> np.ndarray:
    """16-hex-digit hashes as uint8 [n, 8] rows, the layout of FAISS binary indexes."""
    if not phashes:
        return np.zeros((0, 8), dtype=np.uint8)
    return np.frombuffer(bytes.fromhex("".join(phashes)), dtype=np.uint8).reshape(len(phashes), 8).copy()
