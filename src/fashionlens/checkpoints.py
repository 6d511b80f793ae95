"""Resumable training checkpoints in safetensors plus a JSON state: model, best weights, optimizer, schedule."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from fashionlens.atomic import atomic_path, write_text_atomic


@dataclass
class TrainingState:
    """Where a training run stands, saved with every epoch's checkpoint. `config_key` ties it to the run's
    settings and data: a checkpoint of other settings is not resumed."""

    config_key: str
    epoch: int = 0  # the last epoch done
    best_score: float = -1.0  # higher is better
    best_epoch: int = 0
    since_best: int = 0  # epochs without a better score
    seconds: float = 0.0  # training and validation time so far, for a time budget
    ema_steps: int = 0  # steps folded into the weight average, where there is one
    validation: dict[int, dict[str, float]] = field(default_factory=dict)  # each epoch's validation figures

    def to_json(self) -> dict:
        return {**asdict(self), "validation": {str(k): v for k, v in self.validation.items()}}

    @classmethod
    def from_json(cls, data: dict) -> TrainingState:
        """The state's own fields of a `state.json` (the optimizer's and schedule's entries are read apart)."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["validation"] = {int(k): v for k, v in data.get("validation", {}).items()}
        return cls(**values)


def save_tensors(path: Path, values: dict[str, torch.Tensor]) -> None:
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in values.items()}, tmp)


def save_checkpoint(folder: Path, module: torch.nn.Module, optimizer, scheduler, state: TrainingState,
                    best: dict) -> None:
    """state.json is written last: it names an epoch only once that epoch's tensors are all on disk."""
    opt = optimizer.state_dict()
    tensors = {
        "last": module.state_dict(),
        "best": best,
        "optimizer": {f"{idx}.{k}": v for idx, s in opt["state"].items() for k, v in s.items() if torch.is_tensor(v)},
    }
    for name, values in tensors.items():
        save_tensors(folder / f"{name}.safetensors", values)
    saved = {**state.to_json(), "param_groups": opt["param_groups"], "scheduler": scheduler.state_dict()}
    write_text_atomic(folder / "state.json", json.dumps(saved, indent=1))


def load_checkpoint(folder: Path, module: torch.nn.Module, optimizer, scheduler,
                    config_key: str) -> tuple[TrainingState, dict] | None:
    """The saved state and best weights, with the module, optimizer and schedule restored in place; None where
    there is no checkpoint of these settings."""
    path = folder / "state.json"
    if not path.is_file():
        return None
    saved = json.loads(path.read_text())
    if saved.get("config_key") != config_key:
        return None
    module.load_state_dict(load_file(folder / "last.safetensors"))
    flat = load_file(folder / "optimizer.safetensors")
    opt_state: dict[int, dict] = {}
    for key, value in flat.items():
        idx, name = key.split(".", 1)
        opt_state.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": opt_state, "param_groups": saved["param_groups"]})
    scheduler.load_state_dict(saved["scheduler"])
    return TrainingState.from_json(saved), load_file(folder / "best.safetensors")


def end_epoch(folder: Path, module: torch.nn.Module, optimizer, scheduler, state: TrainingState, best: dict,
              epoch: int, score: float, weights: dict | None = None) -> dict:
    """Record the epoch, keep the best weights by `score` (higher is better), checkpoint; returns the best.
    `weights` are the ones `score` was measured on (an average of the module's), when not the module's own."""
    state.epoch = epoch
    if score > state.best_score:
        state.best_score, state.best_epoch, state.since_best = score, epoch, 0
        best = weights if weights is not None else {k: v.clone() for k, v in module.state_dict().items()}
    else:
        state.since_best += 1
    save_checkpoint(folder, module, optimizer, scheduler, state, best)
    return best
