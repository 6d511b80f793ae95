"""A cleaned copy of the data's table: flagged rows dropped or relabelled. The user's own files are never
written; the copy keeps every column, and the rows a `--where` filter left out of the audit, as they were."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from fashionlens.atomic import atomic_path
from fashionlens.audit.findings import DUPLICATES, LABEL, OUTLIER, UNREADABLE, AuditReport
from fashionlens.data.samples import LabeledImages
from fashionlens.data.tables import read_rows

HELD_OUT_FIRST = {"test": 0, "validation": 1, "train": 2, None: 3}


@dataclass(frozen=True)
class CleanResult:
    path: Path
    rows: int  # written, the table's header aside
    dropped: int
    relabelled: int


def plan(report: AuditReport, data: LabeledImages, relabel: bool = False) -> tuple[set[int], dict[int, dict[str, str]]]:
    """(samples to drop, {sample: {task: new label}}). Label issues are dropped, or relabelled with `relabel`;
    unreadable images and outliers are dropped; of a group of copies one is kept (the most held-out one, so a
    leak loses its training copies), and none where the copies still disagree on a label after relabelling."""
    drop: set[int] = {f.sample for f in report.of(UNREADABLE) if f.sample is not None}
    drop |= {f.sample for f in report.of(OUTLIER)}
    new: dict[int, dict[str, str]] = {}
    for f in report.of(LABEL):
        if relabel:
            new.setdefault(f.sample, {})[f.task] = f.suggested
        else:
            drop.add(f.sample)
    kept: set[int] = set()  # a copy one group kept stays kept where groups overlap
    for group in report.of(DUPLICATES):
        labels = {repr({t: new.get(i, {}).get(t, data.samples[i].labels.get(t)) for t in data.tasks})
                  for i in group.samples}
        if len(labels) > 1:
            drop |= set(group.samples)
        else:
            keep = min(group.samples, key=lambda i: (i not in kept, HELD_OUT_FIRST.get(data.samples[i].split, 3), i))
            kept.add(keep)
            drop |= set(group.samples) - {keep}
    return drop, {i: v for i, v in new.items() if i not in drop}


def write_clean_table(report: AuditReport, data: LabeledImages, out: str | Path, *, relabel: bool = False,
                      image_column: str = "image") -> CleanResult:
    """With a table as the data: its rows, less the dropped ones, with new labels in the task columns. With class
    folders: a table of image paths (absolute), labels and given splits, readable by `--labels OUT --task ...`."""
    out = Path(out)
    source = Path(data.source)
    if source.is_file() and out.resolve() == source.resolve():
        raise ValueError(f"{out}: is the audited table itself; the cleaned table must go to another file")
    drop, new = plan(report, data, relabel)
    if source.is_file():
        table = read_rows(source)
        by_line = {s.row: i for i, s in enumerate(data.samples)}
        missing = {int(f.image.rsplit(":", 1)[1]) for f in report.of(UNREADABLE)
                   if f.sample is None and f.image.startswith(f"{source}:")}
        columns, delimiter, written = table.columns, table.delimiter, []
        for line, row in table.rows:
            i = by_line.get(line)
            if line in missing or i in drop:
                continue
            written.append({**row, **new.get(i, {})})
    else:
        split = any(s.split for s in data.samples)
        columns, delimiter = [image_column, *data.tasks, *(["split"] if split else [])], ","
        written = []
        for i, s in enumerate(data.samples):
            if i not in drop:
                labels = {**s.labels, **new.get(i, {})}
                written.append({image_column: str(s.path.resolve()), **{t: labels.get(t) or "" for t in data.tasks},
                                **({"split": s.split or ""} if split else {})})
        missing = set()
    with atomic_path(out) as tmp, open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, columns, delimiter=delimiter, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(written)
    dropped = len(drop) + len(missing)
    return CleanResult(out, len(written), dropped, len(new))
