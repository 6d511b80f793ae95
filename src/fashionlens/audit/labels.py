"""Label issues from out-of-fold probabilities: the project's own heads on cached frozen
features (the cross-validation folds of `splits.make_folds`, which `train --fold` uses: copies of one picture
always held out together, and no image judged by heads that saw its label), then a
likelihood-ratio rule (`MAX_GIVEN_RATIO`), which flags far more precisely than cleanlab's confident learning on a
few hundred images."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from fashionlens.classify.heads import LABEL_SMOOTHING, fit_heads
from fashionlens.classify.model import TaskSpec
from fashionlens.splits import make_folds


@dataclass(frozen=True)
class HeadSettings:
    """The fold heads: the linear heads `train` fits, on a short fixed schedule (each fold is a full training).

    Chosen on clothing-small with 7% of labels flipped (benchmarks/audit_heads.py, seed 0, these folds, flagged
    by cleanlab's rule before `MAX_GIVEN_RATIO` replaced it): 15
    epochs at lr 0.004 without input dropout or a validation part flag at precision 0.664 / recall 0.837 in 3.6 s
    of CPU, against 0.641 / 0.837 in 16.5 s for `train`'s heads (30 epochs at 0.002, input dropout 0.2, stopped
    early on 15% of the other folds). A validation part costs the heads examples and flagged less precisely (0.633
    / 0.837 without dropout); input dropout doubles the cost of a step; the first 256 or 384 principal components
    of the features lost recall (0.803, 0.762); 10 epochs of 1,024 lost precision (0.598).
    """

    epochs: int = 15
    lr: float = 4e-3
    batch_size: int = 512
    input_dropout: float = 0.0
    min_steps: int = 60  # a small set has one batch an epoch: it gets more epochs, to this many steps
    validation: float = 0.0  # > 0: this share of the other folds' images stops each fold's heads early
    patience: int = 10  # epochs without a better validation accuracy, with a validation part
    balance: bool = False  # plain probabilities: class weights flagged at 0.679 / 0.827 against 0.703 / 0.837 (350)
    label_smoothing: float = LABEL_SMOOTHING
    repeats: int = 3  # cross-validations on differently drawn folds, probabilities averaged (sets under repeat_below)
    repeat_below: int = 3000  # images; a larger set's heads are steady enough from one cross-validation

    def repeats_for(self, n_images: int) -> int:
        """Repeats for a set of this size. Averaging three cross-validations steadies the weak heads of a small
        set: on 350-image draws of clothing-small train with 7% flipped (benchmarks/audit_rule.py --repeats),
        precision 0.703 / recall 0.837 against 0.665 / 0.840 from one; at 3,000 images the label check
        costs a few seconds a repeat."""
        return self.repeats if n_images < self.repeat_below else 1


def out_of_fold_probabilities(features: np.ndarray, y: np.ndarray, tasks: list[TaskSpec], sha256: list[str],
                              phash: list[str], copies: np.ndarray | None = None, *, folds: int = 5, seed: int = 0,
                              heads: HeadSettings = HeadSettings(), advance=lambda n=1: None) -> dict[str, np.ndarray]:
    """Each image's probabilities from heads that never saw it (nor any copy of it), per task: the mean over
    `heads.repeats_for(n)` cross-validations on differently drawn folds.

    `y` is int64 [n, n_tasks] with -1 for no label; the folds are stratified on the first task and keep copies
    (equal bytes or hash, and the `copies` pairs of positions) together.
    """
    probs = {t.name: np.zeros((len(features), len(t.classes)), np.float32) for t in tasks}
    tasks = [replace(t, input_dropout=heads.input_dropout) for t in tasks]
    repeats = heads.repeats_for(len(features))
    for repeat in range(repeats):
        splits = make_folds([str(label) for label in y[:, 0]], sha256, phash, folds, validation=heads.validation,
                            seed=seed + repeat, copies=copies)
        for split in splits:
            fitted, val, held = split.train, split.validation, split.test
            epochs = max(heads.epochs, -(-heads.min_steps // -(-len(fitted) // heads.batch_size)))
            fold_heads, _ = fit_heads(features[fitted], y[fitted], features[val], y[val], tasks, epochs=epochs,
                                      lr=heads.lr, patience=heads.patience, batch_size=heads.batch_size,
                                      balance=heads.balance, label_smoothing=heads.label_smoothing, seed=seed + repeat)
            for name, p in fold_heads.probabilities(features[held]).items():
                probs[name][held] += p / repeats
            advance()
    return probs


@dataclass(frozen=True)
class TaskIssues:
    rows: np.ndarray  # positions (in the arrays given) of the likely label errors, likeliest first
    suggested: np.ndarray  # class id the heads prefer, per row
    score: np.ndarray  # 1 - the probability of the given label, per row
    accuracy: float  # out-of-fold accuracy over the labelled images


MAX_GIVEN_RATIO = 0.15
"""An image is flagged when its out-of-fold heads find another class at least 1 / 0.15 (6.7) times likelier
than its given label: `p(given) / max p < 0.15`.

Chosen on random subsets of clothing-small's train folder with 7% of labels flipped (benchmarks/audit_rule.py
--repeats 1: 12 draws of 350, 4 of 1,000, 2 of 3,000; one cross-validation each), against cleanlab's
`find_label_issues`: its confident joint counts every confusion of weak heads between look-alike classes (shirt, longsleeve, t-shirt) as label noise, so on a
few hundred images it flagged twice as many images as were flipped. Precision / recall, this rule against
cleanlab's `both`: 350 images 0.665 / 0.840 against 0.431 / 0.783; 1,000 0.771 / 0.854 against 0.585 / 0.750;
3,000 0.831 / 0.902 against 0.645 / 0.836. A ratio of 0.1 flagged at 0.753 / 0.803 on 350, 0.2 at 0.596 / 0.860.
"""


def label_issues(labels: np.ndarray, probs: np.ndarray, max_ratio: float = MAX_GIVEN_RATIO) -> TaskIssues:
    """The labelled rows (`labels` -1 are left out) whose given label's probability is under `max_ratio` times
    the likeliest class's, the least likely given label first."""
    known = np.flatnonzero(labels >= 0)
    given, p = labels[known], probs[known]
    accuracy = float((p.argmax(1) == given).mean()) if len(known) else 0.0
    if len(known) < 2 or len(np.unique(given)) < 2:
        return TaskIssues(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0), accuracy)
    ratio = p[np.arange(len(known)), given] / np.maximum(p.max(1), 1e-12)
    flagged = np.flatnonzero(ratio < max_ratio)
    rows = known[flagged[np.argsort(ratio[flagged], kind="stable")]]
    return TaskIssues(rows, probs[rows].argmax(1), 1.0 - probs[rows, labels[rows]], accuracy)
