"""`evaluate`: a saved model on labelled images, written as a report folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fashionlens.cache import FeatureCache
from fashionlens.classify.inference import Predictor
from fashionlens.classify.model_io import LoadedModel, load_model
from fashionlens.classify.report import TaskPredictions, write_report
from fashionlens.classify.train import label_matrix
from fashionlens.data.samples import LabeledImages


def evaluate(model: str | Path | LoadedModel, data: LabeledImages, out: str | Path, *, runtime: str = "auto",
             tta: bool | None = None, progress: bool = True) -> dict:
    """Metrics per task the model knows and the data labels; images whose label the model lacks count as wrong.

    `tta`: average each image with its mirror (default: as the model was trained to predict)."""
    model = model if isinstance(model, LoadedModel) else load_model(model)
    tasks = [t for t in model.tasks if t.name in data.tasks]
    if not tasks:
        known = ", ".join(t.name for t in model.tasks)
        raise ValueError(f"the data labels {data.tasks}, the model predicts {known}: no task in common")
    predictor = Predictor.from_model(model, runtime, tta)
    result = predictor.probabilities([s.path for s in data.samples], cache=FeatureCache(), progress=progress)
    samples = [data.samples[i] for i in result.indices]
    y = label_matrix(samples, tasks)
    for c, task in enumerate(tasks):  # a label the model never saw is a mistake, not a skipped row
        unseen = [r for r, s in enumerate(samples) if s.labels.get(task.name) and y[r, c] < 0]
        y[unseen, c] = len(task.classes)
    images = [str(s.path) for s in samples]
    predictions = []
    for c, task in enumerate(tasks):
        probs = result.probs[task.name]
        classes = list(task.classes)
        if (y[:, c] == len(classes)).any():
            classes.append("(label unknown to the model)")
            probs = np.pad(probs, ((0, 0), (0, 1)))
        predictions.append(TaskPredictions(task.name, classes, y[:, c], probs, images))
    extra = {"model": str(model.folder), "runtime": predictor.runtime, "tta": "flip" if predictor.tta else "none", "data": data.summary(),
             "unreadable": [f"{f.source}: {f.reason}" for f in result.failures]}
    return write_report(predictions, out, title=f"{Path(model.folder).name} on {data.source}", extra=extra)
