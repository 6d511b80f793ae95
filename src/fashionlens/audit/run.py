"""`audit`: what is wrong with a labelled image set, before anyone trains on it."""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from fashionlens.audit.duplicates import duplicate_groups, find_copies
from fashionlens.audit.findings import AuditReport, LabelIssue, Outlier, Unreadable
from fashionlens.audit.labels import HeadSettings, label_issues, out_of_fold_probabilities
from fashionlens.audit.neighbours import Neighbours, nearest_neighbours, unit_rows
from fashionlens.audit.outliers import FENCE, NEIGHBOURS, find_outliers
from fashionlens.audit.tables import empty_cells, mapping_issues, small_classes
from fashionlens.backbones import DEFAULT_BACKBONE, create_backbone
from fashionlens.cache import FeatureCache
from fashionlens.classify.model import TaskSpec
from fashionlens.classify.train import label_matrix
from fashionlens.data.samples import LabeledImages
from fashionlens.data.tables import TableRows
from fashionlens.dedup import CANDIDATES
from fashionlens.embeddings import embed_paths
from fashionlens.features import Features, extract_features
from fashionlens.progress import progress_bar

DEDUP_BACKBONE = "efficientnet_lite1"
"""The embedding dedup's candidate cosine was calibrated on (fashionlens.dedup): its default preprocessing."""


@dataclass
class AuditConfig:
    backbone: str = DEFAULT_BACKBONE
    resize: str = "crop"  # or "pad": letterbox on white, for product photos (as `train --resize`)
    image_size: int | None = None
    folds: int = 5
    min_class_images: int = 5  # smaller classes are reported, and left out of the label check
    heads: HeadSettings = field(default_factory=HeadSettings)
    outlier_neighbours: int = NEIGHBOURS
    outlier_fence: float = FENCE
    duplicates: bool = True
    duplicate_embeddings: bool = True  # dedup compares Lite1 embeddings too (crops, relit copies); False: hashes only
    seed: int = 0
    workers: int = 1
    progress: bool = True

    def __post_init__(self):
        if self.folds < 2:
            raise ValueError(f"folds must be at least 2, not {self.folds}")


def audit(data: LabeledImages, config: AuditConfig | None = None, *, table: TableRows | None = None) -> AuditReport:
    """Label issues, copies, outliers, unreadable files and (given the table's rows) table problems, as findings.

    Nothing here writes to the user's files; a file that cannot be read is a finding and the rest go on.
    """
    config = config or AuditConfig()
    seconds: dict[str, float] = {}

    @contextmanager
    def stage(name: str):
        start = time.perf_counter()
        yield
        seconds[name] = round(time.perf_counter() - start, 2)

    findings: list = []
    cache = FeatureCache()
    with stage("features"):
        backbone = create_backbone(config.backbone, resize=config.resize, image_size=config.image_size)
        feats = extract_features(backbone, [s.path for s in data.samples], cache=cache,
                                 progress=config.progress, workers=config.workers)
    rows = list(feats.indices)
    samples_of = defaultdict(list)
    for i, sample in enumerate(data.samples):
        samples_of[str(sample.path)].append(i)
    unreadable = {(s.source, s.reason): None for s in data.skipped}
    unreadable.update({(f.source, f.reason): i for f in feats.failures for i in samples_of[f.source] or [None]})

    with stage("table"):
        if table is not None:
            findings += mapping_issues(table) + empty_cells(table)
        findings += small_classes(data, rows, config.min_class_images)

    shared_space = config.duplicate_embeddings and _dedup_space(config)
    with stage("neighbours"):  # one search over all pairs, for the outliers and copy detection's embeddings
        near = nearest_neighbours(unit_rows(feats.vectors), config.outlier_neighbours,
                                  CANDIDATES.min_cosine if config.duplicates and shared_space else 2.0) if rows else None

    copies = None
    if config.duplicates and rows:
        with stage("duplicates"):
            paths = [data.samples[i].path for i in rows]
            vector_pairs = _candidate_pairs(near) if shared_space else _dedup_vector_pairs(paths, config)
            copies = find_copies(paths, feats.sha256, feats.phash, cache, vector_pairs=vector_pairs,
                                 progress=config.progress)
            for f in copies.failures:  # read for the features, not for the hashes: a file changed on disk meanwhile
                unreadable.setdefault((f.source, f.reason), samples_of[f.source][0] if samples_of[f.source] else None)

    with stage("labels"):  # verified copies are held out together by the label check's folds
        found, label_check = _label_issues(data, rows, feats, None if copies is None else copies.pairs, config)
        findings += found

    with stage("outliers"):
        if rows:
            far, scores = find_outliers(near, fence=config.outlier_fence)
            findings += [Outlier(str(data.samples[rows[k]].path), float(s), rows[k]) for k, s in zip(far, scores, strict=True)]

    if copies is not None:  # equal bytes and verified copies (an equal hash alone is no copy on thumbnails)
        findings += duplicate_groups(data, rows, copies)
    findings += [Unreadable(source, reason, i) for (source, reason), i in sorted(unreadable.items())]
    return AuditReport(data.source, len(data), list(data.tasks), findings, seconds, label_check)


def _dedup_space(config: AuditConfig) -> bool:
    """Whether the audit's features are the embeddings dedup's cosine threshold was calibrated on."""
    return config.backbone == DEDUP_BACKBONE and config.resize == "crop" and config.image_size is None


def _dedup_vector_pairs(paths: list, config: AuditConfig) -> np.ndarray | None:
    """Embedding candidates in dedup's own space (cached after a first run), for an audit on another backbone."""
    if not config.duplicate_embeddings:
        return None
    embedded = embed_paths(paths, DEDUP_BACKBONE, progress=config.progress)
    pairs = _candidate_pairs(nearest_neighbours(embedded.vectors, CANDIDATES.vector_neighbours, CANDIDATES.min_cosine))
    return np.asarray(embedded.indices, np.int64)[pairs] if len(pairs) else pairs


def _candidate_pairs(near: Neighbours) -> np.ndarray:
    """dedup's embedding candidates from one search: the pairs above its cosine, and each image's nearest
    neighbours above its neighbour floor (the search may hold more neighbours than dedup takes)."""
    k = CANDIDATES.vector_neighbours
    keep = near.similarities[:, :k] >= CANDIDATES.min_neighbour_cosine
    rows = np.broadcast_to(np.arange(len(near.indices))[:, None], keep.shape)
    neighbours = np.sort(np.stack([rows[keep], near.indices[:, :k][keep]], axis=1), axis=1)
    return np.unique(np.concatenate([near.pairs, neighbours.astype(np.int64)]), axis=0)


def _label_issues(data: LabeledImages, rows: list[int], feats: Features, copies: np.ndarray | None,
                  config: AuditConfig) -> tuple[list[LabelIssue], dict]:
    samples = [data.samples[i] for i in rows]
    tasks, check = [], {}
    for name in data.tasks:
        counts = LabeledImages(samples, data.tasks, data.source).counts(name)
        keep = tuple(sorted(c for c, n in counts.items() if n >= max(config.min_class_images, 2)))
        if len(keep) >= 2:
            tasks.append(TaskSpec(name, keep))
        else:
            check[name] = {"skipped": f"fewer than 2 classes with {config.min_class_images}+ images"}
    if not tasks:
        return [], check
    y = label_matrix(samples, tasks)
    with progress_bar("label check (folds)", config.folds * config.heads.repeats_for(len(samples)),
                      config.progress) as advance:
        probs = out_of_fold_probabilities(feats.vectors, y, tasks, feats.sha256, feats.phash, copies,
                                          folds=config.folds, seed=config.seed, heads=config.heads, advance=advance)
    issues = []
    for t, task in enumerate(tasks):
        found = label_issues(y[:, t], probs[task.name])
        check[task.name] = {"images": int((y[:, t] >= 0).sum()), "classes": len(task.classes),
                            "out_of_fold_accuracy": round(found.accuracy, 4), "issues": len(found.rows)}
        for r, suggested, score in zip(found.rows, found.suggested, found.score, strict=True):
            sample = samples[r]
            issues.append(LabelIssue(str(sample.path), task.name, sample.labels[task.name], task.classes[suggested],
                                     float(score), rows[r]))
    return issues, check
