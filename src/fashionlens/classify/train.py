"""`train`: labelled images in, a model folder out, with validation metrics and a report."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from fashionlens.backbones import DEFAULT_BACKBONE, create_backbone
from fashionlens.cache import FeatureCache
from fashionlens.classify.finetune import finetune
from fashionlens.classify.heads import LABEL_SMOOTHING, fit_heads
from fashionlens.classify.inference import Predictor
from fashionlens.classify.model import Classifier, TaskSpec
from fashionlens.classify.model_io import save_model
from fashionlens.classify.report import TaskPredictions, write_report
from fashionlens.data.samples import LabeledImages, SkippedInput
from fashionlens.dedup import dataset_copy_pairs
from fashionlens.epoch_log import EpochLog
from fashionlens.features import extract_features
from fashionlens.splits import Split, make_split

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
    resize: str = "crop"  # or "pad": letterbox on white, for product photos
    image_size: int | None = None  # square input size; default: the backbone's own (240 for Lite1)
    hidden: int = 0  # head width; 0 is a linear head
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
    validation: float = 0.15
    test: float = 0.0
    min_class_count: int = 2
    balance: bool = True
    find_copies: bool = True  # group verified copies (turned, rotated, letterboxed...) for the split, not only equal hashes
    seed: int = 0
    workers: int = 1
    progress: bool = True

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {self.mode!r}")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"label_smoothing must be in [0, 1), not {self.label_smoothing}")
        if not 0 <= self.validation < 1 or not 0 <= self.test < 1 or self.validation + self.test >= 1:
            raise ValueError("validation and test fractions must be in [0, 1) and sum to less than 1")


@dataclass
class TrainResult:
    model_dir: Path
    metrics: dict  # {"validation": {task: {...}}, "test": {...}} as in metrics.json
    split: Split
    images: list[str] = field(default_factory=list)  # the image of each position in `split`
    skipped: list[SkippedInput] = field(default_factory=list)
    dropped_classes: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0


def label_matrix(samples, tasks: list[TaskSpec]) -> np.ndarray:
    """int64 [n, n_tasks], -1 where a sample has no (or a dropped) label for that task."""
    index = [{label: i for i, label in enumerate(t.classes)} for t in tasks]
    y = np.full((len(samples), len(tasks)), -1, dtype=np.int64)
    for r, sample in enumerate(samples):
        for c, task in enumerate(tasks):
            y[r, c] = index[c].get(sample.labels.get(task.name), -1)
    return y


def _predictions(tasks: list[TaskSpec], probs: dict[str, np.ndarray], y: np.ndarray, images: list[str]) -> list[TaskPredictions]:
    return [TaskPredictions(t.name, list(t.classes), y[:, i], probs[t.name], images) for i, t in enumerate(tasks)]


def train(data: LabeledImages, out: str | Path, config: TrainConfig | None = None) -> TrainResult:
    config = config or TrainConfig()
    started = time.time()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    backbone = create_backbone(config.backbone, weights=config.weights, pool_stages=tuple(config.pool_stages),
                               colour_bins=config.colour_bins, colour_space=config.colour_space, resize=config.resize,
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
    y = label_matrix(samples, tasks)
    strata = [str(s.labels.get(tasks[0].name)) for s in samples]
    copies = dataset_copy_pairs([s.path for s in samples], feats.sha256, feats.phash, cache,
                                progress=config.progress) if config.find_copies else None
    split = make_split(strata, feats.sha256, feats.phash, [s.split for s in samples],
                       validation=config.validation, test=config.test, seed=config.seed, copies=copies)
    if not split.validation:
        raise ValueError(f"{data.source}: no validation images (give a validation split or --validation > 0)")
    tr, va, te = split.train, split.validation, split.test
    log = EpochLog(out / "logs")

    def own(value, default):  # epochs, lr and patience are the mode's own: fine-tuning's warm start keeps the defaults
        return value if value and config.mode == "linear" else default

    heads, head_info = fit_heads(
        feats.vectors[tr], y[tr], feats.vectors[va], y[va], tasks,
        epochs=own(config.epochs, HEAD_DEFAULTS["epochs"]), lr=own(config.lr, HEAD_DEFAULTS["lr"]),
        weight_decay=config.weight_decay, patience=own(config.patience, HEAD_DEFAULTS["patience"]), balance=config.balance,
        standardize=config.standardize, label_smoothing=config.label_smoothing, seed=config.seed, log=log,
    )
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
    metrics = {}
    # with test-time flips, the report also shows the same model without them: what the flips add
    for split_name, rows in (("validation", va), ("test", te)):
        for tta in (config.tta, False) if config.tta else (False,):
            if not rows:
                continue
            probs = Predictor(classifier, "features", tta=tta).probabilities([samples[i].path for i in rows],
                                                                            cache=cache).probs
            images = [str(samples[i].path) for i in rows]
            name = split_name if tta == config.tta else f"{split_name}_no_tta"
            metrics[name] = write_report(_predictions(tasks, probs, y[rows], images), out / "report" / name,
                                         title=f"{out.name}: {name.replace('_no_tta', ' (no test-time flips)')}")
    result = TrainResult(out, metrics, split, [str(s.path) for s in samples], data.skipped + feats.failures, dropped,
                         time.time() - started)
    save_model(classifier, out, store_backbone=config.mode == "finetune", info={
        "training": {**asdict(config), **info, "seconds": round(result.seconds, 1)},
        "data": {**data.summary(), "unreadable": len(feats.failures), "split": split.summary(),
                 "dropped_classes": dropped},
        "metrics": metrics,
    })
    return result
