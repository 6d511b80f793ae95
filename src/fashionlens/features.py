"""Frozen-backbone features for many images: decoded once, computed once, cached by content (`backbone_key` and
`ImageFileDataset` are re-exported for the modules that always took them from here).

The backbone runs in ONNX Runtime (about 3x PyTorch eager on CPU); its export is cached beside the
features, keyed by the weights, so it too is made once per machine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from fashionlens.backbone_spec import BackboneSpec, backbone_key, backbone_onnx, mirrored
from fashionlens.cache import FeatureCache, default_cache_dir
from fashionlens.data.samples import SkippedInput
from fashionlens.decoding import ImageFileDataset, item_batches
from fashionlens.fingerprints import perceptual_hash, sha256_bytes
from fashionlens.progress import progress_bar
from fashionlens.runtime import OnnxRunner


@dataclass
class Features:
    vectors: np.ndarray  # float32 [n_read, dim]
    indices: list[int]  # position in the input list of each row
    sha256: list[str]
    phash: list[str]
    failures: list[SkippedInput] = field(default_factory=list)


def backbone_runner(backbone: BackboneSpec, cache_dir: Path | None = None, threads: int | None = None) -> OnnxRunner:
    return OnnxRunner(backbone_onnx(backbone, cache_dir or default_cache_dir()), threads)


class DecodeDataset(ImageFileDataset):
    """The backbone's input tensor and the fingerprints of each image."""

    def __init__(self, paths: list[Path], backbone: BackboneSpec):
        super().__init__(paths, backbone.preprocess.short_side)
        self.transform = backbone.preprocess.eval_transform()

    def prepare(self, i: int, data: bytes, image):
        return self.transform(image), sha256_bytes(data), perceptual_hash(image)


@dataclass
class DecodedBatch:
    indices: list[int]  # positions in the list given to `decoded_batches`
    images: np.ndarray  # preprocessed, float32 [n, 3, H, W]
    sha256: list[str]
    phash: list[str]


def decoded_batches(
    paths: list[Path], backbone: BackboneSpec, failures: list[SkippedInput], *, batch_size: int = 32, workers: int = 1,
    progress: bool = False, description: str = "images",
) -> Iterator[DecodedBatch]:
    """Decode and preprocess in worker threads while the caller runs the model; unreadable images go to
    `failures` and never stop the batch."""
    with progress_bar(description, len(paths), progress) as advance:
        for batch in item_batches(DecodeDataset(paths, backbone), batch_size, workers):
            failures += [SkippedInput(str(paths[i]), reason) for i, _, reason in batch if reason is not None]
            good = [(i, item) for i, item, reason in batch if reason is None]
            if good:
                yield DecodedBatch([i for i, _ in good], np.stack([item[0] for _, item in good]),
                                   [item[1] for _, item in good], [item[2] for _, item in good])
            advance(len(batch))


def extract_features(
    backbone: BackboneSpec,
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
            out = runner(mirrored(batch.images) if mirror else batch.images)["features"]
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
