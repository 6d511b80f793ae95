"""How far the cheap stage's hash radius may go without the embeddings agreeing: candidate pairs to verify on the
fashion-products catalogue against copies kept on benchmarks/dedup_calibrate.py's sets.

Within 10 bits of the perceptual hash, fashion-products' 12,000 thumbnails on white make 272,000 pairs, nearly
all look-alikes; verifying them took a default `train` 37 minutes. `Thresholds.far_hamming` and `far_min_cosine`
keep a hash pair beyond `far_hamming` bits only where the embeddings' cosine reaches `far_min_cosine` (the
signature and embedding neighbours are candidates as before). Each setting of the grid is judged on the sets'
halves A, with every candidate of the unfiltered cheap stage verified once: the groups `dedup` and the split
make (connected components) and the audit's groups (covering stars), as pair precision and recall. The setting
chosen keeps every set's half-A figures as the unfiltered stage has them, for both uses of the cheap stage
(`dedup`: CANDIDATES with the mirrored hash and the embeddings' cosine; a training split: no cosine range, no
mirrored hash), with the fewest fashion-products candidates of a training split; then the widest margin (more
bits, a lower cosine). Halves B are reported for it once.

    python benchmarks/copy_candidates.py --sets near,augmented,models,export --originals 30 --distractors 300
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import dedup_calibrate  # noqa: E402
from _shared import dataset  # noqa: E402
from near_links import judged_links  # noqa: E402
from record import add_flag, record  # noqa: E402
from scipy.cluster.hierarchy import DisjointSet  # noqa: E402

from fashionlens.dedup import CANDIDATES, hash_images, image_files, near_pairs  # noqa: E402
from fashionlens.dedup.groups import _verification_order  # noqa: E402
from fashionlens.dedup.verify import DEFAULT_RULE  # noqa: E402
from fashionlens.embeddings import embed_paths  # noqa: E402

UNFILTERED = dataclasses.replace(CANDIDATES, far_hamming=64, far_min_cosine=-1.0)
GRID = [(bits, cosine) for bits in (0, 2, 4, 6, 8) for cosine in (0.75, 0.8, 0.85, 0.9, 0.95)]


def uses(thresholds):
    """The cheap stage as `dedup` runs it, and as a training split does (dataset_copy_pairs)."""
    return {"dedup": (thresholds, True), "split": (dataclasses.replace(thresholds, min_cosine=2.0), False)}


def candidates(fp, thresholds, mirrored: bool) -> set[tuple[int, int]]:
    fp = dataclasses.replace(fp, phash_flipped=fp.phash_flipped if mirrored else None)
    return set(map(tuple, near_pairs(fp, thresholds).tolist()))


def figures(m, kept: np.ndarray, half: str) -> tuple[float, float, float, float]:
    """Group pair precision and recall, components then covering stars, with only the `kept` candidates."""
    linked = m.passed(DEFAULT_RULE) & kept
    return (*dedup_calibrate.scores(m.groups(half, linked), m.truth[half]),
            *dedup_calibrate.scores(m.groups(half, linked, "cover"), m.truth[half]))


def kept_mask(m, thresholds, mirrored: bool) -> np.ndarray:
    found = candidates(m.fp, thresholds, mirrored)
    return np.array([pair in found for pair in map(tuple, m.candidates.tolist())], bool)


def verifications(m, kept: np.ndarray) -> int:
    """How many of the `kept` candidates a components-only verification checks (verified_pairs' order and skips),
    every image of the set together."""
    rows = np.flatnonzero(kept)
    linked = m.passed(DEFAULT_RULE)[rows]
    joined, checked = DisjointSet(range(len(m.files))), 0
    for a, b in m.sha_pairs.tolist():  # byte-identical files are joined before any pair is verified
        joined.merge(a, b)
    for k in _verification_order(m.candidates[rows], m.fallback[rows], len(m.files)).tolist():
        a, b = m.candidates[rows[k]].tolist()
        if not joined.connected(a, b):
            checked += 1
            if linked[k]:
                joined.merge(a, b)
    return checked


def catalogue_fingerprints():
    """(file names, fingerprints with embeddings) of the fashion-products images."""
    files = image_files([dataset("fashion-products") / "images"])
    kept, fp, failures = hash_images(files, progress=False)
    embedded = embed_paths([files[i] for i in kept], progress=False)
    fp = fp.subset(embedded.indices)
    fp.vectors = embedded.vectors
    return [files[kept[i]].name for i in embedded.indices], fp


def judged_copies_kept(names: list[str], found: set[tuple[int, int]]) -> tuple[int, int]:
    """How many of the fashion-products pairs judged copies by eye (benchmarks/near_links.py) stay candidates."""
    links = judged_links(dataset("fashion-products") / "images")
    position = {name: i for i, name in enumerate(names)}
    copies = [tuple(sorted((position[links.paths[a].name], position[links.paths[b].name])))
              for (a, b), verdict in links.verdict.items() if verdict == "copy"]
    return sum(pair in found for pair in copies), len(copies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default="near,augmented,models,export")
    parser.add_argument("--originals", type=int, default=30)
    parser.add_argument("--distractors", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    add_flag(parser)
    args = parser.parse_args()
    dedup_calibrate.CANDIDATES = UNFILTERED  # every candidate the wider stage proposes is verified once
    made = argparse.Namespace(originals=args.originals, distractors=args.distractors, embeddings=True, workers=1,
                              seed=args.seed)
    names, catalogue = catalogue_fingerprints()
    with tempfile.TemporaryDirectory() as tmp:
        sets = [dedup_calibrate.Measured(name, Path(tmp), made) for name in args.sets.split(",")]
    base = {(m.name, use): (mask, figures(m, mask, "A")) for m in sets
            for use, (th, mirrored) in uses(UNFILTERED).items() for mask in [kept_mask(m, th, mirrored)]}
    print(f"\nfashion-products, {len(catalogue.sha256)} images; candidates of a training split without the filter: "
          f"{len(candidates(catalogue, *uses(UNFILTERED)['split']))}")
    print("far_hamming, far_min_cosine: fashion-products candidates (split); then per set and use, the share of "
          "candidates kept and whether half A's figures hold")
    feasible = []
    for bits, cosine in GRID:
        thresholds = dataclasses.replace(UNFILTERED, far_hamming=bits, far_min_cosine=cosine)
        count = len(candidates(catalogue, *uses(thresholds)["split"]))
        holds, row = True, []
        for m in sets:
            for use, (th, mirrored) in uses(thresholds).items():
                mask, before = base[(m.name, use)]
                kept = kept_mask(m, th, mirrored)
                after = figures(m, kept, "A")
                same = all(round(x, 4) >= round(y, 4) for x, y in zip(after, before, strict=True))
                holds &= same
                row.append(f"{m.name}/{use} {kept.sum() / max(1, mask.sum()):.2f}{'' if same else ' LOSS'}")
        print(f"  {bits} bits, {cosine:.2f}: {count:>7} | " + "; ".join(row), flush=True)
        if holds:
            feasible.append((count, -bits, cosine, thresholds))
    if not feasible:
        print("no setting keeps every half A's figures")
        return
    count, _, _, chosen = min(feasible, key=lambda row: row[:3])
    print(f"\nchosen on halves A: far_hamming {chosen.far_hamming}, far_min_cosine {chosen.far_min_cosine} "
          f"({count} fashion-products candidates for a split); shipped: {CANDIDATES.far_hamming}, "
          f"{CANDIDATES.far_min_cosine}")
    judged = {use: judged_copies_kept(names, candidates(catalogue, th, mirrored))
              for use, (th, mirrored) in uses(chosen).items()}
    print("fashion-products pairs judged copies by eye that stay candidates: "
          + "; ".join(f"{use} {kept} of {total}" for use, (kept, total) in judged.items()))
    print("halves B, group pair precision / recall (components; covering stars), unfiltered -> chosen:")
    half_b = {}
    for m in sets:
        for use, (th, mirrored) in uses(chosen).items():
            mask, kept = base[(m.name, use)][0], kept_mask(m, th, mirrored)
            before, after = figures(m, mask, "B"), figures(m, kept, "B")
            half_b[(m.name, use)] = before, after
            print(f"  {m.name:<9} {use:<5} " + "; ".join(
                f"{b[0]:.3f}/{b[1]:.3f} -> {a[0]:.3f}/{a[1]:.3f}" for b, a in ((before[:2], after[:2]),
                                                                           (before[2:], after[2:])))
                  + f"; candidates {int(mask.sum())} -> {int(kept.sum())}, of which the groups verify "
                    f"{verifications(m, kept)} (whole set)")
    if args.record:
        unfiltered = len(candidates(catalogue, *uses(UNFILTERED)["split"]))
        recorded = [{"figure": f"fashion-products split: candidate pairs to verify ({unfiltered:,} unfiltered)",
                     "value": count, "unit": "pairs", "part": "fashion-products, 12,000 images"},
                    {"figure": "fashion-products pairs judged copies by eye that stay candidates (split)",
                     "value": judged["split"][0], "unit": f"of {judged['split'][1]}",
                     "part": "real catalogue, judged by eye"}]
        recorded += [{"figure": f"{name.capitalize()} set, dedup groups: {label} ({half_b[(name, 'dedup')][0][k]:.3f} "
                                f"unfiltered)", "value": round(half_b[(name, "dedup")][1][k], 3)}
                     for name in ("export", "near", "models") if (name, "dedup") in half_b
                     for k, label in ((0, "precision"), (1, "recall"))]
        record("copy-candidates", area="Duplicates and audit",
               title=f"Copy candidates: hash pairs beyond {chosen.far_hamming} bits need the embeddings to agree",
               data="dedup_calibrate's four sets (setting chosen on halves A) and the fashion-products catalogue",
               part="held-out halves B", issue=31, guide="guides/dedup-audit.md", figures=recorded)

if __name__ == "__main__":
    main()
