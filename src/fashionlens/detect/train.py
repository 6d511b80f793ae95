"""Training the detector on a 2-core CPU: the frozen stem runs once per augmented view and is cached on disk,
then each epoch trains only the deeper backbone blocks, the pyramid and the FCOS head on those caches.

Every training image gets `views` fixed augmentations (the photo, its mirror, then random crops with colour
jitter, half of them mirrored); each epoch draws one view per image. Extra datasets (CCP's label maps as boxes)
add their train and validation photos to the training part only: validation and test stay the main dataset's,
and the extra data's own test photos stay unseen for its benchmarks. Validation, early stopping and the saved
weights use an exponential moving average of the weights (EMA), which places boxes more steadily than the last
step's weights. `init` starts from a trained detector's weights (a fine-tuning stage on more data). The cache and an epoch checkpoint live in `<out>/.train/`, so a killed run resumes where it stopped.
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
from torchvision.models.detection.image_list import ImageList

from fashionlens.backbones import create_backbone
from fashionlens.data.samples import SkippedInput
from fashionlens.detect.detections import AnnotatedImage, DetectionDataset, Detections
from fashionlens.detect.evaluate import evaluate_detections
from fashionlens.detect.inference import export_detector
from fashionlens.detect.model import DetectorConfig, build_detector, decode
from fashionlens.detect.model_io import load_detector, save_detector
from fashionlens.holdout import PARTS, holdout_part
from fashionlens.letterbox import letterbox
from fashionlens.preprocess import normalized
from fashionlens.pyramid import as_channels_last, colour_jitter
from fashionlens.stem_cache import StemCache, build_stem_cache, first_view_batches
from fashionlens.stem_training import Schedule, StemTask, train_on_stems


@dataclass(frozen=True)
class DetectorTrainConfig:
    epochs: int = 30
    batch_size: int = 8
    lr: float = 1e-3
    backbone_lr_scale: float = 0.2  # the pretrained deep blocks learn slower than the new pyramid and head
    weight_decay: float = 1e-4
    patience: int = 6  # epochs without a better validation mAP@0.5 before stopping
    views: int = 4
    val_fraction: float = 0.1
    test_fraction: float = 0.15
    time_budget_minutes: float | None = None  # stop after the epoch that crosses it, keeping the best weights
    ema_decay: float = 0.998  # 0: validate and keep the raw weights
    init: str | None = None  # a detector folder of the same network whose weights training starts from
    seed: int = 0

    def schedule(self) -> Schedule:
        return Schedule(self.epochs, self.batch_size, self.lr, self.backbone_lr_scale, self.weight_decay,
                        self.patience, self.views, self.seed, time_budget_minutes=self.time_budget_minutes,
                        ema_decay=self.ema_decay)


def split_dataset(dataset: DetectionDataset, val_fraction: float, test_fraction: float) -> dict[str, DetectionDataset]:
    parts = [holdout_part(im.path, val_fraction, test_fraction) for im in dataset.images]
    return {name: dataset.subset([i for i, p in enumerate(parts) if p == name]) for name in PARTS}


def extra_training_images(extra: list[DetectionDataset], classes: list[str], val_fraction: float,
                          test_fraction: float) -> list[AnnotatedImage]:
    """The train and validation parts (by file name) of each extra dataset, whose classes must be the model's."""
    out = []
    for ds in extra:
        if list(ds.classes) != list(classes):
            raise ValueError(f"{ds.source}: classes {ds.classes} differ from the training data's {classes}")
        out += [im for im in ds.images if holdout_part(im.path, val_fraction, test_fraction) != "test"]
    return out


def _random_crop(image: Image.Image, boxes: np.ndarray, labels: np.ndarray, rng: np.random.Generator):
    """A crop keeping 60-100% of each side, with the boxes that keep at least 40% of their area inside it."""
    for _ in range(10):
        w, h = image.width * rng.uniform(0.6, 1.0), image.height * rng.uniform(0.6, 1.0)
        x0, y0 = rng.uniform(0, image.width - w), rng.uniform(0, image.height - h)
        clipped = boxes.copy()
        clipped[:, [0, 2]] = np.clip(clipped[:, [0, 2]], x0, x0 + w) - x0
        clipped[:, [1, 3]] = np.clip(clipped[:, [1, 3]], y0, y0 + h) - y0
        area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
        kept = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1]) >= 0.4 * area
        if kept.any():
            crop = image.crop((round(x0), round(y0), round(x0 + w), round(y0 + h)))
            shifted = clipped[kept] - [round(x0) - x0, round(y0) - y0] * 2
            return crop, np.clip(shifted, 0, [crop.width, crop.height] * 2), labels[kept]
    return image, boxes, labels


def make_view(image: Image.Image, detections: Detections, view: int, size: tuple[int, int], seed: int, index: int):
    """View 0 is the photo, 1 its mirror, 2+ random crops with colour jitter (odd ones mirrored)."""
    rng = np.random.default_rng([seed, index, view])
    boxes, labels = detections.xyxy.copy(), detections.class_id.copy()
    if view >= 2:
        image, boxes, labels = _random_crop(image, boxes, labels, rng)
        image = colour_jitter(image, rng)
    if view % 2 == 1:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        boxes = np.stack([image.width - boxes[:, 2], boxes[:, 1], image.width - boxes[:, 0], boxes[:, 3]], axis=1)
    boxed, scale = letterbox(image, size)
    return boxed, (boxes * scale).astype(np.float32), labels, scale


@dataclass(frozen=True)
class _DetectorViews:
    """The `views` views of each photo, normalised, with their boxes, labels and letterbox scale."""

    images: list[AnnotatedImage]
    views: int
    size: tuple[int, int]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    seed: int

    def __call__(self, index: int, image: Image.Image) -> list[tuple[np.ndarray, tuple]]:
        out = []
        for v in range(self.views):
            boxed, boxes, labels, scale = make_view(image, self.images[index].detections, v, self.size, self.seed, index)
            out.append((normalized(boxed, self.mean, self.std), (boxes, labels, scale)))
        return out


class BoxTargets:
    """Each cached view's boxes, labels and letterbox scale, kept in the cache's JSON."""

    def __init__(self):
        self.boxes: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []
        self.scales: list[float] = []

    def files(self, folder: Path, name: str) -> list[Path]:
        return []

    def open(self, folder: Path, name: str, rows: int, meta: dict, fresh: bool) -> None:
        if fresh:
            meta.update(boxes=[], labels=[], scales=[])
        self.meta = meta
        self.boxes = [np.asarray(b, np.float32).reshape(-1, 4) for b in meta["boxes"]]
        self.labels = [np.asarray(x, np.int64) for x in meta["labels"]]
        self.scales = list(meta["scales"])

    def put(self, rows: slice, targets: list | None) -> None:
        n = rows.stop - rows.start
        if targets is None:
            targets = [(np.zeros((0, 4), np.float32), np.zeros(0, np.int64), 1.0)] * n
        for boxes, labels, scale in targets:
            self.boxes.append(np.asarray(boxes, np.float32).reshape(-1, 4))
            self.labels.append(np.asarray(labels, np.int64))
            self.scales.append(scale)
            self.meta["boxes"].append(self.boxes[-1].tolist())
            self.meta["labels"].append(self.labels[-1].tolist())
            self.meta["scales"].append(scale)

    def flush(self) -> None:
        """The targets go into the cache's JSON as they are put."""


def _losses(model, cache: StemCache[BoxTargets], rows: list[int], input_size) -> dict[str, torch.Tensor]:
    """torchvision FCOS's own losses, from cached stems instead of images."""
    targets = [{"boxes": torch.from_numpy(cache.targets.boxes[r]), "labels": torch.from_numpy(cache.targets.labels[r])}
               for r in rows]
    features = list(model.backbone.deep(as_channels_last(cache.stems[rows])).values())
    head_outputs = model.head(features)
    images = ImageList(torch.empty(len(rows), 3, *input_size), [tuple(input_size)] * len(rows))
    anchors = model.anchor_generator(images, features)
    return model.compute_loss(targets, head_outputs, anchors, [f.shape[2] * f.shape[3] for f in features])


@torch.no_grad()
def predict_cached(model, cache: StemCache[BoxTargets], input_size) -> list[Detections]:
    """Detections for view 0 of every cached image, in original pixels."""
    model.eval()
    results = []
    for rows, stems in first_view_batches(cache):
        features = list(model.backbone.deep(stems).values())
        shapes = [tuple(f.shape[-2:]) for f in features]
        for row, det in zip(rows, decode(model, model.head(features), input_size, shapes), strict=True):
            scale = cache.targets.scales[row]
            results.append(Detections(det["boxes"].numpy() / scale, det["labels"].numpy(), det["scores"].numpy()))
    return results


def _validation(cache: StemCache[BoxTargets], subset: DetectionDataset, ok: list[int], input_size):
    """COCO mAPs of one pass over the cached validation stems, scored on the readable images (`ok`)."""
    def validate(model) -> dict[str, float]:
        predictions = predict_cached(model, cache, input_size)
        metrics = evaluate_detections(subset, [predictions[i] for i in ok])
        return {"map50": float(metrics["map50"]), "map50_95": float(metrics["map50_95"])}
    return validate


def train_detector(
    dataset: DetectionDataset,
    out: str | Path,
    *,
    detector: DetectorConfig | None = None,
    config: DetectorTrainConfig = DetectorTrainConfig(),
    extra: list[DetectionDataset] = (),
    progress: bool = True,
) -> dict:
    """Train, keep the epoch with the best validation mAP@0.5, evaluate on the held-out test part, save."""
    started = time.time()
    out = Path(out)
    detector = detector or DetectorConfig(classes=tuple(dataset.classes))
    if tuple(detector.classes) != tuple(dataset.classes):
        detector = replace(detector, classes=tuple(dataset.classes))
    torch.manual_seed(config.seed)
    backbone = create_backbone(detector.backbone)
    model = build_detector(detector, backbone)
    init_sha = None
    if config.init:
        start = load_detector(config.init)
        if start.config != detector:
            raise ValueError(f"{config.init}: its network ({start.config}) differs from the one to train ({detector})")
        model.load_state_dict(start.model.state_dict())
        init_sha = start.weights_sha256
    model = model.to(memory_format=torch.channels_last)
    mean, std = backbone.preprocess.mean, backbone.preprocess.std
    parts = split_dataset(dataset, config.val_fraction, config.test_fraction)
    if not len(parts["train"]) or not len(parts["validation"]):
        raise ValueError(f"{dataset.source}: {len(dataset)} annotated images are too few to hold out a validation part")
    extra_images = extra_training_images(list(extra), list(dataset.classes), config.val_fraction, config.test_fraction)
    train_images = parts["train"].images + extra_images
    work = out / ".train"
    key = hashlib.sha256(json.dumps([detector.to_dict(), backbone.weights_id, config.views, config.seed,
                                     config.val_fraction, config.test_fraction,
                                     [str(im.path) for im in dataset.images],
                                     [str(im.path) for im in extra_images]]).encode()).hexdigest()[:16]
    failures: list[SkippedInput] = []
    caches = {}
    for name, images, views in [("train", train_images, config.views), ("validation", parts["validation"].images, 1)]:
        make_views = _DetectorViews(images, views, detector.input_size, mean, std, config.seed)
        caches[name] = build_stem_cache(model.backbone, [im.path for im in images], make_views, views,
                                        detector.input_size, BoxTargets(), work, key, failures, progress, name)
    train_cache, val_cache = caches["train"], caches["validation"]
    val_ok = [i for i, ok in enumerate(val_cache.ok) if ok]
    train_ok = [i for i, ok in enumerate(train_cache.ok) if ok and len(train_cache.targets.boxes[i * config.views])]
    input_size = detector.input_size
    task = StemTask("detector", model, train_ok, lambda m, rows: _losses(m, train_cache, rows, input_size),
                    _validation(val_cache, parts["validation"].subset(val_ok), val_ok, input_size), "map50",
                    views_drawn_per_epoch=False)
    config_key = hashlib.sha256(json.dumps([key, asdict(config), init_sha], default=str).encode()).hexdigest()[:16]
    run = train_on_stems(task, config.schedule(), work, out / "logs", config_key, progress)
    summary = {
        "data": {"source": dataset.source, "images": len(dataset), "skipped": len(dataset.skipped) + len(failures),
                 **{part: len(parts[part]) for part in PARTS},
                 "extra": [{"source": ds.source, "train": sum(1 for im in extra_images if str(im.path).startswith(ds.source))}
                           for ds in extra],
                 "split": {"rule": "sha1(file name)", "val_fraction": config.val_fraction,
                           "test_fraction": config.test_fraction}},
        "training": {**asdict(config), "best_epoch": run.state.best_epoch, "epochs_run": run.state.epoch,
                     "minutes": round((time.time() - started) / 60, 1)},
        "metrics": {"validation": {"map50": run.state.best_score}},
    }
    save_detector(model, detector, backbone, out, info=summary)
    export_detector(load_detector(out))  # the folder carries its ONNX graph, so it runs without PyTorch
    return {**summary, "failures": failures}
