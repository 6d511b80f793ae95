"""`train`: labelled images in, a model folder out, with validation metrics and a report."""

from __future__ import annotations

import copy
import hashlib
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from fashionlens.backbones import DEFAULT_BACKBONE, Backbone, create_backbone
from fashionlens.cache import FeatureCache
from fashionlens.classify.finetune import finetune
from fashionlens.classify.heads import HEAD_FITS, LABEL_SMOOTHING, fit_heads, fit_logistic_heads
from fashionlens.classify.inference import Predictor
from fashionlens.classify.model import Classifier, TaskSpec
from fashionlens.classify.model_io import save_model
from fashionlens.classify.recipe import (RECIPE_NAMES, RecipeChoice, candidate_configs, choose_recipe,
                                         default_time_budget)
from fashionlens.classify.report import TaskPredictions, write_report
from fashionlens.data.samples import LabeledImages, Sample, SkippedInput
from fashionlens.dedup import dataset_copy_pairs
from fashionlens.epoch_log import EpochLog
from fashionlens.features import Features, extract_features
from fashionlens.preprocess import RESIZE_MODES
from fashionlens.splits import Split, copy_groups, make_folds, make_split

MODES = ("linear", "finetune")


HEAD_DEFAULTS = {"epochs": 300, "lr": 2e-3, "patience": 30}
FINETUNE_DEFAULTS = {"epochs": 6, "lr": 3e-4, "patience": 3}


@dataclass
class TrainConfig:
    mode: str = "linear"
    backbone: str = DEFAULT_BACKBONE
    weights: str | None = None  # a local safetensors file for the backbone
    pool_stages: tuple[int, ...] = ()  # also pool these feature stages (colour, texture)
    colour_bins: int = 0  # append a foreground colour histogram with this many bins per channel
    colour_space: str = "rgb"  # of that histogram: rgb or hsv
    colour_sqrt: bool = False  # the histogram's square roots (small patches of a telling colour weigh more)
    resize: str = "crop"  # or "pad": letterbox on white, for product photos
    image_size: int | None = None  # square input size; default: the backbone's own (240 for Lite1)
    hidden: int = 0  # head width; 0 is a linear head
    head_fit: str = "adamw"  # or "logistic": each linear head solved as an L2 logistic regression (small data sets)
    head_c: float = 0.1  # the logistic heads' inverse penalty
    standardize: bool = False  # heads see each feature shifted and scaled by its training mean and deviation
    dropout: float = 0.5
    input_dropout: float = 0.2
    # of the mode's own training (None: HEAD_DEFAULTS or FINETUNE_DEFAULTS); fine-tuning's warm-start heads always
    # train with HEAD_DEFAULTS
    epochs: int | None = None
    lr: float | None = None
    weight_decay: float = 1e-2
    label_smoothing: float = LABEL_SMOOTHING  # of every task's cross-entropy (noisy labels such as colours)
    batch_size: int = 32
    patience: int | None = None  # epochs without a better validation score before stopping
    finetune_blocks: int = 2
    colour_jitter: float = 0.2  # fine-tuning's brightness/contrast augmentation; 0 when colour is a label
    freeze_norm: bool = False  # fine-tuning keeps batch-norm statistics (small data sets)
    tta: bool = False  # predict (and pick the best fine-tuning epoch) on each image averaged with its mirror
    validation: float = 0.15  # 0: linear heads train all their epochs and keep the last
    fold: tuple[int, int] | None = None  # (i, k): hold out the i-th (from 1) of k cross-validation folds as the test split
    test: float = 0.0
    min_class_count: int = 2
    balance: bool = True
    find_copies: bool = True  # group verified copies (turned, rotated, letterboxed...) for the split, not only equal hashes
    seed: int = 0
    workers: int = 1
    progress: bool = True
    recipe: str = "classic"  # "auto" or a name of recipe.RECIPES: fills the settings not in `fixed`
    fixed: tuple[str, ...] | None = None  # settings the user gave (None: those that differ from the defaults)
    time_budget: float | None = None  # seconds for auto's search (None: recipe.default_time_budget)

    def __post_init__(self):
        if self.recipe not in RECIPE_NAMES:
            raise ValueError(f"recipe must be one of {', '.join(RECIPE_NAMES)}, not {self.recipe!r}")
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if self.resize not in RESIZE_MODES:
            raise ValueError(f"resize must be one of {', '.join(RESIZE_MODES)}, not {self.resize!r}")
        if self.head_fit not in HEAD_FITS:
            raise ValueError(f"head_fit must be one of {', '.join(HEAD_FITS)}, not {self.head_fit!r}")
        if self.head_fit == "logistic" and (self.hidden or self.mode != "linear"):
            raise ValueError("logistic heads are linear heads on frozen features: give neither --hidden nor --mode finetune")
        if not self.head_c > 0:
            raise ValueError(f"head_c must be positive, not {self.head_c}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), not {self.label_smoothing}")
        if not 0 <= self.validation < 1 or not 0 <= self.test < 1 or self.validation + self.test >= 1:
            raise ValueError("validation and test fractions must be in [0, 1) and sum to less than 1")
        if self.fold is not None:
            self.fold = tuple(self.fold)
            if len(self.fold) != 2 or not 1 <= self.fold[0] <= self.fold[1] or self.fold[1] < 2:
                raise ValueError(f"fold must be (i, k) with 1 <= i <= k and k >= 2, not {self.fold}")
            if self.test:
                raise ValueError("a fold is the test split: give a fold or a test fraction, not both")


@dataclass
class TrainResult:
    model_dir: Path
    metrics: dict  # {"validation": {task: {...}}, "test": {...}} as in metrics.json
    split: Split
    images: list[str] = field(default_factory=list)  # the image of each position in `split`
    skipped: list[SkippedInput] = field(default_factory=list)
    dropped_classes: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0
    recipe: RecipeChoice | None = None  # the recipe trained, and the candidates auto compared


def label_matrix(samples, tasks: list[TaskSpec]) -> np.ndarray:
    """int64 [n, n_tasks], -1 where a sample has no (or a dropped) label for that task."""
    index = [{label: i for i, label in enumerate(t.classes)} for t in tasks]
    y = np.full((len(samples), len(tasks)), -1, dtype=np.int64)
    for r, sample in enumerate(samples):
        for c, task in enumerate(tasks):
            y[r, c] = index[c].get(sample.labels.get(task.name), -1)
    return y


@dataclass
class LabelledFeatures:
    """What `train` and `cross_validate` read once: the backbone's features of every readable image, the
    tasks with the classes kept, and the label matrix (rows in the order of `samples`)."""

    backbone: Backbone
    cache: FeatureCache
    features: Features
    samples: list[Sample]
    tasks: list[TaskSpec]
    y: np.ndarray
    dropped: dict[str, list[str]]
    copies: dict = field(default_factory=dict)  # {"pairs": verified copy pairs}, found once (`_copies`), shared by copies


def labelled_features(data: LabeledImages, config: TrainConfig) -> LabelledFeatures:
    """The backbone of `config` and its (cached) features; classes under `min_class_count` images are dropped."""
    torch.manual_seed(config.seed)
    backbone = create_backbone(config.backbone, weights=config.weights, pool_stages=tuple(config.pool_stages),
                               colour_bins=config.colour_bins, colour_space=config.colour_space,
                               colour_sqrt=config.colour_sqrt, resize=config.resize,
                               image_size=config.image_size)
    cache = FeatureCache()
    feats = extract_features(backbone, [s.path for s in data.samples], cache=cache, progress=config.progress,
                             workers=config.workers)
    samples = [data.samples[i] for i in feats.indices]
    if not samples:
        raise ValueError(f"{data.source}: none of the {len(data)} images could be read")
    dropped: dict[str, list[str]] = {}
    tasks = []
    for name in data.tasks:
        counts = LabeledImages(samples, data.tasks, data.source).counts(name)
        keep = sorted(c for c, n in counts.items() if n >= config.min_class_count)
        dropped[name] = sorted(c for c, n in counts.items() if n < config.min_class_count)
        if len(keep) < 2:
            raise ValueError(f"task {name!r}: needs at least 2 classes with {config.min_class_count}+ images, found {keep}")
        tasks.append(TaskSpec(name, tuple(keep), config.hidden, config.dropout, config.input_dropout))
    return LabelledFeatures(backbone, cache, feats, samples, tasks, label_matrix(samples, tasks), dropped)


def _strata_and_scored(lf: LabelledFeatures, scored: list[bool] | None) -> tuple[list[str], list[bool] | None]:
    """Stratified on the first task; `scored` given per image of the data, returned per readable image."""
    strata = [str(s.labels.get(lf.tasks[0].name)) for s in lf.samples]
    return strata, None if scored is None else [scored[i] for i in lf.features.indices]


def _copies(lf: LabelledFeatures, config: TrainConfig) -> np.ndarray | None:
    """Verified copy pairs (positions in `lf.samples`) to keep together, beside equal hashes."""
    if not config.find_copies:
        return None
    if "pairs" not in lf.copies:
        lf.copies["pairs"] = dataset_copy_pairs([s.path for s in lf.samples], lf.features.sha256, lf.features.phash,
                                                lf.cache, vectors=lf.features.vectors, progress=config.progress)
    return lf.copies["pairs"]


FEATURE_FIELDS = ("backbone", "weights", "pool_stages", "colour_bins", "colour_space", "colour_sqrt", "resize",
                  "image_size")


class FeatureSets:
    """Each recipe's `LabelledFeatures`, read once per feature setting; the copy pairs are found once for all
    (they depend on the images, not on the features)."""

    def __init__(self, data: LabeledImages):
        self.data = data
        self.by_key: dict[tuple, LabelledFeatures] = {}

    def __call__(self, config: TrainConfig) -> LabelledFeatures:
        key = tuple(getattr(config, name) for name in FEATURE_FIELDS)
        if key not in self.by_key:
            lf = labelled_features(self.data, config)
            known = next(iter(self.by_key.values()), None)
            if known is not None:
                lf.copies = known.copies
            self.by_key[key] = lf
        lf = self.by_key[key]
        tasks = [replace(t, hidden=config.hidden, dropout=config.dropout, input_dropout=config.input_dropout)
                 for t in lf.tasks]
        return replace(lf, tasks=tasks)


def groups_of(lf: LabelledFeatures, config: TrainConfig) -> np.ndarray:
    """The copy group of each row, as the splits keep them together (inner folds keep them too)."""
    return copy_groups(lf.features.sha256, lf.features.phash, _copies(lf, config))


def pick_recipe(sets: FeatureSets, config: TrainConfig, rows: list[int], budget_s: float | None = None
                ) -> tuple[TrainConfig, RecipeChoice]:
    """The config of `config.recipe`, with `auto` choosing on inner folds of `rows` (training rows only)."""
    configs = candidate_configs(config, len(sets.data))
    lf = sets(next(iter(configs.values())))
    budget = budget_s if budget_s is not None else config.time_budget or default_time_budget(len(rows))
    choice = choose_recipe(configs, sets, rows, groups_of(lf, config), fit_classifier, seed=config.seed, budget_s=budget)
    return configs[choice.recipe], choice


def split_config(config: TrainConfig, n_images: int) -> TrainConfig:
    """The config that splits: every candidate of a recipe shares its validation fraction."""
    return next(iter(candidate_configs(config, n_images).values()))


def folds_of(lf: LabelledFeatures, config: TrainConfig, folds: int, scored: list[bool] | None = None) -> list[Split]:
    """The `folds` cross-validation splits of these images (each with a validation part of `config.validation`)."""
    strata, scored = _strata_and_scored(lf, scored)
    return make_folds(strata, lf.features.sha256, lf.features.phash, folds, validation=config.validation,
                      seed=config.seed, scored=scored, copies=_copies(lf, config))


def split_rows(lf: LabelledFeatures, config: TrainConfig, scored: list[bool] | None = None) -> Split:
    """The split `config` asks for: fold `config.fold` of the cross-validation folds, else a hold-out split.
    `scored` (per image of the data given to `labelled_features`): only these are held out, the rest always train."""
    if config.fold:
        index, folds = config.fold
        return folds_of(lf, config, folds, scored)[index - 1]
    strata, scored = _strata_and_scored(lf, scored)
    return make_split(strata, lf.features.sha256, lf.features.phash, [s.split for s in lf.samples],
                      validation=config.validation, test=config.test, seed=config.seed, scored=scored,
                      copies=_copies(lf, config))


def fit_classifier(lf: LabelledFeatures, split: Split, config: TrainConfig, out: Path) -> tuple[Classifier, dict]:
    """Heads on the training rows' features (then, in finetune mode, the last backbone stages too), picked by
    the validation rows; logs (and fine-tuning checkpoints) go under `out`."""
    tr, va = split.train, split.validation
    if not va and config.mode == "finetune":
        raise ValueError("no validation images, and fine-tuning picks its best epoch on them: give a validation "
                         "split or --validation > 0")
    feats, y, samples = lf.features, lf.y, lf.samples
    log = EpochLog(out / "logs")

    def own(value, default):  # epochs, lr and patience are the mode's own: fine-tuning's warm start keeps the defaults
        return value if value and config.mode == "linear" else default

    if config.head_fit == "logistic":  # solved to the optimum: no epochs, and validation rows only get scored
        heads, head_info = fit_logistic_heads(feats.vectors[tr], y[tr], lf.tasks, c=config.head_c,
                                              balance=config.balance, standardize=config.standardize)
    else:
        heads, head_info = fit_heads(
            feats.vectors[tr], y[tr], feats.vectors[va], y[va], lf.tasks,
            epochs=own(config.epochs, HEAD_DEFAULTS["epochs"]), lr=own(config.lr, HEAD_DEFAULTS["lr"]),
            weight_decay=config.weight_decay, patience=own(config.patience, HEAD_DEFAULTS["patience"]), balance=config.balance,
            standardize=config.standardize, label_smoothing=config.label_smoothing, seed=config.seed, log=log,
        )
    backbone = lf.backbone
    if config.mode == "finetune":  # trained in place: every fold starts from the same ImageNet weights
        backbone = replace(backbone, model=copy.deepcopy(backbone.model))
    classifier = Classifier(backbone, heads, tta=config.tta)
    info = {"heads": head_info}
    if config.mode == "finetune":
        def config_hash(fields: dict) -> str:
            return hashlib.sha256(json.dumps([fields, [s.path.as_posix() for s in samples]], sort_keys=True,
                                             default=str).encode()).hexdigest()[:16]

        # the checkpoint key leaves out `epochs`, so a longer run resumes a shorter one; the backbone id keeps
        # it, so backbones fine-tuned for different lengths never share cached features or ONNX exports
        key = config_hash({k: v for k, v in asdict(config).items() if k != "epochs"})
        info["finetune"] = finetune(
            classifier, [samples[i].path for i in tr], y[tr], [samples[i].path for i in va], y[va],
            checkpoint_dir=out / "checkpoint", config_key=key, epochs=config.epochs or FINETUNE_DEFAULTS["epochs"],
            blocks=config.finetune_blocks, lr=config.lr or FINETUNE_DEFAULTS["lr"], weight_decay=config.weight_decay,
            batch_size=config.batch_size, patience=config.patience or FINETUNE_DEFAULTS["patience"], balance=config.balance,
            colour_jitter=config.colour_jitter, freeze_norm=config.freeze_norm, tta=config.tta, label_smoothing=config.label_smoothing,
            workers=config.workers,
            seed=config.seed, progress=config.progress, log=log,
        )
        backbone.weights_id = f"finetuned:{config_hash(asdict(config))}"  # its features are no longer the ImageNet ones
    log.close()
    return classifier, info


def predictions(classifier: Classifier, lf: LabelledFeatures, rows: list[int], tta: bool) -> list[TaskPredictions]:
    """Every task's probabilities on `rows`, as the report takes them."""
    paths = [lf.samples[i].path for i in rows]
    probs = Predictor(classifier, "features", tta=tta).probabilities(paths, cache=lf.cache).probs
    images = [str(p) for p in paths]
    return [TaskPredictions(t.name, list(t.classes), lf.y[rows, i], probs[t.name], images) for i, t in enumerate(lf.tasks)]


def recipe_split(split: Split, config: TrainConfig) -> Split:
    """The rows a recipe's heads fit on: a recipe other than `classic` fits on the training rows alone, as its
    inner folds scored it, and never stops early on the validation rows (they are only scored)."""
    return split if config.recipe == "classic" else replace(split, validation=[])


def train(data: LabeledImages, out: str | Path, config: TrainConfig | None = None, *,
          scored: list[bool] | None = None) -> TrainResult:
    """`scored` (one per image of `data`): only these may be held out for validation and test. With a recipe
    (`config.recipe`), `auto` chooses on inner folds of the training rows, never on the held-out ones."""
    config = config or TrainConfig()
    started = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    sets = FeatureSets(data)
    splitting = split_config(config, len(data))
    split = split_rows(sets(splitting), splitting, scored)
    config, choice = pick_recipe(sets, config, split.train)
    lf = sets(config)
    classifier, info = fit_classifier(lf, recipe_split(split, config), config, out)
    metrics = {}
    recipe_table = [recipe_rows(choice)]
    # with test-time flips, the report also shows the same model without them: what the flips add
    for split_name, rows in (("validation", split.validation), ("test", split.test)):
        for tta in (config.tta, False) if config.tta else (False,):
            if not rows:
                continue
            name = split_name if tta == config.tta else f"{split_name}_no_tta"
            metrics[name] = write_report(predictions(classifier, lf, rows, tta), out / "report" / name,
                                         title=f"{out.name}: {name.replace('_no_tta', ' (no test-time flips)')}",
                                         extra={"recipe": choice.to_json()}, tables=recipe_table)
    result = TrainResult(out, metrics, split, [str(s.path) for s in lf.samples],
                         data.skipped + lf.features.failures, lf.dropped, time.time() - started, choice)
    save_model(classifier, out, store_backbone=config.mode == "finetune", info={
        "training": {**asdict(config), **info, "seconds": round(result.seconds, 1)},
        "recipe": choice.to_json(),
        "data": {**data.summary(), "unreadable": len(lf.features.failures), "split": split.summary(),
                 "dropped_classes": lf.dropped},
        "metrics": metrics,
    })
    return result


def recipe_rows(choice: RecipeChoice) -> tuple[str, list[str], list[list[str]]]:
    """The report page's table of the recipes compared: each one's inner score and seconds."""
    rows = [[c.recipe + (" (chosen)" if c.recipe == choice.recipe else ""),
             "–" if c.score is None else f"{c.score:.3f}", f"{c.seconds:.1f}", c.note] for c in choice.candidates]
    return (f"recipe: {choice.recipe} (inner {choice.inner_folds}-fold accuracy on {choice.images} training images)",
            ["recipe", "inner accuracy", "seconds", "note"], rows)
