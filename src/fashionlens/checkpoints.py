"""Resumable training checkpoints in safetensors plus a JSON state: model, best weights, optimizer, schedule."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from fashionlens.atomic import atomic_path, write_text_atomic


def save_tensors(path: Path, values: dict[str, torch.Tensor]) -> None:
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in values.items()}, tmp)


def save_checkpoint(folder: Path, module: torch.nn.Module, optimizer, scheduler, state: dict, best: dict) -> None:
    """state.json is written last: it names an epoch only once that epoch's tensors are all on disk."""
    opt = optimizer.state_dict()
    tensors = {
        "last": module.state_dict(),
        "best": best,
        "optimizer": {f"{idx}.{k}": v for idx, s in opt["state"].items() for k, v in s.items() if torch.is_tensor(v)},
    }
    for name, values in tensors.items():
        save_tensors(folder / f"{name}.safetensors", values)
    state = {**state, "param_groups": opt["param_groups"], "scheduler": scheduler.state_dict()}
    write_text_atomic(folder / "state.json", json.dumps(state, indent=1))


def load_checkpoint(folder: Path, module: torch.nn.Module, optimizer, scheduler, config_key: str) -> tuple[dict, dict] | None:
    path = folder / "state.json"
    if not path.is_file():
        return None
    state = json.loads(path.read_text())
    if state.get("config_key") != config_key:
        return None
    module.load_state_dict(load_file(folder / "last.safetensors"))
    flat = load_file(folder / "optimizer.safetensors")
    opt_state: dict[int, dict] = {}
    for key, value in flat.items():
        idx, name = key.split(".", 1)
        opt_state.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": opt_state, "param_groups": state["param_groups"]})
    scheduler.load_state_dict(state["scheduler"])
    return state, load_file(folder / "best.safetensors")


def end_epoch(folder: Path, module: torch.nn.Module, optimizer, scheduler, state: dict, best: dict, epoch: int,
              score: float, weights: dict | None = None) -> dict:
    """Record the epoch, keep the best weights by `score` (higher is better), checkpoint; returns the best.
    `weights` are the ones `score` was measured on (an average of the module's), when not the module's own."""
    state["epoch"] = epoch
    if score > state["best_score"]:
        state.update(best_score=score, best_epoch=epoch, since_best=0)
        best = weights if weights is not None else {k: v.clone() for k, v in module.state_dict().items()}
    else:
        state["since_best"] += 1
    save_checkpoint(folder, module, optimizer, scheduler, state, best)
    return best
