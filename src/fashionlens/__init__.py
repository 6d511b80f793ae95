"""fashionlens: fashion and product photos in, structured catalogue data out.

Names are imported on first use, so `import fashionlens.fetch` or `fashionlens --help` does not load torch.
"""

from importlib import import_module

__version__ = "0.1.0"

_EXPORTS = {"Backbone": "backbones", "create_backbone": "backbones", "list_backbones": "backbones",
            "register_backbone": "backbones", "ImageError": "images", "load_image": "images"}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'fashionlens' has no attribute {name!r}")
    return getattr(import_module(f"fashionlens.{_EXPORTS[name]}"), name)
