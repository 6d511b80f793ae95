"""Training the garment parser on a 2-core CPU, as the detector trains: the frozen stem runs once per augmented
view and is cached on disk (float16 stems, uint8 label maps), then each epoch trains only the deeper blocks,
the pyramid and the segmentation head. Early stopping on validation mIoU (or the schedule's last epoch); every
epoch is checkpointed in `<out>/.train/`, so rerunning the same command resumes.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.nn import functional as F

from fashionlens.backbones import create_backbone
from fashionlens.data.samples import SkippedInput
from fashionlens.holdout import PARTS
from fashionlens.images import ImageError
from fashionlens.letterbox import letterbox, letterbox_labels
from fashionlens.parse.dataset import MaskDataset, MaskedImage
from fashionlens.parse.inference import export_parser
from fashionlens.parse.labels import IGNORE, class_lut
from fashionlens.parse.metrics import confusion, parsing_metrics
from fashionlens.parse.model import ParserConfig, build_parser
from fashionlens.parse.model_io import load_parser, save_parser
from fashionlens.preprocess import normalized
from fashionlens.pyramid import as_channels_last, colour_jitter
from fashionlens.stem_cache import StemCache, build_stem_cache, first_view_batches
from fashionlens.stem_training import Schedule, StemTask, train_on_stems


@dataclass(frozen=True)
class ParserTrainConfig:
    epochs: int = 40
    batch_size: int = 8
    lr: float = 2e-3
    backbone_lr_scale: float = 0.2
    weight_decay: float = 1e-4
    keep: str = "best"  # "best": the epoch with the best validation mIoU, stopping after `patience` epochs
    # without one; "last": the whole one-cycle schedule runs and its annealed end is kept
    patience: int = 6  # with keep="best": epochs without a better validation mIoU before stopping
    views: int = 4
    val_fraction: float = 0.1
    test_fraction: float = 0.15
    time_budget_minutes: float | None = None  # stop after the epoch that crosses it
    seed: int = 0

    def schedule(self) -> Schedule:
        return Schedule(self.epochs, self.batch_size, self.lr, self.backbone_lr_scale, self.weight_decay,
                        self.patience, self.views, self.seed, keep=self.keep,
                        time_budget_minutes=self.time_budget_minutes)


def make_view(image: Image.Image, labels: Image.Image, view: int, size: tuple[int, int], seed: int, index: int
              ) -> tuple[Image.Image, np.ndarray]:
    """View 0 is the photo, 1 its mirror, 2+ random crops keeping 60-100% of each side with colour jitter
    (odd ones mirrored); the label map follows every step by nearest neighbour."""
    rng = np.random.default_rng([seed, index, view])
    if view >= 2:
        w, h = image.width * rng.uniform(0.6, 1.0), image.height * rng.uniform(0.6, 1.0)
        x0, y0 = rng.uniform(0, image.width - w), rng.uniform(0, image.height - h)
        box = (round(x0), round(y0), round(x0 + w), round(y0 + h))
        image, labels = colour_jitter(image.crop(box), rng), labels.crop(box)
    if view % 2 == 1:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        labels = labels.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    boxed, _ = letterbox(image, size)
    return boxed, letterbox_labels(labels, size, IGNORE)


@dataclass(frozen=True)
class _ParserViews:
    """The `views` views of each photo, normalised, with their label maps in the model's classes."""

    dataset: MaskDataset
    images: list[MaskedImage]
    lut: np.ndarray
    views: int
    size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    seed: int

    def __call__(self, index: int, image: Image.Image) -> list[tuple[np.ndarray, np.ndarray]]:
        try:
            labels = Image.fromarray(self.lut[self.dataset.load_mask(self.images[index], image.size)])
        except ValueError as exc:
            raise ImageError(str(self.images[index].path), str(exc)) from exc
        out = []
        for v in range(self.views):
            boxed, target = make_view(image, labels, v, self.size, self.seed, index)
            out.append((normalized(boxed, self.mean, self.std), target))
        return out


class LabelMapTargets:
    """Each cached view's label map, a uint8 array on disk beside the stems (IGNORE where there is none)."""

    def __init__(self, size: tuple[int, int]):
        self.size = size
        self.labels = np.zeros((0, *size), np.uint8)

    def files(self, folder: Path, name: str) -> list[Path]:
        return [folder / f"{name}-labels.npy"]

    def open(self, folder: Path, name: str, rows: int, meta: dict, fresh: bool) -> None:
        path = self.files(folder, name)[0]
        self.labels = (np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=(rows, *self.size)) if fresh
                       else np.load(path, mmap_mode="r+", allow_pickle=False))

    def put(self, rows: slice, targets: list | None) -> None:
        self.labels[rows] = IGNORE if targets is None else np.stack([np.asarray(t) for t in targets])

    def flush(self) -> None:
        self.labels.flush()


def class_weights(labels: np.ndarray, n: int) -> torch.Tensor:
    """Inverse square-root pixel frequency, relative to the median class: rare garments (belts, glasses) weigh
    more without drowning the background; classes never seen get weight 1."""
    counts = np.zeros(n, np.float64)
    for chunk in range(0, len(labels), 64):
        counts += np.bincount(np.asarray(labels[chunk:chunk + 64]).ravel(), minlength=256)[:n]
    freq = counts / max(1.0, counts.sum())
    seen = freq > 0
    weights = np.ones(n)
    weights[seen] = np.clip(np.sqrt(np.median(freq[seen]) / freq[seen]), 0.25, 4.0)
    return torch.tensor(weights, dtype=torch.float32)


@torch.no_grad()
def predict_cached(model, cache: StemCache, input_size) -> np.ndarray:
    """Predicted classes of view 0 of every cached image, at the input size."""
    model.eval()
    out = [model.from_stem(stems, input_size).argmax(1).numpy().astype(np.uint8)
           for _, stems in first_view_batches(cache)]
    return np.concatenate(out) if out else np.zeros((0, *input_size), np.uint8)


def _losses(model, cache: StemCache[LabelMapTargets], rows: list[int], weights: torch.Tensor,
            input_size) -> dict[str, torch.Tensor]:
    logits = model.from_stem(as_channels_last(cache.stems[rows]), input_size)
    target = torch.from_numpy(np.asarray(cache.targets.labels[rows], dtype=np.int64))
    return {"loss": F.cross_entropy(logits, target, weight=weights, ignore_index=IGNORE)}


def _validation(cache: StemCache[LabelMapTargets], ok: list[int], classes: list[str], input_size):
    """mIoU, group mIoU and pixel accuracy of view 0 of the readable validation photos (`ok`)."""
    truth = np.asarray(cache.targets.labels)[ok]

    def validate(model) -> dict[str, float]:
        predicted = predict_cached(model, cache, input_size)[ok]
        metrics = parsing_metrics(confusion(truth, predicted, len(classes)), classes)
        return {"miou": metrics["miou"], "group_miou": metrics["group_miou"],
                "pixel_accuracy": metrics["pixel_accuracy"]}
    return validate


def train_parser(
    dataset: MaskDataset,
    out: str | Path,
    *,
    parser: ParserConfig | None = None,
    config: ParserTrainConfig = ParserTrainConfig(),
    progress: bool = True,
) -> dict:
    """Train, keep the last (or best) epoch, save the model folder; the test part stays unseen."""
    schedule = config.schedule()
    started = time.time()
    out = Path(out)
    parser = parser or ParserConfig()
    lut = class_lut(dataset.names, parser.groups, dataset.source)
    if tuple(parser.classes) != tuple(parser.groups):
        parser = replace(parser, classes=tuple(parser.groups))
    torch.manual_seed(config.seed)
    backbone = create_backbone(parser.backbone)
    model = build_parser(parser, backbone).to(memory_format=torch.channels_last)
    mean, std = backbone.preprocess.mean, backbone.preprocess.std
    parts = {p: dataset.part(p, config.val_fraction, config.test_fraction) for p in PARTS}
    if not len(parts["train"]) or not len(parts["validation"]):
        raise ValueError(f"{dataset.source}: {len(dataset)} photos are too few to hold out a validation part")
    work = out / ".train"
    key = hashlib.sha256(json.dumps([parser.to_dict(), backbone.weights_id, config.views, config.seed,
                                     config.val_fraction, config.test_fraction,
                                     [str(im.path) for im in dataset.images]]).encode()).hexdigest()[:16]
    failures: list[SkippedInput] = []
    caches = {}
    for name, views in [("train", config.views), ("validation", 1)]:
        images = parts[name].images
        make_views = _ParserViews(dataset, images, lut, views, parser.input_size, mean, std, config.seed)
        caches[name] = build_stem_cache(model.backbone, [im.path for im in images], make_views, views,
                                        parser.input_size, LabelMapTargets(parser.input_size), work, key, failures,
                                        progress, name)
    train_cache, val_cache = caches["train"], caches["validation"]
    train_ok = [i for i, ok in enumerate(train_cache.ok) if ok]
    val_ok = [i for i, ok in enumerate(val_cache.ok) if ok]
    weights = class_weights(train_cache.targets.labels[::config.views], len(parser.classes))
    input_size = parser.input_size
    task = StemTask("parser", model, train_ok, lambda m, rows: _losses(m, train_cache, rows, weights, input_size),
                    _validation(val_cache, val_ok, list(parser.classes), input_size), "miou")
    config_key = hashlib.sha256(json.dumps([key, asdict(config)], default=str).encode()).hexdigest()[:16]
    run = train_on_stems(task, schedule, work, out / "logs", config_key, progress)
    summary = {
        "data": {"source": dataset.source, "images": len(dataset), "skipped": len(dataset.skipped) + len(failures),
                 **{part: len(parts[part]) for part in PARTS},
                 "split": {"rule": "sha1(file name)", "val_fraction": config.val_fraction,
                           "test_fraction": config.test_fraction}},
        "training": {**asdict(config), "kept_epoch": run.kept_epoch, "best_epoch": run.state.best_epoch,
                     "epochs_run": run.state.epoch, "minutes": round((time.time() - started) / 60, 1)},
        "metrics": {"validation": run.state.validation.get(run.kept_epoch, {})},
    }
    save_parser(model, parser, backbone, out, info=summary)
    export_parser(load_parser(out))  # the folder carries its ONNX graph, so it runs without PyTorch
    return {**summary, "failures": failures}
