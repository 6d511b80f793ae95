"""`evaluate_pipeline`: the finished output of `Analyzer.analyze` scored as a user sees it, not a model's ranking.

Against true boxes: precision, recall and F1 at IoU 0.5 per kind and overall, duplicates (a second item on a
garment already shown) and items per photo (`pipeline.scoring`). Against label maps (CCP's layout): the share of
true garments found, their mask IoU, `type` top-1 and whether the first colour's family is that of the true
pixels. The photos with most errors are drawn (true boxes green, items red) beside an index.html.
"""

from __future__ import annotations

import html
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fashionlens.atomic import write_text_atomic
from fashionlens.data.samples import SkippedInput
from fashionlens.detect.detections import DetectionDataset, Detections
from fashionlens.images import ImageError, read_image_file
from fashionlens.pipeline.scoring import PhotoScore, Tally, score_photo
from fashionlens.progress import progress_bar

GREEN, RED = (0, 200, 0), (230, 0, 0)
MIN_SHARE = 0.02  # a true garment in a label map counts when it covers this share of the photo


@dataclass
class PipelineReport:
    boxes: dict | None = None
    masks: dict | None = None
    operating_point: dict = field(default_factory=dict)
    failures: list[SkippedInput] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"boxes": self.boxes, "masks": self.masks, "operating_point": self.operating_point,
                "failures": [{"image": f.path, "reason": f.reason} for f in self.failures]}


def evaluate_pipeline(analyzer, boxes: DetectionDataset | None = None, masks=None, out_dir: str | Path | None = None,
                      *, worst: int = 20, progress: bool = False) -> PipelineReport:
    """Score `analyzer` on annotated photos: `boxes` (any box format), `masks` (a `MaskDataset`), or both."""
    report = PipelineReport(operating_point=analyzer.models.get("pipeline", {}))
    drawn = []
    if boxes is not None:
        report.boxes, drawn = _score_boxes(analyzer, boxes, report.failures, out_dir, worst, progress)
    if masks is not None:
        report.masks = _score_masks(analyzer, masks, report.failures, progress)
    if out_dir is not None:
        out_dir = Path(out_dir)
        write_text_atomic(out_dir / "metrics.json", json.dumps(report.to_json(), indent=2) + "\n")
        write_text_atomic(out_dir / "index.html", _index_html(report, drawn))
    return report


def _score_boxes(analyzer, dataset: DetectionDataset, failures: list, out_dir, worst: int, progress: bool):
    tally, photos = Tally(), []
    known = set(dataset.classes)
    with progress_bar("analyse", len(dataset), progress) as advance:
        for image in dataset.images:
            try:
                _, picture = read_image_file(image.path)
                result = analyzer.analyze(picture)
            except ImageError as exc:
                failures.append(SkippedInput(str(image.path), exc.reason))
                advance(1)
                continue
            truth = image.detections
            scored = score_photo([g.label for g in result.items], [g.score for g in result.items],
                                 [g.box for g in result.items], [dataset.classes[c] for c in truth.class_id],
                                 truth.xyxy, known)
            tally.add(scored)
            photos.append((image, picture, result, scored))
            advance(1)
    figures = tally.report(dataset.classes)
    drawn = _draw_worst(photos, Path(out_dir) / "worst", worst, dataset.classes) if out_dir is not None else []
    return figures, drawn


def _draw_worst(photos: list, out_dir: Path, limit: int, classes: list[str]) -> list[tuple[str, PhotoScore]]:
    from fashionlens.detect.draw import draw_detections
    from fashionlens.detect.formats.output import save_image

    for stale in out_dir.glob("[0-9][0-9][0-9]_*.jpg"):
        stale.unlink()
    ranked = sorted((p for p in photos if p[3].errors), key=lambda p: -p[3].errors)[:limit]
    names = sorted({g.label for *_, result, _ in ranked for g in result.items} | set(classes))
    drawn = []
    for rank, (image, picture, result, scored) in enumerate(ranked, 1):
        shown = Detections(np.array([g.box for g in result.items], np.float32).reshape(-1, 4),
                           [names.index(g.label) for g in result.items], [g.score for g in result.items])
        picture = draw_detections(picture, image.detections, classes, colour=GREEN)
        picture = draw_detections(picture, shown, names, colour=RED)
        name = f"{rank:03d}_{image.path.stem}.jpg"
        save_image(picture, out_dir / name)
        drawn.append((f"worst/{name}", scored))
    return drawn


def _score_masks(analyzer, dataset, failures: list, progress: bool) -> dict:
    """Found (mask or box IoU >= 0.4, one to one), mask IoU, type top-1 and colour family of CCP-style garments."""
    from fashionlens.colors import named_colors
    from fashionlens.detect.formats.label_masks import label_parts
    from fashionlens.parse.labels import class_lut
    from fashionlens.taxonomy import LABEL_OF_PARSER_CLASS
    from fashionlens.taxonomy_types import type_of

    if analyzer.parser is None:
        raise ValueError("scoring against label maps needs the pipeline's garment parser")
    parser_classes = analyzer.parser.classes
    lut = class_lut(dataset.names, analyzer.parser.model.config.groups)
    total = found = typed = type_right = colour_right = 0
    ious, kinds, kinds_found = [], Counter(), Counter()
    with progress_bar("analyse", len(dataset), progress) as advance:
        for item in dataset.images:
            advance(1)
            try:
                _, image = read_image_file(item.path)
            except ImageError as exc:
                failures.append(SkippedInput(str(item.path), exc.reason))
                continue
            source = dataset.load_mask(item, image.size)
            labels = lut[source]
            truths = []
            for name in LABEL_OF_PARSER_CLASS:
                for part in label_parts(labels, parser_classes.index(name),
                                        min_area=int(np.ceil(MIN_SHARE * labels.size))):
                    truths.append((part, type_of(dataset.names[int(np.bincount(source[part]).argmax())]), name))
                    kinds[name] += 1
            total += len(truths)
            items = analyzer.analyze(image).items
            if not truths or not items:
                continue
            mask, pairs = match_garments([m for m, *_ in truths], [g.box for g in items], [g.mask for g in items])
            for t, p in pairs:
                (true_mask, true_type, kind), g = truths[t], items[p]
                found += 1
                kinds_found[kind] += 1
                ious.append(mask[t, p])
                if true_type is not None:
                    typed += 1
                    said = g.attributes.get("type")
                    type_right += bool(said) and said[0].label == true_type
                true_colour = named_colors(image, mask=true_mask)[0]
                colour_right += bool(g.colors) and _family(g.colors[0]) == _family(true_colour)
    return {"photos": len(dataset), "garments": total, "found": found / max(1, total),
            "mask_iou": float(np.mean(ious)) if ious else None, "typed": typed,
            "type_top1": type_right / max(1, typed), "colour": colour_right / max(1, found),
            "found_per_kind": {k: f"{kinds_found[k]}/{n}" for k, n in kinds.most_common()}}


def match_garments(truths: list[np.ndarray], boxes, masks) -> tuple[np.ndarray, list[tuple[int, int]]]:
    """True garment masks paired one to one with items (their `boxes` and `masks`, None where an item has none)
    for the largest total of max(mask IoU, box IoU), as instance-mask evaluations pair them; a pair counts as
    found from 0.4. Returns the mask IoUs and the pairs."""
    from scipy.optimize import linear_sum_assignment

    from fashionlens.boxes import box_iou
    from fashionlens.masks import mask_box, mask_iou

    if not truths or not len(boxes):
        return np.zeros((len(truths), len(boxes))), []
    box = box_iou([mask_box(m) for m in truths], boxes)
    mask = np.array([[mask_iou(m, item) if item is not None else 0.0 for item in masks] for m in truths])
    score = np.maximum(box, mask)
    return mask, [(t, p) for t, p in zip(*linear_sum_assignment(score, maximize=True), strict=True) if score[t, p] >= 0.4]


def _family(colour) -> str:
    return getattr(colour, "family", colour.name)


def _index_html(report: PipelineReport, drawn: list[tuple[str, PhotoScore]]) -> str:
    def num(value, digits=3):
        return "–" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    sections = []
    if report.boxes:
        columns = ("items", "true", "false", "duplicates", "unlabelled", "garments", "found", "precision", "recall",
                   "f1")
        rows = "".join(f"<tr><td>{html.escape(k)}</td>" + "".join(f"<td>{num(v[c])}</td>" for c in columns) + "</tr>"
                       for k, v in [("all", report.boxes["overall"]), *report.boxes["per_class"].items()])
        head = "".join(f"<th>{c}</th>" for c in ("kind", *columns))
        sections.append(f"<h2>Items against true boxes (IoU 0.5), {report.boxes['photos']} photos</h2>"
                        f"<table><tr>{head}</tr>{rows}</table>")
    if report.masks:
        sections.append("<h2>Garments against label maps</h2><p>" + ", ".join(
            f"{html.escape(k)} {num(v)}" for k, v in report.masks.items()) + "</p>")
    point = html.escape(json.dumps(report.operating_point))
    pictures = "".join(f'<figure><a href="{html.escape(href)}"><img src="{html.escape(href)}" width="260"></a>'
                       f"<figcaption>{s.found.count(False)} missed, "
                       f"{sum(i.outcome == 'false' for i in s.items)} false, "
                       f"{sum(i.outcome == 'duplicate' for i in s.items)} duplicate</figcaption></figure>"
                       for href, s in drawn)
    return ("<!doctype html><meta charset='utf-8'><title>Pipeline evaluation</title>"
            "<style>body{font-family:sans-serif} figure{display:inline-block;margin:4px} "
            "td,th{padding:2px 8px;text-align:right}</style><h1>Pipeline evaluation</h1>"
            f"<p>Operating point: <code>{point}</code></p>{''.join(sections)}"
            "<h2>Photos with most errors</h2><p>True boxes green, items red.</p>"
            f"{pictures or '<p>none</p>'}\n")
