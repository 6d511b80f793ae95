"""ONNX export and ONNX Runtime sessions: the fast path for every forward pass that does not train."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import onnxruntime as ort

from fashionlens.atomic import atomic_path


def export_onnx(module, input_size: tuple[int, int], path: str | Path, output_names: list[str], *,
                any_size: bool = False) -> Path:
    """Export with a dynamic batch axis (`any_size`: height and width too, for per-pixel outputs [batch, h, w]);
    written to a temporary file first so a crash leaves no half file."""
    import torch

    path = Path(path)
    module = module.eval()
    example = torch.zeros(1, 3, *input_size)
    spatial, out = ({2: "height", 3: "width"}, {1: "height", 2: "width"}) if any_size else ({}, {})
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            example,
            str(tmp),
            input_names=["image"],
            output_names=output_names,
            dynamic_axes={"image": {0: "batch", **spatial}, **{name: {0: "batch", **out} for name in output_names}},
            dynamo=False,
            opset_version=17,
        )
    return path


class OnnxRunner:
    """`threads`: the session's intra-op threads (default: ONNX Runtime's, one per core); a Ray actor gives the
    CPUs it holds, so actors sharing a machine do not fight over its cores."""

    def __init__(self, path: str | Path, threads: int | None = None):
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        # idle threads sleep instead of spinning: a spinning pool takes the cores from the decode workers and the
        # other request threads (ingest: 0.95x the bare backbone's throughput instead of 0.87x)
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.output_names = [o.name for o in self.session.get_outputs()]

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        outputs = self.session.run(None, {"image": np.ascontiguousarray(images, dtype=np.float32)})
        return dict(zip(self.output_names, outputs, strict=True))


def onnx_parity(module, onnx_file: str | Path, input_size: tuple[int, int], output_names: list[str],
                batch: int = 2, seed: int = 0) -> float:
    """Largest absolute difference between ONNX Runtime and PyTorch on the same random images, over the
    outputs (`module` returns them as a tuple in `output_names` order, or the one output)."""
    import torch

    images = torch.randn(batch, 3, *input_size, generator=torch.Generator().manual_seed(seed))
    with torch.inference_mode():
        reference = module.eval()(images)
    reference = reference if isinstance(reference, (tuple, list)) else (reference,)
    outputs = OnnxRunner(onnx_file)(images.numpy())
    return max(float(np.abs(outputs[name] - ref.numpy()).max()) for name, ref in zip(output_names, reference, strict=True))


def small_ops_on_one_thread() -> None:
    """Run PyTorch (where installed) and numpy's BLAS on one thread in this process, for good.

    Around ONNX Runtime (which keeps its own thread pool) the remaining work is small tensor ops (transforms,
    box decoding, heads, colour lookups) that two pools fighting over two cores make several times slower: one
    photo's analysis took 645 ms with the default threads and 143 ms with one, on a loaded machine. For
    processes that serve or analyse photos one by one; training keeps its threads.
    """
    from threadpoolctl import threadpool_limits

    torch = sys.modules.get("torch")  # only where something imported it: the runtime itself does not
    if torch is not None:
        torch.set_num_threads(1)
    threadpool_limits(1)
