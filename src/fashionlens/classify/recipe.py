"""Training recipes: named sets of feature and head settings, and `auto`, which picks one by inner
cross-validation on the training images only.

A new user should not need seven flags to get the project's best measured settings. Each recipe fills the
settings the user did not give (`TrainConfig.fixed`); `auto` scores a short, cost-ordered list of recipes by
3-fold cross-validation inside the rows it is given (a `train` split's training part, or one outer fold's
training part in `cross_validate`), so the images that are then scored never influence the choice.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Callable

import numpy as np

from fashionlens.splits import Split, stratified_group_folds

RICH_FEATURES = {"pool_stages": (1, 2, 3, 4), "colour_bins": 8, "colour_space": "hsv", "colour_sqrt": True,
                 "standardize": True}
RECIPES: dict[str, dict] = {
    # TrainConfig's own defaults: AdamW linear heads on the last stage, stopped early on a validation part
    "classic": {},
    # L2 logistic heads, solved to the optimum, on the standardised last stage
    "logistic": {"standardize": True, "head_fit": "logistic", "validation": 0.0},
    # the decor recipe (README): earlier stages and the colour histogram's square roots, logistic heads
    "colour-logistic": {**RICH_FEATURES, "head_fit": "logistic", "validation": 0.0},
    # the products recipe's heads on the same features: one hidden layer of 1,024, 25 epochs, no class weights
    # (they trade plain accuracy, which the search and the reports score, for macro recall)
    "colour-mlp": {**RICH_FEATURES, "hidden": 1024, "epochs": 25, "validation": 0.0, "balance": False},
}
RECIPE_NAMES = ("auto", *RECIPES)
RECIPE_FIELDS = ("pool_stages", "colour_bins", "colour_space", "colour_sqrt", "standardize", "head_fit", "hidden",
                 "epochs", "validation", "balance")
INNER_FOLDS = 3
MIN_IMAGES_TO_COMPARE = 30  # fewer training images: auto takes the first candidate unscored
MLP_MIN_IMAGES = 1000  # an MLP head needs more than a few hundred images to beat a linear one


def auto_candidates(n_images: int) -> list[str]:
    """The recipes `auto` compares, cheapest first: MLP heads only where the data can feed them. Fine-tuning is
    never a candidate: on a CPU one fine-tune costs more than the whole budget (README, products)."""
    names = ["logistic", "colour-logistic"]
    return names + ["colour-mlp"] if n_images >= MLP_MIN_IMAGES else names


def default_time_budget(n_images: int) -> float:
    """Seconds for the search: a minute, plus 50 ms an image (300 images: 75 s; 12,000: 11 minutes)."""
    return 60.0 + 0.05 * n_images


def given_fields(config) -> tuple[str, ...]:
    """The recipe fields the user set: `config.fixed`, or where that is None, those that differ from the defaults."""
    if config.fixed is not None:
        return tuple(config.fixed)
    defaults = type(config)()
    return tuple(name for name in RECIPE_FIELDS if getattr(config, name) != getattr(defaults, name))


def apply_recipe(config, name: str):
    """`config` with recipe `name`'s settings, except the fields the user gave. Raises ValueError where the two
    cannot go together (logistic heads with --hidden)."""
    if name not in RECIPES:
        raise ValueError(f"recipe must be one of {', '.join(RECIPE_NAMES)}, not {name!r}")
    kept = set(given_fields(config))
    defaults = {f.name: f.default for f in fields(config) if f.name in RECIPE_FIELDS}
    settings = {**defaults, **RECIPES[name]}
    return replace(config, recipe=name, fixed=tuple(sorted(kept)),
                   **{k: v for k, v in settings.items() if k not in kept})


def candidate_configs(config, n_images: int) -> dict[str, object]:
    """The configs `config.recipe` asks to compare: one for a named recipe, the valid distinct `auto` ones."""
    names = auto_candidates(n_images) if config.recipe == "auto" else [config.recipe]
    configs: dict[str, object] = {}
    for name in names:
        try:
            candidate = apply_recipe(config, name)
        except ValueError:
            if config.recipe != "auto":
                raise
            continue  # a recipe that clashes with a given flag (logistic heads with --hidden 512)
        if all(asdict(candidate) != asdict(c) for c in configs.values()):
            configs[name] = candidate
    return configs or {"classic": apply_recipe(config, "classic")}


@dataclass(frozen=True)
class CandidateScore:
    recipe: str
    score: float | None  # mean over tasks of the inner folds' pooled accuracy; None: not scored
    seconds: float
    note: str = ""  # why it was not scored

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class RecipeChoice:
    recipe: str
    candidates: list[CandidateScore]
    inner_folds: int
    images: int  # the training images the inner folds divided

    def to_json(self) -> dict:
        return {"recipe": self.recipe, "inner_folds": self.inner_folds, "images": self.images,
                "candidates": [c.to_json() for c in self.candidates]}

    def describe(self) -> str:
        """One line for the terminal."""
        if not self.inner_folds:
            return f"recipe {self.recipe} (not compared: {self.candidates[0].note})"
        scores = ", ".join(f"{c.recipe} {c.score:.3f}" if c.score is not None else f"{c.recipe} ({c.note})"
                           for c in self.candidates)
        return f"recipe {self.recipe} (inner {self.inner_folds}-fold accuracy on {self.images} training images: {scores})"


def inner_folds(y: np.ndarray, groups: np.ndarray, rows: list[int], seed: int) -> list[tuple[list[int], list[int]]]:
    """Stratified (first task) folds of `rows` that keep each copy group whole; [] when too few to compare."""
    strata = y[rows, 0]
    largest = max(np.unique(strata, return_counts=True)[1]) if rows else 0
    k = min(INNER_FOLDS, largest, len(set(groups[rows].tolist())))
    if len(rows) < MIN_IMAGES_TO_COMPARE or k < 2:
        return []
    rows_arr = np.asarray(rows)
    return [(rows_arr[a].tolist(), rows_arr[b].tolist()) for a, b in stratified_group_folds(strata, groups[rows], k, seed)]


def inner_score(lf, config, folds: list[tuple[list[int], list[int]]], fit: Callable) -> float:
    """Mean over tasks of the accuracy pooled over `folds`, each fold's heads fitted on its other rows."""
    right = np.zeros(len(lf.tasks))
    seen = np.zeros(len(lf.tasks))
    with tempfile.TemporaryDirectory(prefix="fashionlens-recipe-") as scratch:
        for k, (fitted, held) in enumerate(folds):
            classifier, _ = fit(lf, Split(fitted, [], held, 0, 0, 0), config, Path(scratch) / str(k))
            probs = classifier.heads.probabilities(lf.features.vectors[held])
            for t, task in enumerate(lf.tasks):
                labels = lf.y[held, t]
                known = labels >= 0
                right[t] += (probs[task.name][known].argmax(1) == labels[known]).sum()
                seen[t] += known.sum()
    return float(np.mean(right[seen > 0] / seen[seen > 0]))


def choose_recipe(configs: dict[str, object], features_of: Callable, rows: list[int], groups: np.ndarray,
                  fit: Callable, *, seed: int, budget_s: float) -> RecipeChoice:
    """Score each candidate config on inner folds of `rows` (training rows only), cheapest first, until
    `budget_s` seconds are spent; the best score wins, ties to the cheaper. `features_of(config)` gives the
    candidate's `LabelledFeatures` (rows aligned across candidates); `fit` is `train.fit_classifier`."""
    started = time.monotonic()
    names = list(configs)
    first = features_of(configs[names[0]])
    folds = inner_folds(first.y, groups, rows, seed) if len(names) > 1 else []
    if not folds:
        note = "the only candidate" if len(names) == 1 else f"under {MIN_IMAGES_TO_COMPARE} images to compare"
        return RecipeChoice(names[0], [CandidateScore(n, None, 0.0, note) for n in names], 0, len(rows))
    scores = []
    for name in names:
        if scores and time.monotonic() - started > budget_s:
            scores.append(CandidateScore(name, None, 0.0, "time budget spent"))
            continue
        t0 = time.monotonic()
        score = inner_score(features_of(configs[name]), configs[name], folds, fit)
        scores.append(CandidateScore(name, round(score, 4), round(time.monotonic() - t0, 1)))
    best = max((c for c in scores if c.score is not None), key=lambda c: c.score)  # max keeps the first of ties
    return RecipeChoice(best.recipe, scores, len(folds), len(rows))
