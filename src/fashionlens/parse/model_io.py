"""Parser model folders: the whole network in `weights.safetensors`; its classes, the source names merged into
each, and the preprocessing in `manifest.json`."""

from __future__ import annotations

from fashionlens.model_folder import LoadedNetwork, NetworkFormat
from fashionlens.model_kinds import KINDS
from fashionlens.parse.config import ParserConfig

PARSER = NetworkFormat(KINDS["parser"].format, 1, "parser", ParserConfig.from_dict, "fashionlens.parse.model:build_parser")
FORMAT = PARSER.name
LoadedParser = LoadedNetwork
save_parser = PARSER.save
load_parser = PARSER.load
