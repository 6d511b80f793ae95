"""Run a module or script as the base install would: PyTorch, torchvision, timm, scipy and the other extras'
packages cannot be imported. `python benchmarks/without_torch.py -m fashionlens analyze photo.jpg --json`."""

import importlib.abc
import runpy
import sys

BLOCKED = {"torch", "torchvision", "timm", "tensorboard", "onnxscript", "onnx", "cleanlab", "pandas", "ray", "sklearn",
           "matplotlib", "scipy", "imagehash"}


class BlockExtras(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named '{name}' (not in the base install)", name=name)
        return None


if __name__ == "__main__":
    sys.meta_path.insert(0, BlockExtras())
    if sys.argv[1] == "-m":
        sys.argv = [sys.argv[2], *sys.argv[3:]]
        runpy.run_module(sys.argv[0], run_name="__main__", alter_sys=True)
    else:
        sys.argv = sys.argv[1:]
        runpy.run_path(sys.argv[0], run_name="__main__")
