"""A classifier's heads in numpy, read from its safetensors file: what the runtime needs of a trained model (the
PyTorch `Heads` are for training). Tested equal to them."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fashionlens.classify.tasks import TaskSpec, flip_average

_ERF = np.frompyfunc(math.erf, 1, 1)


def erf(x: np.ndarray) -> np.ndarray:
    """The error function elementwise, float64, by the C library's erf (within two ulps of scipy's; numpy has
    none, and an approximation would move the float32 outputs)."""
    return _ERF(np.asarray(x, np.float64)).astype(np.float64)


def gelu(x: np.ndarray) -> np.ndarray:
    return 0.5 * x * (1.0 + erf(x / np.sqrt(2.0)))


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """scipy.special.softmax's own steps: shifted by the maximum, exponentiated, divided by the sum."""
    shifted = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return shifted / np.sum(shifted, axis=axis, keepdims=True)


@dataclass
class HeadWeights:
    """Per task, one linear layer (W, b) or a hidden layer then the output layer; optional standardisation."""

    tasks: list[TaskSpec]
    layers: dict[str, list[tuple[np.ndarray, np.ndarray]]]  # task -> [(weight [out, in], bias [out])]
    shift: np.ndarray | None = None
    scale: np.ndarray | None = None

    @classmethod
    def from_state(cls, tasks: list[TaskSpec], state: dict[str, np.ndarray], prefix: str = "heads.") -> HeadWeights:
        """From the tensors `save_model` writes (`heads.by_task.<task>.<layer>.weight`, `heads.shift`, ...)."""
        layers = {}
        for task in tasks:
            base = f"{prefix}by_task.{task.name}"
            if f"{base}.1.weight" not in state:  # a name PyTorch's ModuleDict refuses ("type") got a trailing _
                base += "_"
            indices = (1, 4) if task.hidden else (1,)  # Dropout, Linear[, GELU, Dropout, Linear]
            layers[task.name] = [(state[f"{base}.{i}.weight"], state[f"{base}.{i}.bias"]) for i in indices]
        return cls(list(tasks), layers, state.get(f"{prefix}shift"), state.get(f"{prefix}scale"))

    def inputs(self, features: np.ndarray) -> np.ndarray:
        x = np.asarray(features, np.float32)
        return (x - self.shift) * self.scale if self.shift is not None else x

    def hidden(self, features: np.ndarray) -> np.ndarray:
        """Each task's penultimate activations side by side (the features themselves for a linear head)."""
        x = np.asarray(features, np.float32)
        inputs = self.inputs(x)
        parts = []
        for task in self.tasks:
            weight, bias = self.layers[task.name][0]
            parts.append(gelu(inputs @ weight.T + bias) if task.hidden else x)
        return np.concatenate(parts, axis=1)

    def logits(self, features: np.ndarray) -> dict[str, np.ndarray]:
        inputs = self.inputs(features)
        out = {}
        for task in self.tasks:
            x = inputs
            for j, (weight, bias) in enumerate(self.layers[task.name]):
                x = x @ weight.T + bias
                if j + 1 < len(self.layers[task.name]):
                    x = gelu(x)
            out[task.name] = x
        return out

    def probabilities(self, features: np.ndarray, mirror_features: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Softmax per task; with `mirror_features` (the mirrored images'), the mean of the two."""
        if mirror_features is not None:
            both = self.probabilities(np.concatenate([features, mirror_features]))
            return flip_average(both, len(features))
        return {k: softmax(v, axis=-1).astype(np.float32) for k, v in self.logits(features).items()}
