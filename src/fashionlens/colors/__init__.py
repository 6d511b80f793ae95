"""Named colours of a garment, as people name them, with the share of the garment each covers.

Each pixel is named through a table learned from people's names for colours (`table`: the xkcd survey and shops'
own colour names; one table for garments in a scene, one for studio product photos), after the photo's colour cast is removed (`light`) and, on a product photo, the studio
backdrop is left out (`backdrop`). Pixels are grouped by family first (black, blue, ...): a navy jacket whose
pixels fall on navy, denim and slate blue is one blue garment, not three small shares that each lose to a
background. Each family is then called by its most common fine name.
"""

from fashionlens.lazy import lazy_exports

_EXPORTS = {"COLOR_FAMILIES": "vocabulary", "COLOR_NAMES": "vocabulary", "FINE_COLORS": "vocabulary",
            "family_of": "vocabulary", "WhiteBalance": "light", "estimate_balance": "light", "ColorShare": "naming",
            "named_colors": "naming", "whole_photo_colors": "naming",
            "garment_colors": "naming"}
__all__ = sorted(_EXPORTS)
__getattr__ = lazy_exports(__name__, _EXPORTS)  # `fashionlens --help` imports no OpenCV
