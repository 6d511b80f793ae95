"""Can the parser's own scores be read better, without retraining? On clothing-parsing's validation and test photos:
plain argmax; per-class logit offsets tuned on the validation photos (coordinate ascent on group mIoU + mIoU/4);
the garment group chosen first by summed probability; and, with --second PARSER, the mean of two parsers'
probabilities. Scores are at the photo's pixels, as `evaluate-parser` counts them.

    python benchmarks/parse_decisions.py [--model PARSER] [--second PARSER]
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from PIL import Image

from _shared import dataset as shared_dataset

from fashionlens.images import read_image_file
from fashionlens.letterbox import letterbox, to_tensor
from fashionlens.parse import Parser, read_masks
from fashionlens.parse.labels import SCORE_GROUPS, class_lut
from fashionlens.parse.metrics import confusion, parsing_metrics


@torch.inference_mode()
def probabilities(parser: Parser, part) -> list[np.ndarray]:
    """Softmax per class on the parser's grid, unpadded, for each photo of the part."""
    out = []
    for item in part.images:
        _, image = read_image_file(item.path)
        boxed, scale = letterbox(image, parser.input_size)
        pre = parser.model.preprocess
        p = parser.model.model.eval()(to_tensor(boxed, pre.mean, pre.std)[None]).softmax(1)[0]
        out.append(p[:, :max(1, round(image.height * scale)), :max(1, round(image.width * scale))].numpy())
    return out


def scores(probs: list[np.ndarray], truths: list[np.ndarray], classes: list[str], decide) -> dict:
    n = len(classes)
    cm = np.zeros((n, n), np.int64)
    for p, t in zip(probs, truths, strict=True):
        grid = Image.fromarray(decide(p).astype(np.uint8))
        cm += confusion(t, np.asarray(grid.resize((t.shape[1], t.shape[0]), Image.Resampling.NEAREST)), n)
    return parsing_metrics(cm, classes)


def tune_offsets(probs, truths, classes) -> np.ndarray:
    """Per-class log-probability offsets that raise validation group mIoU (plus a quarter of mIoU)."""
    small = [np.asarray(Image.fromarray(t).resize((p.shape[2], p.shape[1]), Image.Resampling.NEAREST))
             for p, t in zip(probs, truths, strict=True)]
    logs = [np.log(p + 1e-6) for p in probs]
    offsets = np.zeros(len(classes), np.float32)

    def objective(o):
        m = scores(logs, small, classes, lambda lp: (lp + o[:, None, None]).argmax(0))
        return m["group_miou"] + 0.25 * m["miou"]

    best = objective(offsets)
    for _ in range(2):
        for c in range(len(classes)):
            for step in (-1.0, -0.5, -0.25, 0.25, 0.5, 1.0):
                trial = offsets.copy()
                trial[c] += step
                if (value := objective(trial)) > best + 1e-4:
                    best, offsets = value, trial
    return offsets


def line(name: str, m: dict) -> str:
    groups = ", ".join(f"{k} {v:.3f}" for k, v in m["groups"].items() if v is not None)
    return f"  {name:<28} group mIoU {m['group_miou']:.4f}  mIoU {m['miou']:.4f}  ({groups})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=None, help="parser folder (default: the shipped one)")
    ap.add_argument("--second", default=None, help="a second parser folder to average with")
    args = ap.parse_args()
    data = read_masks(shared_dataset("clothing-parsing"))
    parser = Parser(args.model, runtime="torch")
    classes = list(parser.classes)
    groups = [[classes.index(m) for m in members] for members in SCORE_GROUPS.values()]
    grouped = {i for g in groups for i in g}
    groups += [[i] for i in range(len(classes)) if i not in grouped]
    lut = class_lut(data.names, parser.model.config.groups)
    parts = {name: data.part(name) for name in ("validation", "test")}
    truths = {name: [lut[part.load_mask(item, read_image_file(item.path)[1].size)] for item in part.images]
              for name, part in parts.items()}
    probs = {name: probabilities(parser, part) for name, part in parts.items()}
    offsets = tune_offsets(probs["validation"], truths["validation"], classes)
    print("offsets tuned on validation: " + ", ".join(f"{c} {o:+.2f}" for c, o in zip(classes, offsets, strict=True) if o))

    def group_first(p):
        mass = np.stack([p[g].sum(0) for g in groups])
        boosted = p.copy()
        for gi, members in enumerate(groups):
            boosted[members] += 10 * mass[gi]
        return boosted.argmax(0)

    rules = {"argmax": lambda p: p.argmax(0),
             "tuned offsets": lambda p: (np.log(p + 1e-6) + offsets[:, None, None]).argmax(0),
             "group first": group_first}
    second = Parser(args.second, runtime="torch") if args.second else None
    for name, part in parts.items():
        print(f"{name} ({len(part)} photos)")
        for rule, decide in rules.items():
            print(line(rule, scores(probs[name], truths[name], classes, decide)))
        if second is not None:
            mean = [(a + b) / 2 for a, b in zip(probs[name], probabilities(second, part), strict=True)]
            print(line("mean of the two parsers", scores(mean, truths[name], classes, lambda p: p.argmax(0))))


if __name__ == "__main__":
    main()
