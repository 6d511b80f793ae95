"""Garment parsing: a class per pixel (garment kinds, skin, hair, background) from street photos."""

from fashionlens.parse.dataset import MaskDataset, read_masks
from fashionlens.parse.inference import ParsedImage, Parser
from fashionlens.parse.model import ParserConfig
from fashionlens.parse.train import ParserTrainConfig, train_parser

__all__ = ["MaskDataset", "ParsedImage", "Parser", "ParserConfig", "ParserTrainConfig", "read_masks", "train_parser"]
