"""INT8 static quantisation of an ONNX graph with ONNX Runtime's own tool (QDQ, per-channel weights), calibrated on
preprocessed photos. Making a quantised graph needs the `train` extra (the `onnx` package); running one needs only
ONNX Runtime."""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from fashionlens.atomic import atomic_path


class _Batches:
    """ONNX Runtime's calibration reader: one {"image": batch} feed at a time."""

    def __init__(self, batches: Iterable[np.ndarray]):
        self._batches = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {"image": np.ascontiguousarray(batch, dtype=np.float32)}


def quantize_graph(fp32: str | Path, out: str | Path, calibration: Iterable[np.ndarray],
                   op_types: list[str] | None = None) -> Path:
    """Write `fp32` quantised to INT8 (weights per channel, activations unsigned, ranges by min-max over the
    `calibration` batches: preprocessed images as the model sees them) to `out`. `op_types`: only these (None:
    every op ONNX Runtime can quantise; ["Conv"] leaves shape arithmetic such as a detector head's exact)."""
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = Path(out)
    with tempfile.TemporaryDirectory() as tmp, atomic_path(out) as target:
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        quantize_static(str(prepared), str(target), _Batches(calibration), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=CalibrationMethod.MinMax, op_types_to_quantize=op_types)
    return out
