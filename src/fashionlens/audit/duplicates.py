"""Copies among the audited images, found by the project's `dedup` as it is, with each copy's label and split."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

from fashionlens.audit.findings import DuplicateGroup
from fashionlens.data.samples import LabeledImages, SkippedInput
from fashionlens.dedup import EXACT, find_duplicates


def duplicate_groups(data: LabeledImages, rows: list[int], *, embeddings: bool = True,
                     progress: bool = True) -> tuple[list[DuplicateGroup], list[SkippedInput]]:
    """Groups of copies among the samples at `rows` (the readable ones), conflicts and leaks first, and the files
    dedup could not read. A file that two table rows name is two copies of itself."""
    by_path: dict[str, list[int]] = defaultdict(list)
    for i in rows:
        by_path[str(data.samples[i].path)].append(i)
    report = find_duplicates([Path(p) for p in by_path], embeddings=embeddings, progress=progress)
    grouped: set[str] = set()
    groups = []
    for found in report.groups:
        members = [i for image in found.images for i in by_path[image]]
        grouped.update(found.images)
        groups.append(_group(data, members, found.kind != EXACT))
    for image, members in by_path.items():  # one file listed twice, no other copy
        if len(members) > 1 and image not in grouped:
            groups.append(_group(data, members, False))
    groups.sort(key=lambda g: (not g.conflict, not g.leak, -len(g.images), g.images[0]))
    return groups, report.failures


def _group(data: LabeledImages, members: list[int], near: bool) -> DuplicateGroup:
    samples = [data.samples[i] for i in members]
    if len(data.tasks) == 1:
        labels = [s.labels.get(data.tasks[0]) for s in samples]
    else:
        labels = [{t: s.labels.get(t) for t in data.tasks} for s in samples]
    return DuplicateGroup([str(s.path) for s in samples], labels, [s.split for s in samples], near, members)
