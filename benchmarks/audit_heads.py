"""How the audit's fold heads were chosen: precision and recall of the label check on clothing-small with 7% of
labels flipped (the planted set of audit_flips.py, seed 0), and CPU seconds of the out-of-fold heads, per head
setting; with --products N, only the CPU seconds on the first N rows of fashion-products (three tasks).

CPU seconds, since wall-clock seconds on a shared machine measure the other jobs. Settings are HeadSettings
fields, `name=value` joined by commas; an empty string is the default.

    .venv/bin/python benchmarks/audit_heads.py "" "epochs=30,lr=0.002,input_dropout=0.2,validation=0.15"
    .venv/bin/python benchmarks/audit_heads.py --products 8000 "" "epochs=30,lr=0.002,input_dropout=0.2,validation=0.15"
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import torch
from _shared import dataset
from audit_flips import build


def settings(text: str):
    from fashionlens.audit.labels import HeadSettings

    fields = {f.name: f.type for f in dataclasses.fields(HeadSettings)}
    values = dict(part.split("=") for part in text.split(",") if part)
    cast = {"int": int, "float": float, "bool": lambda v: v in ("1", "true", "True")}
    return HeadSettings(**{k: cast[fields[k]](v) for k, v in values.items()})


def labelled(data):
    """(features, samples, tasks, label matrix) as the audit sees them."""
    from fashionlens.backbones import create_backbone
    from fashionlens.cache import FeatureCache
    from fashionlens.classify.model import TaskSpec
    from fashionlens.classify.train import label_matrix
    from fashionlens.data.samples import LabeledImages
    from fashionlens.features import extract_features

    feats = extract_features(create_backbone(), [s.path for s in data.samples], cache=FeatureCache(), progress=False)
    samples = [data.samples[i] for i in feats.indices]
    kept = LabeledImages(samples, data.tasks, data.source)
    tasks = [TaskSpec(name, tuple(sorted(c for c, n in kept.counts(name).items() if n >= 5))) for name in data.tasks]
    return feats, samples, tasks, label_matrix(samples, tasks)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("variants", nargs="+")
    parser.add_argument("--products", type=int, default=0, help="time on the first N fashion-products rows instead")
    args = parser.parse_args()
    from fashionlens.audit.labels import label_issues, out_of_fold_probabilities
    from fashionlens.data import read_folder, read_table
    from fashionlens.data.samples import LabeledImages

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        if args.products:
            root = dataset("fashion-products")
            data = read_table(root / "styles.csv", image_column="id", images_root=root / "images",
                              tasks=["articleType", "gender", "baseColour"])
            data = LabeledImages(data.samples[:args.products], data.tasks, data.source)
            flipped, planted = set(), []
        else:
            flipped, planted = build(Path(tmp), 0.07, 40, 0)
            data = read_folder(Path(tmp))
        feats, samples, tasks, y = labelled(data)
        left_out = {p for pair in planted for p in pair}
        for text in args.variants:
            start = time.process_time()
            probs = out_of_fold_probabilities(feats.vectors, y, tasks, feats.sha256, feats.phash, heads=settings(text))
            cpu = time.process_time() - start
            if args.products:
                print(f"[{text}] {len(samples)} images, {len(tasks)} tasks: {cpu:.1f} s of CPU", flush=True)
                continue
            found = label_issues(y[:, 0], probs[tasks[0].name])
            flagged = {Path(samples[r].path) for r in found.rows} - left_out
            hits = flagged & flipped
            print(f"[{text}] {cpu:.1f} s of CPU: flagged {len(flagged)}, precision {len(hits) / max(len(flagged), 1):.3f}, "
                  f"recall {len(hits) / len(flipped):.3f}, out-of-fold accuracy {found.accuracy:.3f}", flush=True)


if __name__ == "__main__":
    main()
