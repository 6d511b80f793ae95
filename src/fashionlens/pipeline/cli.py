"""`fashionlens evaluate-pipeline`: the finished `analyze` output scored against true boxes and label maps."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

PART_HELP = "Only the train, validation or test part held out by file name (the detector's and parser's split)."


def evaluate_pipeline(
    photos: Annotated[Optional[list[str]], typer.Argument(help="Only these photos (files, folders or globs) of the data; default: all of it.")] = None,
    boxes: Annotated[Optional[Path], typer.Option("--boxes", help="Photos with true boxes (VOC, COCO, YOLO, polygons).")] = None,
    masks: Annotated[Optional[Path], typer.Option("--masks", help="Photos with label maps (images/, masks/, labels.txt as CCP).")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Report folder: metrics.json, index.html, worst/.")] = None,
    part: Annotated[Optional[str], typer.Option("--part", help=PART_HELP)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
) -> None:
    """Score what `analyze` returns, as a user sees it: precision, recall, F1 and duplicates at IoU 0.5 per kind
    against true boxes; garments found, mask IoU, type and colour against label maps."""
    from fashionlens.cli_common import console, fail, image_paths, report_skipped
    from fashionlens.holdout import PARTS
    from fashionlens.pipeline import Analyzer, PipelineConfig
    from fashionlens.pipeline.evaluate import evaluate_pipeline as run
    from fashionlens.runtime import small_ops_on_one_thread

    if boxes is None and masks is None:
        fail("give --boxes DATA, --masks DATA or both")
    if part is not None and part not in PARTS:
        fail(f"--part must be one of {', '.join(PARTS)}, not {part!r}")
    wanted = {p.name for p in image_paths(photos, "photos")} if photos else None
    box_data = _boxes(boxes, part, wanted) if boxes is not None else None
    mask_data = _masks(masks, part, wanted) if masks is not None else None
    small_ops_on_one_thread()
    report = run(Analyzer(PipelineConfig(similar_k=0)), box_data, mask_data, out, progress=sys.stderr.isatty())
    report_skipped(report.failures)
    if as_json:
        print(json.dumps(report.to_json()))
        return
    if report.boxes:
        o = report.boxes["overall"]
        print(f"{report.boxes['photos']} photos, {o['garments']} garments, {o['items']} items "
                      f"({o['items_per_photo']:.2f} a photo): precision {o['precision']:.3f}, recall {o['recall']:.3f}, "
                      f"F1 {o['f1']:.3f}, duplicates {o['duplicate_share']:.3%}, unlabelled kinds {o['unlabelled']}")
        for kind, m in report.boxes["per_class"].items():
            fig = " ".join(f"{k} {m[k]:.3f}" if m[k] is not None else f"{k} -" for k in ("precision", "recall", "f1"))
            print(f"  {kind:<10} {fig}  items {m['items']}, garments {m['garments']}, duplicates {m['duplicates']}")
    if report.masks:
        m = report.masks
        print(f"label maps, {m['photos']} photos: garments found {m['found']:.3f} of {m['garments']}, "
                      f"mask IoU {m['mask_iou'] or 0:.3f}, type top-1 {m['type_top1']:.3f} of {m['typed']}, "
                      f"colour family {m['colour']:.3f}")
        print("  found per kind: " + ", ".join(f"{k} {v}" for k, v in m["found_per_kind"].items()))
    if out is not None:
        console.print(f"report written to [bold]{out}[/bold]")


def _boxes(data: Path, part: str | None, wanted: set[str] | None):
    from fashionlens.cli_common import fail, report_skipped
    from fashionlens.detect.formats import read_dataset
    from fashionlens.detect.train import split_dataset

    try:
        dataset = read_dataset(data, progress=sys.stderr.isatty())
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    report_skipped(dataset.skipped)
    if part is not None:
        dataset = split_dataset(dataset, 0.1, 0.15)[part]
    if wanted is not None:
        dataset = dataset.subset([i for i, im in enumerate(dataset.images) if im.path.name in wanted])
    if not len(dataset):
        fail(f"{data}: no annotated photos to score")
    return dataset


def _masks(data: Path, part: str | None, wanted: set[str] | None):
    from dataclasses import replace

    from fashionlens.cli_common import fail, report_skipped
    from fashionlens.parse import read_masks

    try:
        dataset = read_masks(data)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    report_skipped(dataset.skipped)
    if part is not None:
        dataset = dataset.part(part)
    if wanted is not None:
        dataset = replace(dataset, images=[im for im in dataset.images if im.path.name in wanted])
    if not len(dataset):
        fail(f"{data}: no photos with label maps to score")
    return dataset


def register(app: typer.Typer) -> None:
    app.command("evaluate-pipeline")(evaluate_pipeline)
