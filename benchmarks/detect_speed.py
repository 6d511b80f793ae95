"""Photos/s of one detector on ONNX Runtime vs PyTorch eager: same photos, same run, decoding included.

    .venv/bin/python benchmarks/detect_speed.py [MODEL] [--images 96] [--batch-size 1] [--record]

--record writes the ONNX Runtime speed to benchmarks/results/detect-colorful-fashion.json.
"""

from __future__ import annotations

import argparse
import time

from _shared import dataset
from record import add_flag, record


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", nargs="?", help="detector folder (default: the shipped garment detector)")
    parser.add_argument("--images", type=int, default=96)
    parser.add_argument("--batch-size", type=int, default=1, help="1 is what a service sees")
    add_flag(parser)
    args = parser.parse_args()
    from fashionlens.detect.inference import Detector

    paths = sorted((dataset("colorful-fashion") / "JPEGImages").glob("*.jpg"))[: args.images]
    rates = {}
    for runtime in ("onnx", "torch"):
        detector = Detector(args.model, runtime=runtime)
        detector.detect(paths[:4], batch_size=args.batch_size)  # warm-up: export, thread pools
        start = time.perf_counter()
        result = detector.detect(paths, batch_size=args.batch_size)
        rates[runtime] = len(result.images) / (time.perf_counter() - start)
        print(f"{runtime:<6} {rates[runtime]:6.1f} photos/s  ({len(result.images)} photos, batch {args.batch_size}, "
              f"input {detector.input_size[0]}x{detector.input_size[1]})")
    print(f"ONNX Runtime / PyTorch eager: {rates['onnx'] / rates['torch']:.2f}x")
    if args.record:
        record("detect-colorful-fashion", area="Detect", title="Shipped garment detector",
               data=f"the first {len(paths)} colorful-fashion photos, decoding included", part="speed", issue=None,
               guide="guides/detect.md",
               figures=[{"figure": f"Detection speed, ONNX Runtime, batch {args.batch_size}",
                         "value": round(rates["onnx"], 1), "unit": "photos/s"}])


if __name__ == "__main__":
    main()
