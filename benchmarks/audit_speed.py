"""The audit's speed target: 12,000 images (fashion-products, three tasks) with a warm feature cache in at most 60 s.

One process, one warm cache: a first audit fills it (features, dedup's signatures, mirrored hashes and pair
verifications), then the audit is timed per stage, then the ways the stages worked before are timed on the same
data, each as a ratio to its replacement:

- label check: sklearn's StratifiedGroupKFold and each fold's heads stopped early on the held-out fold itself,
  against `splits.make_folds` with its validation part (the same heads: 30 epochs of 512);
- copies: `dedup.find_duplicates` on the files (hashing every image, its own embedding search, every candidate
  pair verified), against the cached fingerprints, the shared neighbour search and cached verifications;
- outliers: cleanlab's `OutOfDistribution` (scikit-learn's search, run twice inside it), against the shared search.

    .venv/bin/python benchmarks/audit_speed.py [--set fashion-products] [--limit N] [--skip-old]

`--limit N` audits the first N rows only (where the cache is warm for those alone).
"""

from __future__ import annotations

import argparse
import time
import warnings

from _shared import dataset


def load(name: str, limit: int | None):
    from fashionlens.data import read_folder, read_table
    from fashionlens.data.samples import LabeledImages

    if name == "fashion-products":
        root = dataset(name)
        data = read_table(root / "styles.csv", image_column="id", images_root=root / "images",
                          tasks=["articleType", "gender", "baseColour"])
    else:
        data = read_folder(dataset(name))
    return LabeledImages(data.samples[:limit], data.tasks, data.source) if limit else data


def old_label_check(vectors, y, tasks, sha256, phash) -> float:
    """The label check as it was: StratifiedGroupKFold on equal-hash groups, and each fold's heads (30 epochs of
    512, lr 0.002, patience 10, label smoothing 0.1) stopped early on the held-out fold."""
    from sklearn.model_selection import StratifiedGroupKFold

    from fashionlens.classify.heads import fit_heads
    from fashionlens.splits import copy_groups

    start = time.perf_counter()
    groups = copy_groups(sha256, phash)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        parts = list(StratifiedGroupKFold(n_splits=5, shuffle=True, random_state=0).split(vectors, y[:, 0], groups))
    for fitted, held in parts:
        fold_heads, _ = fit_heads(vectors[fitted], y[fitted], vectors[held], y[held], tasks, epochs=30, lr=2e-3,
                                  patience=10, batch_size=512, balance=False, label_smoothing=0.1, seed=0)
        fold_heads.probabilities(vectors[held])
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--set", default="fashion-products")
    parser.add_argument("--limit", type=int, default=None, help="the first N images only")
    parser.add_argument("--skip-old", action="store_true", help="time the audit only")
    args = parser.parse_args()
    import torch

    from fashionlens.audit import AuditConfig, audit
    from fashionlens.audit.outliers import NEIGHBOURS
    from fashionlens.backbones import create_backbone
    from fashionlens.cache import FeatureCache
    from fashionlens.classify.model import TaskSpec
    from fashionlens.classify.train import label_matrix
    from fashionlens.dedup import find_duplicates
    from fashionlens.features import extract_features

    torch.set_num_threads(1)
    data = load(args.set, args.limit)
    started = time.perf_counter()
    audit(data, AuditConfig(progress=False))  # fills the cache where it is cold
    print(f"{args.set}: {len(data)} images; first audit {time.perf_counter() - started:.1f} s")
    started, cpu = time.perf_counter(), time.process_time()
    data = load(args.set, args.limit)
    report = audit(data, AuditConfig(progress=False))
    total = time.perf_counter() - started
    print(f"warm audit: {total:.1f} s end to end ({time.process_time() - cpu:.1f} s of CPU; reading the data "
          f"included), stages {report.seconds}")
    print(f"  counts {report.counts()}")
    if args.skip_old:
        return

    feats = extract_features(create_backbone(), [s.path for s in data.samples], cache=FeatureCache(), progress=False)
    samples = [data.samples[i] for i in feats.indices]
    tasks = [TaskSpec(name, tuple(sorted(c for c, n in data.counts(name).items() if n >= 5))) for name in data.tasks]
    y = label_matrix(samples, tasks)
    cpu = time.process_time()
    old = {"labels": old_label_check(feats.vectors, y, tasks, feats.sha256, feats.phash)}
    start = time.perf_counter()
    find_duplicates([s.path for s in samples], progress=False)
    old["duplicates"] = time.perf_counter() - start
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from cleanlab.outlier import OutOfDistribution

        OutOfDistribution({"k": NEIGHBOURS}).fit_score(features=feats.vectors, verbose=False)
    old["outliers"] = time.perf_counter() - start
    new = {"labels": report.seconds["labels"], "duplicates": report.seconds["duplicates"] + report.seconds["neighbours"],
           "outliers": report.seconds["outliers"] + report.seconds["neighbours"]}
    print(f"  the old stages: {sum(old.values()):.1f} s ({time.process_time() - cpu:.1f} s of CPU)")
    for stage in old:
        print(f"  {stage}: before {old[stage]:.1f} s, now {new[stage]:.1f} s: {old[stage] / max(new[stage], 1e-3):.1f}x")
    print("  (the neighbour search is shared: counted in both copies and outliers above)")


if __name__ == "__main__":
    main()
