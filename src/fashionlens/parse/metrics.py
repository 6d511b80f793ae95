"""Parsing scores from one confusion matrix: pixel accuracy, IoU per class and per garment group, mIoU."""

from __future__ import annotations

import numpy as np

from fashionlens.parse.labels import SCORE_GROUPS


def confusion(truth: np.ndarray, pred: np.ndarray, n: int) -> np.ndarray:
    """[truth, prediction] pixel counts over the pixels whose truth is a class."""
    valid = truth < n
    return np.bincount(n * truth[valid].astype(np.int64) + pred[valid], minlength=n * n).reshape(n, n)


def _iou(cm: np.ndarray, members: list[int]) -> float | None:
    tp = cm[np.ix_(members, members)].sum()
    union = cm[members].sum() + cm[:, members].sum() - tp
    return float(tp / union) if cm[members].sum() else None  # None: the class never occurs in the truth


def parsing_metrics(cm: np.ndarray, classes: list[str], groups: dict[str, tuple[str, ...]] = SCORE_GROUPS) -> dict:
    """mIoU averages the classes that occur in the truth; `group_miou` the garment groups the target names."""
    per_class = {name: {"iou": _iou(cm, [i]), "pixels": int(cm[i].sum())} for i, name in enumerate(classes)}
    present = [m["iou"] for m in per_class.values() if m["iou"] is not None]
    per_group = {}
    for group, members in groups.items():
        index = [classes.index(m) for m in members if m in classes]
        if index:
            per_group[group] = _iou(cm, index)
    scored = [v for v in per_group.values() if v is not None]
    return {"pixel_accuracy": float(np.trace(cm) / max(1, cm.sum())), "miou": float(np.mean(present)) if present else 0.0,
            "group_miou": float(np.mean(scored)) if scored else 0.0, "groups": per_group, "per_class": per_class}
