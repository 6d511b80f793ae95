"""Image embeddings for search and near-duplicate detection: L2-normalised vectors from a backbone, or from the
hidden layer of a trained classifier's heads (which has learned the shop's own categories)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fashionlens.backbone_spec import DEFAULT_BACKBONE, BackboneSpec, named_backbone
from fashionlens.classify.head_weights import HeadWeights
from fashionlens.classify.model_io import LoadedModel, load_model
from fashionlens.data.samples import SkippedInput
from fashionlens.defaults import default_classifier_dir
from fashionlens.features import backbone_key, extract_features


@dataclass
class Embeddings:
    vectors: np.ndarray  # float32 [n_read, dim], unit length
    indices: list[int]  # position in the input list of each row
    sha256: list[str]
    phash: list[str]
    failures: list[SkippedInput] = field(default_factory=list)


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return (vectors / np.maximum(norms, 1e-12)).astype(np.float32)


PROBABILITY_WEIGHT = 0.5
"""Weight of a linear classifier's class probabilities beside the backbone features (both unit length): on
clothing-small it lifts same-class precision@10 from 0.75 to 0.87 while the features still rank look-alikes
within a class (benchmarks/catalog_search_clothing.py)."""


@dataclass
class Embedder:
    """Turns backbone features into embeddings; `key` names the embedding space, so vectors from two different
    embedders are never compared."""

    backbone: BackboneSpec
    key: str
    heads: HeadWeights | None = None  # the classifier heads the embedding also draws on, if any
    probability_weight: float = 0.0  # linear heads: append their class probabilities with this weight

    @classmethod
    def from_backbone(cls, backbone: BackboneSpec | str = DEFAULT_BACKBONE) -> Embedder:
        """A registry backbone by name (its shipped spec, else built with PyTorch), or a backbone spec."""
        if isinstance(backbone, str):
            backbone = named_backbone(backbone)
        return cls(backbone, f"{backbone.name}:{backbone_key(backbone)}")

    @classmethod
    def from_model(cls, model: LoadedModel, probability_weight: float = PROBABILITY_WEIGHT) -> Embedder:
        """A classifier's embedding: the hidden layers of its MLP heads (its penultimate layer), concatenated; for
        linear heads, whose penultimate layer is the backbone's features, the features with the class
        probabilities appended, so items of one category sit closer together."""
        backbone = model.backbone_info
        hidden = any(t.hidden for t in model.tasks)
        weight = 0.0 if hidden else probability_weight
        if not hidden and not weight:
            return cls.from_backbone(backbone)
        digest = hashlib.sha256(f"{backbone_key(backbone)}:{model.weights_sha256}:{weight}".encode()).hexdigest()
        return cls(backbone, f"{model.folder.name}:{digest[:16]}", model.heads, weight)

    @property
    def dim(self) -> int:
        if self.heads is None:
            return self.backbone.feature_dim
        if self.probability_weight:
            return self.backbone.feature_dim + sum(len(t.classes) for t in self.heads.tasks)
        return sum(t.hidden or self.backbone.feature_dim for t in self.heads.tasks)

    def backbone_features(self, embeddings: np.ndarray) -> np.ndarray | None:
        """The unit-length backbone features inside these embeddings (they lead the vector unless the embedding
        is an MLP's hidden layer, then None): what near-duplicate thresholds were calibrated on."""
        if self.heads is not None and not self.probability_weight:
            return None
        return l2_normalize(embeddings[:, :self.backbone.feature_dim])

    def from_features(self, features: np.ndarray) -> np.ndarray:
        if self.heads is None:
            return l2_normalize(features)
        if self.probability_weight:
            parts = [l2_normalize(features)] + [self.probability_weight * l2_normalize(p)
                                                for p in self.heads.probabilities(features).values()]
            return l2_normalize(np.hstack(parts))
        return l2_normalize(self.heads.hidden(features))


def default_embedder() -> Embedder:
    """The shipped garment classifier's embedding (backbone features + its category probabilities)."""
    return Embedder.from_model(load_model(default_classifier_dir()))


def embed_paths(paths: list[Path], embedder: Embedder | BackboneSpec | str = DEFAULT_BACKBONE, *, use_cache: bool = True,
                progress: bool = True) -> Embeddings:
    """Embeddings of every readable image; unreadable ones are listed in `failures`."""
    if not isinstance(embedder, Embedder):
        embedder = Embedder.from_backbone(embedder)
    feats = extract_features(embedder.backbone, [Path(p) for p in paths], use_cache=use_cache, progress=progress)
    return Embeddings(embedder.from_features(feats.vectors), feats.indices, feats.sha256, feats.phash, feats.failures)


def embedder_named(spec: str) -> Embedder:
    """'default' (`default_embedder`), 'backbone' (the default backbone's features) or a classifier folder."""
    if spec == "default":
        return default_embedder()
    if spec == "backbone":
        return Embedder.from_backbone()
    return Embedder.from_model(load_model(Path(spec)))
