"""Optional installs: the base install runs the models on ONNX Runtime; training needs the `train` extra
(PyTorch, torchvision, timm, scikit-learn, matplotlib, scipy), scale-out `scale` (Ray), the audit `audit` (cleanlab,
pandas and the `train` extra's packages)."""

from __future__ import annotations

from importlib.util import find_spec

_TRAIN = ("torch", "torchvision", "timm", "tensorboard", "onnxscript", "onnx", "sklearn", "matplotlib", "scipy")
EXTRAS = {"train": _TRAIN, "scale": ("ray",), "audit": ("cleanlab", "pandas", *_TRAIN)}  # the audit trains heads


class MissingExtra(RuntimeError):
    """A feature needs an optional install that is not here; the message says which, in one line."""


def extra_of(module: str | None) -> str | None:
    """The extra that brings a top-level module, or None for a module no extra brings."""
    top = (module or "").split(".")[0]
    return next((extra for extra, modules in EXTRAS.items() if top in modules), None)


def installed(extra: str) -> bool:
    return all(_importable(module) for module in EXTRAS[extra])


def _importable(module: str) -> bool:
    try:
        return find_spec(module) is not None
    except ImportError:  # a finder that refuses the module (a broken or blocked install)
        return False


def require(extra: str, what: str) -> None:
    if not installed(extra):
        raise MissingExtra(f"{what} needs the {extra!r} extra: pip install 'fashionlens[{extra}]'")
