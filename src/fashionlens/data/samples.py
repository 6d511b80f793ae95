"""The typed boundary between data readers and training: samples with labels, and what was skipped."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

SPLIT_ALIASES = {"train": "train", "training": "train", "val": "validation", "valid": "validation",
                 "validation": "validation", "test": "test", "testing": "test"}


@dataclass(frozen=True)
class Sample:
    path: Path
    labels: dict[str, str | None]  # task -> label; None where the source has no label for that task
    split: str | None = None  # given by the layout (train/validation/test folders), else None
    row: int | None = None  # the table line it came from (`TableRows`), so a cleaned table keeps every other column


@dataclass(frozen=True)
class SkippedInput:
    source: str  # file path, or table row ("styles.csv:12")
    reason: str


def failure_reason(exc: Exception, step: str) -> str:
    """Why one input failed, for a batch that goes on without it: an `ImageError`'s own reason, else the error's
    kind and message after `step` ("analysis failed (...)"), one line rather than a traceback."""
    return getattr(exc, "reason", None) or f"{step} failed ({type(exc).__name__}: {exc})"


@dataclass
class LabeledImages:
    samples: list[Sample]
    tasks: list[str]
    source: str
    skipped: list[SkippedInput] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.samples)

    def classes(self, task: str) -> list[str]:
        return sorted({s.labels[task] for s in self.samples if s.labels.get(task) is not None})

    def counts(self, task: str) -> Counter:
        return Counter(s.labels[task] for s in self.samples if s.labels.get(task) is not None)

    def subset(self, indices: list[int]) -> LabeledImages:
        return LabeledImages([self.samples[i] for i in indices], self.tasks, self.source, [])

    def only_split(self, name: str) -> LabeledImages:
        """The samples a layout put in `name`; all of them when the layout has no splits."""
        if not any(s.split for s in self.samples):
            return self
        return self.subset([i for i, s in enumerate(self.samples) if s.split == name])

    def summary(self) -> dict:
        return {
            "source": self.source,
            "images": len(self.samples),
            "skipped": len(self.skipped),
            "tasks": {task: dict(sorted(self.counts(task).items())) for task in self.tasks},
        }
