"""Model folders: `weights.safetensors` plus `manifest.json`. Nothing is ever unpickled.

A model trained on a frozen backbone stores only its heads (a few hundred KB) and names the backbone
weights by hash; loading rebuilds the backbone from the registry and refuses a different one.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from pathlib import Path

import numpy as np
from safetensors.numpy import load_file as load_numpy

from fashionlens.atomic import atomic_path
from fashionlens.backbone_spec import BackboneSpec
from fashionlens.classify.head_weights import HeadWeights
from fashionlens.classify.tasks import TaskSpec
from fashionlens.extras import require
from fashionlens.fingerprints import sha256_file
from fashionlens.model_folder import (EXPORT_FILE, MANIFEST_FILE, WEIGHTS_FILE, ModelError, checked_weights,
                                      library_versions, write_json_atomic)
from fashionlens.model_folder import read_manifest as _read_manifest
from fashionlens.model_kinds import KINDS
from fashionlens.preprocess import PreprocessConfig

if TYPE_CHECKING:
    from fashionlens.classify.model import Classifier

FORMAT = KINDS["classifier"].format
FORMAT_VERSION = 1


@dataclass
class LoadedModel:
    """A classifier folder, loaded for inference without PyTorch: the backbone it sits on (run from its ONNX graph),
    its heads in numpy, its manifest. `classifier` builds the PyTorch network, for training, export and the "torch"
    reference runtime (the `train` extra)."""

    folder: Path
    manifest: dict
    backbone_info: BackboneSpec
    heads: HeadWeights
    tta: bool  # predictions average each image with its mirror by default
    _classifier: object = None

    @property
    def tasks(self) -> list[TaskSpec]:
        return self.heads.tasks

    @property
    def preprocess(self) -> PreprocessConfig:
        return PreprocessConfig.from_dict(self.manifest["preprocess"])

    @property
    def backbone_trained(self) -> bool:
        return bool(self.manifest["backbone"]["stored"])

    @property
    def weights_sha256(self) -> str:
        return self.manifest["weights"]["sha256"]

    def probabilities_from(self, features: np.ndarray, mirror_features: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Softmax per task from backbone features computed elsewhere (one backbone pass serves every model on it)."""
        return self.heads.probabilities(features, mirror_features)

    @property
    def classifier(self):
        """The PyTorch classifier (built on first use; needs the `train` extra)."""
        if self._classifier is None:
            require("train", "the PyTorch classifier (training, export, the torch runtime)")
            self._classifier = _torch_classifier(self.folder, self.manifest, self.tta)
        return self._classifier


def save_model(classifier, folder: str | Path, *, store_backbone: bool, info: dict | None = None) -> Path:
    """Write the weights, then the manifest that names their hash; a crash leaves the old model intact. Then the
    backbone's ONNX graph, so the folder runs where PyTorch is not installed."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {f"heads.{k}": v for k, v in classifier.heads.state_dict().items()}
    if store_backbone:
        state |= {f"backbone.{k}": v for k, v in classifier.backbone.state_dict().items()}
    state = {k: v.detach().contiguous().clone() for k, v in state.items()}
    with atomic_path(folder / WEIGHTS_FILE) as tmp:
        save_file(state, tmp, metadata={"format": FORMAT})
    backbone = classifier.backbone_info
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "backbone": {
            "name": backbone.name,
            "weights_id": backbone.weights_id,
            "feature_dim": backbone.feature_dim,
            "pool_stages": list(backbone.pool_stages),
            "colour_bins": backbone.colour_bins,
            "colour_space": backbone.colour_space,
            "colour_sqrt": backbone.colour_sqrt,
            "stored": store_backbone,
        },
        "preprocess": backbone.preprocess.to_dict(),
        "tasks": [t.to_dict() for t in classifier.tasks],
        "inference": {"tta": "flip" if classifier.tta else "none"},
        "weights": {"file": WEIGHTS_FILE, "sha256": sha256_file(folder / WEIGHTS_FILE)},
        **(info or {}),
        "versions": library_versions(),
    }
    manifest["onnx"] = _write_backbone_onnx(classifier, folder, manifest)
    write_json_atomic(folder / MANIFEST_FILE, manifest)
    (folder / EXPORT_FILE).unlink(missing_ok=True)  # an export of older weights is stale
    return folder


def _write_backbone_onnx(classifier: Classifier, folder: Path, manifest: dict) -> dict:
    """The backbone's ONNX graph in the folder, named by its feature key (older graphs removed), and its parity
    with PyTorch on random images."""
    from fashionlens.cache import default_cache_dir
    from fashionlens.runtime import export_onnx, onnx_parity

    spec = BackboneSpec.from_manifest(manifest["backbone"], manifest["preprocess"])
    if manifest["backbone"]["stored"]:
        spec.weights_id = f"model:{manifest['weights']['sha256']}"
    path = folder / spec.onnx_name
    cached = default_cache_dir() / "onnx" / spec.onnx_name
    with atomic_path(path) as tmp:
        if cached.is_file() and not manifest["backbone"]["stored"]:
            shutil.copyfile(cached, tmp)
        else:
            export_onnx(classifier.backbone, spec.preprocess.input_size, tmp, ["features"])
    for stale in folder.glob(f"{spec.name}-*.onnx"):
        if stale != path:
            stale.unlink()
    parity = onnx_parity(classifier.backbone, path, spec.preprocess.input_size, ["features"])
    return {"backbone": path.name, "sha256": sha256_file(path), "parity_max_abs": parity}


def read_manifest(folder: str | Path) -> dict:
    return _read_manifest(folder, FORMAT, FORMAT_VERSION, ("backbone", "preprocess", "tasks", "weights"))


def load_model(folder: str | Path) -> LoadedModel:
    """Load and check everything the manifest promises (weight hash, tensor shapes), without PyTorch."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    weights_path = checked_weights(folder, manifest)
    info = manifest["backbone"]
    tta = manifest.get("inference", {}).get("tta", "none")  # models saved before test-time flips: none
    if tta not in ("none", "flip"):
        raise ModelError(f"{folder}: unknown test-time augmentation {tta!r} (this version knows none, flip)")
    try:
        backbone = BackboneSpec.from_manifest(info, manifest["preprocess"])
        tasks = [TaskSpec.from_dict(t) for t in manifest["tasks"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{folder / MANIFEST_FILE}: cannot read the backbone and tasks ({exc})") from None
    # a fine-tuned backbone gets an id of its own, so cached ImageNet features are never mixed in
    if info["stored"]:
        backbone.weights_id = f"model:{manifest['weights']['sha256']}"
        backbone.network_for_export = lambda: _torch_classifier(folder, manifest, tta == "flip").backbone
    backbone.onnx_file = folder / backbone.onnx_name
    state = load_numpy(weights_path)
    try:
        heads = HeadWeights.from_state(tasks, state)
    except KeyError as exc:
        raise ModelError(f"{weights_path}: no tensor {exc} for the manifest's tasks") from None
    for task in tasks:
        weight = heads.layers[task.name][-1][0]
        first = heads.layers[task.name][0][0]
        if weight.shape[0] != len(task.classes) or first.shape[1] != backbone.feature_dim:
            raise ModelError(f"{weights_path}: tensors do not fit the manifest's task {task.name!r} and backbone "
                             f"(output {weight.shape[0]} for {len(task.classes)} classes, input {first.shape[1]} for "
                             f"{backbone.feature_dim} features)")
    return LoadedModel(folder, manifest, backbone, heads, tta == "flip")


def _torch_classifier(folder: Path, manifest: dict, tta: bool) -> Classifier:
    """The PyTorch classifier of a loaded folder: the registry backbone (refused unless its weights are the ones
    the model was trained on), or the stored fine-tuned one, and the heads."""
    from safetensors.torch import load_file

    from fashionlens.backbones import BackboneError, create_backbone
    from fashionlens.classify.model import Classifier, Heads

    info = manifest["backbone"]
    try:
        backbone = create_backbone(info["name"], pretrained=not info["stored"],
                                   pool_stages=tuple(info.get("pool_stages", ())),
                                   colour_bins=int(info.get("colour_bins", 0)),
                                   colour_space=info.get("colour_space", "rgb"),
                                   colour_sqrt=bool(info.get("colour_sqrt", False)),
                                   resize=manifest["preprocess"].get("resize", "crop"))
    except BackboneError as exc:
        raise ModelError(f"{folder}: cannot build backbone {info['name']!r}: {exc}") from None
    if not info["stored"] and backbone.weights_id != info["weights_id"]:
        raise ModelError(
            f"{folder}: trained on backbone weights {info['weights_id']}, but {info['name']!r} here has "
            f"{backbone.weights_id}; install the same weights package version"
        )
    backbone.weights_id = f"model:{manifest['weights']['sha256']}" if info["stored"] else info["weights_id"]
    backbone.preprocess = PreprocessConfig.from_dict(manifest["preprocess"])
    tasks = [TaskSpec.from_dict(t) for t in manifest["tasks"]]
    weights_path = folder / manifest["weights"]["file"]
    state = load_file(weights_path)
    heads = Heads(backbone.feature_dim, tasks, standardize="heads.shift" in state)
    try:
        heads.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("heads.")})
        if info["stored"]:
            backbone.model.load_state_dict({k[9:]: v for k, v in state.items() if k.startswith("backbone.")})
    except RuntimeError as exc:
        raise ModelError(f"{weights_path}: tensors do not fit the manifest's tasks and backbone: {exc}") from None
    return Classifier(backbone, heads, tta=tta).eval()
