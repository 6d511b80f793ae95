"""Calibrates copy detection on real photos and reports pair-level precision and recall, and the speed of both
stages.

Two sets, each of originals with copies of their own among look-alike distractors; two images are a true pair
when they come from the same original (or from byte-identical originals):
- near: originals from clothing-small and fashion-products, copied as a shop copies (byte copy; JPEG q30 and
  q90; WebP; resized 0.3x, 0.5x and 2x; cropped 5% and 10%; mirrored; brightness, contrast, saturation and hue
  changed; mirrored + JPEG), among other photos of the same datasets: clothing-small train photos often share
  one studio set (look-alikes).
- augmented: originals from clothing-small and colorful-fashion, copied as an annotation tool's augmented
  export does (rotated up to 15 degrees and sheared up to 10 with black corners, turned by 90 or 180, mirrored,
  greyscale, brightness within 25%, blurred up to 1.5 px, letterboxed on black or white, and combinations),
  among look-alikes and colour variants of them (the same photo with its garment's hue turned: another
  product, never a copy).
- models: originals from fashion-products copied as in `near`, among the catalogue's own look-alikes of them:
  every photo the cheap stage proposes as a candidate for an original (the same model in the same pose and
  light, wearing another shirt: a different product, never a copy), found among all the dataset's photos.
The images of each set are split in two halves by family: the verification rule is chosen on both halves A
(highest recall at precision >= --precision, and no less precise on the judged fashion-products links of
benchmarks/near_links.py than the shipped rule's usual path), then the export's colour-change path on top of it
(choose_export_path), and reported on each half B. Precision and recall count pairs,
both for the pairs linked directly and for the pairs inside the reported groups, which is what a user sees.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import math
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _shared import dataset  # noqa: E402
from record import add_flag, record  # noqa: E402
from near_links import judged_links, measured_links, precision_and_kept  # noqa: E402

from fashionlens.dedup import (CANDIDATES, DEFAULT_THRESHOLDS, TOO_SMALL_TO_VERIFY, covering_groups,  # noqa: E402
                               group_labels, hash_images, linked_by, near_pairs)
from fashionlens.dedup.verify import (DEFAULT_RULE, NO_MATCH, WORK_SIDE, CopyRule, Picture,  # noqa: E402
                                      Verification, verify_pair)
from fashionlens.embeddings import embed_paths  # noqa: E402
from fashionlens.fingerprints import hash_codes  # noqa: E402
from fashionlens.images import is_image_file, load_image  # noqa: E402


def _hue(image: Image.Image, shift: int) -> Image.Image:
    h, s, v = image.convert("HSV").split()
    h = h.point(lambda x: (x + shift) % 256)
    return Image.merge("HSV", (h, s, v)).convert("RGB")


def _crop(image: Image.Image, fraction: float, rng: random.Random) -> Image.Image:
    w, h = image.size
    dx, dy = round(w * fraction), round(h * fraction)
    left, top = rng.randint(0, dx), rng.randint(0, dy)
    return image.crop((left, top, w - (dx - left), h - (dy - top)))


def _resize(image: Image.Image, scale: float) -> Image.Image:
    return image.resize((max(8, round(image.width * scale)), max(8, round(image.height * scale))), Image.LANCZOS)


# name -> (transform, format, quality); every copy is a new file
NEAR_COPIES = {
    "jpeg q30": (lambda im, r: im, "JPEG", 30),
    "jpeg q90": (lambda im, r: im, "JPEG", 90),
    "webp": (lambda im, r: im, "WEBP", 75),
    "resize 0.3x": (lambda im, r: _resize(im, 0.3), "JPEG", 85),
    "resize 0.5x": (lambda im, r: _resize(im, 0.5), "PNG", None),
    "resize 2x": (lambda im, r: _resize(im, 2.0), "JPEG", 85),
    "crop 5%": (lambda im, r: _crop(im, 0.05, r), "JPEG", 85),
    "crop 10%": (lambda im, r: _crop(im, 0.10, r), "JPEG", 85),
    "flip": (lambda im, r: ImageOps.mirror(im), "PNG", None),
    "flip + jpeg q50": (lambda im, r: ImageOps.mirror(im), "JPEG", 50),
    "brightness": (lambda im, r: ImageEnhance.Brightness(im).enhance(r.choice([0.75, 1.3])), "JPEG", 85),
    "contrast": (lambda im, r: ImageEnhance.Contrast(im).enhance(r.choice([0.7, 1.3])), "JPEG", 85),
}  # no hue or saturation shifts: a garment of another colour on the same set is what they look like, and it is
# another product


def _rotate(image: Image.Image, rng: random.Random) -> Image.Image:
    return image.rotate(rng.uniform(3, 15) * rng.choice([-1, 1]), Image.BILINEAR, fillcolor=(0, 0, 0))


def _shear(image: Image.Image, rng: random.Random) -> Image.Image:
    k = math.tan(math.radians(rng.uniform(3, 10) * rng.choice([-1, 1])))
    w, h = image.size
    matrix = (1, k, -k * h / 2, 0, 1, 0) if rng.random() < 0.5 else (1, 0, 0, k, 1, -k * w / 2)
    return image.transform(image.size, Image.AFFINE, matrix, Image.BILINEAR, fillcolor=(0, 0, 0))


def _letterbox(image: Image.Image, colour: tuple[int, int, int], side: int = 640) -> Image.Image:
    """Fit into a square export size with bars, centred, as annotation tools' "fit (black edges)" does."""
    scale = side / max(image.size)
    small = image.resize((round(image.width * scale), round(image.height * scale)), Image.BILINEAR)
    canvas = Image.new("RGB", (side, side), colour)
    canvas.paste(small, ((side - small.width) // 2, (side - small.height) // 2))
    return canvas


def _brightness(image: Image.Image, rng: random.Random) -> Image.Image:
    return ImageEnhance.Brightness(image).enhance(rng.choice([rng.uniform(0.75, 0.9), rng.uniform(1.1, 1.25)]))


def _blur(image: Image.Image, rng: random.Random) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(0.7, 1.5)))


def _greyscale(image: Image.Image, rng: random.Random) -> Image.Image:
    return ImageOps.grayscale(image).convert("RGB")


def _turn(image: Image.Image, rng: random.Random) -> Image.Image:
    return image.transpose(rng.choice([Image.ROTATE_90, Image.ROTATE_270]))


AUGMENTED_COPIES = {
    "rotate": (_rotate, "JPEG", 85),
    "shear": (_shear, "JPEG", 85),
    "turn 90": (_turn, "JPEG", 85),
    "turn 180": (lambda im, r: im.transpose(Image.ROTATE_180), "JPEG", 85),
    "mirror": (lambda im, r: ImageOps.mirror(im), "JPEG", 85),
    "greyscale": (_greyscale, "JPEG", 85),
    "brightness": (_brightness, "JPEG", 85),
    "blur": (_blur, "JPEG", 85),
    "letterbox black": (lambda im, r: _letterbox(im, (0, 0, 0)), "JPEG", 85),
    "letterbox white": (lambda im, r: _letterbox(im, (255, 255, 255)), "PNG", None),
    "rotate + mirror + brightness": (lambda im, r: _brightness(ImageOps.mirror(_rotate(im, r)), r), "JPEG", 80),
    "letterbox + turn 90 + blur": (lambda im, r: _blur(_turn(_letterbox(im, (0, 0, 0)), r), r), "JPEG", 80),
    "shear + greyscale": (lambda im, r: _greyscale(_shear(im, r), r), "JPEG", 80),
    "rotate + letterbox white": (lambda im, r: _letterbox(_rotate(im, r), (255, 255, 255)), "JPEG", 80),
}

def _export_transforms(height: int, width: int) -> dict[str, object]:
    """What an annotation tool's export applies (albumentations, which those tools' transforms mirror), each at
    the strengths such a tool offers, for a photo of this size: name -> transform applied with p=1."""
    import albumentations as A
    import cv2

    black = {"border_mode": cv2.BORDER_CONSTANT, "fill": 0}
    return {
        "flip": A.HorizontalFlip(p=1),
        "turn 90/180": A.RandomRotate90(p=1),
        "crop 50-100%": A.RandomResizedCrop(size=(height, width), scale=(0.5, 1.0),
                                              ratio=(0.75 * width / height, 1.33 * width / height), p=1),
        "rotate 25": A.Affine(rotate=(-25, 25), p=1, **black),
        "shear 15": A.Affine(shear=(-15, 15), p=1, **black),
        "greyscale": A.ToGray(num_output_channels=3, p=1),
        "hue/saturation 25%": A.HueSaturationValue(hue_shift_limit=12, sat_shift_limit=64, val_shift_limit=0, p=1),
        "brightness 25%": A.RandomBrightnessContrast(brightness_limit=0.25, contrast_limit=0, p=1),
        "exposure 25%": A.RandomGamma(gamma_limit=(75, 125), p=1),
        "blur 2.5 px": A.GaussianBlur(sigma_limit=(0.5, 2.5), p=1),
        "noise": A.GaussNoise(std_range=(0.02, 0.08), p=1),
        "cutout": A.CoarseDropout(num_holes_range=(1, 5), hole_height_range=(0.05, 0.2),
                                  hole_width_range=(0.05, 0.2), fill=0, p=1),
        "letterbox": A.Sequential([A.LongestMaxSize(max_size=640), A.PadIfNeeded(
            640, 640, position="center", border_mode=cv2.BORDER_CONSTANT, fill=(0, 0, 0))], p=1),
    }


def export_versions(image: Image.Image, rng: random.Random) -> list[tuple[str, Image.Image]]:
    """3 to 12 versions of one photo, each made by 2 to 4 of the export's transforms at once (in the tool's
    order: geometry, then colour, then occluders and letterboxing): (names joined by " + ", version)."""
    import albumentations as A

    transforms = _export_transforms(image.height, image.width)
    order = list(transforms)
    versions = []
    for _ in range(rng.randint(3, 12)):
        chosen = sorted(rng.sample(order, rng.randint(2, 4)), key=order.index)
        pipeline = A.Compose([transforms[name] for name in chosen], seed=rng.randrange(2 ** 31))
        versions.append((" + ".join(chosen), Image.fromarray(pipeline(image=np.asarray(image))["image"])))
    return versions


def _garment_recoloured(image: Image.Image, mask: Path, rng: random.Random) -> Image.Image | None:
    """The same person in a garment of another colour: the hue of the largest garment's pixels (Clothing
    Co-Parsing's masks) turned by 70 to 290 degrees; None where that garment is nearly colourless."""
    labels = np.asarray(Image.open(mask))
    garments = labels[(labels > 0)]
    names = (dataset("clothing-parsing") / "labels.txt").read_text().split()
    kinds = [k for k in np.unique(garments) if names[k] not in ("skin", "hair")]
    if not kinds:
        return None
    largest = max(kinds, key=lambda k: int((garments == k).sum()))
    hsv = np.asarray(image.convert("HSV")).copy()
    where = labels == largest
    if float((hsv[..., 1][where] > 60).mean()) < 0.5:
        return None
    hsv[..., 0][where] = (hsv[..., 0][where].astype(int) + rng.randint(50, 206)) % 256
    return Image.fromarray(hsv, "HSV").convert("RGB")


SETS = {  # name -> (datasets of the originals and distractors, copies, colour variants among the distractors)
    "near": (("clothing-small", "fashion-products"), NEAR_COPIES, False),
    "augmented": (("clothing-small", "colorful-fashion"), AUGMENTED_COPIES, True),
    "models": (("fashion-products",), NEAR_COPIES, False),
    "export": (("colorful-fashion", "clothing-parsing"), None, True),  # versions from export_versions
}
LOOKALIKE_SETS = {"models"}  # distractors: the originals' candidates among all the dataset's photos


def _colourful(image: Image.Image) -> bool:
    """Enough clearly coloured pixels that turning their hue makes another product."""
    hsv = np.asarray(image.convert("HSV").resize((64, 64)))
    return float(((hsv[..., 1] > 90) & (hsv[..., 2] > 60)).mean()) > 0.15


def _colour_variant(image: Image.Image, src: Path, rng: random.Random) -> Image.Image | None:
    """Another product that looks like `image`: for a Clothing Co-Parsing photo, the same person with the
    largest garment recoloured; otherwise the whole photo with its hue turned. None where too little is coloured."""
    mask = src.parent.parent / "masks" / f"{src.stem}.png"
    if src.parent.parent.name == "clothing-parsing" and mask.exists():
        return _garment_recoloured(image, mask, rng)
    return _hue(image, rng.randint(50, 206)) if _colourful(image) else None


def make_set(workdir: Path, name: str, originals: int, distractors: int, seed: int):
    """Files, their family id (-1: an original distractor of its own) and what each is ("original", a copy
    name, "distractor", "colour variant"). Families are numbered from 0 within the set."""
    sources, copies, variants = SETS[name]
    rng = random.Random(seed)
    files, family, kind = [], [], []
    for source in sources:
        pool = sorted(p for p in dataset(source).rglob("*") if is_image_file(p) and "masks" not in p.parts)  # Clothing
        # Co-Parsing's label masks are PNGs too
        if name in LOOKALIKE_SETS:
            chosen = lookalikes(pool, originals, distractors, rng)
        else:
            chosen = rng.sample(pool, originals + distractors)
        out = workdir / name / source
        out.mkdir(parents=True, exist_ok=True)
        made_variants = 0
        for k, src in enumerate(chosen):
            fam = len(set(family) - {-1}) if k < originals else -1
            files.append(src)
            family.append(fam)
            kind.append("original" if fam >= 0 else "distractor")
            if fam < 0:
                if variants and made_variants < distractors // 8:
                    image = load_image(src)
                    variant = _colour_variant(image, src, rng)
                    if variant is not None:
                        dst = out / f"{k}_variant.jpg"
                        variant.save(dst, "JPEG", quality=90)
                        files.append(dst)
                        family.append(-1)
                        kind.append("colour variant")
                        made_variants += 1
                continue
            image = load_image(src)
            copy_rng = random.Random(f"{seed}:{source}:{k}")  # the same copies whatever was made before
            if name == "near":
                dst = out / f"{k}_bytecopy{src.suffix}"
                shutil.copyfile(src, dst)
                files.append(dst)
                family.append(fam)
                kind.append("byte copy")
            if copies is None:
                for c, (copy_name, version) in enumerate(export_versions(image, copy_rng)):
                    dst = out / f"{k}_{c}.jpg"
                    version.save(dst, "JPEG", quality=90)
                    files.append(dst)
                    family.append(fam)
                    kind.append(copy_name)
                continue
            for c, (copy_name, (transform, fmt, quality)) in enumerate(copies.items()):
                dst = out / f"{k}_{c}.{fmt.lower()}"
                params = {"quality": quality} if quality else {}
                transform(image, copy_rng).save(dst, fmt, **params)
                files.append(dst)
                family.append(fam)
                kind.append(copy_name)
    return files, np.array(family), kind


def lookalikes(pool: list[Path], originals: int, distractors: int, rng: random.Random) -> list[Path]:
    """`originals` photos that the cheap stage pairs with other photos of `pool`, then up to `distractors` of
    those partners: the hardest negatives a catalogue holds (byte copies of an original are left out)."""
    kept, fp, failures = hash_images(pool, progress=False, workers=0)
    partners: dict[int, set[int]] = {}
    for a, b in near_pairs(fp, CANDIDATES).tolist():
        if fp.sha256[a] != fp.sha256[b]:
            partners.setdefault(a, set()).add(b)
            partners.setdefault(b, set()).add(a)
    chosen = rng.sample(sorted(partners), originals)
    others = sorted(set().union(*(partners[i] for i in chosen)) - set(chosen))
    others = rng.sample(others, min(distractors, len(others)))
    return [pool[kept[i]] for i in chosen + others]


def pair_set(pairs: np.ndarray) -> set[tuple[int, int]]:
    return set(map(tuple, pairs.tolist()))


def true_pairs(members: np.ndarray, family: np.ndarray, sha: list[str]) -> set[tuple[int, int]]:
    """Same family, or byte-identical (the datasets hold some products listed twice)."""
    out = set()
    by_key: dict[str, list[int]] = {}
    for i in members:
        if family[i] >= 0:
            by_key.setdefault(f"f{family[i]}", []).append(i)
    for i in members:
        by_key.setdefault(f"s{sha[i]}", []).append(i)
    for group in by_key.values():
        out |= {(a, b) for x, a in enumerate(group) for b in group[x + 1:]}
    return out


def scores(predicted: set, truth: set) -> tuple[float, float]:
    hit = len(predicted & truth)
    return hit / max(1, len(predicted)), hit / max(1, len(truth))


def grouped_pairs(groups: list[list[int]]) -> set[tuple[int, int]]:
    """Pairs of images (positions in the set) that share a group."""
    out: set[tuple[int, int]] = set()
    for group in groups:
        rows = sorted(group)
        out |= {(a, b) for x, a in enumerate(rows) for b in rows[x + 1:]}
    return out


class Measured:
    """One set made, fingerprinted, searched for candidates and verified, with the time of each stage."""

    def __init__(self, name: str, workdir: Path, args):
        self.name = name
        self.files, self.family, self.kind = make_set(workdir, name, args.originals, args.distractors, args.seed)
        n = len(self.files)
        print(f"\n== {name}: {n} images, {int((self.family >= 0).sum())} in {len(set(self.family) - {-1})} families, "
              f"{int((self.family < 0).sum())} distractors ({self.kind.count('colour variant')} colour variants)")
        start, cpu = time.perf_counter(), time.process_time()
        kept, fp, failures = hash_images(self.files, progress=False, workers=0)
        self.cheap_seconds = time.perf_counter() - start
        self.cheap_cpu = time.process_time() - cpu  # this process's own CPU time: what a free core would take
        assert not failures and kept == list(range(n)), failures
        start = time.perf_counter()
        hash_images(self.files, progress=False, workers=args.workers)
        self.cheap_parallel_seconds = time.perf_counter() - start
        if args.embeddings:
            start = time.perf_counter()
            emb = embed_paths(self.files, progress=False)
            assert not emb.failures
            fp.vectors = emb.vectors
            print(f"embeddings {time.perf_counter() - start:.1f} s (the feature cache may be warm)")
        self.fp = fp
        start = time.perf_counter()
        candidates = near_pairs(fp, CANDIDATES)
        search_seconds = time.perf_counter() - start
        same = np.array([fp.sha256[a] == fp.sha256[b] for a, b in candidates.tolist()], bool)
        self.candidates = candidates[~same] if len(candidates) else candidates
        self.sha_pairs = candidates[same] if len(candidates) else candidates
        self.unverified = near_pairs(fp, DEFAULT_THRESHOLDS)  # the rule before verification, for comparison
        self.fallback = linked_by(self.candidates, fp, TOO_SMALL_TO_VERIFY)  # where an image is too small to verify
        print(f"cheap stage (decode at reduced scale, sha256, hashes, trim, signature): {self.cheap_seconds:.1f} s, "
              f"{n / self.cheap_seconds:.0f} images/s in one process, {n / self.cheap_parallel_seconds:.0f} images/s "
              f"with {args.workers} worker(s); candidate search {search_seconds:.2f} s: "
              f"{len(self.candidates)} candidate pairs ({len(self.candidates) / n:.1f} per image)")
        start, cpu = time.perf_counter(), time.process_time()
        pictures: dict[int, Picture] = {}
        self.checks: list[Verification | None] = []  # None: too small to verify
        for a, b in self.candidates.tolist():
            for i in (a, b):
                if i not in pictures:
                    pictures[i] = Picture(load_image(self.files[i], min_size=WORK_SIDE))
            verifiable = pictures[a].verifiable and pictures[b].verifiable
            self.checks.append(verify_pair(pictures[a], pictures[b]) if verifiable else None)
        self.verify_seconds = time.perf_counter() - start
        self.verify_cpu = time.process_time() - cpu
        print(f"verification (ORB + RANSAC + aligned comparison): {self.verify_seconds:.1f} s for "
              f"{len(self.candidates)} pairs of {len(pictures)} images: {len(self.candidates) / max(self.verify_seconds, 1e-9):.0f} "
              f"pairs/s, {self.verify_seconds / max(1, len(pictures)) * 1000:.1f} ms per image involved")
        rng = np.random.default_rng(args.seed)
        fam_ids = np.array(sorted(set(self.family) - {-1}))
        half_a = set(rng.choice(fam_ids, len(fam_ids) // 2, replace=False).tolist())
        coin = rng.random(n) < 0.5
        in_a = np.array([(f in half_a) if f >= 0 else coin[i] for i, f in enumerate(self.family)])
        if "colour variant" in self.kind:  # a variant goes with the photo it was made from, like a family
            for i, k in enumerate(self.kind):
                if k == "colour variant":
                    in_a[i] = in_a[i - 1]
        self.halves = {"A": np.flatnonzero(in_a), "B": np.flatnonzero(~in_a)}
        self.truth = {h: true_pairs(m, self.family, fp.sha256) for h, m in self.halves.items()}
        self.in_half = {h: np.isin(np.arange(n), m) for h, m in self.halves.items()}
        self.is_true = np.array([(a, b) in self.truth["A"] or (a, b) in self.truth["B"]
                                 for a, b in self.candidates.tolist()], bool)
        self.signals = signals(self.candidates, fp)

    def passed(self, rule: CopyRule) -> np.ndarray:
        if not hasattr(self, "_evidence"):  # one Verification of arrays: the rule judges every pair at once
            rows = np.array([(c or NO_MATCH).row() for c in self.checks]).reshape(-1, len(NO_MATCH.row()))
            self._evidence = Verification(*rows.T)
            self._small = np.array([c is None for c in self.checks], bool)
        return np.where(self._small, self.fallback, rule.accepts(self._evidence))

    def direct(self, half: str, linked: np.ndarray) -> tuple[float, float]:
        """Pair precision and recall of the links inside one half: verified candidates and byte copies."""
        inside = self.in_half[half]
        picked = linked & inside[self.candidates[:, 0]] & inside[self.candidates[:, 1]]
        sha = int((inside[self.sha_pairs[:, 0]] & inside[self.sha_pairs[:, 1]]).sum()) if len(self.sha_pairs) else 0
        hit = int((picked & self.is_true).sum()) + sha  # byte copies are always true pairs
        return hit / max(1, int(picked.sum()) + sha), hit / max(1, len(self.truth[half]))

    def groups(self, half: str, linked: np.ndarray, how: str = "components") -> set[tuple[int, int]]:
        """Pairs inside the groups made of one half's links: "components" (dedup's report and train's splits)
        or "cover" (the audit's report)."""
        members = self.halves[half]
        local = {int(g): i for i, g in enumerate(members)}
        pairs = [(local[a], local[b]) for a, b in self.candidates[linked].tolist() if a in local and b in local]
        fp, pairs = self.fp.subset(members.tolist()), np.array(pairs, np.int64).reshape(-1, 2)
        if how == "cover":
            found = [g.members for g in covering_groups(fp, pairs)]
        else:
            labels = group_labels(fp, transitive=True, pairs=pairs)
            order = np.argsort(labels, kind="stable")
            found = np.split(order, np.flatnonzero(np.diff(labels[order])) + 1)
        return grouped_pairs([[int(members[i]) for i in group] for group in found])


def signals(pairs: np.ndarray, fp) -> dict[str, np.ndarray]:
    """Each pair's flip-aware hash distance, embedding cosine and signature inner product."""
    bits = np.unpackbits(hash_codes(fp.phash), axis=1)
    flipped = np.unpackbits(hash_codes(fp.phash_flipped), axis=1)
    a, b = pairs[:, 0], pairs[:, 1]
    out = {"hamming": np.minimum((bits[a] != bits[b]).sum(1), (bits[a] != flipped[b]).sum(1)),
           "signature": (fp.signatures[a] * fp.signatures[b]).sum(1)}
    out["cosine"] = (fp.vectors[a] * fp.vectors[b]).sum(1) if fp.vectors is not None else np.full(len(a), -1.0)
    return out


def candidate_table(sets: list[Measured], rule: CopyRule) -> None:
    """How much of the verified recall looser or tighter candidate thresholds keep, and what they cost."""
    print("\ncandidate thresholds (all images of each set): pairs to verify per image, true pairs verified")
    for hamming in range(6, CANDIDATES.max_hamming + 1, 2):
        for cosine in (CANDIDATES.min_cosine, 0.90, 0.95):
            row = []
            for m in sets:
                sig = m.signals
                kept = (sig["hamming"] <= hamming) | (sig["cosine"] >= cosine) | (sig["signature"] >= CANDIDATES.min_signature)
                found = m.passed(rule) & m.is_true
                row.append(f"{m.name} {kept.sum() / len(m.files):5.2f}/img {int((found & kept).sum())}/{int(found.sum())}")
            print(f"  hamming <= {hamming:<3} cosine >= {cosine:.2f}: " + "; ".join(row))


def limit_table(sets: list[Measured], rule: CopyRule, field: str, limits: tuple[float, ...]) -> None:
    """The shipped rule with one of its limits varied: `dedup`'s and the audit's group figures on halves B, and
    the share of false candidates linked (what a catalogue of look-alikes with few copies sees)."""
    print(f"\n{field} (the shipped rule otherwise): dedup groups P / R, audit groups P / R on half B; false "
          "candidates linked")
    for limit in limits:
        varied = dataclasses.replace(rule, **{field: limit})
        row = []
        for m in sets:
            linked = m.passed(varied)
            p, r = scores(m.groups("B", linked), m.truth["B"])
            pa, ra = scores(m.groups("B", linked, "cover"), m.truth["B"])
            false = (linked & ~m.is_true).sum() / max(1, int((~m.is_true).sum()))
            row.append(f"{m.name} {p:.4f} / {r:.4f}, {pa:.4f} / {ra:.4f}, {false:.2%}")
        print(f"  {limit:6.2f}: " + "; ".join(row))


def choose_rule(sets: list[Measured], floor: float,
                judged: tuple[Verification, list[str]] | None = None) -> tuple[CopyRule, float]:
    """Highest worst-set recall on halves A at precision >= floor on every set's half A, both counted on the
    pairs inside the groups dedup reports (what a user sees); among rules as good (to 3 decimals), the most
    precise, then the strictest, which leaves the widest margin. With the judged catalogue links, a rule must
    also link them as precisely and keep as many copies as the shipped rule's usual path does (without the
    judged links, a rule with no colour residual or grey-shift limit wins here and links a catalogue's other
    shades)."""
    usual = dataclasses.replace(DEFAULT_RULE, recoloured_min_inliers=10 ** 6)
    judged_floor = precision_and_kept(judged, usual) if judged is not None else (0.0, 0.0)
    feasible, fallback = [], []
    for inliers, similarity, colour, local, residual, grey in itertools.product(
            (10, 15, 20), (0.85, 0.9, 0.95), (0.05, 0.1, 0.2), (0.6, 0.7, 0.8), (10.0, 20.0, 255.0), (10.0, 255.0)):
        rule = CopyRule(inliers, similarity, colour, local, residual, max_grey_shift=grey,
                        recoloured_min_inliers=10 ** 6)  # the export's colour-change path: choose_export_path
        if judged is not None and any(x < y for x, y in zip(precision_and_kept(judged, rule), judged_floor, strict=True)):
            continue
        results = [scores(m.groups("A", m.passed(rule)), m.truth["A"]) for m in sets]
        precision, recall = min(p for p, _ in results), min(r for _, r in results)
        row = (round(recall, 3), round(precision, 3), similarity, local, inliers, -colour, -residual, -grey, recall, rule)
        (feasible if precision >= floor else fallback).append(row)
    if not feasible:  # report the most precise rule rather than nothing
        best = max(fallback, key=lambda row: (row[1], row[0]))
        print(f"NOTE: no verification rule reaches precision {floor} on every half A; the most precise one "
              f"({best[1]:.3f}) is reported")
        return best[-1], best[-2]
    best = max(feasible, key=lambda row: row[:8])
    return best[-1], best[-2]


EXPORT_PATH_GRID = {"recoloured_min_inliers": (10 ** 6, 60, 80, 100, 150),  # 10 ** 6: the path is off
                    "max_map_residual": (10.0, 15.0, 20.0, 25.0), "max_map_turn": (30.0, 40.0, 50.0),
                    "max_map_change": (0.05, 0.1, 0.15, 0.2), "recoloured_max_grey_shift": (40.0, 60.0)}


def choose_export_path(sets: list[Measured], base: CopyRule, floor: float,
                       judged: tuple[Verification, list[str]] | None) -> tuple[CopyRule, float]:
    """The export's colour-change path added to the rule chosen first (`base`, the path off), chosen on halves
    A: the highest recalls, worst set first, then second worst (one set's recall can hold the worst back whatever
    the path does), at precision >= floor on every set; then the most precise, the strictest. With the judged
    catalogue links, a rule must also keep their precision and copies at least as `base` does (the calibration's
    look-alikes are too few to show a catalogue's false-accept rate)."""
    floor_judged = precision_and_kept(judged, base) if judged is not None else (0.0, 0.0)
    best = None
    for values in itertools.product(*EXPORT_PATH_GRID.values()):
        rule = dataclasses.replace(base, **dict(zip(EXPORT_PATH_GRID, values, strict=True)))
        if rule.recoloured_min_inliers == 10 ** 6 and values[1:] != tuple(
                grid[0] for grid in list(EXPORT_PATH_GRID.values())[1:]):
            continue  # the path is off: its limits make no difference
        results = [scores(m.groups("A", m.passed(rule)), m.truth["A"]) for m in sets]
        precision, recall = min(p for p, _ in results), min(r for _, r in results)
        kept = precision_and_kept(judged, rule) if judged is not None else (1.0, 1.0)
        if precision < floor or kept[0] < floor_judged[0] or kept[1] < floor_judged[1]:
            continue
        row = (tuple(sorted(round(r, 3) for _, r in results)), round(precision, 3), round(kept[0], 3),
               -rule.max_map_residual, -rule.max_map_turn,
               -rule.max_map_change, -rule.recoloured_max_grey_shift, rule.recoloured_min_inliers)
        if best is None or row > best[0]:
            best = (row, rule, recall)
    if best is None:
        return base, min(scores(m.groups("A", m.passed(base)), m.truth["A"])[1] for m in sets)
    return best[1], best[2]


def half_b_figures(m: Measured, rule: CopyRule) -> dict[str, object]:
    """What the README's table holds for one set's half B under `rule` (written to --json)."""
    linked, truth, inside = m.passed(rule), m.truth["B"], m.in_half["B"]
    candidates = {(a, b) for a, b in pair_set(m.candidates) | pair_set(m.sha_pairs) if inside[a] and inside[b]}
    figures: dict[str, object] = {"images": len(m.halves["B"]), "true_pairs": len(truth),
                                  "candidate_recall": len(candidates & truth) / max(1, len(truth)),
                                  "direct": m.direct("B", linked)}
    for how in ("components", "cover"):
        figures[how] = scores(m.groups("B", linked, how), truth)
    figures["unverified_before"] = scores({(a, b) for a, b in pair_set(m.unverified) if inside[a] and inside[b]}, truth)
    figures["verified_pairs_per_second"] = len(m.candidates) / max(m.verify_seconds, 1e-9)
    return figures


def report(m: Measured, rule: CopyRule) -> None:
    linked = m.passed(rule)
    truth = m.truth["B"]
    held = m.halves["B"]
    print(f"\n{m.name}, held-out half B: {len(held)} images, {len(truth)} true pairs")
    print(f"{'rule':<64}{'precision':>10}{'recall':>8}")
    inside = m.in_half["B"]
    candidate_pairs = {(a, b) for a, b in pair_set(m.candidates) | pair_set(m.sha_pairs) if inside[a] and inside[b]}
    print(f"{'candidates of the cheap stage (before verification)':<64}"
          f"{'':>10}{len(candidate_pairs & truth) / max(1, len(truth)):>8.4f}")
    p, r = m.direct("B", linked)
    print(f"{'verified copies, direct links':<64}{p:>10.4f}{r:>8.4f}")
    for how, name in (("components", "connected components (dedup's report, train's splits)"),
                      ("cover", "every link's star (the audit's report)")):
        p, r = scores(m.groups("B", linked, how), truth)
        print(f"{'pairs inside groups, ' + name:<64}{p:>10.4f}{r:>8.4f}")
    old = {(a, b) for a, b in pair_set(m.unverified) if inside[a] and inside[b]}
    p, r = scores(old, truth)
    print(f"{'before: phash <= 6 (flip-aware) OR cosine >= 0.87, unverified':<64}{p:>10.4f}{r:>8.4f}")
    components = m.groups("B", linked, "components")
    origin = {int(m.family[i]): int(i) for i in held if m.kind[i] == "original"}
    direct = pair_set(m.candidates[linked])
    print("per copy kind (half B): linked to its original directly / in its original's connected group")
    combined = SETS[m.name][1] is None  # an export's versions: each transform over every version it is part of
    applied = [k.split(" + ") if combined else [k] for k in m.kind]
    for name in dict.fromkeys(n for k in applied for n in k if k[0] not in ("original", "distractor", "colour variant")):
        copies = [int(i) for i in held if name in applied[i]]
        keys = [tuple(sorted((origin[int(m.family[i])], i))) for i in copies]
        found = sum(k in direct or m.fp.sha256[k[0]] == m.fp.sha256[k[1]] for k in keys)
        together = sum(k in components for k in keys)
        print(f"  {name:<30}{found / max(1, len(copies)):.3f} / {together / max(1, len(copies)):.3f}  ({len(copies)})")
    false = Counter()
    for a, b in pair_set(m.candidates[linked]) - truth:
        if inside[a] and inside[b]:
            false[tuple(sorted((m.kind[a], m.kind[b])))] += 1
    variants = [(i - 1, i) for i in held if m.kind[i] == "colour variant"]
    print(f"false links by kind: {dict(false.most_common(6))}; colour variants linked to their photo: "
          f"{sum(v in direct for v in variants)} of {len(variants)}")
    small = np.array([c is None for c in m.checks], bool)
    inside_pairs = inside[m.candidates[:, 0]] & inside[m.candidates[:, 1]]
    for name, mask in (("verified", ~small), ("too small to verify (TOO_SMALL_TO_VERIFY thresholds)", small)):
        picked = linked & mask & inside_pairs
        false_candidates = int((mask & inside_pairs & ~m.is_true).sum())
        false = int((picked & ~m.is_true).sum())  # the share of false candidates linked: what a catalogue of
        # look-alikes with few copies sees, whatever the precision on a set with many planted copies
        print(f"  links {name}: {int(picked.sum())}, of them false {false} of {false_candidates} false candidates "
              f"({false / max(1, false_candidates):.2%})")
    unverifiable = small & inside_pairs
    if unverifiable.any():
        print("  pairs too small to verify, linked true / false by other thresholds: " + "; ".join(
            f"hash <= {bits} or cosine >= {cosine}: {int((hit & m.is_true).sum())} / {int((hit & ~m.is_true).sum())}"
            for bits, cosine in ((4, 0.93), (2, 0.95), (0, 0.97))
            for hit in [unverifiable & ((m.signals["hamming"] <= bits) | (m.signals["cosine"] >= cosine))]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="near,augmented,models", help="comma-separated: " + ", ".join(SETS))
    parser.add_argument("--originals", type=int, default=60, help="originals per dataset")
    parser.add_argument("--distractors", type=int, default=600, help="distractor photos per dataset")
    parser.add_argument("--precision", type=float, default=0.97,
                        help="precision floor when choosing the rule on halves A (a margin over the targets)")
    parser.add_argument("--embeddings", action=argparse.BooleanOptionalAction, default=True,
                        help="also propose candidates by backbone embeddings, as `dedup` does by default")
    parser.add_argument("--workers", type=int, default=1, help="worker processes of the cheap stage, measured too")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the generated copies here (default: temp)")
    parser.add_argument("--json", type=Path, default=None, help="write the shipped rule's half-B figures here")
    parser.add_argument("--judged", action=argparse.BooleanOptionalAction, default=True,
                        help="also hold the rule to the judged fashion-products links (benchmarks/near_links.py)")
    add_flag(parser)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        sets = [Measured(name, workdir, args) for name in args.sets.split(",")]
        judged = measured_links(judged_links(dataset("fashion-products") / "images")) if args.judged else None
        rule, recall = choose_rule(sets, args.precision, judged)
        rule, recall = choose_export_path(sets, rule, args.precision, judged)
        print(f"\nchosen on halves A: {rule} (worst half-A group recall {recall:.4f}); shipped: {DEFAULT_RULE}")
        if judged is not None:
            print("judged fashion-products links (benchmarks/near_links.py), precision / copies kept: " + "; ".join(
                f"{name} {'%.3f / %.3f' % precision_and_kept(judged, each)}"
                for name, each in (("chosen", rule), ("shipped", DEFAULT_RULE))))
        for name, each in (("chosen", rule), ("shipped", DEFAULT_RULE)):
            print(f"{name} rule, direct links P / R: " + "; ".join(
                f"{m.name} A {'%.4f / %.4f' % m.direct('A', m.passed(each))} B {'%.4f / %.4f' % m.direct('B', m.passed(each))}"
                for m in sets))
        for name, each in (("chosen", rule), ("shipped", DEFAULT_RULE)):
            print(f"\n===== the {name} rule: {each}")
            for m in sets:
                report(m, each)
        if args.json:
            args.json.write_text(json.dumps({"command": " ".join(sys.argv), "shipped_rule": dataclasses.asdict(DEFAULT_RULE),
                                             "chosen_rule": dataclasses.asdict(rule),
                                             "sets": {m.name: half_b_figures(m, DEFAULT_RULE) for m in sets}}, indent=2))
        candidate_table(sets, rule)
        limit_table(sets, DEFAULT_RULE, "max_colour_residual", (6.0, 8.0, 10.0, 12.0, 15.0, 255.0))
        limit_table(sets, DEFAULT_RULE, "min_fine_similarity", (-1.0, 0.4, 0.5, 0.55, 0.6, 0.7))
        limit_table(sets, DEFAULT_RULE, "max_grey_shift", (10.0, 20.0, 40.0, 255.0))
        images = sum(len(m.files) for m in sets)
        cheap = sum(m.cheap_seconds for m in sets)
        parallel = sum(m.cheap_parallel_seconds for m in sets)
        verify_time = sum(m.verify_seconds for m in sets)
        cheap_cpu, verify_cpu = sum(m.cheap_cpu for m in sets), sum(m.verify_cpu for m in sets)
        print(f"\nCPU time of this process (what one free core takes, whatever else runs): cheap stage "
              f"{images / cheap_cpu:.0f} images per CPU second; verification {images / verify_cpu:.0f} images of the "
              f"whole set per CPU second ({verify_cpu / cheap_cpu:.1f}x the cheap stage)")
        print(f"speed: cheap stage {images / cheap:.0f} images/s in one process, {images / parallel:.0f} images/s "
              f"with {args.workers} worker(s) ({cheap / parallel:.2f}x); verification of the candidates "
              f"{images / verify_time:.0f} images/s of the whole set ({verify_time / cheap:.1f}x the one-process "
              f"cheap stage's time)")
        if args.record:
            record_figures(sets, images / cheap)


def record_figures(sets: list[Measured], cheap_rate: float) -> None:
    """The shipped rule's half-B group figures and the cheap stage's speed into results/dedup-calibrate.json."""
    figures = []
    for m in sets:
        precision, recall = scores(m.groups("B", m.passed(DEFAULT_RULE), "components"), m.truth["B"])
        title = f"{m.name.capitalize()} set: dedup group"
        if m.name == "export":
            figures += [{"figure": f"{title} precision", "value": round(precision, 3)},
                        {"figure": f"{title} recall", "value": round(recall, 3)}]
        elif m.name != "augmented":
            figures.append({"figure": f"{title} recall (precision {precision:.3f})", "value": round(recall, 3)})
    figures.append({"figure": "Cheap stage, one process", "value": round(cheap_rate), "unit": "images/s", "part": "speed"})
    record("dedup-calibrate", area="Duplicates and audit", title="Near copies and annotation-tool exports",
           data=f"the {', '.join(m.name for m in sets)} set(s) made from clothing-small, fashion-products, "
                "colorful-fashion and CCP photos; rule chosen on halves A, scored on halves B",
           part="held-out halves B", issue=30, guide="guides/dedup-audit.md", figures=figures)


if __name__ == "__main__":
    main()
