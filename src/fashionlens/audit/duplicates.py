"""Copies among the audited images, found by the project's `dedup` as it is, with each copy's label and split."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from fashionlens.audit.findings import DuplicateGroup
from fashionlens.data.samples import LabeledImages, SkippedInput
from fashionlens.dedup import EXACT, find_duplicates


def duplicate_groups(data: LabeledImages, rows: list[int], copies: np.ndarray, sha256: list[str], *,
                     embeddings: bool = True, progress: bool = True) -> tuple[list[DuplicateGroup], list[SkippedInput]]:
    """Groups of copies among the samples at `rows` (the readable ones), conflicts and leaks first, and the files
    dedup could not read.

    `copies` (a group id per row) are the copies `train` keeps together: equal bytes or an equal perceptual hash,
    chained. dedup reports each near copy with one image it links to directly, so a copy can land in another
    image's group than its original's; such a set is reported as a group of its own too, so that no copy filed
    under another label or split goes unnoticed. A file that two table rows name is two copies of itself.
    """
    by_path: dict[str, list[int]] = defaultdict(list)
    for i in rows:
        by_path[str(data.samples[i].path)].append(i)
    report = find_duplicates([Path(p) for p in by_path], embeddings=embeddings, progress=progress)
    groups = [_group(data, [i for image in found.images for i in by_path[image]], found.kind != EXACT)
              for found in report.groups]
    reported = [set(g.samples) for g in groups]
    members: dict[int, list[int]] = defaultdict(list)
    for k, group in enumerate(copies.tolist()):
        members[group].append(k)
    for ks in members.values():
        together = {rows[k] for k in ks}
        if len(ks) > 1 and not any(together <= seen for seen in reported):
            groups.append(_group(data, [rows[k] for k in ks], len({sha256[k] for k in ks}) > 1))
    groups.sort(key=lambda g: (not g.conflict, not g.leak, -len(g.images), g.images[0]))
    return groups, report.failures


def _group(data: LabeledImages, members: list[int], near: bool) -> DuplicateGroup:
    samples = [data.samples[i] for i in members]
    if len(data.tasks) == 1:
        labels = [s.labels.get(data.tasks[0]) for s in samples]
    else:
        labels = [{t: s.labels.get(t) for t in data.tasks} for s in samples]
    return DuplicateGroup([str(s.path) for s in samples], labels, [s.split for s in samples], near, members)
