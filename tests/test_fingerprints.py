"""The perceptual hash without imagehash: equal to imagehash.phash bit for bit (catalogues and feature caches store
these hashes), also where the DCT's coefficients tie (flat and symmetric pictures)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from fashionlens.fingerprints import _TWIDDLE, _dct, flipped_perceptual_hash, perceptual_hash

imagehash = pytest.importorskip("imagehash", reason="imagehash (the dev extra) is the reference")
SAMPLES = sorted((Path(__file__).resolve().parents[1] / "samples").rglob("*.jpg"))


def _tied_pictures() -> list[Image.Image]:
    """Pictures whose low frequencies tie at exactly 0: any rounding but pocketfft's moves the median."""
    flat = [Image.new(mode, (80, 60), colour) for mode, colour in
            [("RGB", (0, 0, 0)), ("RGB", (128, 128, 128)), ("RGB", (255, 255, 255)), ("L", 37), ("RGBA", (9, 200, 40, 0))]]
    half = Image.new("RGB", (80, 60), "white")
    half.paste((0, 0, 0), (0, 0, 40, 60))
    square = Image.new("RGB", (64, 64), "white")
    square.paste((0, 0, 0), (16, 16, 48, 48))
    stripes = Image.fromarray(np.tile(np.repeat(np.array([0, 255], np.uint8), 4), (32, 4)))
    return [*flat, half, square, stripes, stripes.rotate(90)]


def test_the_hash_equals_imagehash_on_the_samples_their_mirrors_and_tied_pictures():
    pictures = [Image.open(p) for p in SAMPLES] + _tied_pictures()
    assert len(SAMPLES) >= 30
    assert [perceptual_hash(p) for p in pictures] == [str(imagehash.phash(p)) for p in pictures]
    assert ([flipped_perceptual_hash(p) for p in pictures]
            == [str(imagehash.phash(ImageOps.mirror(p))) for p in pictures])


def test_the_hash_equals_imagehash_on_random_pictures():
    rng = np.random.default_rng(0)
    pictures = [Image.fromarray(rng.integers(0, 256, (int(h), int(w), 3), dtype=np.uint8))
                for h, w in rng.integers(8, 200, (200, 2))]
    assert [perceptual_hash(p) for p in pictures] == [str(imagehash.phash(p)) for p in pictures]


def test_the_dct_is_scipys_to_the_bit():
    fftpack = pytest.importorskip("scipy.fftpack")
    x = np.random.default_rng(1).normal(0, 100, (5000, 32))
    assert np.array_equal(_dct(x), fftpack.dct(x, axis=1))


def test_the_twiddles_are_the_cosines_to_rounding():
    exact = np.array([math.cos(math.pi * i / 64) for i in range(1, 32)])
    assert np.abs(_TWIDDLE - exact).max() < 1e-15
