"""`train-parser`, `evaluate-parser` and `segment`: the command-line face of the garment parser."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer


def _read(data: Path):
    from fashionlens.cli_common import fail, report_skipped
    from fashionlens.parse.dataset import read_masks

    try:
        dataset = read_masks(data)
    except (FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    report_skipped(dataset.skipped)
    if not len(dataset):
        fail(f"{data}: no usable photos with masks")
    return dataset


def _load(model: Path | None, runtime: str = "onnx"):
    from fashionlens.cli_common import fail
    from fashionlens.model_folder import ModelError
    from fashionlens.parse.inference import Parser

    try:
        return Parser(model, runtime=runtime)
    except (ModelError, ValueError) as exc:
        fail(str(exc))


def train_parser(
    data: Annotated[Path, typer.Argument(help="images/ + masks/ (one index PNG per photo) + labels.txt, as CCP, LIP and ATR; "
                                         "or a COCO file or folder with segmentations (category names as CCP's).")],
    out: Annotated[Path, typer.Option("--out", help="Model folder to write (rerun the same command to resume).")],
    backbone: Annotated[str, typer.Option(help="Registry backbone (efficientnet_lite0/1/2).")] = "efficientnet_lite0",
    input_size: Annotated[str, typer.Option(help="HEIGHTxWIDTH the photos are letterboxed to.")] = "384x256",
    epochs: Annotated[int, typer.Option(min=1)] = 14,
    views: Annotated[int, typer.Option(min=1, help="Cached augmented views per training photo (photo, mirror, crops).")] = 4,
    lr: Annotated[float, typer.Option()] = 2e-3,
    keep: Annotated[str, typer.Option(help="best: the epoch with the best validation mIoU, stopping early; last: run "
                                      "the whole schedule and keep its end.")] = "best",
    patience: Annotated[int, typer.Option(min=1, help="With --keep best: epochs without a better validation mIoU before stopping.")] = 6,
    time_budget: Annotated[Optional[float], typer.Option(help="Minutes of training after which to stop, keeping the epoch --keep names.")] = None,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """Train the garment parser (CCP's names, rare ones merged as recorded in the manifest)."""
    from fashionlens.cli_common import console, fail, report_skipped
    from fashionlens.parse.model import ParserConfig
    from fashionlens.parse.train import ParserTrainConfig, train_parser as run

    try:
        height, width = (int(v) for v in input_size.lower().split("x"))
    except ValueError:
        fail(f"--input-size must look like 384x256, not {input_size!r}")
    dataset = _read(data)
    config = ParserTrainConfig(epochs=epochs, views=views, lr=lr, keep=keep, patience=patience,
                               time_budget_minutes=time_budget, seed=seed)
    try:
        result = run(dataset, out, parser=ParserConfig(backbone=backbone, input_size=(height, width)), config=config,
                     progress=sys.stderr.isatty())
    except ValueError as exc:
        fail(str(exc))
    report_skipped(result["failures"])
    t = result["training"]
    v = result["metrics"]["validation"]
    console.print(f"kept epoch {t['kept_epoch']} of {t['epochs_run']} (best {t['best_epoch']}): validation garment-group mIoU "
                  f"{v['group_miou']:.4f}, mIoU {v['miou']:.4f} ({t['minutes']} min)")
    console.print(f"model written to [bold]{out}[/bold]; test it with: fashionlens evaluate-parser {out} {data} --part test --out REPORT")


def evaluate_parser(
    model: Annotated[Path, typer.Argument(help="Parser folder.")],
    data: Annotated[Path, typer.Argument(help="Photos with masks, as for train-parser.")],
    out: Annotated[Path, typer.Option("--out", help="Report folder (metrics.json, confusion.csv, worst overlays).")],
    part: Annotated[Optional[str], typer.Option(help="Only the train, validation or test part the training held out by file name.")] = None,
) -> None:
    """Pixel accuracy, mIoU overall, per class and per garment group, confusion matrix, overlays of the worst photos."""
    from fashionlens.cli_common import console, fail, report_skipped
    from fashionlens.holdout import PARTS
    from fashionlens.parse.evaluate import evaluate_parser as run

    parser = _load(model)
    dataset = _read(data)
    if part is not None:
        if part not in PARTS:
            fail(f"--part must be one of {', '.join(PARTS)}, not {part!r}")
        split = parser.model.manifest.get("data", {}).get("split", {})
        dataset = dataset.part(part, split.get("val_fraction", 0.1), split.get("test_fraction", 0.15))
    try:
        metrics, failures = run(parser, dataset, out, progress=sys.stderr.isatty())
    except ValueError as exc:
        fail(str(exc))
    report_skipped(failures)
    console.print(f"{metrics['images']} photos: pixel accuracy {metrics['pixel_accuracy']:.4f}, mIoU {metrics['miou']:.4f}, "
                  f"garment-group mIoU {metrics['group_miou']:.4f}")
    for name, iou in metrics["groups"].items():
        console.print(f"  {name:<10} IoU {iou:.3f}" if iou is not None else f"  {name:<10} (absent)")
    console.print(f"report written to [bold]{out}[/bold]")


def segment(
    paths: Annotated[list[str], typer.Argument(help="Photos, folders (recursive) or globs.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for <stem>.png label maps and labels.txt.")],
    model: Annotated[Optional[Path], typer.Option("--model", help="Parser folder; the shipped garment parser by default.")] = None,
    overlay: Annotated[bool, typer.Option("--overlay", help="Also write <stem>.overlay.jpg: the classes drawn over the photo.")] = False,
    runtime: Annotated[str, typer.Option(help="onnx or torch.")] = "onnx",
) -> None:
    """Label every pixel: DIR/<stem>.png at the photo's size, one byte per pixel indexing DIR/labels.txt."""
    from fashionlens.cli_common import console, image_paths, report_skipped
    from fashionlens.parse.evaluate import segment_files

    files = image_paths(paths, "photos to segment")
    parser = _load(model, runtime)
    written, failures = segment_files(parser, files, out, overlay_too=overlay, progress=sys.stderr.isatty())
    console.print(f"{len(written)} label maps written to [bold]{out}[/bold]")
    report_skipped(failures)
    if failures and not written:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("train-parser")(train_parser)
    app.command("evaluate-parser")(evaluate_parser)
    app.command("segment")(segment)
