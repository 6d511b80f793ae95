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
from torch.utils.data import DataLoader

from fashionlens.atomic import write_text_atomic
from fashionlens.backbones import create_backbone
from fashionlens.checkpoints import end_epoch, load_checkpoint
from fashionlens.data.samples import SkippedInput
from fashionlens.epoch_log import EpochLog
from fashionlens.features import ImageFileDataset
from fashionlens.holdout import PARTS
from fashionlens.letterbox import letterbox, letterbox_labels, to_tensor
from fashionlens.parse.dataset import MaskDataset, MaskedImage
from fashionlens.parse.labels import class_lut
from fashionlens.parse.labels import IGNORE
from fashionlens.parse.metrics import confusion, parsing_metrics
from fashionlens.parse.model import ParserConfig, build_parser
from fashionlens.parse.inference import export_parser
from fashionlens.parse.model_io import load_parser, save_parser
from fashionlens.progress import progress_bar
from fashionlens.pyramid import StemOnly, as_channels_last, colour_jitter, train_trunk, trunk_param_groups
from fashionlens.runtime import OnnxRunner, export_onnx


KEEP = ("last", "best")


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


class _ViewDataset(ImageFileDataset):
    def __init__(self, dataset: MaskDataset, images: list[MaskedImage], lut: np.ndarray, views: int, size, mean, std,
                 seed: int, offset: int):
        super().__init__([im.path for im in images])
        self.dataset, self.images, self.lut, self.views = dataset, images, lut, views
        self.size, self.mean, self.std, self.seed, self.offset = size, mean, std, seed, offset

    def prepare(self, i: int, data: bytes, image):
        try:
            labels = Image.fromarray(self.lut[self.dataset.load_mask(self.images[i], image.size)])
        except ValueError as exc:
            return str(exc)
        out = []
        for v in range(self.views):
            boxed, target = make_view(image, labels, v, self.size, self.seed, self.offset + i)
            out.append((to_tensor(boxed, self.mean, self.std), target))
        return out


@dataclass
class ParseCache:
    stems: np.ndarray  # [n_images * views, C, h, w] float16 (memory-mapped)
    labels: np.ndarray  # [n_images * views, H, W] uint8 model classes, IGNORE on padding
    ok: np.ndarray  # bool per image


def build_cache(model, dataset: MaskDataset, images: list[MaskedImage], lut: np.ndarray, views: int,
                config: ParserConfig, mean, std, folder: Path, key: str, seed: int, failures: list[SkippedInput],
                progress: bool, name: str) -> ParseCache:
    """Compute (or resume computing) the stems and label maps of every view; `<name>.json` counts the done."""
    folder.mkdir(parents=True, exist_ok=True)
    meta_path = folder / f"{name}.json"
    with torch.no_grad():
        shape = tuple(model.backbone.stem(torch.zeros(1, 3, *config.input_size)).shape[1:])
    n = len(images) * views
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    paths = folder / f"{name}-stems.npy", folder / f"{name}-labels.npy"
    if meta.get("key") != key or not all(p.is_file() for p in paths):
        meta = {"key": key, "done": 0, "ok": []}
        stems = np.lib.format.open_memmap(paths[0], mode="w+", dtype=np.float16, shape=(n, *shape))
        labels = np.lib.format.open_memmap(paths[1], mode="w+", dtype=np.uint8, shape=(n, *config.input_size))
    else:
        stems, labels = (np.load(p, mmap_mode="r+", allow_pickle=False) for p in paths)
    done = meta["done"]
    if done < len(images):
        onnx_path = folder / f"stem-{key}.onnx"
        if not onnx_path.exists():
            export_onnx(StemOnly(model.backbone), config.input_size, onnx_path, ["stem"])
        runner = OnnxRunner(onnx_path)
        todo = images[done:]
        loader = DataLoader(_ViewDataset(dataset, todo, lut, views, config.input_size, mean, std, seed, done),
                            batch_size=None, num_workers=1 if len(todo) > 8 else 0)
        with progress_bar(f"caching {name} views", len(todo), progress) as advance:
            for j, out, reason in loader:
                i = done + j
                if out is None or isinstance(out, str):
                    failures.append(SkippedInput(str(images[i].path), reason or out))
                    labels[i * views:(i + 1) * views] = IGNORE
                    meta["ok"].append(False)
                else:
                    stems[i * views:(i + 1) * views] = runner(torch.stack([o[0] for o in out]).numpy())["stem"]
                    labels[i * views:(i + 1) * views] = np.stack([o[1] for o in out])
                    meta["ok"].append(True)
                meta["done"] = i + 1
                if meta["done"] % 50 == 0 or meta["done"] == len(images):
                    stems.flush(), labels.flush()
                    write_text_atomic(meta_path, json.dumps(meta))
                advance(1)
    return ParseCache(stems, labels, np.asarray(meta["ok"], bool))


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
def predict_cached(model, cache: ParseCache, views: int, input_size, batch_size: int = 16) -> np.ndarray:
    """Predicted classes of view 0 of every cached image, at the input size."""
    model.eval()
    rows = list(range(0, len(cache.ok) * views, views))
    out = []
    for start in range(0, len(rows), batch_size):
        batch = rows[start:start + batch_size]
        out.append(model.from_stem(as_channels_last(cache.stems[batch]), input_size).argmax(1).numpy().astype(np.uint8))
    return np.concatenate(out) if out else np.zeros((0, *input_size), np.uint8)


def train_parser(
    dataset: MaskDataset,
    out: str | Path,
    *,
    parser: ParserConfig | None = None,
    config: ParserTrainConfig = ParserTrainConfig(),
    progress: bool = True,
) -> dict:
    """Train, keep the last (or best) epoch, save the model folder; the test part stays unseen."""
    if config.keep not in KEEP:
        raise ValueError(f"keep must be one of {', '.join(KEEP)}, not {config.keep!r}")
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
    train_cache = build_cache(model, dataset, parts["train"].images, lut, config.views, parser, mean, std, work, key,
                              config.seed, failures, progress, "train")
    val_cache = build_cache(model, dataset, parts["validation"].images, lut, 1, parser, mean, std, work, key,
                            config.seed, failures, progress, "validation")
    train_ok = [i for i, ok in enumerate(train_cache.ok) if ok]
    val_ok = [i for i, ok in enumerate(val_cache.ok) if ok]
    n_classes = len(parser.classes)
    weights = class_weights(train_cache.labels[::config.views], n_classes)

    optimizer = torch.optim.AdamW(trunk_param_groups(model.backbone, model, config.lr, config.backbone_lr_scale),
                                  weight_decay=config.weight_decay)
    steps_per_epoch = max(1, len(train_ok) // config.batch_size)
    total = config.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups],
                                                    total_steps=total, pct_start=0.05)
    config_key = hashlib.sha256(json.dumps([key, asdict(config)], default=str).encode()).hexdigest()[:16]
    state = {"config_key": config_key, "epoch": 0, "best_score": -1.0, "best_epoch": 0, "since_best": 0, "seconds": 0.0}
    best = {k: v.clone() for k, v in model.state_dict().items()}
    resumed = load_checkpoint(work, model, optimizer, scheduler, config_key)
    if resumed:
        state, best = resumed
        state.pop("param_groups", None), state.pop("scheduler", None)
    log = EpochLog(out / "logs")
    input_size = parser.input_size
    val_truth = np.asarray(val_cache.labels)[val_ok]
    for epoch in range(state["epoch"] + 1, config.epochs + 1):
        if config.keep == "best" and state["since_best"] >= config.patience:
            break
        if config.time_budget_minutes and state["seconds"] / 60 >= config.time_budget_minutes:
            break
        epoch_start = time.time()
        train_trunk(model)
        rng = np.random.default_rng([config.seed, epoch])
        order = rng.permutation(train_ok)
        loss_sum = 0.0
        with progress_bar(f"parser epoch {epoch}/{config.epochs}", steps_per_epoch * config.batch_size, progress) as advance:
            for s in range(steps_per_epoch):
                rows = sorted(int(i) * config.views + int(rng.integers(config.views))
                              for i in order[s * config.batch_size:(s + 1) * config.batch_size])
                logits = model.from_stem(as_channels_last(train_cache.stems[rows]), input_size)
                target = torch.from_numpy(np.asarray(train_cache.labels[rows], dtype=np.int64))
                loss = F.cross_entropy(logits, target, weight=weights, ignore_index=IGNORE)
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
                optimizer.step()
                if scheduler.last_epoch + 1 < total:
                    scheduler.step()
                loss_sum += loss.item()
                advance(len(rows))
        predicted = predict_cached(model, val_cache, 1, input_size)[val_ok]
        metrics = parsing_metrics(confusion(val_truth, predicted, n_classes), list(parser.classes))
        state["seconds"] += time.time() - epoch_start
        scores = {"miou": metrics["miou"], "group_miou": metrics["group_miou"],
                  "pixel_accuracy": metrics["pixel_accuracy"]}
        log.log("parser", epoch, {"loss": loss_sum / steps_per_epoch, **{f"val_{k}": v for k, v in scores.items()},
                                  "minutes": state["seconds"] / 60})
        state.setdefault("validation", {})[str(epoch)] = scores
        best = end_epoch(work, model, optimizer, scheduler, state, best, epoch, metrics["miou"])
    log.close()
    kept = state["best_epoch"] if config.keep == "best" else state["epoch"]
    if config.keep == "best":
        model.load_state_dict(best)
    model = model.to(memory_format=torch.contiguous_format).eval()
    summary = {
        "data": {"source": dataset.source, "images": len(dataset), "skipped": len(dataset.skipped) + len(failures),
                 **{part: len(parts[part]) for part in PARTS},
                 "split": {"rule": "sha1(file name)", "val_fraction": config.val_fraction,
                           "test_fraction": config.test_fraction}},
        "training": {**asdict(config), "kept_epoch": kept, "best_epoch": state["best_epoch"], "epochs_run": state["epoch"],
                     "minutes": round((time.time() - started) / 60, 1)},
        "metrics": {"validation": state.get("validation", {}).get(str(kept), {})},
    }
    save_parser(model, parser, backbone, out, info=summary)
    export_parser(load_parser(out))  # the folder carries its ONNX graph, so it runs without PyTorch
    return {**summary, "failures": failures}
