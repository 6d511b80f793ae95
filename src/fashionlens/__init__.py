"""fashionlens: fashion and product photos in, structured catalogue data out."""

from fashionlens.backbones import Backbone, create_backbone, list_backbones, register_backbone
from fashionlens.images import ImageError, load_image

__version__ = "0.1.0"

__all__ = ["Backbone", "ImageError", "create_backbone", "list_backbones", "load_image", "register_backbone"]
