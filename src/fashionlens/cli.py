"""The `fashionlens` command: a thin wrapper over the Python API, one command per operation."""

from __future__ import annotations

import functools
import inspect
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from fashionlens.cli_common import (DataArg, ImageColOpt, LabelsOpt, MapOpt, SplitColOpt, TaskOpt, WhereOpt, console, fail,
                                    image_paths, load_data, report_skipped)

app = typer.Typer(help="Turn fashion and product photos into structured catalogue data.", no_args_is_help=True,
                  pretty_exceptions_enable=False)


def _print_version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"fashionlens {version('fashionlens')}")
        raise typer.Exit()


@app.callback()
def _main(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                                help="Print the installed version and exit.")] = False) -> None:
    """Turn fashion and product photos into structured catalogue data."""

TtaOpt = Annotated[Optional[bool], typer.Option("--tta/--no-tta", help="Average each image with its mirror (default: as the model was trained to predict).", show_default=False)]


def _metrics_table(title: str, metrics: dict) -> Table:
    table = Table(title=title)
    for column in ("task", "accuracy", "top-3", "macro-F1", "images"):
        table.add_column(column, justify="left" if column == "task" else "right")
    for task, m in metrics.items():
        table.add_row(task, f"{m['accuracy']:.4f}", f"{m['top3']:.4f}", f"{m['macro_f1']:.4f}", str(m["n"]))
    return table


ScoreWhereOpt = Annotated[Optional[list[str]], typer.Option("--score-where", help="Hold out and score only the rows where COLUMN=VALUE[,VALUE] (repeatable); the other rows always train.")]


def _training_options(
    labels: LabelsOpt = None,
    image_column: ImageColOpt = "image",
    task: TaskOpt = None,
    where: WhereOpt = None,
    map: MapOpt = None,
    split_column: SplitColOpt = None,
    score_where: ScoreWhereOpt = None,
    recipe: Annotated[str, typer.Option(help="auto: pick the settings by 3-fold cross-validation inside the training images (printed, saved in the manifest and the report); or a named recipe: classic (AdamW linear heads on the last stage, stopped early), logistic, colour-logistic, colour-mlp. Flags given explicitly override the recipe's.")] = "auto",
    time_budget: Annotated[Optional[float], typer.Option(help="Seconds for auto's search (default: 60 + 0.05 per image); candidates not started by then are skipped.")] = None,
    mode: Annotated[str, typer.Option(help="linear: heads on cached frozen features; finetune: last blocks train too.")] = "linear",
    backbone: Annotated[str, typer.Option(help="Registry name (efficientnet_lite0/1/2) or any timm model name.")] = "efficientnet_lite1",
    weights: Annotated[Optional[Path], typer.Option(help="Local .safetensors backbone weights.")] = None,
    pool_stages: Annotated[Optional[str], typer.Option(help="Also pool these backbone feature stages, e.g. 1,2,3,4 (helps colour); '' for none. Default: the recipe's.")] = None,
    colour_bins: Annotated[Optional[int], typer.Option(help="Append a foreground colour histogram, N bins per channel (e.g. 8; 0: none). Default: the recipe's.")] = None,
    colour_space: Annotated[Optional[str], typer.Option(help="Colour histogram channels: rgb or hsv. Default: the recipe's.")] = None,
    colour_sqrt: Annotated[Optional[bool], typer.Option("--colour-sqrt/--no-colour-sqrt", help="Square roots of the colour histogram's shares: a small patch of a telling colour weighs more against the background's. Default: the recipe's.", show_default=False)] = None,
    resize: Annotated[str, typer.Option(help="crop (centre crop) or pad (letterbox on white, for product photos).")] = "crop",
    image_size: Annotated[Optional[int], typer.Option(help="Square input size in pixels instead of the backbone's (e.g. 128 for small thumbnails, 280); saved with the model.")] = None,
    hidden: Annotated[Optional[int], typer.Option(help="Hidden width of each head (0: linear head). Default: the recipe's.")] = None,
    head_fit: Annotated[Optional[str], typer.Option(help="adamw: heads trained for --epochs with dropout; logistic: each linear head solved as an L2 logistic regression (small data sets: more accurate, a fraction of the CPU). Default: the recipe's.")] = None,
    head_c: Annotated[float, typer.Option(help="Inverse L2 penalty of --head-fit logistic (smaller: stronger).")] = 0.1,
    standardize: Annotated[Optional[bool], typer.Option("--standardize/--no-standardize", help="Heads see each feature standardised by its training mean and deviation (helps with --pool-stages and --colour-bins, whose scales differ). Default: the recipe's.", show_default=False)] = None,
    dropout: Annotated[float, typer.Option(help="Dropout on the hidden layer of each head.")] = 0.5,
    input_dropout: Annotated[float, typer.Option(help="Dropout on the features going into each head.")] = 0.2,
    epochs: Annotated[Optional[int], typer.Option(help="Of the mode's own training. Default: the recipe's, else 300 (linear), 6 (finetune, whose warm-start heads keep the linear defaults).")] = None,
    lr: Annotated[Optional[float], typer.Option(help="Default: 2e-3 (linear), 3e-4 (finetune).")] = None,
    patience: Annotated[Optional[int], typer.Option(min=1, help="Epochs without a better validation score before stopping. Default: 30 (linear), 3 (finetune).")] = None,
    batch_size: Annotated[int, typer.Option()] = 32,
    label_smoothing: Annotated[float, typer.Option(help="Label smoothing of every task's loss (0 to 1).")] = 0.1,
    finetune_blocks: Annotated[int, typer.Option(help="Backbone stages to train in finetune mode.")] = 2,
    freeze_norm: Annotated[bool, typer.Option(help="Finetune mode: keep batch-norm statistics fixed (their scale and shift still train), so the warm-started heads keep their features.")] = False,
    colour_jitter: Annotated[float, typer.Option(help="Finetune mode: brightness/contrast/saturation jitter; 0 when a task is the colour.")] = 0.2,
    tta: Annotated[bool, typer.Option(help="Test-time flips: the model predicts on each image averaged with its mirror (saved with it; also picks the best fine-tuning epoch). The report adds the scores without them.")] = False,
    validation: Annotated[Optional[float], typer.Option(help="Validation fraction when the data has no validation split; 0: linear heads train all their epochs and keep the last. Default: 0 with a recipe (its heads fit on every training image; a given validation split is only scored), 0.15 with --recipe classic.")] = None,
    min_class_count: Annotated[int, typer.Option(help="Drop classes with fewer images.")] = 2,
    balance: Annotated[Optional[bool], typer.Option("--balance/--no-balance", help="Balanced class weights (macro recall); --no-balance favours plain accuracy. Default: the recipe's (balanced, except colour-mlp's MLP heads).", show_default=False)] = None,
    find_copies: Annotated[bool, typer.Option(help="Also keep verified copies together in the split (turned, rotated, letterboxed, greyscale versions of one photo), not only equal hashes.")] = True,
    seed: Annotated[int, typer.Option()] = 0,
) -> None:
    """The data and training options `train` and `cross-validate` share (declared once, see `training_options`)."""


_SHARED = list(inspect.signature(_training_options, eval_str=True).parameters.values())
_DATA_OPTIONS = ("labels", "image_column", "task", "where", "map", "split_column")


def training_options(command):
    """Give a command every option of `_training_options` after its own; it receives them as `options`."""
    own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "options"]

    @functools.wraps(command)
    def with_options(**kwargs):
        return command(**{p.name: kwargs.pop(p.name) for p in own}, options=kwargs)

    with_options.__signature__ = inspect.Signature(own + _SHARED)
    with_options.__annotations__ = {**{k: v for k, v in command.__annotations__.items() if k != "options"},
                                    **_training_options.__annotations__}
    return with_options


def _data_and_config(data: Path, options: dict, **extra):
    """(the data, which of its images may be held out and scored, or None for all, the TrainConfig) from the
    shared options."""
    from fashionlens.classify import TrainConfig
    from fashionlens.classify.recipe import RECIPE_FIELDS

    data_options = [options.pop(k) for k in _DATA_OPTIONS]
    dataset = load_data(data, *data_options)
    scored, score_where = None, options.pop("score_where")
    if score_where:
        if data_options[0] is None:
            fail("--score-where applies to a --labels table")
        labels, image_column, tasks, where, maps, split_column = data_options
        held = load_data(data, labels, image_column, tasks, [*(where or []), *score_where], maps, split_column)
        keep = {s.path for s in held.samples}
        scored = [s.path in keep for s in dataset.samples]
    stages = options.pop("pool_stages")
    try:
        options["pool_stages"] = None if stages is None else tuple(int(v) for v in stages.split(",") if v.strip())
    except ValueError:
        fail(f"--pool-stages {stages!r}: expected stage numbers such as 1,2,3,4")
    weights = options.pop("weights")
    given = {k: v for k, v in options.items() if k in RECIPE_FIELDS and v is not None}
    options = {k: v for k, v in options.items() if k not in RECIPE_FIELDS}
    try:
        config = TrainConfig(weights=str(weights) if weights else None, fixed=tuple(sorted(given)), **given,
                             **options, **extra)
    except ValueError as exc:
        fail(str(exc))
    return dataset, scored, config


@app.command()
@training_options
def train(
    data: DataArg,
    out: Annotated[Path, typer.Option("--out", help="Model folder to write.")],
    test: Annotated[float, typer.Option(help="Test fraction held out (0: none).")] = 0.0,
    fold: Annotated[Optional[str], typer.Option(help="Hold out fold I of K as the test split (I/K, e.g. 2/5): the folds of cross-validate.")] = None,
    options: dict = None,
) -> None:
    """Train a classifier (one head per --task) and write a model folder with its validation report."""
    from fashionlens.backbones import BackboneError
    from fashionlens.classify import train as run_train
    from fashionlens.splits import parse_fold

    try:
        folds = parse_fold(fold) if fold else None
    except ValueError as exc:
        fail(str(exc))
    min_class_count = options["min_class_count"]
    dataset, scored, config = _data_and_config(data, options, test=test, fold=folds)
    try:
        result = run_train(dataset, out, config, scored=scored)
    except (ValueError, BackboneError) as exc:
        fail(str(exc))
    report_skipped(result.skipped)
    s = result.split
    console.print(f"split: {len(s.train)} train, {len(s.validation)} validation, {len(s.test)} test; "
                  f"{s.duplicate_images} duplicate images in {s.duplicate_groups} groups kept together"
                  + (f", {s.dropped_leaks} training copies of held-out images dropped" if s.dropped_leaks else ""))
    if s.leaks:
        console.print(f"{len(s.leaks)} groups of copies straddle the given splits (their training images were dropped):")
        for leak in s.leaks:
            console.print("  " + ", ".join(f"{result.images[i]} ({name})" for i, name in zip(leak.members, leak.splits, strict=True)),
                          highlight=False)
    for name, dropped in result.dropped_classes.items():
        if dropped:
            console.print(f"task {name}: dropped {len(dropped)} class(es) under {min_class_count} images: {', '.join(dropped[:10])}")
    console.print(result.recipe.describe(), highlight=False)
    for split_name, metrics in result.metrics.items():
        console.print(_metrics_table(f"{split_name} ({result.seconds:.0f} s)", metrics))
    console.print(f"model written to [bold]{out}[/bold]; report: {out / 'report'}")


@app.command("cross-validate")
@training_options
def cross_validate(
    data: DataArg,
    folds: Annotated[int, typer.Option(min=2, help="Number of folds; each image is held out and scored once.")] = 5,
    out: Annotated[Optional[Path], typer.Option("--out", help="Report folder: pooled metrics and confusion matrices, per-fold scores, each fold's logs.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON line per task on stdout.")] = False,
    options: dict = None,
) -> None:
    """Cross-validate training options: accuracy and macro-F1 per task as mean ± std over stratified folds
    that keep copies of one picture together."""
    from fashionlens.backbones import BackboneError
    from fashionlens.classify import cross_validate as run_cross_validate

    dataset, scored, config = _data_and_config(data, options, progress=not json_out and sys.stderr.isatty())
    try:
        result = run_cross_validate(dataset, config, folds=folds, out=out, scored=scored)
    except (ValueError, BackboneError) as exc:
        fail(str(exc))
    report_skipped(result.skipped)
    for k, choice in enumerate(result.recipes, start=1):  # stderr: --json keeps stdout to one line per task
        console.print(f"fold {k}: {choice.describe()}", highlight=False)
    if json_out:
        for scores in result.tasks:
            print(json.dumps(scores.to_json(), ensure_ascii=False))
        return
    table = Table(title=f"{folds}-fold cross-validation ({result.seconds:.0f} s)")
    for column in ("task", "accuracy", "macro-F1", *[f"fold {k}" for k in range(1, folds + 1)], "images"):
        table.add_column(column, justify="left" if column == "task" else "right")
    def fmt(value, digits=4):
        return "–" if value is None else f"{value:.{digits}f}"

    for s in result.tasks:
        table.add_row(s.task, f"{fmt(s.accuracy_mean)} ± {fmt(s.accuracy_std)}", f"{fmt(s.macro_f1_mean)} ± {fmt(s.macro_f1_std)}",
                      *[fmt(f.accuracy, 3) for f in s.folds], str(sum(f.images for f in s.folds)))
    console.print(table)
    if out is not None:
        console.print(f"report written to [bold]{out}[/bold]")


@app.command()
def evaluate(
    model: Annotated[Path, typer.Argument(help="Model folder.")],
    data: DataArg,
    out: Annotated[Path, typer.Option("--out", help="Report folder (metrics.json, confusion PNGs, index.html).")],
    labels: LabelsOpt = None,
    image_column: ImageColOpt = "image",
    task: TaskOpt = None,
    where: WhereOpt = None,
    map: MapOpt = None,
    split_column: SplitColOpt = None,
    split: Annotated[Optional[str], typer.Option(help="Only this split of the data (train/validation/test).")] = None,
    tta: TtaOpt = None,
) -> None:
    """Evaluate a model on labelled images and write a report folder."""
    from fashionlens.classify import ModelError, load_model
    from fashionlens.classify import evaluate as run_evaluate

    try:
        loaded = load_model(model)
    except ModelError as exc:
        fail(str(exc))
    tasks = task or [t.name for t in loaded.tasks][:1]
    dataset = load_data(data, labels, image_column, tasks, where, map, split_column)
    if split:
        dataset = dataset.only_split(split)
    try:
        metrics = run_evaluate(loaded, dataset, out, tta=tta)
    except ValueError as exc:
        fail(str(exc))
    report_skipped(dataset.skipped)
    console.print(_metrics_table(f"{model} on {data}", metrics))
    console.print(f"report written to [bold]{out}[/bold]")


@app.command()
def predict(
    paths: Annotated[list[str], typer.Argument(help="[MODEL] then images, folders or globs. Without a model folder, the shipped garment classifier.")],
    top_k: Annotated[int, typer.Option("--top-k", min=1)] = 3,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON line per image.")] = False,
    batch_size: Annotated[int, typer.Option(min=1)] = 32,
    runtime: Annotated[str, typer.Option(help="auto, onnx, features or torch.")] = "auto",
    tta: TtaOpt = None,
) -> None:
    """Predict labels for images."""
    from fashionlens.classify import ModelError, Predictor, load_model
    from fashionlens.classify.model_io import MANIFEST_FILE
    from fashionlens.defaults import default_classifier_dir

    model_dir = default_classifier_dir()
    if paths and (Path(paths[0]) / MANIFEST_FILE).is_file():
        model_dir, paths = Path(paths[0]), paths[1:]
    elif len(paths) > 1 and _names_a_model(paths[0]):
        fail(f"{paths[0]}: model folder not found (no such folder, or no {MANIFEST_FILE} in it)")
    files = image_paths(paths, "images to predict")
    try:
        predictor = Predictor.from_model(load_model(model_dir), runtime, tta)
    except (ModelError, ValueError) as exc:
        fail(str(exc))
    predictions, failures = predictor.predict(files, top_k=top_k, batch_size=batch_size, progress=not json_out and sys.stderr.isatty())
    for p in predictions:
        if json_out:
            print(json.dumps(p.to_json(), ensure_ascii=False))
        else:
            summary = "; ".join(f"{task}: " + ", ".join(f"{s.label} {s.score:.2f}" for s in scores)
                                for task, scores in p.predictions.items())
            print(f"{p.image}\t{summary}")
    report_skipped(failures)
    if failures and not predictions:
        raise typer.Exit(1)


def _names_a_model(argument: str) -> bool:
    """Whether the first of several arguments can only have meant a model folder: not an image file, a glob or a
    folder of images (a typo'd model path must not quietly fall back to the shipped model)."""
    from fashionlens.images import IMAGE_SUFFIXES, find_files

    path = Path(argument)
    if path.suffix.lower() in IMAGE_SUFFIXES or any(c in argument for c in "*?["):
        return False
    return not path.exists() or (path.is_dir() and not find_files([argument])[0])


@app.command()
def export(
    model: Annotated[Path, typer.Argument(help="Model folder.")],
    onnx: Annotated[Optional[Path], typer.Option("--onnx", help="ONNX file to write (default MODEL/model.onnx).")] = None,
) -> None:
    """Export a classifier, detector or garment parser to ONNX (checked against PyTorch); the folder then runs
    with ONNX Runtime alone, where PyTorch is not installed."""
    from fashionlens.model_folder import ModelError
    from fashionlens.model_kinds import kind_of

    try:
        path = kind_of(model).export(model, onnx)
    except ModelError as exc:
        fail(str(exc))
    console.print(f"wrote [bold]{path}[/bold] (parity with PyTorch checked)")


@app.command()
def backbones() -> None:
    """List the registered backbones (any timm model name works too)."""
    from fashionlens.backbones import list_backbones

    for entry in list_backbones():
        print(f"{entry.name}\t{entry.timm_name}\t{entry.description}")


from fashionlens.catalog.cli import register as register_catalog  # noqa: E402

register_catalog(app)

from fashionlens.detect.cli import register as register_detect  # noqa: E402

register_detect(app)

from fashionlens.parse.cli import register as register_parse  # noqa: E402

register_parse(app)

from fashionlens.colors.cli import register as register_colors  # noqa: E402
from fashionlens.dedup.cli import register as register_dedup  # noqa: E402

register_colors(app)
register_dedup(app)

from fashionlens.audit.cli import register as register_audit  # noqa: E402

register_audit(app)

from fashionlens.service.cli import register as register_service  # noqa: E402

register_service(app)

from fashionlens.pipeline.cli import register as register_pipeline  # noqa: E402
from fashionlens.text.cli import register as register_text  # noqa: E402

register_pipeline(app)
register_text(app)


def main() -> None:
    """The console script: a command that needs an optional install says which, in one line, and exits 2."""
    from fashionlens.extras import MissingExtra, extra_of

    try:
        app(prog_name="fashionlens")
    except MissingExtra as exc:
        typer.echo(f"fashionlens: {exc}", err=True)
        raise SystemExit(2) from None
    except ModuleNotFoundError as exc:
        extra = extra_of(exc.name)
        if extra is None:
            raise
        typer.echo(f"fashionlens: this command needs the {extra!r} extra ({exc.name} is not installed): "
                   f"pip install 'fashionlens[{extra}]'", err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
