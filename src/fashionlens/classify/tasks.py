"""What a classifier predicts, task by task: names, classes and head shapes (saved in the manifest)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class TaskSpec:
    name: str
    classes: tuple[str, ...]
    hidden: int = 0  # 0: a linear head; otherwise one hidden layer of this width
    dropout: float = 0.5  # on the hidden layer
    input_dropout: float = 0.2  # on the features: a cheap augmentation when the backbone is frozen

    def to_dict(self) -> dict:
        return {**asdict(self), "classes": list(self.classes)}

    @classmethod
    def from_dict(cls, data: dict) -> TaskSpec:
        return cls(data["name"], tuple(data["classes"]), int(data.get("hidden", 0)), float(data.get("dropout", 0.5)),
                   float(data.get("input_dropout", 0.2)))


def flip_average(probabilities: dict, n: int) -> dict:
    """Rows [0, n) are the images, rows [n, 2n) their mirrors: the mean of the two, per task."""
    return {k: (v[:n] + v[n:]) / 2 for k, v in probabilities.items()}
