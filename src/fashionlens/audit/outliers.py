"""Images far from all the others in feature space (a photo that is not a garment or product at all)."""

from __future__ import annotations

import warnings

import numpy as np

NEIGHBOURS = 10
FENCE = 3.0
"""Tukey's far-out fence: an outlier's mean distance to its neighbours lies more than 3 interquartile ranges
above the upper quartile of everyone's. A fence, not a fixed share: a clean set gets no outliers."""


def outlier_scores(features: np.ndarray, neighbours: int = NEIGHBOURS) -> np.ndarray:
    """cleanlab's out-of-distribution score per image, in (0, 1]: low for images far from their k nearest
    neighbours (cosine distance, scaled by the median)."""
    from cleanlab.outlier import OutOfDistribution

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return OutOfDistribution({"k": min(neighbours, len(features) - 1)}).fit_score(features=features, verbose=False)


def find_outliers(features: np.ndarray, *, neighbours: int = NEIGHBOURS, fence: float = FENCE) -> tuple[np.ndarray, np.ndarray]:
    """(positions of the outliers, farthest first; their scores as 1 - the out-of-distribution score)."""
    if len(features) < 4:
        return np.zeros(0, np.int64), np.zeros(0)
    scores = outlier_scores(features, neighbours)
    distance = -np.log(np.clip(scores, 1e-12, 1.0))  # back to the scaled mean distance
    q1, q3 = np.percentile(distance, [25, 75])
    rows = np.flatnonzero(distance > q3 + fence * max(q3 - q1, 1e-6))
    rows = rows[np.argsort(scores[rows], kind="stable")]
    return rows, 1.0 - scores[rows]
