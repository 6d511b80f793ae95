"""`cross_validate`: every image scored once, by heads that never saw it or its copies; accuracy and macro-F1
as mean ± standard deviation over the folds, and one pooled report.

On a few hundred images one test split is too small to tell settings apart (57 images: one image is 1.8
points); K folds score all of them. The folds are `splits.make_folds`'s, the ones `train --fold i/K` uses,
and each fold trains exactly as `train` does, on features computed (or read from the cache) once. With
`config.recipe` "auto", each fold chooses its recipe on its own training rows (`recipe.choose_recipe`).
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from fashionlens.atomic import write_text_atomic
from fashionlens.classify.report import TaskPredictions, task_metrics, write_report
from fashionlens.classify.recipe import RecipeChoice, default_time_budget
from fashionlens.classify.train import (FeatureSets, TrainConfig, fit_classifier, folds_of, pick_recipe, predictions,
                                        recipe_rows, split_config)
from fashionlens.data.samples import LabeledImages, SkippedInput
from fashionlens.progress import progress_bar
from fashionlens.splits import Split

SUMMARY_FILE = "crossval.json"


@dataclass(frozen=True)
class FoldScore:
    accuracy: float | None  # None: no labelled image of this task in the fold
    macro_f1: float | None
    images: int


@dataclass(frozen=True)
class TaskScores:
    task: str
    accuracy_mean: float | None
    accuracy_std: float | None  # over the folds (numpy's, ddof 0, as scikit-learn's cross-validation reports)
    macro_f1_mean: float | None
    macro_f1_std: float | None
    folds: list[FoldScore]

    def to_json(self) -> dict:
        """One `--json` line, and the task's entry in crossval.json."""
        return {"task": self.task, "accuracy_mean": self.accuracy_mean, "accuracy_std": self.accuracy_std,
                "macro_f1_mean": self.macro_f1_mean, "macro_f1_std": self.macro_f1_std,
                "folds": [asdict(f) for f in self.folds]}


@dataclass
class CrossValidation:
    tasks: list[TaskScores]
    pooled: dict  # {task: task_metrics} over every scored image, each predicted by the fold that held it out
    splits: list[Split]
    report_dir: Path | None = None
    skipped: list[SkippedInput] = field(default_factory=list)
    dropped_classes: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0
    recipes: list[RecipeChoice] = field(default_factory=list)  # each fold's, chosen on that fold's training rows


def _mean_std(values: list[float | None]) -> tuple[float | None, float | None]:
    known = [v for v in values if v is not None]
    return (float(np.mean(known)), float(np.std(known))) if known else (None, None)


def _scores(task: str, folds: list[dict]) -> TaskScores:
    fold_scores = [FoldScore(m["accuracy"], m["macro_f1"], m["n"]) for m in folds]
    accuracy, macro_f1 = _mean_std([f.accuracy for f in fold_scores]), _mean_std([f.macro_f1 for f in fold_scores])
    return TaskScores(task, *accuracy, *macro_f1, fold_scores)


def _fold_table(scores: list[TaskScores]) -> tuple[str, list[str], list[list[str]]]:
    """The report page's table: per task, each fold's accuracy and macro-F1, then mean ± std."""
    def fmt(value):
        return "–" if value is None else f"{value:.3f}"

    k = len(scores[0].folds) if scores else 0
    rows = []
    for s in scores:
        rows.append([s.task, "accuracy", *[fmt(f.accuracy) for f in s.folds], f"{fmt(s.accuracy_mean)} ± {fmt(s.accuracy_std)}"])
        rows.append([s.task, "macro-F1", *[fmt(f.macro_f1) for f in s.folds], f"{fmt(s.macro_f1_mean)} ± {fmt(s.macro_f1_std)}"])
        rows.append([s.task, "images", *[str(f.images) for f in s.folds], str(sum(f.images for f in s.folds))])
    return f"{k} folds", ["task", "score", *[f"fold {i}" for i in range(1, k + 1)], "mean ± std"], rows


def _fit_split(split: Split, config: TrainConfig) -> Split:
    """A recipe other than `classic` fits on every training row of the fold, as its inner folds scored it."""
    if config.recipe == "classic":
        return split
    return replace(split, train=sorted(split.train + split.validation), validation=[])


def cross_validate(data: LabeledImages, config: TrainConfig | None = None, *, folds: int = 5,
                   out: str | Path | None = None, scored: list[bool] | None = None) -> CrossValidation:
    """Train `folds` times as `train` would with `config`, each time holding out one fold, and score every
    held-out image once. `scored` (one per image of `data`): only these are held out and scored; the rest
    always train (train on patterns and products, score products). `out`: the report folder (pooled
    metrics.json and index.html with confusion matrices and the per-fold table, crossval.json, and each
    fold's training logs and fine-tuning checkpoints under folds/, so a rerun resumes)."""
    config = config or TrainConfig()
    if config.fold is not None or config.test:
        raise ValueError("cross-validation holds out each fold in turn: give neither a fold nor a test fraction")
    started = time.time()
    sets = FeatureSets(data)
    splitting = split_config(config, len(data))
    splits = folds_of(sets(splitting), splitting, folds, scored)
    budget = config.time_budget or default_time_budget(len(data))
    per_fold: list[list[TaskPredictions]] = []
    recipes: list[RecipeChoice] = []
    with tempfile.TemporaryDirectory(prefix="fashionlens-cv-") as scratch:
        work = Path(out) / "folds" if out is not None else Path(scratch)
        with progress_bar(f"{folds}-fold cross-validation", folds, config.progress) as advance:
            for k, split in enumerate(splits, start=1):
                fold_config, choice = pick_recipe(sets, replace(config, fold=(k, folds), progress=False),
                                                  split.train + split.validation, budget / folds)
                lf = sets(fold_config)
                classifier, _ = fit_classifier(lf, _fit_split(split, fold_config), fold_config, work / str(k))
                per_fold.append(predictions(classifier, lf, split.test, config.tta))
                recipes.append(choice)
                advance()
    tasks, pooled = [], []
    for t, task in enumerate(lf.tasks):
        fold_preds = [fold[t] for fold in per_fold]
        tasks.append(_scores(task.name, [task_metrics(p) for p in fold_preds]))
        pooled.append(TaskPredictions(task.name, list(task.classes), np.concatenate([p.y_true for p in fold_preds]),
                                      np.concatenate([p.probs for p in fold_preds]),
                                      [image for p in fold_preds for image in p.images]))
    report_dir = Path(out) if out is not None else None
    if report_dir is not None:
        chosen = [r.to_json() for r in recipes]
        summary = {"folds": folds, "tasks": [s.to_json() for s in tasks], "splits": [s.summary() for s in splits],
                   "training": asdict(config), "recipes": chosen, "data": data.summary(), "dropped_classes": lf.dropped}
        tables = [_fold_table(tasks), *[_fold_recipe(k, r) for k, r in enumerate(recipes, start=1)]]
        metrics = write_report(pooled, report_dir, title=f"{data.source}: {folds}-fold cross-validation (pooled)",
                               extra={"folds": folds, "training": asdict(config), "recipes": chosen}, tables=tables)
        write_text_atomic(report_dir / SUMMARY_FILE, json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    else:
        metrics = {p.task: task_metrics(p) for p in pooled}
    return CrossValidation(tasks, metrics, splits, report_dir, data.skipped + lf.features.failures, lf.dropped,
                           time.time() - started, recipes)


def _fold_recipe(k: int, choice: RecipeChoice) -> tuple[str, list[str], list[list[str]]]:
    heading, columns, rows = recipe_rows(choice)
    return f"fold {k}: {heading}", columns, rows
