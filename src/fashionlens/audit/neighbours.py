"""One pass over all pairs of images in feature space, for both stages that need it: each image's nearest
neighbours (outliers) and the pairs above a cosine (the embedding candidates of copy detection).

All pairs of 12,000 images at 1,280 dimensions is about 180 billion multiply-adds. Computed once, in blocks of
rows against the blocks after them (the similarity is symmetric, so each pair once), it costs half of one
exact search, where a search per stage cost four (cleanlab's OutOfDistribution searched twice).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLOCK = 1024


@dataclass(frozen=True)
class Neighbours:
    indices: np.ndarray  # int64 [n, k]: each image's k nearest other images, nearest first
    similarities: np.ndarray  # float32 [n, k]: their cosine similarities
    pairs: np.ndarray  # int64 [m, 2], i < j: every pair with a cosine of at least `min_cosine`


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def nearest_neighbours(vectors: np.ndarray, k: int, min_cosine: float = 2.0) -> Neighbours:
    """`vectors` are unit rows; `min_cosine` above 1 finds no pairs."""
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(x)
    k = max(0, min(k, n - 1))
    best_sim = np.full((n, k), -np.inf, np.float32)
    best_idx = np.zeros((n, k), np.int64)
    pairs = []
    for start in range(0, n, BLOCK):
        rows = slice(start, min(start + BLOCK, n))
        sim = x[rows] @ x[start:].T  # this block against itself and every later block
        local = np.arange(sim.shape[0])
        sim[local, local] = -np.inf  # an image is not its own neighbour
        if min_cosine <= 1:
            a, b = np.nonzero(sim >= min_cosine - 1e-6)
            keep = a < b  # the block against itself holds both orders; a later block's columns are all above
            pairs.append(np.stack([a[keep] + start, b[keep] + start], axis=1))
        if k:
            _merge(best_sim, best_idx, rows, sim, start)  # the rows of this block
            own = sim.shape[0]
            if sim.shape[1] > own:  # the later rows see this block: the transposed part
                _merge(best_sim, best_idx, slice(start + own, n), sim[:, own:].T, start)
    order = np.argsort(-best_sim, axis=1, kind="stable")
    found = np.concatenate(pairs) if pairs else np.zeros((0, 2), np.int64)
    return Neighbours(np.take_along_axis(best_idx, order, 1), np.take_along_axis(best_sim, order, 1),
                      found.astype(np.int64))


def _merge(best_sim: np.ndarray, best_idx: np.ndarray, rows: slice, sim: np.ndarray, first_column: int) -> None:
    """Keep, for each of `rows`, the k most similar of its current best and of `sim` (columns counted from
    `first_column`)."""
    k = best_sim.shape[1]
    take = min(k, sim.shape[1])
    top = np.argpartition(-sim, take - 1, axis=1)[:, :take] if take < sim.shape[1] else np.argsort(-sim, axis=1)
    cand_sim = np.concatenate([best_sim[rows], np.take_along_axis(sim, top, 1)], axis=1)
    cand_idx = np.concatenate([best_idx[rows], top + first_column], axis=1)
    keep = np.argpartition(-cand_sim, k - 1, axis=1)[:, :k]
    best_sim[rows] = np.take_along_axis(cand_sim, keep, 1)
    best_idx[rows] = np.take_along_axis(cand_idx, keep, 1)
