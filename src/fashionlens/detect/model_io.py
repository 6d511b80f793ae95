"""Detector model folders: the whole network in `weights.safetensors`, its config in `manifest.json`."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from safetensors.torch import load_file, save_file
from torchvision.models.detection import FCOS

from fashionlens.atomic import atomic_path
from fashionlens.backbones import Backbone, BackboneError, create_backbone
from fashionlens.detect.model import DetectorConfig, build_detector
from fashionlens.fingerprints import sha256_file
from fashionlens.model_folder import (EXPORT_FILE, MANIFEST_FILE, WEIGHTS_FILE, ModelError, checked_weights,
                                      library_versions, read_manifest, write_json_atomic)
from fashionlens.preprocess import PreprocessConfig

FORMAT = "fashionlens-detector"
FORMAT_VERSION = 1


@dataclass
class LoadedDetector:
    folder: Path
    model: FCOS
    config: DetectorConfig
    preprocess: PreprocessConfig
    manifest: dict

    @property
    def weights_sha256(self) -> str:
        return self.manifest["weights"]["sha256"]


def save_detector(model: FCOS, config: DetectorConfig, backbone: Backbone, folder: str | Path, info: dict | None = None) -> Path:
    """Weights first, then the manifest naming their hash: a crash leaves the previous model whole."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    with atomic_path(folder / WEIGHTS_FILE) as tmp:
        save_file(state, tmp, metadata={"format": FORMAT})
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "detector": config.to_dict(),
        "backbone": {"name": backbone.name, "weights_id": backbone.weights_id},
        "preprocess": {"mean": list(backbone.preprocess.mean), "std": list(backbone.preprocess.std),
                       "input_size": list(config.input_size), "resize": "letterbox"},
        "weights": {"file": WEIGHTS_FILE, "sha256": sha256_file(folder / WEIGHTS_FILE)},
        **(info or {}),
        "versions": library_versions(),
    }
    write_json_atomic(folder / MANIFEST_FILE, manifest)
    (folder / EXPORT_FILE).unlink(missing_ok=True)
    return folder


def load_detector(folder: str | Path) -> LoadedDetector:
    """Rebuild the network from the manifest and load the weights it names; refuse anything that differs."""
    folder = Path(folder)
    manifest = read_manifest(folder, FORMAT, FORMAT_VERSION, ("detector", "backbone", "preprocess", "weights"))
    weights = checked_weights(folder, manifest)
    try:
        config = DetectorConfig.from_dict(manifest["detector"])
        backbone = create_backbone(config.backbone, pretrained=False)
    except (TypeError, KeyError, BackboneError) as exc:
        raise ModelError(f"{folder / MANIFEST_FILE}: cannot rebuild the detector ({exc})") from None
    model = build_detector(config, backbone)
    try:
        model.load_state_dict(load_file(weights))
    except RuntimeError as exc:
        raise ModelError(f"{weights}: tensors do not fit the manifest's detector: {exc}") from None
    pre = manifest["preprocess"]
    preprocess = PreprocessConfig(input_size=tuple(pre["input_size"]), crop_pct=1.0, interpolation="bilinear",
                                  mean=tuple(pre["mean"]), std=tuple(pre["std"]))
    return LoadedDetector(folder, model.eval(), config, preprocess, manifest)
