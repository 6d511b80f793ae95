"""`train-detector`, `detect` and `evaluate-detector`: the command-line face of the detector API."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

FormatOpt = Annotated[Optional[str], typer.Option("--format", help="voc, yolo, coco or polygons; detected from the layout when omitted.")]


def _read(data: Path, format: str | None, masks: bool = False):
    from fashionlens.cli_common import fail
    from fashionlens.detect.formats import FORMATS, read_dataset

    if format is not None and format not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)}, not {format!r}")
    try:
        return read_dataset(data, format=format, progress=sys.stderr.isatty(), masks=masks)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))


def _load(model: Path | None, runtime: str = "onnx"):
    from fashionlens.cli_common import fail
    from fashionlens.detect.inference import Detector
    from fashionlens.model_folder import ModelError

    try:
        return Detector(model, runtime=runtime)
    except (ModelError, ValueError) as exc:
        fail(str(exc))


def train_detector(
    data: Annotated[Path, typer.Argument(help="Annotated photos: VOC folder, YOLO folder, COCO JSON or polygon-JSON folder.")],
    out: Annotated[Path, typer.Option("--out", help="Model folder to write (rerun the same command to resume).")],
    format: FormatOpt = None,
    backbone: Annotated[str, typer.Option(help="Registry backbone (efficientnet_lite0/1/2).")] = "efficientnet_lite0",
    input_size: Annotated[str, typer.Option(help="HEIGHTxWIDTH the photos are letterboxed to.")] = "480x320",
    epochs: Annotated[int, typer.Option(min=1)] = 24,
    views: Annotated[int, typer.Option(min=1, help="Cached augmented views per training photo (photo, mirror, crops).")] = 4,
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
    lr: Annotated[float, typer.Option()] = 1e-3,
    patience: Annotated[int, typer.Option(min=1, help="Epochs without a better validation mAP@0.5 before stopping.")] = 6,
    time_budget: Annotated[Optional[float], typer.Option(help="Minutes of training after which to stop, keeping the best epoch.")] = None,
    extra: Annotated[Optional[list[Path]], typer.Option("--extra", help="More annotated photos for training only (their train and validation parts by file name); label maps such as CCP's become boxes of the data's classes through the CCP name table.")] = None,
    init: Annotated[Optional[Path], typer.Option("--init", help="Start from this detector folder's weights (same classes, backbone and input size): fine-tuning.")] = None,
    ema_decay: Annotated[float, typer.Option(min=0.0, max=1.0, help="Decay of the weight average that is validated and kept (0: the raw weights).")] = 0.998,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Train one detector for all classes; holds out validation (early stopping) and test parts by file name."""
    from fashionlens.cli_common import console, fail, report_skipped
    from fashionlens.detect.formats.garment_names import read_extra_boxes
    from fashionlens.detect.model import DetectorConfig
    from fashionlens.detect.train import DetectorTrainConfig, train_detector as run

    try:
        height, width = (int(v) for v in input_size.lower().split("x"))
    except ValueError:
        fail(f"--input-size must look like 480x320, not {input_size!r}")
    dataset = _read(data, format)
    report_skipped(dataset.skipped)
    if not len(dataset):
        fail(f"{data}: no usable annotated images")
    detector = DetectorConfig(classes=tuple(dataset.classes), backbone=backbone, input_size=(height, width))
    config = DetectorTrainConfig(epochs=epochs, views=views, batch_size=batch_size, lr=lr, patience=patience,
                                 time_budget_minutes=time_budget, ema_decay=ema_decay, seed=seed,
                                 init=str(init) if init else None)
    extra_sets = []
    for path in extra or []:
        try:
            extra_sets.append(read_extra_boxes(path, dataset.classes, progress=sys.stderr.isatty()))
        except (FileNotFoundError, ValueError) as exc:
            fail(str(exc))
        report_skipped(extra_sets[-1].skipped)
    try:
        result = run(dataset, out, detector=detector, config=config, extra=extra_sets, progress=sys.stderr.isatty())
    except ValueError as exc:
        fail(str(exc))
    report_skipped(result["failures"])
    t = result["training"]
    console.print(f"best epoch {t['best_epoch']} of {t['epochs_run']}: validation mAP@0.5 "
                  f"{result['metrics']['validation']['map50']:.4f} ({t['minutes']} min)")
    console.print(f"model written to [bold]{out}[/bold]; test it with: fashionlens evaluate-detector {out} {data} --part test --out REPORT")


def detect(
    paths: Annotated[list[str], typer.Argument(help="Images, folders (recursive) or globs.")],
    model: Annotated[Optional[Path], typer.Option("--model", help="Detector folder; the shipped garment detector by default.")] = None,
    min_score: Annotated[Optional[float], typer.Option("--min-score", min=0.0, max=1.0, help="Every class from this score (default: the detector's own per-class thresholds, as analyze and the service use).")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON line per image.")] = False,
    draw: Annotated[Optional[Path], typer.Option("--draw", help="Write each image with its boxes drawn into this folder.")] = None,
    batch_size: Annotated[int, typer.Option(min=1)] = 8,
    runtime: Annotated[str, typer.Option(help="onnx or torch.")] = "onnx",
) -> None:
    """Find garments in photos: boxes in the original image's pixels, with class and score."""
    from fashionlens.cli_common import console, image_paths, report_skipped
    from fashionlens.detect.draw import draw_to_folder

    files = image_paths(paths, "images to detect in")
    detector = _load(model, runtime)
    result = detector.detect(files, min_score=min_score, batch_size=batch_size, progress=not json_out and sys.stderr.isatty())
    for item in result.images:
        d = item.detections
        found = [{"label": detector.classes[c], "score": round(float(s), 4), "box": [round(float(v), 1) for v in box]}
                 for box, c, s in zip(d.xyxy, d.class_id, d.confidence, strict=True)]
        if json_out:
            print(json.dumps({"image": str(item.path), "width": item.width, "height": item.height, "detections": found}))
        else:
            print(f"{item.path}\t" + (", ".join(f"{f['label']} {f['score']:.2f}" for f in found) or "nothing found"))
    if draw is not None:
        draw_to_folder([(item.path, item.detections) for item in result.images], draw, classes=detector.classes, progress=False)
        console.print(f"drawings written to [bold]{draw}[/bold]")
    report_skipped(result.failures)
    if result.failures and not result.images:
        raise typer.Exit(1)


def evaluate_detector(
    model: Annotated[Path, typer.Argument(help="Detector folder.")],
    data: Annotated[Path, typer.Argument(help="Annotated photos in any supported format.")],
    out: Annotated[Path, typer.Option("--out", help="Report folder (metrics.json, pr_curve.png, worst misses, index.html).")],
    format: FormatOpt = None,
    part: Annotated[Optional[str], typer.Option(help="Only the train, validation or test part the training held out by file name.")] = None,
) -> None:
    """COCO mAP@0.5 and mAP@0.5:0.95, overall and per class, with a PR curve and the worst misses."""
    from fashionlens.cli_common import console, fail, report_skipped
    from fashionlens.detect.train import PARTS, split_dataset

    detector = _load(model)
    dataset = _read(data, format)
    report_skipped(dataset.skipped)
    if part is not None:
        if part not in PARTS:
            fail(f"--part must be one of {', '.join(PARTS)}, not {part!r}")
        split = detector.model.manifest.get("data", {}).get("split", {})
        dataset = split_dataset(dataset, split.get("val_fraction", 0.1), split.get("test_fraction", 0.15))[part]
    try:
        metrics, failures = detector.evaluate(dataset, out, progress=sys.stderr.isatty())
    except ValueError as exc:
        fail(str(exc))
    report_skipped(failures)
    console.print(f"{len(dataset)} images: mAP@0.5 {metrics['map50']:.4f}, mAP@0.5:0.95 {metrics['map50_95']:.4f}")
    for name, m in metrics["per_class"].items():
        if m.get("ap50") is not None:
            console.print(f"  {name:<10} AP50 {m['ap50']:.3f}  AP {m['ap50_95']:.3f}  ({m['n']} boxes)")
    console.print(f"report written to [bold]{out}[/bold]")


def crop(
    data: Annotated[list[str], typer.Argument(help="Annotated data (VOC/YOLO folder, COCO JSON, polygon folder); with --detect, photos, folders or globs.")],
    out: Annotated[Path, typer.Option("--out", help="Folder to write <class>/<image>_<n>.jpg into.")],
    padding: Annotated[float, typer.Option(min=0.0, help="Extra margin on each side, as a fraction of the box size (clipped to the image).")] = 0.0,
    format: FormatOpt = None,
    detect: Annotated[bool, typer.Option("--detect", help="Crop what the detector finds instead of annotated boxes.")] = False,
    model: Annotated[Optional[Path], typer.Option("--model", help="Detector folder for --detect (default: the shipped one).")] = None,
    min_score: Annotated[Optional[float], typer.Option("--min-score", min=0.0, max=1.0, help="With --detect: every class from this score (default: the detector's own per-class thresholds).")] = None,
    part: Annotated[Optional[str], typer.Option(help="Only the photos of this part held out by file name as the detector holds them out (10% validation, 15% test): train, validation, test or trainval.")] = None,
    mask: Annotated[Optional[str], typer.Option("--mask", help="white|transparent: outside each object's mask (COCO "
                                                "polygons or RLE, label maps) the crop is white (JPEG) or transparent (PNG); "
                                                "objects without a mask are reported and skipped.")] = None,
    square: Annotated[bool, typer.Option("--square", help="Pad each crop to a square on white, as the analysis "
                                         "pipeline's crops are, so a classifier's centre crop keeps the whole object.")] = False,
) -> None:
    """Cut every annotated (or detected) object out into a folder per class, for training on single garments."""
    from rich.table import Table

    from fashionlens.cli_common import console, fail, image_paths, report_skipped
    from fashionlens.detect.crop import MASK_MODES, crop_objects

    if mask is not None and mask not in MASK_MODES:
        fail(f"--mask must be one of {', '.join(MASK_MODES)}, not {mask!r}")
    if detect:
        files = image_paths(data, "images to crop")
        detector = _load(model)
        result = detector.detect(files, min_score=min_score, progress=sys.stderr.isatty())
        classes, skipped = detector.classes, result.failures
        source = [(im.path, im.detections) for im in result.images]
    else:
        if len(data) != 1:
            fail("give one annotated dataset (or use --detect with photos)")
        dataset = _read(Path(data[0]), format, masks=mask is not None)
        classes, skipped, source = dataset.classes, dataset.skipped, dataset
        if part is not None:
            from fashionlens.detect.train import PARTS, split_dataset

            if part not in (*PARTS, "trainval"):
                fail(f"--part must be one of {', '.join(PARTS)} or trainval, not {part!r}")
            parts = split_dataset(dataset, 0.1, 0.15)
            source = parts["train" if part == "trainval" else part]
            if part == "trainval":
                source.images += parts["validation"].images
    try:
        report = crop_objects(source, out, padding=padding, classes=classes, mask=mask, square=square)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    report_skipped(skipped + report.skipped)
    table = Table(title=f"crops in {out}")
    table.add_column("class")
    table.add_column("crops", justify="right")
    for name in classes:
        table.add_row(name, str(report.counts.get(name, 0)))
    table.add_row("[bold]total[/bold]", f"[bold]{len(report.written)}[/bold]")
    console.print(table)
    if not report.written:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("train-detector")(train_detector)
    app.command("detect")(detect)
    app.command("evaluate-detector")(evaluate_detector)
    app.command("crop")(crop)
