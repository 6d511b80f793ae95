"""A backbone with one classification head per task (category, colour, gender, ...), in PyTorch, for training
and export (`TaskSpec` and `flip_average` are re-exported from `classify.tasks`)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from fashionlens.backbones import Backbone
from fashionlens.classify.tasks import TaskSpec, flip_average


def make_head(in_dim: int, spec: TaskSpec) -> nn.Module:
    if spec.hidden:
        return nn.Sequential(
            nn.Dropout(spec.input_dropout),
            nn.Linear(in_dim, spec.hidden),
            nn.GELU(),
            nn.Dropout(spec.dropout),
            nn.Linear(spec.hidden, len(spec.classes)),
        )
    return nn.Sequential(nn.Dropout(spec.input_dropout), nn.Linear(in_dim, len(spec.classes)))


def _module_key(task: str) -> str:
    """The task's key among the heads: its name, unless that is already an `nn.Module` attribute ("type",
    "train", "eval"...), which a `ModuleDict` refuses; those get a trailing underscore."""
    return f"{task}_" if hasattr(nn.Module, task) else task


class Heads(nn.Module):
    """The trainable part in linear mode: features in, logits per task out.

    `standardize`: every feature is shifted and scaled by its training mean and standard deviation first
    (buffers `shift` and `scale`, saved with the weights and fixed after `set_standardization`), so blocks of very
    different scale (the last stage, pooled early stages, a colour histogram of shares) all reach the heads.
    """

    def __init__(self, in_dim: int, tasks: list[TaskSpec], standardize: bool = False):
        super().__init__()
        self.tasks = list(tasks)
        self.by_task = nn.ModuleDict({_module_key(t.name): make_head(in_dim, t) for t in tasks})
        self.register_buffer("shift", torch.zeros(in_dim) if standardize else None)
        self.register_buffer("scale", torch.ones(in_dim) if standardize else None)

    @property
    def standardize(self) -> bool:
        return self.shift is not None

    @torch.no_grad()
    def set_standardization(self, features: np.ndarray) -> None:
        """Fit shift and scale on training features; a near-constant feature gets the scale of a typical one
        (a histogram cell that is empty in training must not blow up on the one test image that fills it)."""
        x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
        std = x.std(0) if len(x) > 1 else torch.ones(x.shape[1])
        floor = max(float(std.median()) * 0.1, 1e-6)
        self.shift.copy_(x.mean(0))
        self.scale.copy_(1.0 / std.clamp_min(floor))

    def inputs(self, features: torch.Tensor) -> torch.Tensor:
        """What the heads' first layer sees: the features, standardised if the heads are."""
        return (features - self.shift) * self.scale if self.shift is not None else features

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.logits(self.inputs(features))

    def head(self, task: str) -> nn.Module:
        return self.by_task[_module_key(task)]

    def logits(self, inputs: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each task's logits from what `inputs` returns (training standardises its rows once, not every step)."""
        return {t.name: self.by_task[_module_key(t.name)](inputs) for t in self.tasks}

    def probabilities(self, features: np.ndarray) -> dict[str, np.ndarray]:
        """Softmax per task for a batch of backbone features (the heads in eval mode)."""
        x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
        with torch.inference_mode():
            return {k: torch.softmax(v, -1).numpy() for k, v in self.eval()(x).items()}


class Classifier(nn.Module):
    """`tta`: predictions average the image's and its horizontal mirror's probabilities by default (saved in
    the manifest with the weights, so a model trained and scored that way also predicts that way)."""

    def __init__(self, backbone: Backbone, heads: Heads, tta: bool = False):
        super().__init__()
        self.backbone_info = backbone
        self.backbone = backbone.model
        self.heads = heads
        self.tta = bool(tta)

    @property
    def tasks(self) -> list[TaskSpec]:
        return self.heads.tasks

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.heads(self.backbone(images))

    def probabilities_from(self, features: np.ndarray, mirror_features: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Softmax per task from backbone features computed elsewhere (the pipeline and the catalogue share one
        backbone pass); with `mirror_features`, those of the mirrored images, the mean of the two, as `tta` asks."""
        if mirror_features is None:
            return self.heads.probabilities(features)
        return flip_average(self.heads.probabilities(np.concatenate([features, mirror_features])), len(features))


def mirrored(images: torch.Tensor) -> torch.Tensor:
    """The horizontal mirror of a batch of preprocessed images ([n, 3, H, W]): the same as preprocessing the
    mirrored photo, since the centre crop and the letterbox are both symmetric."""
    return torch.flip(images, dims=(-1,))


class ProbabilityGraph(nn.Module):
    """The exported form: images in, one softmax output per task, in task order."""

    def __init__(self, classifier: Classifier):
        super().__init__()
        self.classifier = classifier

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        logits = self.classifier(images)
        return tuple(torch.softmax(logits[t.name], dim=-1) for t in self.classifier.tasks)
