"""What the attribute models say of an image or a crop, as every entry point shows it: each task's top labels
among those that fit the garment's kind, with the model's own probabilities, and what a model said that does not
fit. The pipeline, the service's catalogue items and ingest (local and on Ray) all call `read_attributes` on
features of one backbone pass, so one photo gets one answer everywhere."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from fashionlens.classify.inference import LabelScore, top_labels
from fashionlens.classify.model_io import LoadedModel, load_model
from fashionlens.classify.tasks import TaskSpec
from fashionlens.defaults import resolve_model
from fashionlens.backbone_spec import backbone_key, mirrored

DEFAULT_MODELS = ("default", "types")
"""The shipped attribute models every entry point uses by default: the garment classifier and its type head."""


@dataclass(frozen=True)
class Disputed:
    """A model's own best label that does not fit the garment's kind, kept so the result says who said what."""

    model: str
    task: str
    label: str
    score: float

    def to_json(self) -> dict:
        return {"model": self.model, "task": self.task, "label": self.label, "score": round(self.score, 4)}


@dataclass
class Attributes:
    labels: dict[str, list[LabelScore]]  # task -> best labels first
    kind: str | None  # the garment's kind: the detector's label, or for a whole photo the one its category names
    disputed: list[Disputed] = field(default_factory=list)

    @property
    def predicted(self) -> dict[str, dict]:
        """The best label per task, in the catalogue's `predicted` form."""
        return {task: {"value": s[0].label, "score": round(s[0].score, 4)} for task, s in self.labels.items() if s}


def load_attribute_models(names) -> list[LoadedModel]:
    """Model folders, or the shipped ones by name ("default": the garment classifier, "types": its type head)."""
    return [load_model(resolve_model(n, "classifier")) for n in names]


def backbones_of(embedder, models: list[LoadedModel]) -> dict:
    """Each backbone the embedding and the attribute models sit on, once (key -> backbone), the embedder's first:
    one pass of an image through a backbone serves every model on it."""
    backbones = {backbone_key(embedder.backbone): embedder.backbone}
    for model in models:
        backbones.setdefault(backbone_key(model.backbone_info), model.backbone_info)
    return backbones


def backbone_features(runners: dict, batches: dict, models: list[LoadedModel]) -> tuple[dict, dict]:
    """(features, mirrors): each batch (backbone key -> preprocessed images) through its backbone's runner, and
    again mirrored for the backbones of models saved to predict with test-time flips."""
    features = {key: runners[key](batch)["features"] for key, batch in batches.items()}
    tta = {backbone_key(m.backbone_info) for m in models if m.tta}
    mirrors = {key: runners[key](mirrored(batches[key]))["features"] for key in tta}
    return features, mirrors


def read_attributes(models: list[LoadedModel], features: dict[str, np.ndarray], mirrors: dict[str, np.ndarray],
                    kinds: list[str | None], top_k: int) -> list[Attributes]:
    """Per row of `features` (backbone key -> [n, dim]; `mirrors`: those of the mirrored images, for models saved
    with test-time flips): the attributes. `kinds`: each row's garment label, None for a whole photo."""
    outputs = []  # (model, task, probabilities of every row)
    for model in models:
        key = backbone_key(model.backbone_info)
        probs = model.probabilities_from(features[key], mirrors.get(key) if model.tta else None)
        outputs += [(model, task, probs[task.name]) for task in model.tasks]
    kinds = [kind if kind is not None else _whole_kind(outputs, row) for row, kind in enumerate(kinds)]
    found = [Attributes({}, kind) for kind in kinds]
    for model, task, probs in outputs:
        for row, p in enumerate(probs):
            labels = _fitting(task, p, kinds[row], top_k)
            if labels is None:
                continue
            found[row].labels[task.name] = labels
            said = top_labels(task.classes, p, 1)[0]
            if said.label != labels[0].label:
                found[row].disputed.append(Disputed(model.folder.name, task.name, said.label, said.score))
    return found


def _fitting(task: TaskSpec, probs: np.ndarray, kind: str | None, top_k: int) -> list[LabelScore] | None:
    """The top labels among those that fit the garment's kind (as the model's manifest declares), each with the
    model's own probability (never renormalised over the fitting few, which would claim certainty the model does
    not have); None where none fit."""
    allowed = task.fitting(kind)
    if allowed is None:
        return top_labels(task.classes, probs, top_k)
    index = [i for i, c in enumerate(task.classes) if c in allowed]
    if not index:
        return None
    return top_labels([task.classes[i] for i in index], probs[index], top_k)


def _whole_kind(outputs: list, row: int) -> str | None:
    """A whole photo's kind: the garment its best class names, by the first task that names kinds (a product
    shot of a T-shirt is a shirt)."""
    for _, task, probs in outputs:
        if task.names_kind:
            return task.kind_of(task.classes[int(np.argmax(probs[row]))])
    return None


def kinds_named(models: list[LoadedModel]) -> set[str]:
    """The garment kinds the models' kind-naming tasks name: kinds a whole photo's classifier can tell."""
    return {kind for model in models for task in model.tasks if task.names_kind for kind in task.fits}
