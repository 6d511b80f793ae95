"""Frozen-backbone features for many images: decoded once, computed once, cached by content.

The backbone runs in ONNX Runtime (about 3x PyTorch eager on CPU); its export is cached beside the
features, keyed by the weights, so it too is made once per machine.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from fashionlens.backbones import Backbone
from fashionlens.cache import FeatureCache, default_cache_dir
from fashionlens.data.samples import SkippedInput, failure_reason
from fashionlens.fingerprints import perceptual_hash, sha256_bytes
from fashionlens.images import read_image_file
from fashionlens.progress import progress_bar
from fashionlens.runtime import OnnxRunner, export_onnx


@dataclass
class Features:
    vectors: np.ndarray  # float32 [n_read, dim]
    indices: list[int]  # position in the input list of each row
    sha256: list[str]
    phash: list[str]
    failures: list[SkippedInput] = field(default_factory=list)


def backbone_key(backbone: Backbone) -> str:
    parts = [backbone.name, backbone.weights_id, backbone.preprocess.to_dict(), list(backbone.pool_stages),
             backbone.colour_bins]
    if backbone.colour_bins and backbone.colour_space != "rgb":  # rgb backbones keep the keys they always had
        parts.append(backbone.colour_space)
    if backbone.colour_bins and backbone.colour_sqrt:  # likewise: only the new setting adds to the key
        parts.append("sqrt")
    blob = json.dumps(parts, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def backbone_runner(backbone: Backbone, cache_dir: Path | None = None, threads: int | None = None) -> OnnxRunner:
    path = (cache_dir or default_cache_dir()) / "onnx" / f"{backbone.name}-{backbone_key(backbone)}.onnx"
    if not path.exists():
        export_onnx(backbone.model, backbone.preprocess.input_size, path, ["features"])
    return OnnxRunner(path, threads)


class ImageFileDataset(Dataset):
    """Reads and decodes one file per item and hands it to `prepare`; items are (index, prepared, None), or
    (index, None, reason) for an unusable file, so a worker never raises and a batch never dies on one image."""

    def __init__(self, paths: list[Path], min_size: int | None = None):
        self.paths, self.min_size = paths, min_size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int):
        try:
            data, image = read_image_file(self.paths[i], self.min_size)
            return i, self.prepare(i, data, image), None
        except Exception as exc:  # an unreadable file, or one `prepare` fails on
            return i, None, failure_reason(exc, "preparation")

    def prepare(self, i: int, data: bytes, image):
        raise NotImplementedError


class DecodeDataset(ImageFileDataset):
    """The backbone's input tensor and the fingerprints of each image."""

    def __init__(self, paths: list[Path], backbone: Backbone):
        super().__init__(paths, backbone.preprocess.short_side)
        self.transform = backbone.preprocess.eval_transform()

    def prepare(self, i: int, data: bytes, image):
        return self.transform(image), sha256_bytes(data), perceptual_hash(image)


@dataclass
class DecodedBatch:
    indices: list[int]  # positions in the list given to `decoded_batches`
    images: torch.Tensor  # preprocessed, [n, 3, H, W]
    sha256: list[str]
    phash: list[str]


def _keep_as_list(batch):
    return batch


def decoded_batches(
    paths: list[Path], backbone: Backbone, failures: list[SkippedInput], *, batch_size: int = 32, workers: int = 1,
    progress: bool = False, description: str = "images",
) -> Iterator[DecodedBatch]:
    """Decode and preprocess in a worker process while the caller runs the model; unreadable images go to
    `failures` and never stop the batch."""
    loader = DataLoader(DecodeDataset(paths, backbone), batch_size=batch_size, collate_fn=_keep_as_list,
                        num_workers=workers if len(paths) > 2 * batch_size else 0)
    with progress_bar(description, len(paths), progress) as advance:
        for batch in loader:
            failures += [SkippedInput(str(paths[i]), reason) for i, _, reason in batch if reason is not None]
            good = [(i, item) for i, item, reason in batch if reason is None]
            if good:
                yield DecodedBatch([i for i, _ in good], torch.stack([item[0] for _, item in good]),
                                   [item[1] for _, item in good], [item[2] for _, item in good])
            advance(len(batch))


def extract_features(
    backbone: Backbone,
    paths: list[Path],
    *,
    cache: FeatureCache | None = None,
    batch_size: int = 32,
    progress: bool = True,
    workers: int = 1,
    use_cache: bool = True,
    mirror: bool = False,
) -> Features:
    """Features for every readable image; unreadable ones are listed in `failures` and skipped.

    With `use_cache=False` nothing is looked up or stored (one-off predictions on a large catalogue).
    `mirror`: the features of each image's horizontal mirror (test-time flips), cached under a key of their own.
    """
    cache = (cache or FeatureCache()) if use_cache else None
    key = backbone_key(backbone) + ("-mirror" if mirror else "")
    paths = [Path(p) for p in paths]
    failures: list[SkippedInput] = []
    vectors: dict[int, np.ndarray] = {}
    digests: dict[int, tuple[str, str]] = {}
    todo = list(range(len(paths)))
    if cache:
        known_sha: dict[int, str] = {}
        for i, path in enumerate(paths):
            try:
                known_sha[i] = sha256_bytes(path.read_bytes())
            except OSError as exc:
                failures.append(SkippedInput(str(path), f"cannot read ({exc.strerror or exc})"))
        cached = cache.features(key, list(known_sha.values()))
        phashes = cache.phashes(list(cached))
        todo = [i for i, sha in known_sha.items() if sha not in cached or sha not in phashes]
        for i, sha in known_sha.items():
            if sha in cached and sha in phashes:
                vectors[i], digests[i] = cached[sha], (sha, phashes[sha])
    if todo:
        runner = backbone_runner(backbone, cache.path.parent if cache else None)
        for batch in decoded_batches([paths[i] for i in todo], backbone, failures, batch_size=batch_size,
                                     workers=workers, progress=progress, description=f"features ({backbone.name})"):
            images = torch.flip(batch.images, dims=(-1,)) if mirror else batch.images
            out = runner(images.numpy())["features"]
            for j, sha, ph, vec in zip(batch.indices, batch.sha256, batch.phash, out, strict=True):
                vectors[todo[j]], digests[todo[j]] = vec, (sha, ph)
            if cache:
                cache.put(key, list(zip(batch.sha256, batch.phash, out, strict=True)))
    order = sorted(vectors)
    dim = backbone.feature_dim
    return Features(
        vectors=np.stack([vectors[i] for i in order]).astype(np.float32) if order else np.zeros((0, dim), np.float32),
        indices=order,
        sha256=[digests[i][0] for i in order],
        phash=[digests[i][1] for i in order],
        failures=sorted(failures, key=lambda f: f.source),
    )
