"""Detector model folders: the whole network in `weights.safetensors`, its config in `manifest.json`."""

from __future__ import annotations

from fashionlens.detect.config import DetectorConfig
from fashionlens.model_folder import LoadedNetwork, NetworkFormat
from fashionlens.model_kinds import KINDS

DETECTOR = NetworkFormat(KINDS["detector"].format, 1, "detector", DetectorConfig.from_dict, "fashionlens.detect.model:build_detector")
FORMAT = DETECTOR.name
LoadedDetector = LoadedNetwork
save_detector = DETECTOR.save
load_detector = DETECTOR.load
