"""What a classifier predicts, task by task: names, classes and head shapes (saved in the manifest)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskSpec:
    name: str
    classes: tuple[str, ...]
    hidden: int = 0  # 0: a linear head; otherwise one hidden layer of this width
    dropout: float = 0.5  # on the hidden layer
    input_dropout: float = 0.2  # on the features: a cheap augmentation when the backbone is frozen
    # the garment kinds (detector labels) its classes fit: kind -> classes; a kind missing here gets no such
    # attribute. None: the task's classes fit every garment (a user's model is never silenced by another's words)
    fits: dict[str, tuple[str, ...]] | None = None
    names_kind: bool = False  # each class names one garment kind (in `fits`): how a whole photo gets its kind

    def __post_init__(self):
        if self.names_kind and not self.fits:
            raise ValueError(f"task {self.name!r}: names_kind needs the kinds its classes fit")
        if self.fits:
            unknown = {c for labels in self.fits.values() for c in labels} - set(self.classes)
            if unknown:
                raise ValueError(f"task {self.name!r}: fits names classes it does not have: {sorted(unknown)}")

    def to_dict(self) -> dict:
        data = {"name": self.name, "classes": list(self.classes), "hidden": self.hidden, "dropout": self.dropout,
                "input_dropout": self.input_dropout}
        if self.fits is not None:
            data["fits"] = {kind: list(labels) for kind, labels in self.fits.items()}
            data["names_kind"] = self.names_kind
        return data

    @classmethod
    def from_dict(cls, data: dict) -> TaskSpec:
        fits = data.get("fits")
        return cls(data["name"], tuple(data["classes"]), int(data.get("hidden", 0)), float(data.get("dropout", 0.5)),
                   float(data.get("input_dropout", 0.2)),
                   {kind: tuple(labels) for kind, labels in fits.items()} if fits is not None else None,
                   bool(data.get("names_kind", False)))

    def fitting(self, kind: str | None) -> tuple[str, ...] | None:
        """The classes allowed on a garment of this kind: None means any (no declared fits, or no kind)."""
        if self.fits is None or kind is None:
            return None
        return self.fits.get(kind, ())

    def kind_of(self, label: str) -> str | None:
        """The garment kind a class names, for a task that names kinds."""
        if not self.names_kind:
            return None
        return next((kind for kind, labels in self.fits.items() if label in labels), None)


def flip_average(probabilities: dict, n: int) -> dict:
    """Rows [0, n) are the images, rows [n, 2n) their mirrors: the mean of the two, per task."""
    return {k: (v[:n] + v[n:]) / 2 for k, v in probabilities.items()}
