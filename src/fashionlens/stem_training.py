"""One training loop for the networks that train on cached frozen-stem outputs (the detector, the parser).

The loop owns what the two share: AdamW with slower pretrained blocks, a one-cycle schedule, one augmented view
drawn per photo and epoch, an optional weight average (EMA), a checkpoint every epoch in `<out>/.train/` (so
rerunning the same command resumes), a time budget, early stopping on a validation score, and the epoch log
`<out>/logs/<name>.csv`. A task brings its network and three hooks: the losses of a batch of cached views, its
validation figures, and which figure picks the best epoch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from safetensors.torch import load_file

from fashionlens.checkpoints import TrainingState, end_epoch, load_checkpoint, save_tensors
from fashionlens.epoch_log import EpochLog
from fashionlens.progress import progress_bar
from fashionlens.pyramid import train_trunk, trunk_param_groups

KEEP = ("last", "best")


@dataclass(frozen=True)
class Schedule:
    """The settings the loop reads from a task's training config."""

    epochs: int
    batch_size: int
    lr: float
    backbone_lr_scale: float  # the pretrained deep blocks learn slower than the new pyramid and head
    weight_decay: float
    patience: int  # with keep="best": epochs without a better score before stopping
    views: int  # cached views per training photo
    seed: int
    keep: str = "best"  # "best": the best-scoring epoch's weights; "last": the whole schedule runs, its end kept
    time_budget_minutes: float | None = None  # stop after the epoch that crosses it
    ema_decay: float = 0.0  # 0: validate and keep the raw weights

    def __post_init__(self):
        if self.keep not in KEEP:
            raise ValueError(f"keep must be one of {', '.join(KEEP)}, not {self.keep!r}")


@dataclass(frozen=True)
class StemTask:
    """What one network brings to the loop. `model` has a `backbone` pyramid and is trained in place."""

    name: str  # names the progress bars and the epoch log
    model: torch.nn.Module
    train_photos: list[int]  # the cached training photos to draw batches from
    loss: Callable[[torch.nn.Module, list[int]], dict[str, torch.Tensor]]  # a batch of cache rows -> named losses,
    # summed for the step and each logged
    validate: Callable[[torch.nn.Module], dict[str, float]]  # validation figures, logged as val_<figure>
    score: str  # the validation figure that picks the best epoch (higher is better)
    views_drawn_per_epoch: bool = True  # False: one generator for the whole run draws the views (the detector's
    # way: a resumed run then draws other views than an unbroken one)


@dataclass
class TrainingRun:
    state: TrainingState
    kept_epoch: int  # the epoch whose weights the model now holds


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


def _clone(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in weights.items()}


def _validate_average(task: StemTask, ema: WeightAverage) -> dict[str, float]:
    """The validation figures of the averaged weights; the model keeps its own."""
    live = _clone(task.model.state_dict())
    task.model.load_state_dict(ema.state)
    figures = task.validate(task.model)
    task.model.load_state_dict(live)
    return figures


def train_on_stems(task: StemTask, schedule: Schedule, work: Path, logs: Path, config_key: str,
                   progress: bool) -> TrainingRun:
    """Train `task.model` (resuming from `work` where a checkpoint of `config_key` is); it ends holding the kept
    epoch's weights, in eval mode and contiguous memory."""
    model, views, batch_size = task.model, schedule.views, schedule.batch_size
    optimizer = torch.optim.AdamW(trunk_param_groups(model.backbone, model, schedule.lr, schedule.backbone_lr_scale),
                                  weight_decay=schedule.weight_decay)
    steps_per_epoch = max(1, len(task.train_photos) // batch_size)
    total = schedule.epochs * steps_per_epoch
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=[g["lr"] for g in optimizer.param_groups],
                                                    total_steps=total, pct_start=0.05)
    state = TrainingState(config_key)
    best = _clone(model.state_dict())
    resumed = load_checkpoint(work, model, optimizer, scheduler, config_key)
    ema = WeightAverage(model, schedule.ema_decay) if schedule.ema_decay else None
    if resumed:
        state, best = resumed
        if ema is not None:
            ema = WeightAverage(model, schedule.ema_decay, load_file(work / "ema.safetensors"), state.ema_steps)
    log = EpochLog(logs)
    run_rng = np.random.default_rng(schedule.seed)
    for epoch in range(state.epoch + 1, schedule.epochs + 1):
        if schedule.keep == "best" and state.since_best >= schedule.patience:
            break
        if schedule.time_budget_minutes and state.seconds / 60 >= schedule.time_budget_minutes:
            break
        epoch_start = time.time()
        train_trunk(model)
        epoch_rng = np.random.default_rng([schedule.seed, epoch])
        order = epoch_rng.permutation(task.train_photos)
        view_rng = epoch_rng if task.views_drawn_per_epoch else run_rng
        sums: dict[str, float] = {}
        with progress_bar(f"{task.name} epoch {epoch}/{schedule.epochs}", steps_per_epoch * batch_size,
                          progress) as advance:
            for s in range(steps_per_epoch):
                rows = sorted(int(i) * views + int(view_rng.integers(views))
                              for i in order[s * batch_size:(s + 1) * batch_size])
                losses = task.loss(model, rows)
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
        raw = task.validate(model)
        figures, weights = raw, None
        if ema is not None:  # the average is scored too; the raw figures stay in the log to show what EMA pays
            figures, weights = _validate_average(task, ema), _clone(ema.state)
            state.ema_steps = ema.steps
            save_tensors(work / "ema.safetensors", ema.state)
        state.seconds += time.time() - epoch_start
        log.log(task.name, epoch, {**{k: v / steps_per_epoch for k, v in sums.items()},
                                   **{f"val_{k}": v for k, v in figures.items()},
                                   **({f"raw_val_{k}": v for k, v in raw.items()} if ema is not None else {}),
                                   "minutes": state.seconds / 60})
        state.validation[epoch] = figures
        best = end_epoch(work, model, optimizer, scheduler, state, best, epoch, float(figures[task.score]),
                         weights=weights)
    log.close()
    kept = state.best_epoch if schedule.keep == "best" else state.epoch
    if schedule.keep == "best":
        model.load_state_dict(best)
    model.to(memory_format=torch.contiguous_format).eval()
    return TrainingRun(state, kept)
