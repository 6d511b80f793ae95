"""Content fingerprints: sha256 of the bytes (exact copies) and a perceptual hash (re-encoded copies)."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

_HASH_SIDE, _SIDE = 8, 32  # imagehash.phash's hash_size and hash_size * highfreq_factor


def _pocketfft_twiddle(i: int) -> float:
    """cos(2 pi i / 4N) as pocketfft's sincos_2pibyn(4N) computes it for its DCT (N = 32, 0 < i < 32): the
    product of a small-angle and a coarse-angle root, each from the C library's cos and sin."""
    angle = 0.25 * math.pi / (4 * _SIDE)  # their 8x finer angle, then x << 3
    fine = (math.cos(8 * (i & 15) * angle), math.sin(8 * (i & 15) * angle)) if i & 15 else (1.0, 0.0)
    coarse = (math.sin(8 * 16 * angle), math.cos(8 * 16 * angle)) if i >> 4 else (1.0, 0.0)
    return fine[0] * coarse[0] - fine[1] * coarse[1]


_TWIDDLE = np.array([_pocketfft_twiddle(i) for i in range(1, _SIDE)])


def _dct(x: np.ndarray) -> np.ndarray:
    """The unnormalised DCT-II along the last axis (32 values), as scipy.fftpack.dct computes it, to the bit:
    pocketfft's steps around a half-complex inverse real FFT, which numpy.fft runs with pocketfft's own code.
    Without the same rounding, the hash of a flat or symmetric picture (whose coefficients tie at 0) would
    change."""
    n, half = _SIDE, _SIDE // 2
    c = np.array(x, np.float64)
    c[..., 0] *= 2
    c[..., -1] *= 2
    odd, even = c[..., 1:-2:2].copy(), c[..., 2:-1:2].copy()
    c[..., 2:-1:2], c[..., 1:-2:2] = even - odd, even + odd
    packed = np.empty(c.shape[:-1] + (half + 1,), np.complex128)  # pocketfft's half-complex order as numpy's
    packed[..., 0], packed[..., half] = c[..., 0], c[..., -1]
    packed[..., 1:half] = c[..., 1:-1:2] + 1j * c[..., 2:-1:2]
    r = np.fft.irfft(packed, n=n, norm="forward")  # no scaling
    out = r.copy()
    k = np.arange(1, half)
    t1 = _TWIDDLE[k - 1] * r[..., n - k] + _TWIDDLE[n - k - 1] * r[..., k]
    t2 = _TWIDDLE[k - 1] * r[..., k] - _TWIDDLE[n - k - 1] * r[..., n - k]
    out[..., k], out[..., n - k] = 0.5 * (t1 + t2), 0.5 * (t1 - t2)
    out[..., half] = r[..., half] * _TWIDDLE[half - 1]
    return out


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def perceptual_hash(image: Image.Image) -> str:
    """64-bit DCT hash as 16 hex digits; equal for the same picture saved at another size or quality.

    imagehash.phash's algorithm, bit for bit (catalogues store these hashes): greyscale, 32 x 32 by Lanczos, the
    2-D DCT's 8 x 8 lowest frequencies, each bit whether a coefficient is above their median, row by row."""
    pixels = np.asarray(image.convert("L").resize((_SIDE, _SIDE), Image.Resampling.LANCZOS), np.float64)
    columns = _dct(pixels.T).T  # along axis 0 first, as imagehash does; rows past the 8th are not needed
    low = _dct(columns[:_HASH_SIDE])[:, :_HASH_SIDE]
    return np.packbits(low > np.median(low)).tobytes().hex()


def flipped_perceptual_hash(image: Image.Image) -> str:
    """The perceptual hash of the mirror image: compared with the other image's hash, it finds flipped copies."""
    return perceptual_hash(ImageOps.mirror(image))


def hash_codes(phashes: list[str]) -> np.ndarray:
    """16-hex-digit hashes as uint8 [n, 8] rows, the layout of FAISS binary indexes."""
    if not phashes:
        return np.zeros((0, 8), dtype=np.uint8)
    return np.frombuffer(bytes.fromhex("".join(phashes)), dtype=np.uint8).reshape(len(phashes), 8).copy()
