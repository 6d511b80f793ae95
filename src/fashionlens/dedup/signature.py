"""What the cheap stage of copy detection compares: the picture with its letterbox bars trimmed, and a signature
of it that a turn, a mirror, a small rotation or shear, greyscale, relighting or blur barely changes.

The signature is the magnitude spectrum, around each of several rings about the centre, of the brightness
along the ring (a Fourier-Mellin style descriptor without the scale axis): turning or mirroring the picture
only shifts or reverses each ring, which the magnitudes ignore; a rotation of a few degrees with black corners
changes only the outermost ring. It is a unit vector, so copies are found by inner product (FAISS).
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

BAR_TOLERANCE = 16
"""Grey levels a bar pixel may stray from pure black or white (JPEG noise), and the spread along one bar line."""
SIGNATURE_SIZE, SIGNATURE_RADII, SIGNATURE_ANGLES, SIGNATURE_HARMONICS = 64, 24, 96, 12
SIGNATURE_DIM = SIGNATURE_RADII * SIGNATURE_HARMONICS


def padding_box(image: Image.Image, tolerance: int = BAR_TOLERANCE, min_keep: float = 0.2) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the picture inside black or white bars along its edges: a bar line is one
    whole row or column, all near black or all near white. The whole image when too little would be left."""
    grey = np.asarray(image.convert("L"), np.int16)

    def span(lines: np.ndarray) -> tuple[int, int]:
        low, high = lines.min(1), lines.max(1)
        bar = ((high - low) <= tolerance) & ((high <= tolerance) | (low >= 255 - tolerance))
        keep = np.flatnonzero(~bar)
        return (int(keep[0]), int(keep[-1]) + 1) if len(keep) else (0, len(lines))

    (top, bottom), (left, right) = span(grey), span(grey.T)
    if bottom - top < min_keep * grey.shape[0] or right - left < min_keep * grey.shape[1]:
        return 0, 0, image.width, image.height
    return left, top, right, bottom


def trim_padding(image: Image.Image) -> Image.Image:
    """The image without its letterbox bars (black or white), the way an annotation tool's export pads it."""
    box = padding_box(image)
    return image if box == (0, 0, image.width, image.height) else image.crop(box)


def signature(image: Image.Image, *, trimmed: bool = False) -> np.ndarray:
    """float32 [SIGNATURE_DIM], unit length: ring spectra of the trimmed greyscale picture (see the module)."""
    picture = image if trimmed else trim_padding(image)
    size = SIGNATURE_SIZE
    grey = np.asarray(picture.convert("L").resize((size, size), Image.Resampling.BILINEAR), np.float32)
    centre = (size - 1) / 2
    rings = cv2.warpPolar(grey, (SIGNATURE_RADII, SIGNATURE_ANGLES), (centre, centre), size / 2,
                          cv2.WARP_POLAR_LINEAR | cv2.INTER_LINEAR)  # rows: angles, columns: radii
    spectrum = np.abs(np.fft.rfft(rings, axis=0))[:SIGNATURE_HARMONICS]
    spectrum[0] -= spectrum[0].mean()  # brighter or darker: the ring means shift together
    vector = spectrum.ravel().astype(np.float32)
    return vector / max(float(np.linalg.norm(vector)), 1e-6)
