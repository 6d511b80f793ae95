"""Everything the catalogue stores about an image, from one decode: sha256, embedding, predicted labels, colours.

A worker process reads, hashes and decodes each image, preprocesses it for the backbone and names its colours;
the main process runs the backbone once per batch (ONNX Runtime) and derives both the embedding and the
classifier's labels from those same features when the classifier sits on the same backbone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader

from fashionlens.classify.model import Classifier
from fashionlens.data.samples import SkippedInput
from fashionlens.embeddings import Embedder
from fashionlens.features import ImageFileDataset, backbone_key, backbone_runner
from fashionlens.fingerprints import sha256_bytes
from fashionlens.progress import progress_bar


def image_colors(image) -> list[dict]:
    """The garment's named colours; the one call site of `fashionlens.colors`."""
    from fashionlens.colors import named_colors

    return [{"name": c.name, "fraction": round(c.fraction, 4), "rgb": list(c.rgb)} for c in named_colors(image)]


@dataclass
class AnalysedBatch:
    indices: list[int]  # positions in the list of paths given to `analyse`
    sha256: list[str]
    embeddings: np.ndarray  # float32 [n, dim], unit length
    predicted: list[dict[str, dict]]  # per image: {task: {"value", "score"}}
    colors: list[list[dict]]


class _DecodeOnce(ImageFileDataset):
    """Everything `catalog add` needs from one decode: hash, each backbone's input, colours."""

    def __init__(self, paths: list[Path], transforms: list, min_size: int, colors: bool):
        super().__init__(paths, min_size)
        self.transforms, self.colors = transforms, colors

    def prepare(self, i: int, data: bytes, image):
        return sha256_bytes(data), [t(image) for t in self.transforms], image_colors(image) if self.colors else []


def _as_list(batch):
    return batch


def analyse(
    paths: list[Path], embedder: Embedder, failures: list[SkippedInput], *, classifier: Classifier | None = None,
    colors: bool = True, batch_size: int = 32, workers: int = 1, progress: bool = False,
) -> Iterator[AnalysedBatch]:
    """Batches of analysed images; unreadable ones go to `failures` and never stop the run."""
    backbones = [embedder.backbone]
    if classifier is not None and backbone_key(classifier.backbone_info) != backbone_key(embedder.backbone):
        backbones.append(classifier.backbone_info)
    runners = [backbone_runner(b) for b in backbones]
    dataset = _DecodeOnce(paths, [b.preprocess.eval_transform() for b in backbones],
                          max(b.preprocess.short_side for b in backbones), colors)
    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=_as_list,
                        num_workers=workers if len(paths) > 2 * batch_size else 0)
    with progress_bar("catalog add", len(paths), progress) as advance:
        for batch in loader:
            failures += [SkippedInput(str(paths[i]), reason) for i, _, reason in batch if reason is not None]
            good = [(i, item) for i, item, reason in batch if reason is None]
            if good:
                features = [runner(torch.stack([item[1][j] for _, item in good]).numpy())["features"]
                            for j, runner in enumerate(runners)]
                yield AnalysedBatch([i for i, _ in good], [item[0] for _, item in good],
                                    embedder.from_features(features[0]), _predict(classifier, features[-1], len(good)),
                                    [item[2] for _, item in good])
            advance(len(batch))


def _predict(classifier: Classifier | None, features: np.ndarray, n: int) -> list[dict[str, dict]]:
    if classifier is None:
        return [{} for _ in range(n)]
    with torch.inference_mode():
        probs = {k: torch.softmax(v, -1).numpy() for k, v in classifier.heads(torch.from_numpy(features)).items()}
    out: list[dict[str, dict]] = [{} for _ in range(n)]
    for task in classifier.tasks:
        best = probs[task.name].argmax(1)
        for row, c in enumerate(best):
            out[row][task.name] = {"value": task.classes[c], "score": round(float(probs[task.name][row, c]), 4)}
    return out
