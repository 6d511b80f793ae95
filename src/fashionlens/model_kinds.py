"""The kinds of model folder, in one table: the manifest "format" that names each, the shipped models a caller
may name instead of a folder, and where its loader, ONNX exporter and runtime live. Those are named as
`module:attribute` and imported on use, so reading the table loads no model code (and no PyTorch)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from fashionlens.lazy import attribute
from fashionlens.model_folder import MANIFEST_FILE, ModelError, manifest_of


@dataclass(frozen=True)
class ModelKind:
    name: str  # what callers call it: "classifier", "detector", "parser"
    format: str  # the manifest's "format"
    shipped: dict[str, str]  # a name a caller may give instead of a folder -> the packaged folder's name
    loader: str  # folder -> the loaded model, checked, without PyTorch
    exporter: str  # (loaded model, ONNX file or None) -> the ONNX file written, its parity with PyTorch checked
    runtime: str  # the class that runs the loaded model

    def load(self, folder: str | Path):
        return attribute(self.loader)(folder)

    def export(self, folder: str | Path, onnx_file: str | Path | None = None) -> Path:
        return attribute(self.exporter)(self.load(folder), onnx_file)

    def runtime_class(self) -> type:
        return attribute(self.runtime)

    def shipped_folder(self, name: str = "default") -> Path:
        return Path(str(files("fashionlens") / "assets" / self.shipped[name]))


KINDS: dict[str, ModelKind] = {kind.name: kind for kind in (
    ModelKind("classifier", "fashionlens-classifier", {"default": "garment-classifier", "types": "garment-types"},
              "fashionlens.classify.model_io:load_model", "fashionlens.classify.export:export",
              "fashionlens.classify.inference:Predictor"),
    ModelKind("detector", "fashionlens-detector", {"default": "garment-detector"},
              "fashionlens.detect.model_io:load_detector", "fashionlens.detect.inference:export_detector",
              "fashionlens.detect.inference:Detector"),
    ModelKind("parser", "fashionlens-parser", {"default": "garment-parser"},
              "fashionlens.parse.model_io:load_parser", "fashionlens.parse.inference:export_parser",
              "fashionlens.parse.inference:Parser"),
)}


def kind_of(folder: str | Path) -> ModelKind:
    """The kind of model a folder holds, read from its manifest's "format"; a ModelError says why it is none."""
    fmt = manifest_of(folder).get("format")
    for kind in KINDS.values():
        if kind.format == fmt:
            return kind
    raise ModelError(f"{Path(folder) / MANIFEST_FILE}: format is {fmt!r}, not one of {', '.join(repr(k.format) for k in KINDS.values())}")
