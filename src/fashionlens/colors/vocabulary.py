"""The words colours are named with: 12 families a shopper filters by, and a fashion vocabulary of fine names,
each in exactly one family. The fine names are xkcd colour-survey names (public domain); their reference shades
are the survey's own, from matplotlib's XKCD_COLORS."""

from __future__ import annotations

import re

COLOR_FAMILIES: tuple[str, ...] = (
    "black", "white", "grey", "red", "orange", "yellow", "green", "blue", "purple", "pink", "brown", "beige")

FINE_COLORS: dict[str, tuple[str, str]] = {
    # fine name -> (family, the xkcd survey colour it is named after)
    "black": ("black", "black"),
    "white": ("white", "white"), "ivory": ("white", "off white"),
    "charcoal": ("grey", "charcoal"), "grey": ("grey", "grey"), "light grey": ("grey", "light grey"),
    "silver": ("grey", "silver"),
    "red": ("red", "red"), "crimson": ("red", "crimson"), "burgundy": ("red", "burgundy"), "wine": ("red", "wine"),
    "orange": ("orange", "orange"), "rust": ("orange", "rust"), "coral": ("orange", "coral"),
    "peach": ("orange", "peach"),
    "yellow": ("yellow", "yellow"), "mustard": ("yellow", "mustard"), "gold": ("yellow", "gold"),
    "pale yellow": ("yellow", "pale yellow"),
    "green": ("green", "green"), "olive": ("green", "olive"), "khaki green": ("green", "khaki green"),
    "forest green": ("green", "forest green"), "emerald": ("green", "emerald"), "mint": ("green", "mint"),
    "lime": ("green", "lime"), "sage": ("green", "sage"),
    "blue": ("blue", "blue"), "navy": ("blue", "navy"), "royal blue": ("blue", "royal blue"),
    "denim": ("blue", "denim"), "sky blue": ("blue", "sky blue"), "light blue": ("blue", "light blue"),
    "teal": ("blue", "teal"), "turquoise": ("blue", "turquoise"), "slate blue": ("blue", "slate blue"),
    "purple": ("purple", "purple"), "plum": ("purple", "plum"), "violet": ("purple", "violet"),
    "lavender": ("purple", "lavender"), "lilac": ("purple", "lilac"), "mauve": ("purple", "mauve"),
    "pink": ("pink", "pink"), "hot pink": ("pink", "hot pink"), "fuchsia": ("pink", "fuchsia"),
    "pale pink": ("pink", "pale pink"), "dusty rose": ("pink", "dusty rose"), "salmon": ("pink", "salmon"),
    "brown": ("brown", "brown"), "chocolate": ("brown", "chocolate"), "tan": ("brown", "tan"),
    "camel": ("brown", "camel"), "taupe": ("brown", "taupe"),
    "beige": ("beige", "beige"), "cream": ("beige", "cream"), "khaki": ("beige", "khaki"), "sand": ("beige", "sand"),
}
COLOR_NAMES: tuple[str, ...] = tuple(FINE_COLORS)

LEGACY_NAMES: dict[str, str] = {"neon": "green"}
"""The one name of the earlier fixed palette that is no longer a fine name, so an item stored with it still
filters by family (every other old name is a fine name now)."""

# The xkcd survey's colour words -> family; a survey name belongs to the family of its last word found here
# ("dark navy blue" -> blue, "burnt sienna" -> brown). Names with none ("pale", "dust") are left out.
_SURVEY_WORDS: dict[str, tuple[str, ...]] = {
    "black": ("black",),
    "white": ("white", "ivory", "eggshell", "egg", "shell"),
    "grey": ("grey", "gray", "charcoal", "gunmetal", "silver", "steel", "slate", "cement", "greyish", "stone"),
    "red": ("red", "maroon", "burgundy", "wine", "crimson", "scarlet", "cherry", "blood", "brick", "claret",
            "merlot", "bordeaux", "carmine", "ruby", "cranberry", "vermillion", "tomato", "rouge", "reddish",
            "lipstick", "strawberry", "orangered"),
    "orange": ("orange", "rust", "coral", "peach", "apricot", "tangerine", "pumpkin", "mango", "melon",
               "terracotta", "terracota", "cotta", "squash", "orangish", "orangeish", "grapefruit", "adobe"),
    "yellow": ("yellow", "mustard", "gold", "golden", "lemon", "canary", "butter", "sunflower", "dandelion",
               "maize", "banana", "marigold", "saffron", "goldenrod", "custard", "cheese", "ochre", "ocher",
               "ocre", "amber", "yellowish", "straw"),
    "green": ("green", "olive", "lime", "mint", "sage", "seafoam", "aquamarine", "jade", "emerald", "chartreuse",
              "moss", "fern", "pine", "forest", "grass", "leaf", "kiwi", "pistachio", "avocado", "pea", "apple",
              "celadon", "celery", "spearmint", "wintergreen", "shamrock", "viridian", "evergreen", "spruce",
              "asparagus", "algae", "lichen", "seaweed", "swamp", "camo", "darkgreen", "lightgreen",
              "greenish", "pear", "yellowgreen", "green/yellow", "yellow/green", "drab"),
    "blue": ("blue", "navy", "teal", "turquoise", "aqua", "cyan", "azure", "cerulean", "cobalt", "sapphire",
             "denim", "sky", "ocean", "sea", "marine", "petrol", "ultramarine", "cornflower", "periwinkle",
             "perrywinkle", "midnight", "darkblue", "lightblue", "azul", "bluish", "greyblue", "bluegrey",
             "blue/grey", "grey/blue", "greenblue", "bluegreen", "blue/green", "green/blue", "tealish", "topaz",
             "twilight", "ice", "blueberry", "royal"),
    "purple": ("purple", "violet", "lavender", "lavendar", "lilac", "liliac", "plum", "indigo", "eggplant",
               "aubergine", "grape", "amethyst", "orchid", "wisteria", "heliotrope", "iris", "mauve", "purpley",
               "purplish", "purpleish", "purply", "urple", "burple", "blurple", "blue/purple", "purple/blue",
               "bruise", "barney", "heather", "mulberry", "puce"),
    "pink": ("pink", "salmon", "rose", "fuchsia", "magenta", "blush", "bubblegum", "carnation", "cerise", "raspberry",
             "watermelon", "pinkish", "pinky", "rosa", "berry", "purple/pink", "pink/purple"),
    "brown": ("brown", "tan", "camel", "chocolate", "coffee", "mocha", "cocoa", "caramel", "chestnut", "mahogany",
              "umber", "sienna", "siena", "sepia", "russet", "auburn", "copper", "bronze", "cinnamon", "hazel",
              "leather", "mud", "dirt", "earth", "clay", "taupe", "toupe", "mushroom", "brownish", "poo", "poop",
              "butterscotch", "fawn"),
    "beige": ("beige", "cream", "creme", "khaki", "sand", "sandy", "sandstone", "wheat", "buff", "parchment",
              "ecru", "putty", "desert", "manilla", "bland"),
}
_WORD_FAMILY = {word: family for family, words in _SURVEY_WORDS.items() for word in words}


def survey_family(name: str) -> str | None:
    """The family of an xkcd survey colour name, from its last colour word; None where it has none."""
    for word in reversed(re.split(r"[\s-]+", name.lower())):
        if word in _WORD_FAMILY:
            return _WORD_FAMILY[word]
    return None


def family_of(word: str) -> str | None:
    """The family of a colour word a user or a stored item gives (a family, a fine name, an earlier palette
    name), case-insensitive; None for a word that is not a colour here."""
    word = " ".join(word.strip().lower().split())
    if word in COLOR_FAMILIES:
        return word
    if word in FINE_COLORS:
        return FINE_COLORS[word][0]
    return LEGACY_NAMES.get(word)


def color_words(color: dict) -> set[str]:
    """The words a stored colour ({"name", "family"?}) is filtered by: its fine name and its family."""
    name = str(color["name"]).strip().lower()
    family = color.get("family") or family_of(name)
    return {name, family} if family else {name}


def filter_terms(word: str) -> set[str]:
    """The stored colour words a `color=` filter word matches: a family matches itself and every fine name in it
    (so a catalogue stored before families were, holding only names such as navy, still answers color=blue); a
    fine name matches only itself."""
    word = " ".join(word.strip().lower().split())
    if word not in COLOR_FAMILIES:
        return {word}
    names = {n for n, (f, _) in FINE_COLORS.items() if f == word} | {n for n, f in LEGACY_NAMES.items() if f == word}
    return {word} | names
