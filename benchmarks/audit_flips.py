"""Audit targets on a class-folder set with planted errors, built from clothing-small in a temporary folder.

About 7% of the images (train and validation together) are filed under another class at random, and
re-encoded copies (JPEG quality 70, 80% size) of other images are filed under another class. Scores:
label-issue precision and recall on the flipped images (the planted copies and their originals are left out of
both: they are the conflict target's), and how many planted copies come back as a conflict.

    .venv/bin/python benchmarks/audit_flips.py [--rate 0.07] [--copies 40] [--seed 0 [1 ...]] [--images 350]
        [--splits validation] [--record]

--record writes the mean over the seeds to benchmarks/results/audit-flips.json (train and validation) or
audit-small.json (--splits validation).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

import numpy as np
from _shared import dataset
from record import add_flag, record
from PIL import Image


def build(root: Path, rate: float, copies: int, seed: int, size: int | None = None,
          splits: tuple[str, ...] = ("train", "validation")) -> tuple[set[Path], list[tuple[Path, Path]]]:
    """Symlinks in class folders, some under a wrong class; returns (flipped links, [(original, copy)]).
    `size`: a random subset of that many images (a small shop's set); `splits`: the clothing-small folders drawn
    from (settings are chosen on `train` and reported on the held-out `validation`)."""
    source = dataset("clothing-small")
    images = sorted((p, p.parent.name) for split in splits for p in (source / split).glob("*/*.jpg"))
    classes = sorted({c for _, c in images})
    rng = random.Random(seed)
    if size:
        images = sorted(rng.sample(images, size))
    order = list(range(len(images)))
    rng.shuffle(order)
    flip = set(order[: round(rate * len(images))])
    copied = order[len(flip): len(flip) + copies]
    flipped, planted = set(), []
    for i, (path, label) in enumerate(images):
        target = rng.choice([c for c in classes if c != label]) if i in flip else label
        link = root / target / f"{path.parent.parent.name}_{path.name}"
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(path)
        if i in flip:
            flipped.add(link)
        if i in copied:
            copy = root / rng.choice([c for c in classes if c != label]) / f"copy_{path.name}"
            copy.parent.mkdir(parents=True, exist_ok=True)
            with Image.open(path) as image:
                image = image.convert("RGB")
                image.resize((round(image.width * 0.8), round(image.height * 0.8)), Image.LANCZOS).save(copy, quality=70)
            planted.append((link, copy))
    return flipped, planted


# what each results file calls its figures (--record): the whole set, and the held-out photos alone
RECORDS = {
    ("train", "validation"): ("audit-flips", "Audit on planted label errors ({photos} photos)", "planted errors", None,
                              "Planted copies reported as a conflict with their original"),
    ("validation",): ("audit-small", "Audit of a small set: held-out photos with planted label errors",
                      "held out (rule chosen on training-photo draws: benchmarks/audit_rule.py)", 31,
                      "Planted copies reported as a conflict"),
}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=0.07)
    parser.add_argument("--copies", type=int, default=40)
    parser.add_argument("--seed", type=int, nargs="+", default=[0], help="one run per seed; figures are their mean")
    parser.add_argument("--images", type=int, default=None, help="a random subset of this many images (default: all)")
    parser.add_argument("--splits", nargs="+", default=["train", "validation"], choices=["train", "validation"],
                        help="the clothing-small folders drawn from (validation alone: the held-out 341 photos)")
    add_flag(parser)
    args = parser.parse_args()
    if args.record and (args.images or tuple(args.splits) not in RECORDS):
        parser.error(f"--record: the whole of --splits {' or '.join(' '.join(s) for s in RECORDS)}, without --images")
    runs = [one_seed(args, seed) for seed in args.seed]
    if len(runs) > 1:
        print(f"mean of {len(runs)} seeds: precision {np.mean([r['precision'] for r in runs]):.3f}, recall "
              f"{np.mean([r['recall'] for r in runs]):.3f}; copies in a conflict group "
              f"{sum(r['caught'] for r in runs)} of {sum(r['planted'] for r in runs)}")
    if args.record:
        record_figures(args, runs)


def one_seed(args, seed: int) -> dict:
    """Plants the errors with `seed`, audits, prints and returns the scores."""
    from fashionlens.audit import AuditConfig, audit
    from fashionlens.data import read_folder

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        flipped, planted = build(root, args.rate, args.copies, seed, args.images, tuple(args.splits))
        started = time.perf_counter()
        report = audit(read_folder(root), AuditConfig(seed=seed))
        seconds = time.perf_counter() - started
        planted_images = {p for pair in planted for p in pair}
        flagged = {Path(f.image) for f in report.of("label")} - planted_images
        hits = flagged & flipped
        conflicts = [g for g in report.of("duplicates") if g.conflict]
        caught = sum(any({str(a), str(b)} <= set(g.images) for g in conflicts) for a, b in planted)
        copies_flagged = sum(str(b) in {f.image for f in report.of("label")} for _, b in planted)
    precision, recall = len(hits) / max(len(flagged), 1), len(hits) / len(flipped)
    print(f"seed {seed}: {report.images} images, {len(flipped)} flipped ({args.rate:.0%}), {len(planted)} re-encoded "
          f"copies under another class; audit {seconds:.1f} s ({report.seconds})")
    print(f"label check: {report.label_check}")
    print(f"label issues flagged {len(flagged)} (planted copies aside): precision {precision:.3f}, recall {recall:.3f}")
    print(f"planted copies reported in a conflict group with their original: {caught} of {len(planted)} "
          f"({copies_flagged} also flagged as label issues)")
    print(f"counts: {report.counts()}")
    return {"images": report.images, "flipped": len(flipped), "planted": len(planted), "caught": caught,
            "precision": precision, "recall": recall}


def record_figures(args, runs: list[dict]) -> None:
    name, title, part, issue, copies_figure = RECORDS[tuple(args.splits)]
    first = runs[0]
    originals = first["images"] - first["planted"]
    mean = f", {first['images']} photos (mean of {len(runs)} seeds)" if len(runs) > 1 else ""
    record(name, area="Duplicates and audit", title=title.format(photos=f"{originals:,}"),
           data=f"clothing-small {' + '.join(args.splits)} ({originals:,} photos) + {first['planted']} re-encoded "
                f"copies filed under another class; {first['flipped']} labels flipped ({args.rate:.0%})",
           part=part, issue=issue, guide="guides/dedup-audit.md",
           figures=[{"figure": f"Precision on the flipped images{mean}",
                     "value": round(float(np.mean([r["precision"] for r in runs])), 3)},
                    {"figure": f"Recall of the flipped images{mean}",
                     "value": round(float(np.mean([r["recall"] for r in runs])), 3)},
                    {"figure": copies_figure,
                     "value": f"{sum(r['caught'] for r in runs)} of {sum(r['planted'] for r in runs)}"}])


if __name__ == "__main__":
    main()
