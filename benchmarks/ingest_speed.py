"""Images/s of `Catalog.ingest` against the backbone alone and against a plain one-image-at-a-time loop.

(a) backbone: decode, preprocess and ONNX backbone features only (`extract_features`, no cache);
(b) `Catalog.ingest` into a fresh SQLite catalogue: embedding, shipped classifier's labels, colours, store, index;
(c) a plain loop: per image, `load_image`, the eager PyTorch backbone and classifier heads, the embedding and
    the colours; what a script without the batch pipeline would do.
Same images, same run; (a) and (b) alternate for `--rounds` and the best of each counts, so load from other
jobs that comes and goes hits both alike. CPU time per image (workers included) is printed beside, as a check
that holds under load. Targets: (b)/(a) >= 0.8 (the pipeline adds little), (b)/(c) >= 3.

    .venv/bin/python benchmarks/ingest_speed.py [--images 300] [--dataset fashion-products] [--record]

clothing-small's photos lie on floors and beds: each is parsed for its colours (`whole_photo_colors`);
fashion-products' are studio shots on white, whose backdrop the namer leaves out without parsing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import torch
from _shared import dataset, timed
from record import add_flag, record


@contextmanager
def cpu_time(result: dict, key: str):
    """CPU seconds of this process and its finished children (the decode workers)."""
    before = os.times()
    yield
    after = os.times()
    result[key] = sum(getattr(after, f) - getattr(before, f) for f in ("user", "system", "children_user",
                                                                        "children_system"))


def plain_loop(paths: list[Path], embedder, classifier) -> None:
    from fashionlens.colors import named_colors
    from fashionlens.fingerprints import sha256_file
    from fashionlens.images import load_image

    transform = classifier.backbone_info.preprocess.eval_transform()
    short_side = classifier.backbone_info.preprocess.short_side
    classifier.eval()
    for path in paths:
        sha256_file(path)
        image = load_image(path, min_size=short_side)
        with torch.inference_mode():
            features = classifier.backbone(torch.as_tensor(transform(image))[None])
            probs = {k: torch.softmax(v, -1) for k, v in classifier.heads(features).items()}
        embedder.from_features(features.numpy())
        {k: (int(p.argmax()), float(p.max())) for k, p in probs.items()}
        named_colors(image)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--dataset", default="clothing-small", choices=("clothing-small", "fashion-products"))
    add_flag(parser)
    args = parser.parse_args()
    from fashionlens.catalog import Catalog
    from fashionlens.classify import load_model
    from fashionlens.defaults import default_classifier_dir
    from fashionlens.embeddings import default_embedder
    from fashionlens.features import extract_features

    pattern = "train/*/*.jpg" if args.dataset == "clothing-small" else "images/*.jpg"
    every = sorted(dataset(args.dataset).glob(pattern))
    paths = every[::max(1, len(every) // args.images)][:args.images]  # all classes, not the first folder's
    embedder = default_embedder()
    classifier = load_model(default_classifier_dir()).classifier
    extract_features(embedder.backbone, paths[:8], use_cache=False, progress=False)  # ONNX export and warm-up
    plain_loop(paths[:2], embedder, classifier)  # warm-up
    best: dict[str, float] = {}
    cpu: dict[str, float] = {}
    for _ in range(args.rounds):
        seconds: dict[str, float] = {}
        with timed(seconds, "backbone"), cpu_time(cpu, "backbone"):
            extract_features(embedder.backbone, paths, use_cache=False, batch_size=args.batch_size, progress=False)
        with tempfile.TemporaryDirectory() as tmp:
            catalog = Catalog.open(Path(tmp) / "speed.db", embedder=embedder)
            with timed(seconds, "ingest"), cpu_time(cpu, "ingest"):
                report = catalog.ingest(paths, batch_size=args.batch_size)
            catalog.close()
        assert len(report.added) + len(report.present) == len(paths), report.failed
        best = {k: min(v, best.get(k, v)) for k, v in seconds.items()}
    seconds = best
    with timed(seconds, "loop"), cpu_time(cpu, "loop"):
        plain_loop(paths, embedder, classifier)
    rate = {k: len(paths) / v for k, v in seconds.items()}
    print(f"{len(paths)} {args.dataset} photos, batch {args.batch_size}, torch threads {torch.get_num_threads()}")
    ms = {k: 1000 * v / len(paths) for k, v in cpu.items()}  # the last round's
    print(f"(a) backbone features alone (ONNX)          : {rate['backbone']:6.1f} images/s  {ms['backbone']:5.1f} CPU ms/image")
    print(f"(b) Catalog.ingest (all of it, stored)      : {rate['ingest']:6.1f} images/s  {ms['ingest']:5.1f} CPU ms/image")
    print(f"(c) plain loop, one image at a time, eager  : {rate['loop']:6.1f} images/s  {ms['loop']:5.1f} CPU ms/image")
    print(f"(b)/(a) {rate['ingest'] / rate['backbone']:.2f} (target >= 0.8)   "
          f"(b)/(c) {rate['ingest'] / rate['loop']:.2f} (target >= 3)")
    if args.record:
        record("catalog-search", area="Catalogue", title="Similar-item search on clothing-small",
               data=f"{len(paths)} {args.dataset} photos into a fresh catalogue, best of {args.rounds} rounds",
               part="speed", issue=None, guide="guides/catalog.md",
               figures=[{"figure": "Catalog.ingest throughput", "value": round(rate["ingest"], 1), "unit": "images/s"}])


if __name__ == "__main__":
    main()
