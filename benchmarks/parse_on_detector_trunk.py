"""Could the parser share the detector's trunk? A semantic head (Panoptic FPN style) trained on the shipped
detector's frozen backbone and FPN (P3-P5, plus its stride-4 stage for edges), against the shipped parser, both
scored on clothing-parsing's validation and test photos at their own letterboxed input grids.

Sharing would make parsing cost a head instead of a second Lite0 pass; this measures what it costs in quality.

    python benchmarks/parse_on_detector_trunk.py [--views 2] [--epochs 30]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn import functional as F

from _shared import dataset as shared_dataset

from fashionlens.defaults import default_detector_dir
from fashionlens.detect.model_io import load_detector
from fashionlens.images import read_image_file
from fashionlens.letterbox import to_tensor
from fashionlens.parse import Parser, read_masks
from fashionlens.parse.labels import CCP_GROUPS, class_lut
from fashionlens.parse.labels import IGNORE
from fashionlens.parse.metrics import confusion, parsing_metrics
from fashionlens.parse.train import class_weights, make_view

CLASSES = list(CCP_GROUPS)
LEVELS = ("s1", "p3", "p4", "p5")


def _conv(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Head(nn.Module):
    def __init__(self, s1_channels: int, fpn_channels: int, size: tuple[int, int], channels: int = 64):
        super().__init__()
        self.size = size
        self.s1 = _conv(s1_channels, channels, 1)
        self.levels = nn.ModuleList(_conv(fpn_channels, channels) for _ in range(3))
        self.fuse, self.classify = _conv(channels, channels), nn.Conv2d(channels, len(CLASSES), 1)

    def forward(self, s1, p3, p4, p5):
        x = self.s1(s1)
        for conv, f in zip(self.levels, (p3, p4, p5), strict=True):
            x = x + F.interpolate(conv(f), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return F.interpolate(self.classify(self.fuse(x)), size=self.size, mode="bilinear", align_corners=False)


def _scores(cm: np.ndarray) -> str:
    m = parsing_metrics(cm, CLASSES)
    groups = ", ".join(f"{k} {v:.3f}" for k, v in m["groups"].items() if v is not None)
    return f"mIoU {m['miou']:.4f}, group mIoU {m['group_miou']:.4f} ({groups})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--views", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=30)
    args = ap.parse_args()
    torch.manual_seed(0)
    detector = load_detector(default_detector_dir())
    pyramid, size = detector.model.eval().backbone, tuple(detector.config.input_size)
    stage1 = {}
    pyramid.blocks[pyramid.block_of_stage[1]].register_forward_hook(lambda m, i, o: stage1.__setitem__("s1", o))
    data = read_masks(shared_dataset("clothing-parsing"))
    lut = class_lut(data.names, CCP_GROUPS)
    parser = Parser()

    def views_of(part: str, views: int, grid: tuple[int, int]):
        for i, item in enumerate(data.part(part).images):
            _, image = read_image_file(item.path)
            labels = Image.fromarray(lut[data.load_mask(item, image.size)])
            yield i, [make_view(image, labels, v, grid, 0, i) for v in range(views)]

    for part in ("validation", "test"):  # the shipped parser on its own grid
        cm = 0
        for _, ((boxed, target),) in views_of(part, 1, parser.input_size):
            cm = cm + confusion(target, parser._run(to_tensor(boxed, (0.5,) * 3, (0.5,) * 3)[None])[0][0], len(CLASSES))
        print(f"shipped parser, {part}: {_scores(cm)}", flush=True)

    def cache(part: str, views: int):
        x, y = {k: [] for k in LEVELS}, []
        for _, made in views_of(part, views, size):
            with torch.no_grad():
                out = pyramid(torch.stack([to_tensor(b, (0.5,) * 3, (0.5,) * 3) for b, _ in made]))
            for key, value in zip(LEVELS, (stage1["s1"], out["0"], out["1"], out["2"]), strict=True):
                x[key].append(value.half())
            y += [t for _, t in made]
        return {k: torch.cat(v) for k, v in x.items()}, torch.from_numpy(np.stack(y).astype(np.int64))

    start = time.time()
    (xtr, ytr), (xva, yva), (xte, yte) = cache("train", args.views), cache("validation", 1), cache("test", 1)
    print(f"detector features cached in {time.time() - start:.0f} s", flush=True)
    head = Head(xtr["s1"].shape[1], xtr["p3"].shape[1], size).to(memory_format=torch.channels_last)
    weights = class_weights(ytr.numpy().astype(np.uint8)[::args.views], len(CLASSES))
    n, batch = len(ytr) // args.views, 8
    optimizer = torch.optim.AdamW(head.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, 2e-3, total_steps=args.epochs * (n // batch), pct_start=0.05)

    def inputs(x, rows):
        return [x[k][rows].float().contiguous(memory_format=torch.channels_last) for k in LEVELS]

    def evaluate(x, y) -> str:
        head.eval()
        cm = 0
        with torch.no_grad():
            for s in range(0, len(y), 16):
                rows = list(range(s, min(len(y), s + 16)))
                cm = cm + confusion(y[rows].numpy(), head(*inputs(x, rows)).argmax(1).numpy().astype(np.uint8), len(CLASSES))
        return _scores(cm)

    rng = np.random.default_rng(0)
    start = time.time()
    for epoch in range(1, args.epochs + 1):
        head.train()
        order = rng.permutation(n)
        for s in range(n // batch):
            rows = sorted(int(i) * args.views + int(rng.integers(args.views)) for i in order[s * batch:(s + 1) * batch])
            loss = F.cross_entropy(head(*inputs(xtr, rows)), ytr[rows], weight=weights, ignore_index=IGNORE)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
    print(f"head on the detector's trunk, {args.epochs} epochs in {(time.time() - start) / 60:.1f} min")
    print(f"  validation: {evaluate(xva, yva)}")
    print(f"  test: {evaluate(xte, yte)}")


if __name__ == "__main__":
    main()
