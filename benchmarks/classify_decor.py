"""decor: style (decor) and country, on products only and on all images.

    .venv/bin/python benchmarks/classify_decor.py
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from _shared import dataset, print_metrics


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backbone", default="efficientnet_lite1")
    parser.add_argument("--hidden", type=int, default=0)
    args = parser.parse_args()
    from fashionlens.classify import TrainConfig, train
    from fashionlens.data import read_table

    root = dataset("decor")
    for name, where in (("products only", {"type": {"product"}}), ("all images", None)):
        data = read_table(root / "decor.csv", image_column="file", images_root=root / "images",
                          tasks=["decor", "country"], where=where)
        config = TrainConfig(backbone=args.backbone, hidden=args.hidden, validation=0.1, test=0.2, progress=False)
        with tempfile.TemporaryDirectory() as tmp:
            result = train(data, Path(tmp) / "model", config)
        print(f"\n{name}: {len(data)} images, split {result.split.summary()}")
        print_metrics(f"decor, {name}: test split", result.metrics["test"])


if __name__ == "__main__":
    main()
