"""fashionlens: fashion and product photos in, structured catalogue data out.

Names are imported on first use, so `import fashionlens.fetch` or `fashionlens --help` does not load torch.
"""

from fashionlens.lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {"Backbone": "backbones", "create_backbone": "backbones", "list_backbones": "backbones",
            "register_backbone": "backbones", "ImageError": "images", "load_image": "images"}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)
