"""`audit`: what is wrong with a labelled image set, before anyone trains on it."""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from fashionlens.audit.duplicates import duplicate_groups
from fashionlens.audit.findings import AuditReport, LabelIssue, Outlier, Unreadable
from fashionlens.audit.labels import HeadSettings, label_issues, out_of_fold_probabilities
from fashionlens.audit.outliers import FENCE, NEIGHBOURS, find_outliers
from fashionlens.audit.tables import empty_cells, mapping_issues, small_classes
from fashionlens.backbones import DEFAULT_BACKBONE, create_backbone
from fashionlens.cache import FeatureCache
from fashionlens.classify.model import TaskSpec
from fashionlens.classify.train import label_matrix
from fashionlens.data.samples import LabeledImages
from fashionlens.data.tables import TableRows
from fashionlens.dedup import Fingerprints, Thresholds, group_labels
from fashionlens.features import extract_features
from fashionlens.progress import progress_bar
from fashionlens.splits import SPLIT_MAX_HAMMING


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
    with stage("features"):
        backbone = create_backbone(config.backbone, resize=config.resize, image_size=config.image_size)
        feats = extract_features(backbone, [s.path for s in data.samples], cache=FeatureCache(),
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

    # copies `train` keeps together (equal bytes or perceptual hash): held out together by the label check's folds
    copies = group_labels(Fingerprints(feats.sha256, feats.phash), Thresholds(max_hamming=SPLIT_MAX_HAMMING),
                          transitive=True) if rows else np.zeros(0, np.int64)
    with stage("labels"):
        found, label_check = _label_issues(data, rows, feats.vectors, copies, config)
        findings += found

    with stage("outliers"):
        if rows:
            far, scores = find_outliers(feats.vectors, neighbours=config.outlier_neighbours, fence=config.outlier_fence)
            findings += [Outlier(str(data.samples[rows[k]].path), float(s), rows[k]) for k, s in zip(far, scores)]

    if config.duplicates and rows:
        with stage("duplicates"):
            groups, failures = duplicate_groups(data, rows, copies, feats.sha256,
                                                embeddings=config.duplicate_embeddings, progress=config.progress)
            findings += groups
            for f in failures:  # read for the features, not for the hashes: a file changed on disk meanwhile
                unreadable.setdefault((f.source, f.reason), samples_of[f.source][0] if samples_of[f.source] else None)
    findings += [Unreadable(source, reason, i) for (source, reason), i in sorted(unreadable.items())]
    return AuditReport(data.source, len(data), list(data.tasks), findings, seconds, label_check)


def _label_issues(data: LabeledImages, rows: list[int], vectors: np.ndarray, copies: np.ndarray,
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
    with progress_bar("label check (folds)", config.folds, config.progress) as advance:
        probs = out_of_fold_probabilities(vectors, y, tasks, copies, folds=config.folds, seed=config.seed,
                                          heads=config.heads, advance=advance)
    issues = []
    for t, task in enumerate(tasks):
        found = label_issues(y[:, t], probs[task.name])
        check[task.name] = {"images": int((y[:, t] >= 0).sum()), "classes": len(task.classes),
                            "out_of_fold_accuracy": round(found.accuracy, 4), "issues": len(found.rows)}
        for r, suggested, score in zip(found.rows, found.suggested, found.score):
            sample = samples[r]
            issues.append(LabelIssue(str(sample.path), task.name, sample.labels[task.name], task.classes[suggested],
                                     float(score), rows[r]))
    return issues, check
