"""Label issues by confident learning: out-of-fold probabilities from the project's own heads on cached frozen
features (the cross-validation folds of `splits.make_folds`, which `train --fold` uses: copies of one picture
always held out together, and each fold's early stopping on a validation part carved from the other folds, so
no image is judged by heads that saw its label), then `cleanlab.filter.find_label_issues`."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np
import torch

from fashionlens.classify.heads import LABEL_SMOOTHING, fit_heads
from fashionlens.classify.model import TaskSpec
from fashionlens.splits import make_folds


@dataclass(frozen=True)
class HeadSettings:
    """The fold heads: the linear heads `train` fits, on a shorter schedule (each fold is a full training).

    Chosen on clothing-small with 7% of labels flipped (benchmarks/audit_flips.py).
    """

    epochs: int = 30
    lr: float = 2e-3
    patience: int = 10
    batch_size: int = 512
    validation: float = 0.15  # of the other folds' images, for early stopping
    balance: bool = False  # plain probabilities; cleanlab's per-class thresholds already allow for imbalance
    label_smoothing: float = LABEL_SMOOTHING
    input_dropout: float = 0.2  # the heads' own default
    components: int = 0  # > 0: the heads see the features' first principal components (labels not used)


def out_of_fold_probabilities(features: np.ndarray, y: np.ndarray, tasks: list[TaskSpec], sha256: list[str],
                              phash: list[str], copies: np.ndarray | None = None, *, folds: int = 5, seed: int = 0,
                              heads: HeadSettings = HeadSettings(), advance=lambda n=1: None) -> dict[str, np.ndarray]:
    """Each image's probabilities from heads that never saw it (nor any copy of it), per task.

    `y` is int64 [n, n_tasks] with -1 for no label; the folds are stratified on the first task and keep copies
    (equal bytes or hash, and the `copies` pairs of positions) together.
    """
    probs = {t.name: np.zeros((len(features), len(t.classes)), np.float32) for t in tasks}
    tasks = [replace(t, input_dropout=heads.input_dropout) for t in tasks]
    features = principal_components(features, heads.components) if heads.components else features
    splits = make_folds([str(label) for label in y[:, 0]], sha256, phash, folds, validation=heads.validation,
                        seed=seed, copies=copies)
    for split in splits:
        fitted, val, held = split.train, split.validation, split.test
        fold_heads, _ = fit_heads(features[fitted], y[fitted], features[val], y[val], tasks, epochs=heads.epochs,
                                  lr=heads.lr, patience=heads.patience, batch_size=heads.batch_size,
                                  balance=heads.balance, label_smoothing=heads.label_smoothing, seed=seed)
        for name, p in fold_heads.probabilities(features[held]).items():
            probs[name][held] = p
        advance()
    return probs


def principal_components(features: np.ndarray, components: int) -> np.ndarray:
    """The centred features projected on their first `components` principal axes (float32): the heads' cost is
    proportional to the width of what they see."""
    if components >= features.shape[1]:
        return features
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    x = x - x.mean(0)
    _, axes = torch.linalg.eigh((x.T @ x).double())  # ascending eigenvalues
    return (x @ axes[:, -components:].flip(1).float()).numpy()


@dataclass(frozen=True)
class TaskIssues:
    rows: np.ndarray  # positions (in the arrays given) of the likely label errors, likeliest first
    suggested: np.ndarray  # class id the heads prefer, per row
    score: np.ndarray  # 1 - the probability of the given label, per row
    accuracy: float  # out-of-fold accuracy over the labelled images


FILTER_BY = "both"
"""cleanlab's rule: an image is flagged when both pruning by noise rate and by class flag it. On clothing-small
with 7% flips: precision 0.66 at recall 0.84, against 0.58 / 0.86 for cleanlab's default (prune_by_noise_rate)."""


def label_issues(labels: np.ndarray, probs: np.ndarray) -> TaskIssues:
    """Confident learning over the labelled rows (`labels` -1 are left out), ranked by self-confidence."""
    from cleanlab.filter import find_label_issues

    known = np.flatnonzero(labels >= 0)
    given, p = labels[known], probs[known]
    accuracy = float((p.argmax(1) == given).mean()) if len(known) else 0.0
    if len(known) < 2 or len(np.unique(given)) < 2:
        return TaskIssues(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), accuracy)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # cleanlab warns about classes without a confidently predicted member
        ranked = find_label_issues(given, p, filter_by=FILTER_BY, return_indices_ranked_by="self_confidence",
                                   n_jobs=1)
    rows = known[ranked]
    return TaskIssues(rows, probs[rows].argmax(1), 1.0 - probs[rows, labels[rows]], accuracy)
