"""Model folders: `weights.safetensors` plus `manifest.json`. Nothing is ever unpickled.

A model trained on a frozen backbone stores only its heads (a few hundred KB) and names the backbone
weights by hash; loading rebuilds the backbone from the registry and refuses a different one.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from safetensors.torch import load_file, save_file

from fashionlens.atomic import atomic_path
from fashionlens.backbones import BackboneError, create_backbone
from fashionlens.fingerprints import sha256_file
from fashionlens.classify.model import Classifier, Heads, TaskSpec
from fashionlens.model_folder import (EXPORT_FILE, MANIFEST_FILE, WEIGHTS_FILE, ModelError, checked_weights,
                                      library_versions, write_json_atomic)
from fashionlens.model_folder import read_manifest as _read_manifest
from fashionlens.preprocess import PreprocessConfig

FORMAT = "fashionlens-classifier"
FORMAT_VERSION = 1


@dataclass
class LoadedModel:
    folder: Path
    classifier: Classifier
    manifest: dict

    @property
    def preprocess(self) -> PreprocessConfig:
        return PreprocessConfig.from_dict(self.manifest["preprocess"])

    @property
    def tta(self) -> bool:
        """Whether predictions average each image with its mirror by default."""
        return self.classifier.tta

    @property
    def backbone_trained(self) -> bool:
        return bool(self.manifest["backbone"]["stored"])

    @property
    def weights_sha256(self) -> str:
        return self.manifest["weights"]["sha256"]


def save_model(classifier: Classifier, folder: str | Path, *, store_backbone: bool, info: dict | None = None) -> Path:
    """Write the weights, then the manifest that names their hash; a crash leaves the old model intact."""
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
    write_json_atomic(folder / MANIFEST_FILE, manifest)
    (folder / EXPORT_FILE).unlink(missing_ok=True)  # an export of older weights is stale
    return folder


def read_manifest(folder: str | Path) -> dict:
    return _read_manifest(folder, FORMAT, FORMAT_VERSION, ("backbone", "preprocess", "tasks", "weights"))


def load_model(folder: str | Path) -> LoadedModel:
    """Load and check everything the manifest promises: weight hash, backbone identity, tensor shapes."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    weights_path = checked_weights(folder, manifest)
    actual = manifest["weights"]["sha256"]
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
    # a fine-tuned backbone gets an id of its own, so cached ImageNet features are never mixed in
    backbone.weights_id = f"model:{actual}" if info["stored"] else info["weights_id"]
    backbone.preprocess = PreprocessConfig.from_dict(manifest["preprocess"])
    tasks = [TaskSpec.from_dict(t) for t in manifest["tasks"]]
    state = load_file(weights_path)
    heads = Heads(backbone.feature_dim, tasks, standardize="heads.shift" in state)
    try:
        heads.load_state_dict({k[6:]: v for k, v in state.items() if k.startswith("heads.")})
        if info["stored"]:
            backbone.model.load_state_dict({k[9:]: v for k, v in state.items() if k.startswith("backbone.")})
    except RuntimeError as exc:
        raise ModelError(f"{weights_path}: tensors do not fit the manifest's tasks and backbone: {exc}") from None
    tta = manifest.get("inference", {}).get("tta", "none")  # models saved before test-time flips: none
    if tta not in ("none", "flip"):
        raise ModelError(f"{folder}: unknown test-time augmentation {tta!r} (this version knows none, flip)")
    classifier = Classifier(backbone, heads, tta=tta == "flip").eval()
    return LoadedModel(folder, classifier, manifest)
