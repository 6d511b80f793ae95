"""Parser model folders: the whole network in `weights.safetensors`; its classes, the source names merged into
each, and the preprocessing in `manifest.json`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fashionlens.backbones import Backbone
from fashionlens.model_folder import letterbox_preprocess, letterbox_sections, load_network, save_network
from fashionlens.parse.model import GarmentParser, ParserConfig, build_parser
from fashionlens.preprocess import PreprocessConfig

FORMAT = "fashionlens-parser"
FORMAT_VERSION = 1


@dataclass
class LoadedParser:
    folder: Path
    model: GarmentParser
    config: ParserConfig
    preprocess: PreprocessConfig
    manifest: dict

    @property
    def weights_sha256(self) -> str:
        return self.manifest["weights"]["sha256"]


def save_parser(model: GarmentParser, config: ParserConfig, backbone: Backbone, folder: str | Path,
                info: dict | None = None) -> Path:
    return save_network(model.state_dict(), folder, FORMAT, FORMAT_VERSION,
                        {"parser": config.to_dict(), **letterbox_sections(backbone, config.input_size), **(info or {})})


def load_parser(folder: str | Path) -> LoadedParser:
    manifest, config, model = load_network(folder, FORMAT, FORMAT_VERSION, "parser", ParserConfig.from_dict,
                                           build_parser)
    return LoadedParser(Path(folder), model, config, letterbox_preprocess(manifest), manifest)
