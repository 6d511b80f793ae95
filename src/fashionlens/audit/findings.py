"""What an audit finds, one typed record per finding; `to_json()` gives the stable one-line shapes of `--json`."""

from __future__ import annotations

from dataclasses import dataclass, field

LABEL, DUPLICATES, OUTLIER, UNREADABLE, TABLE = "label", "duplicates", "outlier", "unreadable", "table"
KINDS = (LABEL, DUPLICATES, OUTLIER, UNREADABLE, TABLE)


@dataclass(frozen=True)
class LabelIssue:
    """A label that the out-of-fold heads confidently disagree with. `score`: 1 minus the probability the heads
    give the given label (cleanlab's self-confidence), so the likelier the error, the higher."""

    image: str
    task: str
    given: str
    suggested: str
    score: float
    sample: int  # position in the audited LabeledImages
    kind: str = field(default=LABEL, init=False)

    def to_json(self) -> dict:
        return {"kind": self.kind, "image": self.image, "task": self.task, "given": self.given,
                "suggested": self.suggested, "score": round(self.score, 4)}


@dataclass(frozen=True)
class DuplicateGroup:
    """Copies of one picture. `labels` per image: the label string with one task, {task: label} with several."""

    images: list[str]
    labels: list
    splits: list[str | None]  # the split the data gave each image, None without one
    near: bool  # False: all byte-identical
    samples: list[int]
    kind: str = field(default=DUPLICATES, init=False)

    @property
    def leak(self) -> bool:
        """The group straddles two given splits: a held-out score is measured on a training picture."""
        return len({s for s in self.splits if s}) > 1

    @property
    def conflict(self) -> bool:
        """Copies of one picture filed under different labels."""
        return len({repr(label) for label in self.labels}) > 1

    def to_json(self) -> dict:
        return {"kind": self.kind, "images": self.images, "labels": self.labels, "splits": self.splits,
                "near": self.near}


@dataclass(frozen=True)
class Outlier:
    """An image far from all the others in feature space. `score` in [0, 1): 1 minus cleanlab's outlier score."""

    image: str
    score: float
    sample: int
    kind: str = field(default=OUTLIER, init=False)

    def to_json(self) -> dict:
        return {"kind": self.kind, "image": self.image, "score": round(self.score, 4)}


@dataclass(frozen=True)
class Unreadable:
    image: str  # the file, or the table row ("styles.csv:12") whose image is missing
    reason: str
    sample: int | None = None  # None where the reader skipped it before it became a sample
    kind: str = field(default=UNREADABLE, init=False)

    def to_json(self) -> dict:
        return {"kind": self.kind, "image": self.image, "reason": self.reason}


@dataclass(frozen=True)
class TableIssue:
    columns: list[str]
    message: str
    kind: str = field(default=TABLE, init=False)

    def to_json(self) -> dict:
        return {"kind": self.kind, "columns": self.columns, "message": self.message}


Finding = LabelIssue | DuplicateGroup | Outlier | Unreadable | TableIssue


@dataclass
class AuditReport:
    source: str
    images: int  # samples audited (readable or not)
    tasks: list[str]
    findings: list[Finding]
    seconds: dict[str, float] = field(default_factory=dict)  # per stage
    label_check: dict[str, dict] = field(default_factory=dict)  # per task: images checked, classes, fold accuracy

    def of(self, kind: str) -> list:
        return [f for f in self.findings if f.kind == kind]

    def counts(self) -> dict[str, int]:
        counts = {kind: len(self.of(kind)) for kind in KINDS}
        groups = self.of(DUPLICATES)
        counts.update({"duplicate_images": sum(len(g.images) for g in groups), "leaks": sum(g.leak for g in groups),
                       "conflicts": sum(g.conflict for g in groups), "near_groups": sum(g.near for g in groups)})
        return counts
