"""Everything the catalogue stores about an image from one decode (sha256, embedding, predicted labels, colours).

A worker process reads, hashes and decodes each image, preprocesses it for the backbone and names its colours;
the main process runs the backbone once per batch (ONNX Runtime) and derives both the embedding and the attribute
models' labels from those same features (`fashionlens.attributes`, as the pipeline does). The steps are separate
(`Decoder`, `Analyser.analyse`, `AnalysedBatch.items`; reading sources is `fashionlens.sources`) so the Ray
engine (`ray_ingest.py`) runs these same steps in its tasks and actors.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
from threadpoolctl import threadpool_limits

from fashionlens.attributes import backbone_features, backbones_of, read_attributes
from fashionlens.catalog.store import NewItem
from fashionlens.classify.model_io import LoadedModel
from fashionlens.data.samples import SkippedInput
from fashionlens.embeddings import Embedder
from fashionlens.backbone_spec import backbone_key
from fashionlens.decoding import ImageFileDataset, item_batches
from fashionlens.defaults import resolve_model
from fashionlens.features import backbone_runner
from fashionlens.fingerprints import sha256_bytes
from fashionlens.preprocess import PreprocessConfig


def image_colors(image, parser: str | None) -> list[dict]:
    """The photo's colours as `analyze` names a photo it describes whole (`parser`: the folder whose garment
    pixels count where the photo has no studio backdrop); the one call site of `fashionlens.colors`."""
    from fashionlens.colors import whole_photo_colors
    from fashionlens.parse.inference import shared_parser, whole_garment_pixels

    def pixels():
        return whole_garment_pixels(shared_parser(parser), image)
    return [c.to_json() for c in whole_photo_colors(image, pixels if parser else None)[0]]


@dataclass
class AnalysedBatch:
    indices: list[int]  # positions in the list of paths given to `Analyser.run`
    sha256: list[str]
    embeddings: np.ndarray  # float32 [n, dim], unit length
    predicted: list[dict[str, dict]]  # per image: {task: {"value", "score"}}
    colors: list[list[dict]]

    def items(self, sources: list[str], attributes: list[dict[str, str]]) -> list[NewItem]:
        """What the store keeps of each image; `sources` and `attributes` are indexed like `indices`."""
        return [NewItem(sha, sources[i], vector, attributes[i], predicted, cols)
                for i, sha, vector, predicted, cols in zip(self.indices, self.sha256, self.embeddings,
                                                          self.predicted, self.colors, strict=True)]


@dataclass(frozen=True)
class Decoder:
    """How each image is decoded for the analysis: configurations only, no model, so it ships to other
    processes (Ray's tasks) cheaply."""

    preprocess: tuple[PreprocessConfig, ...]  # one per backbone, in `Analyser.runners` order
    colors: bool
    parser: str | None = None  # the garment parser's folder, for the colours of photos without a studio backdrop

    def dataset(self, paths: list[Path]) -> _DecodeOnce:
        return _DecodeOnce(paths, [p.eval_transform() for p in self.preprocess],
                           max(p.short_side for p in self.preprocess), self.colors, self.parser)


class _DecodeOnce(ImageFileDataset):
    """Everything the catalogue needs from one decode: hash, each backbone's input, colours."""

    def __init__(self, paths: list[Path], transforms: list, min_size: int, colors: bool, parser: str | None):
        super().__init__(paths, min_size)
        self.transforms, self.colors, self.parser = transforms, colors, parser

    def prepare(self, i: int, data: bytes, image):
        colors = image_colors(image, self.parser) if self.colors else []
        return sha256_bytes(data), [t(image) for t in self.transforms], colors


class Analyser:
    """The backbone sessions, transforms and attribute models, made once for every chunk of a run (or per Ray
    actor). `threads`: ONNX Runtime's threads (default: every core); `workers`: decode threads, two so that
    decoding and parsing (one core each) keep both cores busy while the backbone runs."""

    def __init__(self, embedder: Embedder, models: list[LoadedModel] = (), *, colors: bool = True,
                 batch_size: int = 32, workers: int = 2, threads: int | None = None, top_k: int = 3):
        self.embedder, self.models = embedder, list(models)
        self.batch_size, self.workers, self.top_k = batch_size, workers, top_k
        self.runners = {key: backbone_runner(b, threads=threads)  # the embedder's first
                        for key, b in backbones_of(embedder, self.models).items()}
        self.decoder = self.decoder_for(embedder, self.models, colors)

    @staticmethod
    def decoder_for(embedder: Embedder, models: list[LoadedModel], colors: bool) -> Decoder:
        """The decoding these models need, without loading them."""
        parser = str(resolve_model(None, "parser")) if colors else None
        return Decoder(tuple(b.preprocess for b in backbones_of(embedder, models).values()), colors, parser)

    def run(self, paths: list[Path], failures: list[SkippedInput], names: list[str] | None = None,
            advance: Callable[[int], None] = lambda n: None) -> Iterator[AnalysedBatch]:
        """Batches of analysed images; unreadable ones go to `failures` (under their `names`, default the path)
        and never stop the run. `advance(n)` after each batch, failures included."""
        names = names or [str(p) for p in paths]
        # one BLAS thread: the decode threads share the cores with the backbone's, and the colours' small matrix
        # products cost 2.5x the CPU time when BLAS spreads them over every core
        with threadpool_limits(1):
            yield from self._batches(paths, failures, names, advance)

    def _batches(self, paths, failures, names, advance) -> Iterator[AnalysedBatch]:
        for batch in item_batches(self.decoder.dataset(paths), self.batch_size, self.workers):
            failures += [SkippedInput(names[i], reason) for i, _, reason in batch if reason is not None]
            good = [(i, item) for i, item, reason in batch if reason is None]
            if good:
                yield self.analyse([i for i, _ in good], [item for _, item in good])
            advance(len(batch))

    def analyse(self, indices: list[int], decoded: list[tuple]) -> AnalysedBatch:
        """One batch of decoded images (`Decoder`'s (sha256, inputs, colours) per image) through the backbones,
        then the attribute models as the pipeline reads them (`fashionlens.attributes`)."""
        batches = {key: np.stack([item[1][j] for item in decoded]) for j, key in enumerate(self.runners)}
        features, mirrors = backbone_features(self.runners, batches, self.models)
        read = read_attributes(self.models, features, mirrors, [None] * len(decoded), self.top_k)
        embeddings = self.embedder.from_features(features[backbone_key(self.embedder.backbone)])
        return AnalysedBatch(indices, [item[0] for item in decoded], embeddings, [a.predicted for a in read],
                             [item[2] for item in decoded])
