"""Detector model folders: the whole network in `weights.safetensors`, its config in `manifest.json`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torchvision.models.detection import FCOS

from fashionlens.backbones import Backbone
from fashionlens.detect.model import DetectorConfig, build_detector
from fashionlens.model_folder import letterbox_preprocess, letterbox_sections, load_network, save_network
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
    return save_network(model.state_dict(), folder, FORMAT, FORMAT_VERSION,
                        {"detector": config.to_dict(), **letterbox_sections(backbone, config.input_size), **(info or {})})


def load_detector(folder: str | Path) -> LoadedDetector:
    """Rebuild the network from the manifest and load the weights it names; refuse anything that differs."""
    manifest, config, model = load_network(folder, FORMAT, FORMAT_VERSION, "detector", DetectorConfig.from_dict,
                                           build_detector)
    return LoadedDetector(Path(folder), model, config, letterbox_preprocess(manifest), manifest)
