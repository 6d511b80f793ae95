"""Calibrates the near-duplicate thresholds on real photos and reports pair-level precision and recall.

From clothing-small and fashion-products it takes originals and makes copies of each (byte copy; JPEG q30 and
q90; WebP; resized 0.3x, 0.5x and 2x; cropped 5% and 10%; mirrored; brightness, contrast, saturation and hue
changed; mirrored + JPEG), beside distractors: other photos of the same datasets, hence the same garment
classes (look-alikes). Two images are a true pair when they come from the same original (or from
byte-identical originals). The images are split in two halves by family: thresholds are chosen on half A
(highest recall at precision >= --precision) and reported on half B. Precision and recall count pairs over
all pairs of images, both for the pairs linked directly and for the pairs inside the reported groups
(transitive), which is what a user sees.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _shared import dataset  # noqa: E402

from fashionlens.dedup import Fingerprints, Thresholds, group_labels, hash_images, near_pairs  # noqa: E402
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
COPIES = {
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
    "saturation": (lambda im, r: ImageEnhance.Color(im).enhance(r.choice([0.5, 1.5])), "JPEG", 85),
    "hue": (lambda im, r: _hue(im, r.choice([-12, 12])), "JPEG", 85),
}


def make_set(workdir: Path, originals: int, distractors: int, seed: int):
    """Files, their family id (-1: distractor) and what each is ("original", a copy name, "distractor")."""
    rng = random.Random(seed)
    files, family, kind = [], [], []
    for name in ("clothing-small", "fashion-products"):
        pool = sorted(p for p in dataset(name).rglob("*") if is_image_file(p))
        chosen = rng.sample(pool, originals + distractors)
        out = workdir / name
        out.mkdir(parents=True, exist_ok=True)
        for k, src in enumerate(chosen):
            fam = len(set(family) - {-1}) if k < originals else -1
            files.append(src)
            family.append(fam)
            kind.append("original" if fam >= 0 else "distractor")
            if fam < 0:
                continue
            image = load_image(src)
            copy_rng = random.Random(f"{seed}:{name}:{k}")  # the same copies whatever was made before
            dst = out / f"{k}_bytecopy{src.suffix}"
            shutil.copyfile(src, dst)
            files.append(dst)
            family.append(fam)
            kind.append("byte copy")
            for c, (copy_name, (transform, fmt, quality)) in enumerate(COPIES.items()):
                dst = out / f"{k}_{c}.{fmt.lower()}"
                params = {"quality": quality} if quality else {}
                transform(image, copy_rng).save(dst, fmt, **params)
                files.append(dst)
                family.append(fam)
                kind.append(copy_name)
    return files, np.array(family), kind


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


def hamming_and_cosine(pairs: np.ndarray, fp: Fingerprints) -> tuple[np.ndarray, np.ndarray]:
    codes, flipped = hash_codes(fp.phash), hash_codes(fp.phash_flipped)
    bits = np.unpackbits(codes, axis=1)
    fbits = np.unpackbits(flipped, axis=1)
    a, b = pairs[:, 0], pairs[:, 1]
    ham = np.minimum((bits[a] != bits[b]).sum(1), (bits[a] != fbits[b]).sum(1))
    cos = (fp.vectors[a] * fp.vectors[b]).sum(1)
    return ham, cos


def scores(predicted: set, truth: set) -> tuple[float, float]:
    hit = len(predicted & truth)
    return hit / max(1, len(predicted)), hit / max(1, len(truth))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--originals", type=int, default=150, help="originals per dataset")
    parser.add_argument("--distractors", type=int, default=1500, help="distractor photos per dataset")
    parser.add_argument("--precision", type=float, default=0.96,
                        help="precision floor when choosing thresholds on half A (a margin over the 0.95 target)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workdir", type=Path, default=None, help="keep the generated copies here (default: temp)")
    args = parser.parse_args()
    tmp = None
    workdir = args.workdir
    if workdir is None:
        tmp = tempfile.TemporaryDirectory()
        workdir = Path(tmp.name)
    files, family, kind = make_set(workdir, args.originals, args.distractors, args.seed)
    print(f"{len(files)} images: {int((family >= 0).sum())} in {len(set(family) - {-1})} families, "
          f"{int((family < 0).sum())} distractors")

    start = time.perf_counter()
    kept, fp, failures = hash_images(files)
    t_hash = time.perf_counter() - start
    start = time.perf_counter()
    emb = embed_paths([files[i] for i in kept])
    t_embed = time.perf_counter() - start
    assert not failures and not emb.failures and kept == list(range(len(files))), (failures, emb.failures)
    fp.vectors = emb.vectors
    print(f"hashing {t_hash:.1f} s ({len(files) / t_hash:.0f} images/s); embeddings {t_embed:.1f} s "
          f"(feature cache may be warm)")

    loose = Thresholds(max_hamming=24, min_cosine=0.75)
    start = time.perf_counter()
    candidates = near_pairs(fp, loose)
    print(f"candidate pairs at {loose}: {len(candidates)} ({time.perf_counter() - start:.2f} s, FAISS range search)")
    ham, cos = hamming_and_cosine(candidates, fp)

    rng = np.random.default_rng(args.seed)
    fam_ids = np.array(sorted(set(family) - {-1}))
    half_a_families = set(rng.choice(fam_ids, len(fam_ids) // 2, replace=False).tolist())
    distractor_a = rng.random(len(files)) < 0.5
    in_a = np.array([(f in half_a_families) if f >= 0 else distractor_a[i] for i, f in enumerate(family)])
    halves = {"A (calibration)": np.flatnonzero(in_a), "B (held out)": np.flatnonzero(~in_a)}

    truth = {name: true_pairs(members, family, fp.sha256) for name, members in halves.items()}
    is_true = np.array([(a, b) in truth["A (calibration)"] or (a, b) in truth["B (held out)"]
                        for a, b in candidates.tolist()], dtype=bool)
    half_of = {name: np.zeros(len(files), bool) for name in halves}
    for name, members in halves.items():
        half_of[name][members] = True

    def evaluate(name: str, rule: np.ndarray) -> tuple[float, float]:
        picked = rule & half_of[name][candidates[:, 0]] & half_of[name][candidates[:, 1]]
        hit = int((picked & is_true).sum())
        return hit / max(1, int(picked.sum())), hit / max(1, len(truth[name]))

    # thresholds: best recall at the precision floor on half A
    best = None
    grid = [(h, c) for h in range(0, 25, 2) for c in np.arange(0.80, 0.991, 0.01)]
    for h, c in grid:
        p, r = evaluate("A (calibration)", (ham <= h) | (cos >= c))
        if p >= args.precision and (best is None or r > best[2]):
            best = (h, round(float(c), 2), r, p)
    if best is None:
        sys.exit(f"no threshold pair reaches precision {args.precision} on half A")
    chosen = Thresholds(max_hamming=best[0], min_cosine=best[1])
    print(f"\nchosen on half A: {chosen} (half A precision {best[3]:.4f}, recall {best[2]:.4f})")

    rules = {
        f"phash <= {chosen.max_hamming} (flip-aware) OR cosine >= {chosen.min_cosine}":
            (ham <= chosen.max_hamming) | (cos >= chosen.min_cosine),
        f"cosine >= {chosen.min_cosine} only": cos >= chosen.min_cosine,
        f"phash <= {chosen.max_hamming} only (flip-aware)": ham <= chosen.max_hamming,
        "phash == 0 only (exact hash match)": ham == 0,
    }
    held = halves["B (held out)"]
    truth_b = truth["B (held out)"]
    print(f"\nheld-out half B: {len(held)} images, {len(truth_b)} true pairs; pair-level, direct links")
    print(f"{'rule':<58}{'precision':>10}{'recall':>8}")
    for name, rule in rules.items():
        p, r = evaluate("B (held out)", rule)
        print(f"{name:<58}{p:>10.4f}{r:>8.4f}")

    sub = Fingerprints([fp.sha256[i] for i in held], [fp.phash[i] for i in held],
                       [fp.phash_flipped[i] for i in held], fp.vectors[held])
    for transitive in (False, True):
        labels = group_labels(sub, chosen, transitive=transitive)
        grouped = {(int(held[a]), int(held[b])) for a in range(len(held))
                   for b in np.flatnonzero(labels[a + 1:] == labels[a]) + a + 1}
        p, r = scores(grouped, truth_b)
        name = "pairs inside groups, " + ("connected components" if transitive else "star groups (reported)")
        print(f"{name:<58}{p:>10.4f}{r:>8.4f}")
    exact_pred = {(a, b) for a, b in grouped if fp.sha256[a] == fp.sha256[b]}
    exact_truth = {(int(held[a]), int(held[b])) for a in range(len(held)) for b in range(a + 1, len(held))
                   if fp.sha256[held[a]] == fp.sha256[held[b]]}
    p, r = scores(exact_pred, exact_truth)
    print(f"{'exact (sha256) pairs':<58}{p:>10.4f}{r:>8.4f}  ({len(exact_truth)} pairs)")

    in_b = half_of["B (held out)"]
    linked = pair_set(candidates[rules[next(iter(rules))] & in_b[candidates[:, 0]] & in_b[candidates[:, 1]]])
    origin = {int(family[i]): i for i in held if kind[i] == "original"}
    print("\nrecall per copy kind (held-out half B, copy linked directly to its original):")
    for name in ["byte copy", *COPIES]:
        copies = [i for i in held if kind[i] == name]
        found = sum(tuple(sorted((origin[int(family[i])], i))) in linked for i in copies)
        print(f"  {name:<18}{found / max(1, len(copies)):.3f}  ({found}/{len(copies)})")
    false = Counter()
    for a, b in linked - truth_b:
        false[(kind[a], kind[b])] += 1
    print(f"false pairs by kind: {dict(false.most_common(6))}")
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
