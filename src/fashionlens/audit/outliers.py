"""Images far from all the others in feature space (a photo that is not a garment or product at all)."""

from __future__ import annotations

import numpy as np

from fashionlens.audit.neighbours import Neighbours

NEIGHBOURS = 10
FENCE = 3.0
"""Tukey's far-out fence: an outlier's mean distance to its neighbours lies more than 3 interquartile ranges
above the upper quartile of everyone's. A fence, not a fixed share: a clean set gets no outliers."""


def outlier_scores(neighbours: Neighbours) -> np.ndarray:
    """cleanlab's out-of-distribution score (`cleanlab.outlier.OutOfDistribution` on features) per image, in
    (0, 1]: exp(-d / median d), d the mean cosine distance to the image's nearest neighbours. Computed here
    from the audit's one neighbour search; cleanlab's own searched all pairs twice with scikit-learn."""
    distance = np.clip(1.0 - neighbours.similarities.astype(np.float64), 0.0, None).mean(1)
    return np.exp(-distance / max(float(np.median(distance)), 100 * np.finfo(np.float64).eps))


def find_outliers(neighbours: Neighbours, *, fence: float = FENCE) -> tuple[np.ndarray, np.ndarray]:
    """(positions of the outliers, farthest first; their scores as 1 - the out-of-distribution score)."""
    if len(neighbours.indices) < 4 or not neighbours.indices.shape[1]:
        return np.zeros(0, np.int64), np.zeros(0)
    scores = outlier_scores(neighbours)
    distance = -np.log(np.clip(scores, 1e-12, 1.0))  # back to the scaled mean distance
    q1, q3 = np.percentile(distance, [25, 75])
    rows = np.flatnonzero(distance > q3 + fence * max(q3 - q1, 1e-6))
    rows = rows[np.argsort(scores[rows], kind="stable")]
    return rows, 1.0 - scores[rows]
