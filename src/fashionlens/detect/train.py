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
from torch.utils.data import DataLoader
from torchvision.models.detection.image_list import ImageList

from fashionlens.atomic import write_text_atomic
from fashionlens.backbones import create_backbone
from safetensors.torch import load_file

from fashionlens.checkpoints import end_epoch, load_checkpoint, save_tensors
from fashionlens.data.samples import SkippedInput
from fashionlens.detect.detections import AnnotatedImage, DetectionDataset, Detections
from fashionlens.detect.evaluate import evaluate_detections
from fashionlens.letterbox import letterbox, to_tensor
from fashionlens.features import ImageFileDataset
from fashionlens.detect.model import DetectorConfig, build_detector, decode
from fashionlens.detect.inference import export_detector
from fashionlens.detect.model_io import load_detector, save_detector
from fashionlens.epoch_log import EpochLog
from fashionlens.holdout import PARTS, holdout_part
from fashionlens.progress import progress_bar
from fashionlens.pyramid import StemOnly, as_channels_last, colour_jitter, train_trunk, trunk_param_groups
from fashionlens.runtime import OnnxRunner, export_onnx



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


def split_dataset(dataset: DetectionDataset, val_fraction: float, test_fraction: float) -> dict[str, DetectionDataset]:
    parts = [holdout_part(im.path, val_fraction, test_fraction) for im in dataset.images]
    return {name: dataset.subset([i for i, p in enumerate(parts) if p == name]) for name in PARTS}


class WeightAverage:
    """EMA of a model's floating-point state; the decay ramps up over the first steps, as in YOLOv5."""

    def __init__(self, model: torch.nn.Module, decay: float, state: dict[str, torch.Tensor] | None = None, steps: int = 0):
        self.decay, self.steps = decay, steps
        self.state = state if state is not None else {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        self.steps += 1
        d = min(self.decay, (1 + self.steps) / (10 + self.steps))
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.state[k].mul_(d).add_(v.detach(), alpha=1 - d)
            else:
                self.state[k].copy_(v)


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


class _ViewDataset(ImageFileDataset):
    def __init__(self, images: list[AnnotatedImage], views: int, size, mean, std, seed: int):
        super().__init__([im.path for im in images])
        self.images, self.views, self.size, self.mean, self.std, self.seed = images, views, size, mean, std, seed

    def prepare(self, i: int, data: bytes, image):
        out = []
        for v in range(self.views):
            boxed, boxes, labels, scale = make_view(image, self.images[i].detections, v, self.size, self.seed, i)
            out.append((to_tensor(boxed, self.mean, self.std), boxes, labels, scale))
        return out


@dataclass
class StemCache:
    """Frozen-stem outputs of every view, a float16 array on disk, with the boxes of each view."""

    stems: np.ndarray  # [n_images * views, C, h, w] (memory-mapped)
    boxes: list[np.ndarray]
    labels: list[np.ndarray]
    scales: list[float]
    ok: np.ndarray  # bool per image: False where the image could not be read


def build_stem_cache(model, images: list[AnnotatedImage], views: int, config: DetectorConfig, mean, std, folder: Path,
                     key: str, seed: int, failures: list[SkippedInput], progress: bool, name: str) -> StemCache:
    """Compute (or resume computing) the stems; `meta.json` records how many images are done."""
    folder.mkdir(parents=True, exist_ok=True)
    meta_path, array_path = folder / f"{name}.json", folder / f"{name}.npy"
    with torch.no_grad():
        shape = tuple(model.backbone.stem(torch.zeros(1, 3, *config.input_size)).shape[1:])
    n = len(images) * views
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    if meta.get("key") != key or not array_path.is_file():
        meta = {"key": key, "done": 0, "boxes": [], "labels": [], "scales": [], "ok": []}
        stems = np.lib.format.open_memmap(array_path, mode="w+", dtype=np.float16, shape=(n, *shape))
    else:
        stems = np.load(array_path, mmap_mode="r+", allow_pickle=False)
    done = meta["done"]
    if done < len(images):
        onnx_path = folder / f"stem-{key}.onnx"
        if not onnx_path.exists():
            export_onnx(StemOnly(model.backbone), config.input_size, onnx_path, ["stem"])
        runner = OnnxRunner(onnx_path)
        todo = images[done:]
        loader = DataLoader(_ViewDataset(todo, views, config.input_size, mean, std, seed), batch_size=None,
                            num_workers=1 if len(todo) > 8 else 0)
        with progress_bar(f"caching {name} views", len(todo), progress) as advance:
            for j, out, reason in loader:
                i = done + j
                if out is None:
                    failures.append(SkippedInput(str(images[i].path), reason))
                    meta["boxes"] += [[]] * views
                    meta["labels"] += [[]] * views
                    meta["scales"] += [1.0] * views
                    meta["ok"].append(False)
                else:
                    stems[i * views:(i + 1) * views] = runner(torch.stack([o[0] for o in out]).numpy())["stem"]
                    meta["boxes"] += [o[1].tolist() for o in out]
                    meta["labels"] += [o[2].tolist() for o in out]
                    meta["scales"] += [o[3] for o in out]
                    meta["ok"].append(True)
                meta["done"] = i + 1
                if meta["done"] % 50 == 0 or meta["done"] == len(images):
                    stems.flush()
                    write_text_atomic(meta_path, json.dumps(meta))
                advance(1)
    return StemCache(stems, [np.asarray(b, np.float32).reshape(-1, 4) for b in meta["boxes"]],
                     [np.asarray(x, np.int64) for x in meta["labels"]], meta["scales"], np.asarray(meta["ok"], bool))


def _train_step(model, stems: torch.Tensor, targets: list[dict], input_size) -> dict[str, torch.Tensor]:
    """torchvision FCOS's own losses, from cached stems instead of images."""
    features = list(model.backbone.deep(stems).values())
    head_outputs = model.head(features)
    images = ImageList(torch.empty(len(stems), 3, *input_size), [tuple(input_size)] * len(stems))
    anchors = model.anchor_generator(images, features)
    return model.compute_loss(targets, head_outputs, anchors, [f.shape[2] * f.shape[3] for f in features])


@torch.no_grad()
def predict_cached(model, cache: StemCache, views: int, input_size, batch_size: int = 16) -> list[Detections]:
    """Detections for view 0 of every cached image, in original pixels."""
    model.eval()
    results = []
    rows = list(range(0, len(cache.ok) * views, views))
    for start in range(0, len(rows), batch_size):
        batch = rows[start:start + batch_size]
        stems = as_channels_last(cache.stems[batch])
        features = list(model.backbone.deep(stems).values())
        shapes = [tuple(f.shape[-2:]) for f in features]
        for row, det in zip(batch, decode(model, model.head(features), input_size, shapes), strict=True):
            scale = cache.scales[row]
            results.append(Detections(det["boxes"].numpy() / scale, det["labels"].numpy(), det["scores"].numpy()))
    return results


def _validate(model, cache: StemCache, subset: DetectionDataset, ok: list[int], input_size) -> dict:
    """COCO metrics of one pass over the cached validation stems, scored on the readable images (`ok`)."""
    predictions = predict_cached(model, cache, 1, input_size)
    return evaluate_detections(subset, [predictions[i] for i in ok])


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
    train_cache = build_stem_cache(model, train_images, config.views, detector, mean, std, work, key,
                                   config.seed, failures, progress, "train")
    val_cache = build_stem_cache(model, parts["validation"].images, 1, detector, mean, std, work, key, config.seed,
                                 failures, progress, "validation")
    val_ok = [i for i, ok in enumerate(val_cache.ok) if ok]
    train_ok = [i for i, ok in enumerate(train_cache.ok) if ok and len(train_cache.boxes[i * config.views])]

    optimizer = torch.optim.AdamW(trunk_param_groups(model.backbone, model, config.lr, config.backbone_lr_scale), weight_decay=config.weight_decay)
    steps_per_epoch = max(1, len(train_ok) // config.batch_size)
    total = config.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups],
                                                    total_steps=total, pct_start=0.05)
    config_key = hashlib.sha256(json.dumps([key, asdict(config), init_sha], default=str).encode()).hexdigest()[:16]
    state = {"config_key": config_key, "epoch": 0, "best_score": -1.0, "best_epoch": 0, "since_best": 0, "seconds": 0.0}
    best = {k: v.clone() for k, v in model.state_dict().items()}
    resumed = load_checkpoint(work, model, optimizer, scheduler, config_key)
    ema = WeightAverage(model, config.ema_decay) if config.ema_decay else None
    if resumed:
        state, best = resumed
        state.pop("param_groups", None), state.pop("scheduler", None)
        if ema is not None:
            ema = WeightAverage(model, config.ema_decay, load_file(work / "ema.safetensors"), state.get("ema_steps", 0))
    log = EpochLog(out / "logs")
    rng = np.random.default_rng(config.seed)
    input_size = detector.input_size
    val_subset = parts["validation"].subset(val_ok)
    for epoch in range(state["epoch"] + 1, config.epochs + 1):
        if state["since_best"] >= config.patience:
            break
        if config.time_budget_minutes and state["seconds"] / 60 >= config.time_budget_minutes:
            break
        epoch_start = time.time()
        train_trunk(model)
        order = np.random.default_rng([config.seed, epoch]).permutation(train_ok)
        sums: dict[str, float] = {}
        with progress_bar(f"detector epoch {epoch}/{config.epochs}", steps_per_epoch * config.batch_size, progress) as advance:
            for s in range(steps_per_epoch):
                rows = [int(i) * config.views + int(rng.integers(config.views)) for i in order[s * config.batch_size:(s + 1) * config.batch_size]]
                stems = as_channels_last(train_cache.stems[sorted(rows)])
                targets = [{"boxes": torch.from_numpy(train_cache.boxes[r]), "labels": torch.from_numpy(train_cache.labels[r])}
                           for r in sorted(rows)]
                losses = _train_step(model, stems, targets, input_size)
                loss = sum(losses.values())
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
                optimizer.step()
                if scheduler.last_epoch + 1 < total:
                    scheduler.step()
                if ema is not None:
                    ema.update(model)
                for k, v in losses.items():
                    sums[k] = sums.get(k, 0.0) + v.item()
                advance(len(rows))
        raw = _validate(model, val_cache, val_subset, val_ok, input_size)
        metrics, kept = raw, None
        if ema is not None:  # validate the average too (the raw figures stay in the log to measure what EMA pays)
            live = {k: v.clone() for k, v in model.state_dict().items()}
            model.load_state_dict(ema.state)
            metrics = _validate(model, val_cache, val_subset, val_ok, input_size)
            kept = {k: v.clone() for k, v in ema.state.items()}
            model.load_state_dict(live)
            state["ema_steps"] = ema.steps
            save_tensors(work / "ema.safetensors", ema.state)
        score = float(metrics["map50"])
        state["seconds"] += time.time() - epoch_start
        log.log("detector", epoch, {**{k: v / steps_per_epoch for k, v in sums.items()}, "val_map50": score,
                                    "val_map50_95": float(metrics["map50_95"]), "raw_val_map50": float(raw["map50"]),
                                    "raw_val_map50_95": float(raw["map50_95"]), "minutes": state["seconds"] / 60})
        best = end_epoch(work, model, optimizer, scheduler, state, best, epoch, score, weights=kept)
    log.close()
    model.load_state_dict(best)
    model = model.to(memory_format=torch.contiguous_format).eval()
    summary = {
        "data": {"source": dataset.source, "images": len(dataset), "skipped": len(dataset.skipped) + len(failures),
                 **{part: len(parts[part]) for part in PARTS},
                 "extra": [{"source": ds.source, "train": sum(1 for im in extra_images if str(im.path).startswith(ds.source))}
                           for ds in extra],
                 "split": {"rule": "sha1(file name)", "val_fraction": config.val_fraction,
                           "test_fraction": config.test_fraction}},
        "training": {**asdict(config), "best_epoch": state["best_epoch"], "epochs_run": state["epoch"],
                     "minutes": round((time.time() - started) / 60, 1)},
        "metrics": {"validation": {"map50": state["best_score"]}},
    }
    save_detector(model, detector, backbone, out, info=summary)
    export_detector(load_detector(out))  # the folder carries its ONNX graph, so it runs without PyTorch
    return {**summary, "failures": failures}
