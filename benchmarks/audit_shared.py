"""The audit on the shared fashion-products, decor and clothing-small data: counts, seconds per stage, a report per
set, and (with --docs) a few example thumbnails for the README.

Each set is audited twice; the first run fills the feature cache, the second is the warm-cache time.

    .venv/bin/python benchmarks/audit_shared.py --out build/audit [--docs docs/audit] [--sets decor clothing-small]

--record writes fashion-products' warm end-to-end time to benchmarks/results/audit-speed.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

from _shared import dataset
from record import add_flag, record


def sets() -> dict:
    from fashionlens.data import read_folder, read_rows, read_table

    products, decor, clothing = dataset("fashion-products"), dataset("decor"), dataset("clothing-small")
    return {
        "fashion-products": lambda: (read_table(products / "styles.csv", image_column="id", images_root=products / "images",
                                                tasks=["articleType", "gender", "baseColour"]),
                                     read_rows(products / "styles.csv")),
        "decor": lambda: (read_table(decor / "decor.csv", image_column="file", images_root=decor / "images",
                                     tasks=["decor", "type"]), read_rows(decor / "decor.csv")),
        "clothing-small": lambda: (read_folder(clothing), None),
    }


def examples(report, docs: Path, name: str) -> None:
    """The first label issues, conflicting copies and outliers of the report, as small JPEGs with a caption file."""
    from fashionlens.images import load_image

    picks = [("label", f.image, f"{f.task}: {f.given} -> {f.suggested} ({f.score:.2f})") for f in report.of("label")[:4]]
    flagged = [g for g in report.of("duplicates") if g.conflict or g.leak]
    shown = [g for g in (next((g for g in flagged if not g.near), None), next((g for g in flagged if g.near), None)) if g]
    picks += [("copy", g.images[k], f"{'near' if g.near else 'exact'} copy, {g.labels[k]} ({g.splits[k]})")
              for g in shown for k in (0, _odd_one(g))]  # an exact and a near copy where there are both
    picks += [("outlier", f.image, f"outlier ({f.score:.2f})") for f in report.of("outlier")[:2]]
    folder = docs / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    captions = []
    for k, (kind, image, caption) in enumerate(picks):
        picture = load_image(image, min_size=96)
        picture.thumbnail((96, 96))
        picture.save(folder / f"{k:02d}-{kind}.jpg", quality=75)
        captions.append({"file": f"{k:02d}-{kind}.jpg", "image": image.split("datasets/")[-1], "caption": caption})
    (folder / "captions.json").write_text(json.dumps(captions, indent=1, ensure_ascii=False) + "\n")


def _odd_one(group) -> int:
    """The first image of a conflict or leak that differs from the group's first one (to which it was verified
    as a copy) in label or split."""
    return next(k for k in range(1, len(group.images))
                if repr(group.labels[k]) != repr(group.labels[0]) or group.splits[k] != group.splits[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=Path("build/audit"))
    parser.add_argument("--docs", type=Path, default=None)
    parser.add_argument("--sets", nargs="*", default=None)
    parser.add_argument("--once", action="store_true", help="audit once (the cache is known to be warm)")
    add_flag(parser)
    args = parser.parse_args()
    from fashionlens.audit import AuditConfig, audit, write_report

    for name, load in sets().items():
        if args.sets and name not in args.sets:
            continue
        for run in (("warm",) if args.once else ("first", "warm")):
            started = time.perf_counter()
            data, table = load()
            report = audit(data, AuditConfig(progress=False), table=table)
            seconds = time.perf_counter() - started
            print(f"{name} ({run} run): {report.images} images, {seconds:.1f} s end to end, stages {report.seconds}")
        print(f"  counts {report.counts()}")
        for task, check in report.label_check.items():
            print(f"  label check {task}: {check}")
        for finding in report.of("table"):
            print(f"  table {finding.columns}: {finding.message[:300]}")
        page = write_report(report, args.out / name)
        print(f"  report {page}")
        if args.docs:
            examples(report, args.docs, name)
        if args.record and name == "fashion-products":
            record("audit-speed", area="Duplicates and audit", title="Audit speed",
                   data=f"fashion-products: {report.images:,} images, three tasks, warm feature cache", part="speed",
                   issue=17, guide="guides/dedup-audit.md",
                   figures=[{"figure": f"Warm audit of {report.images:,} images, end to end", "value": round(seconds, 1),
                             "unit": "s"}])


if __name__ == "__main__":
    main()
