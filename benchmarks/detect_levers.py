"""Inference-only levers on one trained detector, scored on colorful-fashion's held-out test part: NMS IoU,
input size (the weights are size-agnostic; run on PyTorch since the ONNX export has a fixed size), mirror
test-time augmentation (both passes merged by per-class NMS), and cross-class suppression. Each line prints
mAP@0.5, mAP@0.5:0.95 and seconds, so a lever's gain is set against its cost.

    .venv/bin/python benchmarks/detect_levers.py [MODEL] [--limit N] [--levers base nms0.5 nms0.7 size544x352 flip xclass]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from _shared import dataset
from PIL import Image


def flip_tta(detector, image: Image.Image, nms: float):
    """Detections on the photo and its mirror, mirrored back, merged by per-class NMS (up to 100 a photo)."""
    from torchvision.ops import batched_nms

    from fashionlens.detect.detections import Detections

    a = detector.detect_image(image, min_score=0.05)
    b = detector.detect_image(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT), min_score=0.05)
    bx = b.xyxy.copy()
    bx[:, [0, 2]] = image.width - b.xyxy[:, [2, 0]]
    boxes = torch.from_numpy(np.concatenate([a.xyxy, bx]).astype(np.float32))
    scores = torch.from_numpy(np.concatenate([a.confidence, b.confidence]).astype(np.float32))
    labels = torch.from_numpy(np.concatenate([a.class_id, b.class_id]))
    keep = batched_nms(boxes, scores, labels, nms)[:100].numpy()
    return Detections(boxes.numpy()[keep], labels.numpy()[keep], scores.numpy()[keep])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model", nargs="?", help="detector folder (default: the shipped garment detector)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N test photos")
    parser.add_argument("--levers", nargs="+", default=["base", "nms0.5", "nms0.7", "size544x352", "flip", "xclass"])
    args = parser.parse_args()
    from fashionlens.detect.evaluate import evaluate_detections
    from fashionlens.detect.formats import read_voc
    from fashionlens.detect.inference import Detector
    from fashionlens.detect.model import level_shapes
    from fashionlens.detect.overlaps import suppress_cross_class
    from fashionlens.detect.train import split_dataset
    from fashionlens.images import load_image

    detector = Detector(args.model)
    split = detector.model.manifest["data"]["split"]
    test = split_dataset(read_voc(dataset("colorful-fashion")), split["val_fraction"], split["test_fraction"])["test"]
    if args.limit:
        test = test.subset(range(min(args.limit, len(test))))
    assert test.classes == detector.classes
    paths = [im.path for im in test.images]
    nms0 = detector.model.model.nms_thresh
    for lever in args.levers:
        start = time.perf_counter()
        run = detector
        if lever.startswith("nms"):
            detector.model.model.nms_thresh = float(lever[3:])
        if lever.startswith("size"):
            run = Detector(detector.model, runtime="torch")
            run.input_size = tuple(int(v) for v in lever[4:].split("x"))
            run._shapes = level_shapes(run.model.model, run.input_size)
        if lever == "flip":
            predictions = [flip_tta(detector, load_image(p), nms0) for p in paths]
        else:
            found = {im.path: im.detections for im in run.detect(paths, min_score=0.05, raw=True).images}
            predictions = [found[p] for p in paths]
        if lever == "xclass":
            predictions = [suppress_cross_class(d, detector.classes) for d in predictions]
        detector.model.model.nms_thresh = nms0
        seconds = time.perf_counter() - start
        m = evaluate_detections(test, predictions)
        at = [(d.confidence >= 0.4).sum() for d in predictions]
        print(f"{lever:<12} mAP@0.5 {m['map50']:.3f}  mAP@0.5:0.95 {m['map50_95']:.3f}  sunglass AP50 "
              f"{m['per_class']['sunglass']['ap50']:.3f}  boxes>=0.4/photo {np.mean(at):.2f}  {seconds:.0f} s "
              f"({len(paths)} photos)", flush=True)


if __name__ == "__main__":
    main()
