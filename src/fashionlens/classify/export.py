"""`export`: the whole classifier as one ONNX graph (images in, probabilities per task out)."""

from __future__ import annotations

from pathlib import Path


from fashionlens.fingerprints import sha256_file
from fashionlens.classify.model import ProbabilityGraph
from fashionlens.classify.model_io import EXPORT_FILE, LoadedModel, load_model, write_json_atomic
from fashionlens.runtime import export_onnx, onnx_parity


def export(model: str | Path | LoadedModel, onnx_file: str | Path | None = None, *, check: bool = True) -> Path:
    """Write the ONNX file (default: inside the model folder) and record it, so `predict` uses it."""
    model = model if isinstance(model, LoadedModel) else load_model(model)
    path = Path(onnx_file) if onnx_file else model.folder / "model.onnx"
    tasks = [t.name for t in model.classifier.tasks]
    export_onnx(ProbabilityGraph(model.classifier), model.preprocess.input_size, path, tasks)
    if check:
        max_diff = parity(model, path)
        if max_diff > 1e-3:
            raise RuntimeError(f"{path}: ONNX output differs from PyTorch by {max_diff:.2e}")
    try:
        recorded = str(path.resolve().relative_to(model.folder.resolve()))
    except ValueError:
        recorded = str(path.resolve())
    write_json_atomic(model.folder / EXPORT_FILE, {
        "onnx": recorded,
        "onnx_sha256": sha256_file(path),
        "weights_sha256": model.weights_sha256,
    })
    return path


def parity(model: LoadedModel, onnx_file: Path, batch: int = 4, seed: int = 0) -> float:
    """Largest absolute difference in probabilities between ONNX Runtime and PyTorch on random inputs."""
    return onnx_parity(ProbabilityGraph(model.classifier), onnx_file, model.preprocess.input_size,
                       [t.name for t in model.classifier.tasks], batch, seed)
