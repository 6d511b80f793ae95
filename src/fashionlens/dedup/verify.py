"""Confirms a candidate pair as copies of one picture: ORB keypoints matched and an affine transform fitted by
RANSAC (OpenCV), then the two pictures compared once aligned.

Two garments shot on one studio set share their background, whose keypoints can agree on a transform; the
aligned comparison tells them apart: the brightness pattern of the whole overlap (a normalised correlation,
blind to relighting and blur) and its colours (a colour variant of one product is another product). A
greyscale picture has no colours to compare, so against one only the brightness counts. Mirrored copies are
tried with the mirror's keypoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np
from PIL import Image

from fashionlens.dedup.signature import trim_padding

WORK_SIDE = 256  # longer side of the picture the keypoints work on; the aligned comparison works at half that
MIN_SIDE = 32  # an image whose shorter side has fewer pixels has no detail to verify (a thumbnail's thumbnail)
MIN_FIT = 6  # inliers below which a fit is not even compared
ORB_FEATURES = 500
RATIO = 0.8  # Lowe's ratio test on the two nearest descriptors
RANSAC_PIXELS = 4.0
CHROMATIC, ACHROMATIC = 18.0, 8.0  # Lab chroma of a clearly coloured pixel, of a grey one
GREYSCALE_CHROMA = 6.0  # a picture whose 99th-percentile chroma is below this is greyscale
HUE_DEGREES = 35.0  # hue difference at which a coloured pixel counts as another colour
FILL_L = 5.0  # Lab lightness under which a pixel is pure black


@dataclass(frozen=True)
class CopyRule:
    """When verification calls a pair copies; calibrated by benchmarks/dedup_calibrate.py."""

    min_inliers: int = 20
    min_similarity: float = 0.9
    max_colour_change: float = 0.05


DEFAULT_RULE = CopyRule()


@dataclass(frozen=True)
class Verification:
    inliers: int  # keypoint matches that agree with the fitted transform
    similarity: float  # normalised correlation of the aligned grey pictures over their overlap, -1..1
    colour_change: float  # fraction of the overlap whose colour differs (0 when either picture is greyscale)
    mirrored: bool  # the match needed one picture mirrored

    def passes(self, rule: CopyRule = DEFAULT_RULE) -> bool:
        return (self.inliers >= rule.min_inliers and self.similarity >= rule.min_similarity
                and self.colour_change <= rule.max_colour_change)


NO_MATCH = Verification(0, -1.0, 1.0, False)


class Picture:
    """One image prepared for verification: trimmed, its longer side scaled to WORK_SIDE (thumbnails too, so
    that they have keypoints); keeps the grey picture with its keypoints and a half-scale colour copy for the
    aligned comparison, about 150 kB, so that thousands can stay cached while their pairs are checked."""

    def __init__(self, image: Image.Image):
        self.verifiable = min(image.size) >= MIN_SIDE
        picture = trim_padding(image.convert("RGB"))
        scale = WORK_SIDE / max(picture.size)
        picture = picture.resize((max(8, round(picture.width * scale)), max(8, round(picture.height * scale))),
                                 Image.Resampling.BILINEAR)
        rgb = np.asarray(picture)
        self._set(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY),
                  cv2.resize(rgb, (rgb.shape[1] // 2, rgb.shape[0] // 2), interpolation=cv2.INTER_AREA))

    def _set(self, grey: np.ndarray, half: np.ndarray) -> None:
        self.grey, self.half = grey, half
        self.keypoints = _orb(grey)
        self.half_grey = cv2.cvtColor(half, cv2.COLOR_RGB2GRAY).astype(np.float32)
        chroma = np.hypot(*np.moveaxis(self.lab[..., 1:], -1, 0))
        self.greyscale = float(np.percentile(chroma, 99)) < GREYSCALE_CHROMA

    @property
    def lab(self) -> np.ndarray:
        return cv2.cvtColor(self.half.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)

    @cached_property
    def mirrored(self) -> Picture:
        twin = Picture.__new__(Picture)
        twin.verifiable = self.verifiable
        twin._set(np.ascontiguousarray(self.grey[:, ::-1]), np.ascontiguousarray(self.half[:, ::-1]))
        return twin


def _orb(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    orb = cv2.ORB_create(nfeatures=ORB_FEATURES, edgeThreshold=15, patchSize=15)
    found, descriptors = orb.detectAndCompute(grey, None)
    return np.float32([k.pt for k in found]).reshape(-1, 2), descriptors


def _fit(a: Picture, b: Picture) -> tuple[np.ndarray | None, int]:
    """The affine transform taking b's pixels to a's, and how many matches agree with it."""
    (pa, da), (pb, db) = a.keypoints, b.keypoints
    if da is None or db is None or len(da) < 2 or len(db) < 2:
        return None, 0
    matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
    good = [m[0] for m in matcher.knnMatch(db, da, k=2) if len(m) == 2 and m[0].distance < RATIO * m[1].distance]
    if len(good) < 4:
        return None, 0
    src = pb[[m.queryIdx for m in good]]
    dst = pa[[m.trainIdx for m in good]]
    transform, inliers = cv2.estimateAffine2D(src, dst, method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PIXELS,
                                              maxIters=1000)
    if transform is None:
        return None, 0
    singular = np.linalg.svd(transform[:, :2], compute_uv=False)
    if singular.min() < 0.2 or singular.max() / singular.min() > 1.6:  # collapsed or stretched: not a copy
        return None, 0
    return transform, int(inliers.sum())


def _compare(a: Picture, b: Picture, transform: np.ndarray) -> tuple[float, float]:
    """Similarity and colour change of b warped onto a, over the part of a that b covers, at half scale."""
    transform = np.concatenate([transform[:, :2], transform[:, 2:] / 2], axis=1)  # both pictures halved
    h, w = a.half_grey.shape
    warped_grey = cv2.warpAffine(b.half_grey, transform, (w, h), flags=cv2.INTER_LINEAR)
    cover = cv2.warpAffine(np.full(b.half_grey.shape, 255, np.uint8), transform, (w, h), flags=cv2.INTER_NEAREST)
    cover = cv2.erode(cover, np.ones((3, 3), np.uint8)) > 0
    if cover.sum() < 0.25 * h * w:
        return -1.0, 1.0
    blur = (0, 0)
    x = cv2.GaussianBlur(a.half_grey, blur, 1.0)[cover]
    y = cv2.GaussianBlur(warped_grey, blur, 1.0)[cover]
    x, y = x - x.mean(), y - y.mean()
    similarity = float((x * y).sum() / max(np.sqrt((x * x).sum() * (y * y).sum()), 1e-6))
    if a.greyscale or b.greyscale:
        return similarity, 0.0
    own_lab = a.lab
    warped_lab = cv2.warpAffine(b.lab, transform, (w, h), flags=cv2.INTER_LINEAR)
    # pure black is what a rotation or shear fills its corners with: no colour to compare there
    fill = cv2.dilate(((own_lab[..., 0] < FILL_L) | (warped_lab[..., 0] < FILL_L)).astype(np.uint8),
                      np.ones((5, 5), np.uint8))
    compared = cover & (fill == 0)
    if not compared.any():
        return similarity, 0.0
    lab_a = cv2.GaussianBlur(own_lab, blur, 1.0)[compared]
    lab_b = cv2.GaussianBlur(warped_lab, blur, 1.0)[compared]
    chroma_a, chroma_b = np.hypot(lab_a[:, 1], lab_a[:, 2]), np.hypot(lab_b[:, 1], lab_b[:, 2])
    hue = np.degrees(np.abs(np.arctan2(lab_a[:, 2], lab_a[:, 1]) - np.arctan2(lab_b[:, 2], lab_b[:, 1])))
    hue = np.minimum(hue, 360 - hue)
    both = (chroma_a >= CHROMATIC) & (chroma_b >= CHROMATIC)
    one = ((chroma_a >= CHROMATIC) & (chroma_b < ACHROMATIC)) | ((chroma_b >= CHROMATIC) & (chroma_a < ACHROMATIC))
    changed = (both & (hue > HUE_DEGREES)) | one
    return similarity, float(changed.mean())


def verify_pair(a: Picture, b: Picture) -> Verification:
    """The evidence that a and b are one picture, b as is or mirrored, whichever fits more keypoints."""
    best = NO_MATCH
    for mirrored in (False, True):
        other = b.mirrored if mirrored else b
        transform, inliers = _fit(a, other)
        if transform is not None and inliers > max(best.inliers, MIN_FIT - 1):
            similarity, colour_change = _compare(a, other, transform)
            best = Verification(inliers, similarity, colour_change, mirrored)
        if best.inliers >= 20 and best.similarity >= 0.9:
            break  # clearly found as is: no need to try the mirror
    return best
