"""Images/s of one classifier on ONNX Runtime vs PyTorch eager: same images, same run, same batches.

    python benchmarks/classify_inference.py [MODEL] [--images 256] [--record]

--record writes the figures to benchmarks/results/classify-inference.json (the documentation's results page).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from _shared import dataset
from record import add_flag, record


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", nargs="?", help="model folder (default: the shipped garment classifier)")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--batch-size", type=int, default=32)
    add_flag(parser)
    args = parser.parse_args()
    from fashionlens.classify import Predictor, export, load_model
    from fashionlens.defaults import default_classifier_dir

    paths = sorted(dataset("clothing-small").glob("validation/*/*.jpg"))[: args.images]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        shutil.copytree(args.model or default_classifier_dir(), folder)
        export(folder)
        model = load_model(folder)
        results = {}
        for runtime in ("torch", "onnx"):
            predictor = Predictor.from_model(model, runtime)
            predictor.probabilities(paths[:8], batch_size=8)  # warm-up
            start = time.perf_counter()
            results[runtime] = predictor.probabilities(paths, batch_size=args.batch_size)
            results[runtime].seconds = time.perf_counter() - start
    rate = {k: len(paths) / v.seconds for k, v in results.items()}
    task = model.classifier.tasks[0].name
    diff = np.abs(results["torch"].probs[task] - results["onnx"].probs[task]).max()
    print(f"{len(paths)} images, batch {args.batch_size}, decode and preprocess included")
    print(f"PyTorch eager : {rate['torch']:6.1f} images/s")
    print(f"ONNX Runtime  : {rate['onnx']:6.1f} images/s")
    print(f"ratio         : {rate['onnx'] / rate['torch']:.2f}x   (max probability difference {diff:.1e})")
    if args.record:
        record("classify-inference", area="Classify", title="Classifier inference speed",
               data=f"{len(paths)} clothing-small photos, decode and preprocessing included, batch {args.batch_size}",
               part="speed", issue=None, guide="guides/models.md",
               figures=[{"figure": "ONNX Runtime throughput", "value": round(rate["onnx"], 1), "unit": "images/s"},
                        {"figure": "ONNX Runtime against PyTorch eager", "value": round(rate["onnx"] / rate["torch"], 2),
                         "unit": "x"}])


if __name__ == "__main__":
    main()
