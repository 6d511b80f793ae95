"""COCO box mAP with pycocotools, per class, with a PR curve and pictures of the worst misses to look at.

mAP@0.5 and mAP@0.5:0.95 are COCO's (101-point interpolated precision, up to 100 detections an image,
area range "all"); classes without ground truth are left out of the mean, as COCO does.
"""

from __future__ import annotations

import contextlib
import html
import io
import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fashionlens.atomic import atomic_path, write_text_atomic
from fashionlens.detect.detections import DetectionDataset, Detections
from fashionlens.detect.draw import draw_detections
from fashionlens.detect.formats.coco import coco_dict, to_coco_results
from fashionlens.detect.formats.output import save_image
from fashionlens.images import ImageError, load_image

GREEN, RED = (0, 200, 0), (230, 0, 0)


@dataclass
class ImageMisses:
    """At IoU 0.5 and `score_threshold`: ground-truth boxes no prediction found, and predictions matching nothing."""

    index: int
    missed: np.ndarray  # indices into the image's ground-truth boxes
    false_positives: np.ndarray  # indices into the image's predictions

    @property
    def count(self) -> int:
        return len(self.missed) + len(self.false_positives)


def _run_cocoeval(dataset: DetectionDataset, predictions: list[Detections]):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress and tables
        gt = COCO()
        gt.dataset = coco_dict(dataset)
        gt.createIndex()
        results = to_coco_results(predictions)
        if results:
            dt = gt.loadRes(results)
        else:  # loadRes cannot take an empty list
            dt = COCO()
            dt.dataset = {**gt.dataset, "annotations": []}
            dt.createIndex()
        evaluator = COCOeval(gt, dt, "bbox")
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
    return evaluator


def _mean_valid(values: np.ndarray) -> float | None:
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else None


def _positions(coco) -> dict[int, int]:
    """Annotation id -> position among its image's boxes (ids follow input order, image by image)."""
    seen: Counter[int] = Counter()
    positions = {}
    for ann in coco.dataset["annotations"]:
        positions[ann["id"]] = seen[ann["image_id"]]
        seen[ann["image_id"]] += 1
    return positions


def _misses(evaluator, score_threshold: float) -> list[ImageMisses]:
    """Per image, from COCOeval's own matching at IoU 0.5 (area "all"), keeping predictions above the threshold."""
    n_images, n_areas = len(evaluator.params.imgIds), len(evaluator.params.areaRng)
    gt_position, dt_position = _positions(evaluator.cocoGt), _positions(evaluator.cocoDt)
    misses = []
    for i in range(n_images):
        missed, false_positives = [], []
        for k in range(len(evaluator.params.catIds)):
            entry = evaluator.evalImgs[k * n_areas * n_images + i]  # area range 0 = "all"
            if entry is None:
                continue
            score = dict(zip(entry["dtIds"], entry["dtScores"], strict=True))
            for gt_id, matched in zip(entry["gtIds"], entry["gtMatches"][0], strict=True):
                if matched == 0 or score.get(int(matched), 0.0) < score_threshold:
                    missed.append(gt_position[gt_id])
            for dt_id, matched in zip(entry["dtIds"], entry["dtMatches"][0], strict=True):
                if matched == 0 and score[dt_id] >= score_threshold:
                    false_positives.append(dt_position[dt_id])
        misses.append(ImageMisses(i, np.array(sorted(missed), np.int64), np.array(sorted(false_positives), np.int64)))
    return misses


def evaluate_detections(dataset: DetectionDataset, predictions: list[Detections], out_dir: str | Path | None = None,
                        score_threshold: float = 0.3, worst: int = 20) -> dict:
    """COCO mAP of `predictions` (one `Detections` per dataset image, same order) against the dataset's boxes.

    Returns `{"map50", "map50_95", "per_class": {name: {"ap50", "ap50_95", "n"}}, "images"}`; AP is None
    for a class without ground truth. With `out_dir`, also writes metrics.json, pr_curve.png, the `worst`
    images with most misses at `score_threshold` under worst/ (ground truth green, predictions red) and
    an index.html linking them.
    """
    if not len(dataset):
        raise ValueError(f"{dataset.source or 'dataset'}: no images to evaluate")
    if len(predictions) != len(dataset):
        raise ValueError(f"{len(predictions)} predictions for {len(dataset)} images; pass one Detections per image")
    for i, detections in enumerate(predictions):
        if len(detections) and (detections.class_id.min() < 0 or detections.class_id.max() >= len(dataset.classes)):
            raise ValueError(f"{dataset.images[i].path}: predicted class id outside the {len(dataset.classes)} classes")
    evaluator = _run_cocoeval(dataset, predictions)
    precision = evaluator.eval["precision"][:, :, :, 0, -1]  # [iou, recall, class], area "all", 100 detections
    counts = np.bincount(np.concatenate([i.detections.class_id for i in dataset.images] or [np.zeros(0, np.int64)]),
                         minlength=len(dataset.classes))
    per_class = {name: {"ap50": _mean_valid(precision[0, :, k]), "ap50_95": _mean_valid(precision[:, :, k]),
                        "n": int(counts[k])} for k, name in enumerate(dataset.classes)}
    metrics = {"map50": max(float(evaluator.stats[1]), 0.0), "map50_95": max(float(evaluator.stats[0]), 0.0),
               "per_class": per_class, "images": len(dataset)}
    if out_dir is not None:
        out_dir = Path(out_dir)
        write_text_atomic(out_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n")
        plot_pr_curve(precision[0], evaluator.params.recThrs, dataset.classes, out_dir / "pr_curve.png")
        misses = _misses(evaluator, score_threshold)
        drawn = draw_worst(dataset, predictions, misses, out_dir / "worst", worst, score_threshold)
        write_text_atomic(out_dir / "index.html", _index_html(metrics, drawn, score_threshold))
    return metrics


def plot_pr_curve(precision: np.ndarray, recall: np.ndarray, classes: list[str], path: Path) -> None:
    """Precision against recall at IoU 0.5, one line per class plus their mean; `precision` is [recall, class]."""
    from matplotlib.figure import Figure  # the object API: no global pyplot state, no GUI backend

    figure = Figure(figsize=(7, 5), dpi=100)
    axes = figure.add_subplot()
    valid = precision[:, (precision > -1).any(axis=0)] if precision.size else precision
    for k, name in enumerate(classes):
        if (precision[:, k] > -1).any():
            axes.plot(recall, precision[:, k], linewidth=1, label=name)
    if valid.size:
        axes.plot(recall, valid.mean(axis=1), color="black", linewidth=2.5, label="mean")
    axes.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02), title="Precision-recall at IoU 0.5")
    axes.legend(fontsize=7, loc="lower left", ncol=2)
    axes.grid(alpha=0.3)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")


def draw_worst(dataset: DetectionDataset, predictions: list[Detections], misses: list[ImageMisses], out_dir: Path,
               limit: int, score_threshold: float) -> list[tuple[str, ImageMisses]]:
    """Draw the `limit` images with most misses: all ground truth green, predictions above the threshold red."""
    ranked = sorted((m for m in misses if m.count), key=lambda m: (-m.count, m.index))[:limit]
    for stale in out_dir.glob("[0-9][0-9][0-9]_*.jpg"):  # an earlier run's ranking would mislead
        stale.unlink()
    drawn = []
    for rank, miss in enumerate(ranked, 1):
        image = dataset.images[miss.index]
        try:
            picture = load_image(image.path)
        except ImageError:
            continue  # evaluation does not need the pixels; a drawing is simply left out
        shown = predictions[miss.index]
        if shown.confidence is not None:
            shown = shown[shown.confidence >= score_threshold]
        picture = draw_detections(picture, image.detections, dataset.classes, colour=GREEN)
        picture = draw_detections(picture, shown, dataset.classes, colour=RED)
        name = f"{rank:03d}_{image.path.stem}.jpg"
        save_image(picture, out_dir / name)
        drawn.append((f"worst/{name}", miss))
    return drawn


def _index_html(metrics: dict, drawn: list[tuple[str, ImageMisses]], score_threshold: float) -> str:
    def ap(value):
        return "–" if value is None else f"{value:.3f}"

    rows = "".join(f"<tr><td>{html.escape(name)}</td><td>{ap(m['ap50'])}</td><td>{ap(m['ap50_95'])}</td>"
                   f"<td>{m['n']}</td></tr>" for name, m in metrics["per_class"].items())
    pictures = "".join(f'<figure><a href="{html.escape(href)}"><img src="{html.escape(href)}" width="300"></a>'
                       f"<figcaption>{len(m.missed)} missed, {len(m.false_positives)} false positive(s)"
                       f"</figcaption></figure>" for href, m in drawn)
    return (f"<!doctype html><meta charset='utf-8'><title>Detection evaluation</title>"
            f"<style>body{{font-family:sans-serif}} figure{{display:inline-block;margin:4px}} "
            f"td,th{{padding:2px 8px;text-align:right}}</style>"
            f"<h1>Detection evaluation</h1><p>{metrics['images']} images: mAP@0.5 {metrics['map50']:.4f}, "
            f"mAP@0.5:0.95 {metrics['map50_95']:.4f} (<a href='metrics.json'>metrics.json</a>)</p>"
            f"<table><tr><th>class</th><th>AP50</th><th>AP50:95</th><th>boxes</th></tr>{rows}</table>"
            f"<h2>Precision-recall</h2><img src='pr_curve.png'>"
            f"<h2>Worst misses</h2><p>At IoU 0.5 and score &ge; {score_threshold}: ground truth green, "
            f"predictions red.</p>{pictures or '<p>none</p>'}\n")
