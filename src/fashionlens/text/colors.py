"""Colour words in a text query, as colour families, and how much of an item's stored colour matches them.

The text model's space carries little colour (the stored embedding is made for shape and type), but every item
keeps the colours the colour namer gave it at ingest. A query that names a colour re-ranks the index's candidates
by them, so this works for items stored before the text model existed too.
"""

from __future__ import annotations

from fashionlens.colors.vocabulary import family_of
from fashionlens.text.words import words_of

SHOP_COLORS: dict[str, str] = {
    # shop colour words that are neither a family nor a fine name -> family (fashion-products' baseColour values)
    "gray": "grey", "navy blue": "blue", "off white": "white", "grey melange": "grey", "steel": "grey",
    "maroon": "red", "magenta": "pink", "rose": "pink", "copper": "brown", "bronze": "brown", "skin": "beige",
    "nude": "beige", "turquoise": "blue", "turquoise blue": "blue", "sea green": "green", "lime green": "green",
    "fluorescent green": "green", "coffee brown": "brown", "mushroom brown": "brown",
}
LONGEST_PHRASE = 3  # words


def query_families(text: str) -> set[str]:
    """The colour families a text names: its longest colour phrases first ("navy blue", "off white"), each
    word counted once."""
    words, families, start = words_of(text), set(), 0
    while start < len(words):
        for size in range(min(LONGEST_PHRASE, len(words) - start), 0, -1):
            phrase = " ".join(words[start:start + size])
            family = family_of(phrase) or SHOP_COLORS.get(phrase)
            if family:
                families.add(family)
                start += size
                break
        else:
            start += 1
    return families


def color_match(colors: list[dict], families: set[str]) -> float:
    """The share of an item's named colours (their garment fractions) that fall in `families`, 0 to 1."""
    share = sum(float(c.get("fraction", 0.0)) for c in colors
                if (c.get("family") or family_of(str(c.get("name", "")))) in families)
    return min(share, 1.0)
