"""Scoring a parser on photos with masks (report folder), and writing label maps for photos (`segment`)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
from PIL import Image

from fashionlens.atomic import write_text_atomic
from fashionlens.data.samples import SkippedInput
from fashionlens.detect.formats.output import save_image
from fashionlens.images import ImageError, read_image_file
from fashionlens.model_folder import write_json_atomic
from fashionlens.parse.dataset import MaskDataset
from fashionlens.parse.inference import Parser
from fashionlens.parse.labels import class_lut
from fashionlens.parse.metrics import confusion, parsing_metrics
from fashionlens.progress import progress_bar

WORST = 6  # photos drawn in the report


def class_colours(n: int) -> np.ndarray:
    """A fixed, distinct colour per class; background black."""
    rng = np.random.default_rng(7)
    colours = rng.integers(40, 256, size=(n, 3)).astype(np.uint8)
    colours[0] = 0
    return colours


def overlay(image: Image.Image, labels: np.ndarray, alpha: float = 0.55) -> Image.Image:
    colours = Image.fromarray(class_colours(int(labels.max()) + 1 if labels.size else 1)[labels])
    shown = Image.blend(image.convert("RGB"), colours, alpha)
    return Image.composite(shown, image.convert("RGB"), Image.fromarray((labels > 0).astype(np.uint8) * 255))


def evaluate_parser(parser: Parser, dataset: MaskDataset, out_dir: str | Path | None = None, *,
                    progress: bool = False) -> tuple[dict, list[SkippedInput]]:
    """Metrics over all photos pooled in one confusion matrix; the report names the worst photos by garment mIoU."""
    groups = parser.model.config.groups
    lut = class_lut(dataset.names, groups, dataset.source)
    n = len(parser.classes)
    total = np.zeros((n, n), np.int64)
    failures: list[SkippedInput] = []
    scored = []
    with progress_bar("parsing", len(dataset), progress) as advance:
        for item in dataset.images:
            advance()
            try:
                _, image = read_image_file(item.path)
                truth = lut[dataset.load_mask(item, image.size)]
            except (ImageError, ValueError) as exc:
                failures.append(SkippedInput(str(item.path), getattr(exc, "reason", str(exc))))
                continue
            cm = confusion(truth, parser.parse_image(image).photo_labels(), n)
            total += cm
            scored.append((parsing_metrics(cm, parser.classes)["group_miou"], item, image, truth))
    if not scored:
        raise ValueError(f"{dataset.source}: no photo could be scored")
    metrics = {"images": len(scored), **parsing_metrics(total, parser.classes)}
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / "metrics.json", metrics)
        with open(out / "confusion.csv", "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(["truth \\ predicted", *parser.classes])
            writer.writerows([name, *row] for name, row in zip(parser.classes, total.tolist(), strict=True))
        worst = sorted(scored, key=lambda s: s[0])[:WORST]
        rows = []
        for score, item, image, truth in worst:
            predicted = parser.parse_image(image).photo_labels()
            side = Image.new("RGB", (image.width * 2, image.height))
            side.paste(overlay(image, truth), (0, 0))
            side.paste(overlay(image, predicted), (image.width, 0))
            name = f"worst_{item.path.stem}.jpg"
            save_image(side, out / name)
            rows.append(f"<figure><img src='{name}'><figcaption>{item.path.name}: garment mIoU {score:.3f} "
                        f"(truth left, parser right)</figcaption></figure>")
        write_text_atomic(out / "index.html", "<!doctype html><meta charset='utf-8'><title>parser report</title>"
                          f"<h1>mIoU {metrics['miou']:.4f}, garment groups {metrics['group_miou']:.4f}, pixel accuracy "
                          f"{metrics['pixel_accuracy']:.4f} ({len(scored)} photos)</h1>" + "".join(rows))
    return metrics, failures


def segment_files(parser: Parser, paths: list[Path], out_dir: str | Path, *, overlay_too: bool = False,
                  progress: bool = False) -> tuple[list[Path], list[SkippedInput]]:
    """`<stem>.png` (the photo's size, one byte per pixel) per readable photo, and `labels.txt` naming the bytes."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out / "labels.txt", "".join(f"{name}\n" for name in parser.classes))
    written, failures = [], []
    with progress_bar("segmenting", len(paths), progress) as advance:
        for path in paths:
            advance()
            try:
                _, image = read_image_file(path)
            except ImageError as exc:
                failures.append(SkippedInput(str(path), exc.reason))
                continue
            labels = parser.parse_image(image).photo_labels()
            target = out / f"{path.stem}.png"
            save_image(Image.fromarray(labels, mode="L"), target)
            if overlay_too:
                save_image(overlay(image, labels), out / f"{path.stem}.overlay.jpg")
            written.append(target)
    return written, failures
