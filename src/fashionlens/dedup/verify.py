"""Confirms a candidate pair as copies of one picture: ORB keypoints matched and an affine transform fitted by
RANSAC (OpenCV), refined to the sub-pixel by ECC image alignment, then the two pictures compared once aligned.

Two garments shot on one studio set share their background, whose keypoints can agree on a transform; the
aligned comparison tells them apart: the brightness pattern of the whole overlap (a normalised correlation,
blind to relighting and blur), the same correlation in each cell of a grid over it (one model in one pose
wearing another shirt matches on the face, the arms and the white around them, and differs only where the
shirt is: the worst cell catches it where the whole-overlap figure cannot) and its colours (a colour variant of
one product is another product): the share of the overlap whose hue differs once the whole picture's turn (an
export turns every hue alike, by up to 25 degrees) is taken off, and what is left of each cell's colour once one
gain and offset, the same for all three channels, map one picture onto the other (relighting and contrast change
every channel and every cell alike; a maroon polo where the copy has a red one, or a light blue shirt where it
has a white one, on the same skin and floor, leaves a difference behind; a fit that also takes off a saturation
change and a hue turn took a catalogue's other shades of one product for copies). The cells are
compared again on a finer grid: a catalogue's 60x80 thumbnails of two men in white shirts on white agree in
every quarter of the frame and differ in the face, the collar or the belt. Between two nearly colourless
pictures only the grey levels count. A desaturated picture (no colour at all: a greyscale export) is compared
by its grey levels too, which must be the other picture's own: a greyscale copy keeps the luma of what it was
made from, while a grey product shot on the set of a red one keeps its own greys (and, having some colour
left, is compared by its colours, which differ). Mirrored copies are tried with the mirror's keypoints.

What an export hides is no evidence against a copy: pixels flat black or flat white in one picture only (a
cutout box, a rotation's wedge) are left out of the comparison and of the ECC refinement. A crop or zoom is an
affine transform like any other; its comparison covers the part of the picture both show.

An export also changes colours for the whole picture at once: a hue turn of up to 25 degrees, saturation,
brightness and exposure, greyscale followed by relighting. Where many keypoints agree on the geometry
(CopyRule.recoloured_min_inliers) and the grey pictures agree cell by cell, one such change fitted for the whole
picture (a gain and offset on lightness, the chroma plane turned and scaled) must explain every cell's colour;
a garment recoloured on its own leaves its cells unexplained, or needs a turn far beyond an export's. A greyscale
export is told by the smoothed picture's chroma, so that noise added after the greyscale does not make it coloured.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import cached_property, reduce

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
COLOURED_CHROMA = 10.0  # a picture whose 99th-percentile chroma reaches this has colours worth comparing
DESATURATED_CHROMA = 2.0  # ... and one whose smoothed picture stays below this has no colour at all: a
# greyscale file or export (noise added after the greyscale colours single pixels, not the smoothed picture)
DESATURATED_BLUR = 4.0  # Gaussian sigma (half-scale pixels) of that smoothing
HUE_DEGREES = 35.0  # hue difference at which a coloured pixel counts as another colour
HUE_TURN = 50.0  # hue turn of the whole picture that an export's versions may differ by (two turns of up to 25)
FILL_L = 5.0  # Lab lightness under which a pixel is pure black
LOCAL_GRID = 4  # cells per side of the grid the aligned overlap is also compared in
FINE_GRID = 8  # cells per side of the finer grid the grey pictures are compared in once more
FINE_BLUR = 1.5  # Gaussian sigma of the fine grid: its small cells would otherwise compare JPEG noise
FLAT_SPREAD = 6.0  # grey-level spread under which a cell is flat in both pictures: nothing there to compare
BLUR = 1.0  # Gaussian sigma (half-scale pixels) before pictures are compared, whole or cell by cell: fine grain and
# resampling noise do not survive a copy's rotation or rescaling, a garment's print and seams do
BLUR_REACH = 2 * int(np.ceil(2 * BLUR)) + 1  # pixels across which the blur carries an edge's or a clipped pixel's value
CLIPPED = 4.0  # grey levels from pure black or white at which a pixel counts as clipped
OCCLUDER_WINDOW = 3  # half-scale pixels across which a pixel and its neighbours must all be black (or white) to
# count as an occluder: a cutout box or a wedge is flat, a dark garment has texture and JPEG noise
OCCLUDER_CONTRAST = 24.0  # grey levels from black (white) the other picture must keep where one is an occluder
ECC_STEPS, ECC_EPSILON = 50, 1e-4
MAP_SCALE = 2.0  # the most an export's saturation change scales the chroma by (or its inverse)
MAP_CHANGE = 10.0  # Lab distance at which a pixel's colour differs once an export's colour change is taken off


@dataclass(frozen=True)
class CopyRule:
    """When verification calls a pair copies; calibrated by benchmarks/dedup_calibrate.py."""

    min_inliers: int = 15
    min_similarity: float = 0.95
    max_colour_change: float = 0.05
    min_local_similarity: float = 0.7
    max_colour_residual: float = 10.0  # grey levels (of 255) a cell keeps after one gain and offset for all channels
    min_fine_similarity: float = 0.6
    max_grey_shift: float = 10.0  # grey levels a desaturated picture may depart from the coloured one's grey levels
    # a plain product has few keypoints: down to MIN_FIT inliers, a pair whose aligned pictures agree this closely
    # (whole and in every cell) is a copy too
    sure_similarity: float = 0.99
    sure_local_similarity: float = 0.9
    # an export's colour change (hue turn, saturation, relighting after greyscale): where this many keypoints
    # agree on the geometry (and the pictures agree cell by cell as above), the colours may differ by what one
    # such change for the whole picture leaves (Verification.map_residual), with a hue turn of an export's size
    recoloured_min_inliers: int = 100
    max_map_residual: float = 15.0
    max_map_turn: float = 30.0
    max_map_change: float = 0.15
    recoloured_max_grey_shift: float = 60.0

    def accepts(self, v: Verification):
        """The rule on one verification's figures, or on a Verification of arrays (a calibration judges thousands
        at once)."""
        usual = ((v.inliers >= self.min_inliers) & (v.similarity >= self.min_similarity)
                 & (v.local_similarity >= self.min_local_similarity))
        sure = (v.similarity >= self.sure_similarity) & (v.local_similarity >= self.sure_local_similarity)
        colour = ((v.colour_change <= self.max_colour_change) & (v.colour_residual <= self.max_colour_residual)
                  & (v.grey_shift <= self.max_grey_shift))
        mapped = ((v.map_residual <= self.max_map_residual) & (v.map_turn <= self.max_map_turn)
                  & (v.map_change <= self.max_map_change))
        recoloured = ((v.inliers >= self.recoloured_min_inliers) & (v.grey_shift <= self.recoloured_max_grey_shift)
                      & (mapped | ((v.colour_change <= self.max_colour_change)
                                   & (v.colour_residual <= self.max_colour_residual))))
        colour = colour | recoloured
        return (v.inliers >= MIN_FIT) & colour & (v.fine_similarity >= self.min_fine_similarity) & (usual | sure)


DEFAULT_RULE = CopyRule()


@dataclass(frozen=True)
class Verification:
    inliers: int  # keypoint matches that agree with the fitted transform
    similarity: float  # normalised correlation of the aligned grey pictures over their overlap, -1..1
    colour_change: float  # fraction of the overlap whose colour differs (0 where only grey levels are compared)
    mirrored: bool  # the match needed one picture mirrored
    local_similarity: float  # the lowest correlation of a grid cell of the overlap with detail in it (1: none has)
    colour_residual: float = 0.0  # the most a cell's colour differs once one gain and offset map b onto a
    fine_similarity: float = 1.0  # local_similarity on the FINE_GRID
    grey_shift: float = 0.0  # a desaturated picture against a coloured one: the most its greys depart from the other's
    map_residual: float = 0.0  # colour_residual once an export's colour change (see _colour_map) is taken off (255:
    # not measured, no colours to compare)
    map_turn: float = 0.0  # the hue turn (degrees) of that colour change
    map_change: float = 0.0  # the share of the overlap whose colour that change leaves MAP_CHANGE or more apart

    def passes(self, rule: CopyRule = DEFAULT_RULE) -> bool:
        return bool(rule.accepts(self))

    def row(self) -> list[float]:
        return [float(getattr(self, f.name)) for f in fields(self)]

    @classmethod
    def from_row(cls, row) -> Verification:
        """From `row()`, or from a shorter row of an earlier verification: the figures it lacks are taken as
        passing ones (the later figures only ever reject more)."""
        names = fields(cls)
        known = [float(x) for x in row[:len(names)]]
        known += [f.default for f in names[len(known):]]
        values = {f.name: (int(x) if f.type == "int" else bool(x) if f.type == "bool" else x)
                  for f, x in zip(names, known, strict=True)}
        return cls(**values)


NO_MATCH = Verification(0, -1.0, 1.0, False, -1.0, 255.0, -1.0, 255.0, 255.0, 180.0, 1.0)


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
        self.chroma = _chroma(self.half)
        self.coloured = self.chroma >= COLOURED_CHROMA
        self.desaturated = _chroma(cv2.GaussianBlur(half, (0, 0), DESATURATED_BLUR)) < DESATURATED_CHROMA

    @property
    def lab(self) -> np.ndarray:
        return cv2.cvtColor(self.half.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)

    @cached_property
    def mirrored(self) -> Picture:
        twin = Picture.__new__(Picture)
        twin.verifiable = self.verifiable
        twin._set(np.ascontiguousarray(self.grey[:, ::-1]), np.ascontiguousarray(self.half[:, ::-1]))
        return twin


def _chroma(rgb: np.ndarray) -> float:
    """The 99th percentile of the Lab chroma of an RGB picture."""
    lab = cv2.cvtColor(rgb.astype(np.float32) / 255, cv2.COLOR_RGB2Lab)
    return float(np.percentile(np.hypot(lab[..., 1], lab[..., 2]), 99))


def _orb(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    orb = cv2.ORB_create(nfeatures=ORB_FEATURES, edgeThreshold=15, patchSize=15)
    found, descriptors = orb.detectAndCompute(grey, None)
    return np.float32([k.pt for k in found]).reshape(-1, 2), descriptors


def _matches(query: np.ndarray, train: np.ndarray) -> set[tuple[int, int]]:
    """(query index, train index) of the descriptors whose nearest neighbour passes Lowe's ratio test."""
    found = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(query, train, k=2)
    return {(m[0].queryIdx, m[0].trainIdx) for m in found if len(m) == 2 and m[0].distance < RATIO * m[1].distance}


def _fit(a: Picture, b: Picture) -> tuple[np.ndarray | None, int]:
    """The affine transform taking b's pixels to a's, and how many matches agree with it. The matches are those
    of either picture to the other, and the fit is tried the other way round too where the first is implausible:
    RANSAC on a dozen matches can settle on a stretch one way and find the copy the other."""
    (pa, da), (pb, db) = a.keypoints, b.keypoints
    if da is None or db is None or len(da) < 2 or len(db) < 2:
        return None, 0
    good = sorted(_matches(db, da) | {(j, i) for i, j in _matches(da, db)})
    if len(good) < 4:
        return None, 0
    src, dst = pb[[j for j, _ in good]], pa[[i for _, i in good]]
    for forward in (True, False):
        transform, inliers = cv2.estimateAffine2D(src if forward else dst, dst if forward else src,
                                                  method=cv2.RANSAC, ransacReprojThreshold=RANSAC_PIXELS, maxIters=1000)
        if transform is None:
            continue
        if not forward:
            transform = cv2.invertAffineTransform(transform)
        if _plausible(transform):
            return transform, int(inliers.sum())
    return None, 0


def _plausible(transform: np.ndarray) -> bool:
    """False for a collapsed or stretched transform: no copy is made that way."""
    singular = np.linalg.svd(transform[:, :2], compute_uv=False)
    return bool(singular.min() >= 0.2 and singular.max() / singular.min() <= 1.6)


def _refine(a: Picture, b: Picture, transform: np.ndarray) -> np.ndarray:
    """The keypoints' transform at half scale, refined by ECC on the half-scale grey pictures: on a thumbnail
    scaled up, keypoints place it a pixel or two off, which the per-cell comparison would take for a change.
    Where one picture has occluders (flat black or white where the other is not), ECC also runs with them
    masked out, and the refinement under which the pictures agree better outside the occluders is kept: cutout
    boxes can pull ECC towards a wrong scale, while on a catalogue's thumbnails the mask moves ECC off a fit
    that was right."""
    half = np.concatenate([transform[:, :2], transform[:, 2:] / 2], axis=1).astype(np.float32)
    inverse = cv2.invertAffineTransform(half)  # ECC finds the warp from a's pixels to b's, the inverse of ours
    occluded = _occluded(b, a, inverse)  # in b's frame, where ECC takes its mask
    masks = [None] + ([(~occluded).astype(np.uint8)] if occluded.any() else [])
    refined = [found for mask in masks if (found := _ecc(a, b, inverse, mask)) is not None] or [half]
    if len(refined) == 1:
        return refined[0]
    return max(refined, key=lambda warp: _agreement(a, b, warp))


def _ecc(a: Picture, b: Picture, inverse: np.ndarray, mask: np.ndarray | None) -> np.ndarray | None:
    """ECC's refinement of the warp from b to a (given as its `inverse`), or None where it fails or collapses."""
    criteria = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, ECC_STEPS, ECC_EPSILON)
    try:
        _, warp = cv2.findTransformECC(a.half_grey, b.half_grey, inverse.copy(), cv2.MOTION_AFFINE, criteria, mask, 3)
    except cv2.error:  # did not converge
        return None
    refined = cv2.invertAffineTransform(warp)
    return refined if _plausible(refined) else None


def _agreement(a: Picture, b: Picture, transform: np.ndarray) -> float:
    """Correlation of a and b warped onto it, over what b covers outside the occluders."""
    h, w = a.half_grey.shape
    warped = cv2.warpAffine(b.half_grey, transform, (w, h), flags=cv2.INTER_LINEAR)
    cover = cv2.warpAffine(np.full(b.half_grey.shape, 255, np.uint8), transform, (w, h), flags=cv2.INTER_NEAREST)
    cover = (cv2.erode(cover, np.ones((3, 3), np.uint8)) > 0) & ~_occluded(a, b, transform)
    return _correlation(a.half_grey[cover], warped[cover]) if cover.any() else -1.0


def _flat(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(flat black, flat white): pixels near black (white) with all their neighbours, as an occluder is."""
    window = np.ones((OCCLUDER_WINDOW, OCCLUDER_WINDOW), np.uint8)
    return (cv2.dilate(grey, window, borderType=cv2.BORDER_REPLICATE) <= CLIPPED,
            cv2.erode(grey, window, borderType=cv2.BORDER_REPLICATE) >= 255 - CLIPPED)


def _occluded(a: Picture, b: Picture, transform: np.ndarray) -> np.ndarray:
    """Pixels of a where a or b warped onto it (`transform`) is flat black (white) and the other clearly is not,
    with the reach of the blur around them: what a cutout box, a rotation's wedge or a pasted bar hides is no
    evidence against a copy, while a white floor a few grey levels from white in one picture and clipped in the
    other is no occluder. Flatness is judged in each picture's own frame (the warp blurs a box's edges)."""
    h, w = a.half_grey.shape
    grey_b = cv2.warpAffine(b.half_grey, transform, (w, h), flags=cv2.INTER_LINEAR)
    black_a, white_a = _flat(a.half_grey)
    black_b, white_b = (cv2.warpAffine(f.astype(np.uint8), transform, (w, h), flags=cv2.INTER_NEAREST) > 0
                        for f in _flat(b.half_grey))
    light = 255 - OCCLUDER_CONTRAST
    one_only = ((black_a & (grey_b > OCCLUDER_CONTRAST)) | (black_b & (a.half_grey > OCCLUDER_CONTRAST))
                | (white_a & (grey_b < light)) | (white_b & (a.half_grey < light)))
    reach = OCCLUDER_WINDOW + BLUR_REACH  # the window shrank the flat area by half of it on each side
    return cv2.dilate(one_only.astype(np.uint8), np.ones((reach, reach), np.uint8)) > 0


def _correlation(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x - x.mean(), y - y.mean()
    return float((x * y).sum() / max(np.sqrt((x * x).sum() * (y * y).sum()), 1e-6))


def _local_similarity(x: np.ndarray, y: np.ndarray, cover: np.ndarray, grid: int) -> float:
    """The lowest correlation of a cell of a `grid` x `grid` grid at least half covered, among cells not flat in
    both pictures. Clipped pixels (near black or white in either picture) are
    left out: brightening a copy burns its highlights, which is no change of garment."""
    cover = cover & (np.minimum(x, y) > CLIPPED) & (np.maximum(x, y) < 255 - CLIPPED)
    lowest = 1.0
    for cell, inside in _cells(cover, grid):
        cx, cy = x[cell][inside], y[cell][inside]
        if max(cx.std(), cy.std()) >= FLAT_SPREAD:
            lowest = min(lowest, _correlation(cx, cy))
    return lowest


def _cells(cover: np.ndarray, grid: int = LOCAL_GRID, min_share: float = 0.5):
    """(cell, the covered pixels in it) for each cell of a `grid` x `grid` grid with at least `min_share` covered."""
    h, w = cover.shape
    for i in range(grid):
        for j in range(grid):
            cell = slice(i * h // grid, (i + 1) * h // grid), slice(j * w // grid, (j + 1) * w // grid)
            inside = cover[cell]
            if inside.mean() >= min_share:
                yield cell, inside


def _colour_residual(x: np.ndarray, y: np.ndarray, cover: np.ndarray, shift: bool = False) -> tuple[float, float]:
    """The largest mean residual of a cell (root mean square over the channels) once x ~ gain * y + offset, one
    gain and offset for all channels, is fitted over the cover: relighting and contrast change the whole picture
    alike, another garment only its own cells. Clipped pixels are left out (a brightened copy burns its
    highlights, a rotated one fills its corners with black). With `shift`, also the most that line departs from
    x = y over the grey levels y has there (2nd to 98th percentile; else 0): none for a greyscale copy, which keeps
    the luma of the picture it was made from (ITU-R 601 in OpenCV, Pillow and the rest)."""
    clipped = ((_per_pixel(np.minimum, np.minimum(x, y)) <= CLIPPED)
               | (_per_pixel(np.maximum, np.maximum(x, y)) >= 255 - CLIPPED))
    unclipped = cover & ~clipped
    cover = cover & (cv2.dilate(clipped.astype(np.uint8), np.ones((BLUR_REACH, BLUR_REACH), np.uint8)) == 0)
    if cover.sum() < MIN_SIDE:  # a pencil or a chain on white: the blur's reach leaves nothing of it
        cover = unclipped
    if cover.sum() < MIN_SIDE:
        return 0.0, 0.0
    fitted = cover
    for _ in range(2):  # fitted again on the pixels the first fit explains: another garment must not bend it
        gain, offset = _line(y[fitted].reshape(-1), x[fitted].reshape(-1))
        residual = x - (gain * y + offset)
        error = _per_pixel(np.add, np.abs(residual)) / x.shape[2]
        fitted = cover & (error <= max(3 * float(np.median(error[cover])), 2.0))
    # a tenth of a cell is enough: a lipstick or a mascara on white leaves few unclipped pixels in any cell
    cells = list(_cells(cover, LOCAL_GRID, 0.1)) or [(np.s_[:, :], cover)]
    worst = max(float(np.sqrt((residual[cell][inside].mean(0) ** 2).mean())) for cell, inside in cells)
    if not shift:
        return worst, 0.0
    levels = np.percentile(y[fitted], (2, 98)) if fitted.any() else np.zeros(2)
    return worst, float(np.abs((gain - 1) * levels + offset).max())


def _colour_map(x: np.ndarray, y: np.ndarray, cover: np.ndarray) -> tuple[float, float, float]:
    """(the largest mean residual of a cell, in grey levels; the hue turn in degrees; the share of pixels left
    MAP_CHANGE or more apart) once an export's colour
    change, the same for the whole picture, maps Lab picture y onto x: lightness by a gain and offset, and the
    chroma plane turned and scaled about grey (a hue shift turns it, a saturation change scales it): a + ib ~ c (a' + ib')
    with one complex c. Grey stays grey: a white shirt where the copy has a pale blue one is another product. A garment recoloured on its own is another product: the rest of
    the picture keeps its hues, so either the turn follows the rest and the garment's cells keep their difference,
    or it follows the garment (a colour variant turns its hue by far more than an export's 25 degrees). A scale
    beyond MAP_SCALE leaves the residual at 255. Pixels near black or white (L) are left out, as clipped."""
    usable = cover & (np.minimum(x[..., 0], y[..., 0]) > 2.0) & (np.maximum(x[..., 0], y[..., 0]) < 98.0)
    if usable.sum() < MIN_SIDE:
        return 0.0, 0.0, 0.0
    za, zb = x[..., 1] + 1j * x[..., 2], y[..., 1] + 1j * y[..., 2]
    fitted = usable
    for _ in range(2):  # fitted again on the pixels the first fit explains: another garment must not bend it
        gain, offset = _line(y[..., 0][fitted], x[..., 0][fitted])
        a, b = za[fitted], zb[fitted]
        spread = float((np.abs(b) ** 2).sum())
        turn = complex(a @ np.conj(b)) / spread if spread > 1e-6 else 1.0 + 0j
        residual = np.stack([x[..., 0] - (gain * y[..., 0] + offset), (za - turn * zb).real, (za - turn * zb).imag],
                            axis=-1)
        error = np.abs(residual).sum(-1) / 3
        fitted = usable & (error <= max(3 * float(np.median(error[usable])), 1.0))
    degrees = abs(float(np.degrees(np.angle(turn))))
    if not 1 / MAP_SCALE <= abs(turn) <= MAP_SCALE:
        return 255.0, degrees, 1.0
    cells = list(_cells(usable, LOCAL_GRID, 0.1)) or [(np.s_[:, :], usable)]
    worst = max(float(np.sqrt((residual[cell][inside].mean(0) ** 2).mean())) for cell, inside in cells)
    changed = float((np.sqrt((residual[usable] ** 2).sum(-1)) >= MAP_CHANGE).mean())
    return 2.55 * worst, degrees, changed  # Lab units (L from 0 to 100) as grey levels


def _per_pixel(op, image: np.ndarray) -> np.ndarray:
    """`op` folded over the channels, plane by plane (numpy reduces a last axis of 3 slowly)."""
    return reduce(op, [image[..., c] for c in range(image.shape[2])])


def _line(y: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """Least-squares gain and offset of x ~ gain * y + offset (np.polyfit's degree-1 fit, without its
    Vandermonde matrix and SVD: a third of the verification's time went there)."""
    y_mean, x_mean = float(y.mean()), float(x.mean())
    dy = y - y_mean
    gain = float((dy * (x - x_mean)).sum() / max(float((dy * dy).sum()), 1e-9))
    return gain, x_mean - gain * y_mean


def _hue_change(turn: np.ndarray, coloured: np.ndarray) -> np.ndarray:
    """Each pixel's hue difference (degrees, 0 to 180) once the whole picture's turn, the median over the
    `coloured` pixels, is taken off: an export turns every hue alike, by up to HUE_TURN, while another garment
    turns its own. A larger whole-picture turn is another product: its pixels keep their full difference."""
    def wrapped(degrees: np.ndarray) -> np.ndarray:
        return np.abs((degrees + 180) % 360 - 180)

    shared = float(np.median((turn[coloured] + 180) % 360 - 180)) if coloured.any() else 0.0
    return wrapped(turn) if abs(shared) > HUE_TURN else wrapped(turn - shared)


def _compare(a: Picture, b: Picture, transform: np.ndarray, inliers: int, mirrored: bool) -> Verification:
    """The figures of b warped onto a (`transform` at half scale), over the part of a that b covers."""
    h, w = a.half_grey.shape
    warped_grey = cv2.warpAffine(b.half_grey, transform, (w, h), flags=cv2.INTER_LINEAR)
    cover = cv2.warpAffine(np.full(b.half_grey.shape, 255, np.uint8), transform, (w, h), flags=cv2.INTER_NEAREST)
    cover = (cv2.erode(cover, np.ones((3, 3), np.uint8)) > 0) & ~_occluded(a, b, transform)
    if cover.sum() < 0.25 * h * w:
        return replace(NO_MATCH, inliers=inliers, mirrored=mirrored)
    blur = (0, 0)
    x, y = cv2.GaussianBlur(a.half_grey, blur, BLUR), cv2.GaussianBlur(warped_grey, blur, BLUR)
    similarity = _correlation(x[cover], y[cover])
    inner = cv2.erode(cover.astype(np.uint8), np.ones((BLUR_REACH, BLUR_REACH), np.uint8)) > 0
    local = _local_similarity(x, y, inner, LOCAL_GRID)
    extra = float(np.sqrt(FINE_BLUR ** 2 - BLUR ** 2))  # blurred on from BLUR to FINE_BLUR
    fine = _local_similarity(cv2.GaussianBlur(x, blur, extra), cv2.GaussianBlur(y, blur, extra), inner, FINE_GRID)
    if not (a.coloured or b.coloured) or a.desaturated or b.desaturated:  # no colours to compare
        exported = (a.desaturated and b.coloured) or (b.desaturated and a.coloured)  # a greyscale export of b or a
        residual, shift = _colour_residual(x[..., None], y[..., None], cover, shift=exported)
        return Verification(inliers, similarity, 0.0, mirrored, local, residual, fine, shift, 255.0, 0.0, 1.0)
    own_lab = a.lab
    warped_lab = cv2.warpAffine(b.lab, transform, (w, h), flags=cv2.INTER_LINEAR)
    # pure black is what a rotation or shear fills its corners with: no colour to compare there
    fill = cv2.dilate(((own_lab[..., 0] < FILL_L) | (warped_lab[..., 0] < FILL_L)).astype(np.uint8),
                      np.ones((5, 5), np.uint8))
    compared = cover & (fill == 0)
    if not compared.any():
        return Verification(inliers, similarity, 0.0, mirrored, local, 0.0, fine)
    lab_a = cv2.GaussianBlur(own_lab, blur, BLUR)[compared]
    lab_b = cv2.GaussianBlur(warped_lab, blur, BLUR)[compared]
    chroma_a, chroma_b = np.hypot(lab_a[:, 1], lab_a[:, 2]), np.hypot(lab_b[:, 1], lab_b[:, 2])
    hue = np.degrees(np.arctan2(lab_a[:, 2], lab_a[:, 1]) - np.arctan2(lab_b[:, 2], lab_b[:, 1]))
    hue = _hue_change(hue, (chroma_a >= CHROMATIC) & (chroma_b >= CHROMATIC))
    both = (chroma_a >= CHROMATIC) & (chroma_b >= CHROMATIC)
    one = ((chroma_a >= CHROMATIC) & (chroma_b < ACHROMATIC)) | ((chroma_b >= CHROMATIC) & (chroma_a < ACHROMATIC))
    changed = (both & (hue > HUE_DEGREES)) | one
    own_rgb = cv2.GaussianBlur(a.half.astype(np.float32), blur, BLUR)
    warped_rgb = cv2.GaussianBlur(cv2.warpAffine(b.half, transform, (w, h), flags=cv2.INTER_LINEAR).astype(np.float32),
                                  blur, BLUR)
    residual = _colour_residual(own_rgb, warped_rgb, compared)[0]
    mapped = _colour_map(cv2.GaussianBlur(own_lab, blur, BLUR), cv2.GaussianBlur(warped_lab, blur, BLUR), compared)
    return Verification(inliers, similarity, float(changed.mean()), mirrored, local, residual, fine, 0.0, *mapped)


def verify_pair(a: Picture, b: Picture, rule: CopyRule = DEFAULT_RULE) -> Verification:
    """The evidence that a and b are one picture: b as is or mirrored, the first that passes `rule`, else
    whichever fits more keypoints (a symmetric garment fits both ways; only its mirror matches everywhere)."""
    best = NO_MATCH
    for mirrored in (False, True):
        other = b.mirrored if mirrored else b
        transform, inliers = _fit(a, other)
        if transform is None or inliers < MIN_FIT:
            continue
        found = _compare(a, other, _refine(a, other, transform), inliers, mirrored)
        if found.passes(rule):
            return found
        if found.inliers > best.inliers:
            best = found
    return best
