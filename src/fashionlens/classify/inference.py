"""Predictions from a classifier, on the fastest runtime available for it.

- "onnx": the model's own ONNX export (written by `export`), when it matches the weights;
- "features": the backbone runs in ONNX Runtime (exported once into the cache), the small heads in PyTorch;
  with a feature cache, images seen before cost no backbone pass at all;
- "torch": PyTorch eager, the reference the other two are tested against.

With `tta` (default: the model's own setting) every runtime averages the probabilities of each image and its
horizontal mirror; "onnx" and "torch" run the mirrors in the same batch as the originals, "features" caches
the mirrors' features beside the originals'.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fashionlens.backbone_spec import mirrored
from fashionlens.cache import FeatureCache
from fashionlens.classify.model_io import EXPORT_FILE, LoadedModel
from fashionlens.classify.tasks import flip_average
from fashionlens.data.samples import SkippedInput
from fashionlens.features import decoded_batches, extract_features
from fashionlens.runtime import OnnxRunner

RUNTIMES = ("auto", "onnx", "features", "torch")


@dataclass(frozen=True)
class LabelScore:
    label: str
    score: float


def top_labels(classes, probabilities: np.ndarray, k: int) -> list[LabelScore]:
    """The `k` most probable classes of one row of probabilities, best first."""
    best = np.argsort(-probabilities, kind="stable")[:k]
    return [LabelScore(classes[c], float(probabilities[c])) for c in best]


@dataclass
class ImagePrediction:
    image: str
    predictions: dict[str, list[LabelScore]]

    def to_json(self) -> dict:
        return {
            "image": self.image,
            "predictions": {
                task: [{"label": s.label, "score": round(s.score, 6)} for s in scores]
                for task, scores in self.predictions.items()
            },
        }


@dataclass
class Probabilities:
    probs: dict[str, np.ndarray]  # task -> [n_read, n_classes]
    indices: list[int]  # input position of each row
    failures: list[SkippedInput] = field(default_factory=list)


def onnx_export_path(model: LoadedModel) -> Path | None:
    """The export recorded in the model folder, if it was made from the current weights."""
    record = model.folder / EXPORT_FILE
    if not record.is_file():
        return None
    info = json.loads(record.read_text())
    path = Path(info["onnx"])
    path = path if path.is_absolute() else model.folder / path
    if info.get("weights_sha256") != model.weights_sha256 or not path.is_file():
        return None
    return path


class Predictor:
    """`classifier`: a `LoadedModel` (the "features" and "onnx" runtimes need no PyTorch) or a PyTorch
    `Classifier` (training's own)."""

    def __init__(self, classifier, runtime: str = "auto", onnx_path: Path | None = None,
                 tta: bool | None = None):
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {', '.join(RUNTIMES)}, not {runtime!r}")
        if runtime == "auto":
            runtime = "onnx" if onnx_path else "features"
        if runtime == "onnx" and onnx_path is None:
            raise ValueError("no up-to-date ONNX export of this model; run `fashionlens export` first")
        self.classifier = classifier
        self._torch = None
        if runtime == "torch":
            self._torch = (classifier.classifier if isinstance(classifier, LoadedModel) else classifier).eval()
        self.runtime = runtime
        self.tasks = classifier.tasks
        self.tta = classifier.tta if tta is None else bool(tta)
        self._onnx = OnnxRunner(onnx_path) if runtime == "onnx" else None

    @classmethod
    def from_model(cls, model: LoadedModel, runtime: str = "auto", tta: bool | None = None) -> Predictor:
        return cls(model, runtime, onnx_export_path(model), tta)

    def probabilities(
        self, paths: list[Path], *, batch_size: int = 32, cache: FeatureCache | None = None, progress: bool = False
    ) -> Probabilities:
        """Class probabilities per task for every readable image; `cache` is used by the features runtime."""
        paths = [Path(p) for p in paths]
        if self.runtime == "features":
            backbone = self.classifier.backbone_info
            feats = extract_features(backbone, paths, cache=cache, batch_size=batch_size, progress=progress,
                                     use_cache=cache is not None)
            flipped = None
            if self.tta:
                good = [paths[i] for i in feats.indices]
                flipped = extract_features(backbone, good, cache=cache, batch_size=batch_size, progress=progress,
                                           use_cache=cache is not None, mirror=True)
                if flipped.indices != list(range(len(good))):  # the file changed or vanished in between
                    raise RuntimeError("images changed while their mirrors were read; predict again")
            probs = self.classifier.probabilities_from(feats.vectors, None if flipped is None else flipped.vectors)
            return Probabilities(probs, feats.indices, feats.failures)
        return self._run_images(paths, batch_size, progress)

    def _run_images(self, paths: list[Path], batch_size: int, progress: bool) -> Probabilities:
        chunks: dict[str, list[np.ndarray]] = {t.name: [] for t in self.tasks}
        indices: list[int] = []
        failures: list[SkippedInput] = []
        for batch in decoded_batches(paths, self.classifier.backbone_info, failures, batch_size=batch_size,
                                     progress=progress, description="predict"):
            for name, value in self._forward(batch.images).items():
                chunks[name].append(value)
            indices += batch.indices
        probs = {t.name: np.concatenate(chunks[t.name]) if chunks[t.name] else np.zeros((0, len(t.classes)), np.float32)
                 for t in self.tasks}
        return Probabilities(probs, indices, failures)

    def _forward(self, images: np.ndarray) -> dict[str, np.ndarray]:
        if self.tta:  # one batch of twice the size: the originals, then their mirrors
            return flip_average(self._forward_once(np.concatenate([images, mirrored(images)])), len(images))
        return self._forward_once(images)

    def _forward_once(self, images: np.ndarray) -> dict[str, np.ndarray]:
        if self._onnx is not None:
            out = self._onnx(images)
            return {t.name: out[t.name] for t in self.tasks}
        import torch

        with torch.inference_mode():
            return {k: torch.softmax(v, -1).numpy() for k, v in self._torch(torch.from_numpy(images)).items()}

    def predict(self, paths: list[Path], *, top_k: int = 3, batch_size: int = 32, progress: bool = False
                ) -> tuple[list[ImagePrediction], list[SkippedInput]]:
        result = self.probabilities(paths, batch_size=batch_size, progress=progress)
        predictions = []
        for row, index in enumerate(result.indices):
            per_task = {}
            for task in self.tasks:
                per_task[task.name] = top_labels(task.classes, result.probs[task.name][row], top_k)
            predictions.append(ImagePrediction(str(paths[index]), per_task))
        return predictions, result.failures
