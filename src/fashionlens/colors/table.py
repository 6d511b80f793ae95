"""The naming table: every RGB cell (6 bits per channel) -> a fine colour name, learned from how people name colours.

Two sets of named examples vote, in CIELAB: the xkcd colour survey (949 colours named by the crowd on screens;
each belongs to the family of its colour word) and fashion-products (the dominant shade of each catalogue photo
with the shop's own `baseColour`; it teaches how fabric photographs: a black T-shirt is L* 20-35, not 0). A cell
takes the family with the most weight among its nearest examples, then the fine name of that family whose survey
shade is nearest. Shaded black carries a blue tint from skylight, so dark near-neutral cells are black outright,
and light near-neutral ones white (a white shirt in shade measures grey).
The table is built by `benchmarks/colors_learn.py` and shipped (`names.npz`): naming a garment is a lookup.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fashionlens.colors.vocabulary import COLOR_FAMILIES, COLOR_NAMES, FINE_COLORS, survey_family

LUT_BITS = 6
"""6 bits per channel: 262,144 cells, each spanning 4 levels of a channel, below what changes a colour's name."""
TABLE_PATH = Path(__file__).with_name("names.npz")


@dataclass(frozen=True)
class TableParams:
    """Chosen on the street tuning labels and fashion-products validation rows (benchmarks/colors_*.py)."""

    neighbours: int = 24  # examples that vote for each cell
    lightness_weight: float = 0.5  # L* counts half: shading moves lightness across one fabric, not its colour
    survey_weight: float = 1.0  # one survey colour's vote against one product photo's
    dark_lightness: float = 25.0  # below this L* ...
    dark_chroma: float = 8.0  # ... and this chroma a cell is black (shaded black is not navy)
    light_lightness: float = 70.0  # above this L* ...
    light_chroma: float = 6.0  # ... and below this chroma a cell is white (white in shade is not grey or pale blue)
    family_priors: tuple[float, ...] = (1.0,) * 12  # each family's votes are multiplied by this (COLOR_FAMILIES order)


def _priors(**by_family: float) -> tuple[float, ...]:
    return tuple(by_family.get(f, 1.0) for f in COLOR_FAMILIES)


SCENE_PARAMS = TableParams(dark_chroma=11.0,
                           family_priors=_priors(black=2.0, white=1.5, grey=2.0, red=0.7, blue=0.5, purple=0.7,
                                                 brown=0.7))
"""The table for garments in a scene (street photos, boxes and parser masks): family priors and near-neutral
rules chosen by coordinate search on the 182 street tuning garments the pipeline finds
(benchmarks/colors_street.py), keeping plain mid greys grey. Shade and skylight tint dark clothes blue or purple
and white ones blue, so the neutrals need more of the examples' votes there. The same search on one half of the
photos gained 0 to 3 points on the other half (two random halves, both ways): expect less than the tuning gain."""
PRODUCT_PARAMS = TableParams()
"""The table for studio product photos (a backdrop found): no priors. The same search on fashion-products
validation rows reached 0.702 there (from 0.682) but did not carry over: tuned on one half of the rows, the other
half moved -1.4 to +0.2 points (two random halves, both ways); the labels are too noisy for it."""


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """sRGB (0..255, any leading shape, last axis 3) to CIELAB under D65."""
    c = np.asarray(rgb, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    m = np.array([[0.4124564, 0.3575761, 0.1804375],
                  [0.2126729, 0.7151522, 0.0721750],
                  [0.0193339, 0.1191920, 0.9503041]])
    xyz = linear @ m.T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    return np.stack([116 * f[..., 1] - 16, 500 * (f[..., 0] - f[..., 1]), 200 * (f[..., 1] - f[..., 2])], axis=-1)


def hex_to_rgb(code: str) -> tuple[int, int, int]:
    return tuple(int(code[i:i + 2], 16) for i in (1, 3, 5))


def survey_examples() -> tuple[np.ndarray, np.ndarray]:
    """(Lab rows, family index) of the xkcd survey colours whose name has a colour word."""
    from matplotlib.colors import XKCD_COLORS

    named = [(hex_to_rgb(code), survey_family(name[5:])) for name, code in XKCD_COLORS.items()]
    named = [(rgb, COLOR_FAMILIES.index(f)) for rgb, f in named if f is not None]
    return srgb_to_lab(np.array([rgb for rgb, _ in named])), np.array([f for _, f in named])


def cell_centres() -> np.ndarray:
    """The sRGB centre of every cell, in cell order."""
    step = 1 << (8 - LUT_BITS)
    levels = np.arange(0, 256, step) + step // 2
    return np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), axis=-1).reshape(-1, 3)


def rgb_cells(rgb: np.ndarray) -> np.ndarray:
    """Each uint8 RGB pixel's cell."""
    q = (rgb >> (8 - LUT_BITS)).astype(np.int32)
    return (q[..., 0] << (2 * LUT_BITS)) | (q[..., 1] << LUT_BITS) | q[..., 2]


def cell_votes(product_lab: np.ndarray, product_family: np.ndarray, params: TableParams = TableParams()) -> np.ndarray:
    """Each cell's votes for each family (cells x COLOR_FAMILIES) from its nearest named examples."""
    from scipy.spatial import cKDTree  # the train extra, as matplotlib below: building the table is offline work

    survey_lab, survey_family_index = survey_examples()
    lab = np.concatenate([survey_lab, product_lab])
    family = np.concatenate([survey_family_index, product_family])
    weight = np.concatenate([np.full(len(survey_lab), params.survey_weight), np.ones(len(product_lab))])
    scale = np.array([params.lightness_weight, 1.0, 1.0])
    cells = srgb_to_lab(cell_centres())
    distance, nearest = cKDTree(lab * scale).query(cells * scale, k=params.neighbours)
    votes = np.zeros((len(cells), len(COLOR_FAMILIES)))
    for j in range(params.neighbours):
        np.add.at(votes, (np.arange(len(cells)), family[nearest[:, j]]), weight[nearest[:, j]] / (1 + distance[:, j]))
    return votes


def table_from_votes(votes: np.ndarray, params: TableParams = TableParams()) -> np.ndarray:
    """Fine-name index of every cell: the family with the most (prior-weighted) votes, the fixed dark and light
    near-neutral rules, then the family's nearest fine name."""
    cells = srgb_to_lab(cell_centres())
    scale = np.array([params.lightness_weight, 1.0, 1.0])
    cell_family = (votes * np.asarray(params.family_priors)).argmax(1)
    dark = (cells[:, 0] < params.dark_lightness) & (np.hypot(cells[:, 1], cells[:, 2]) < params.dark_chroma)
    cell_family[dark] = COLOR_FAMILIES.index("black")
    light = (cells[:, 0] > params.light_lightness) & (np.hypot(cells[:, 1], cells[:, 2]) < params.light_chroma)
    cell_family[light] = COLOR_FAMILIES.index("white")
    return fine_names(cells, cell_family, scale)


def fine_names(cells: np.ndarray, cell_family: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The fine name of each cell: its family's name whose survey shade is nearest."""
    from matplotlib.colors import XKCD_COLORS

    fine_lab = srgb_to_lab(np.array([hex_to_rgb(XKCD_COLORS["xkcd:" + ref]) for _, ref in FINE_COLORS.values()]))
    fine_family = np.array([COLOR_FAMILIES.index(f) for f, _ in FINE_COLORS.values()])
    result = np.zeros(len(cells), dtype=np.uint8)
    for f in range(len(COLOR_FAMILIES)):
        members = np.flatnonzero(fine_family == f)
        rows = cell_family == f
        d = (((cells[rows, None, :] - fine_lab[None, members, :]) * scale) ** 2).sum(-1)
        result[rows] = members[d.argmin(1)]
    return result


def save_table(table: np.ndarray, product: np.ndarray, path: Path = TABLE_PATH) -> None:
    np.savez_compressed(path, fine=table.astype(np.uint8), product=product.astype(np.uint8),
                        names=np.array(COLOR_NAMES))


@functools.cache
def name_table(product: bool = False) -> np.ndarray:
    """The shipped table (fine-name index per cell) for a garment in a scene, or with `product` for a studio
    product photo; it must name exactly the current vocabulary."""
    with np.load(TABLE_PATH) as data:
        if tuple(data["names"]) != COLOR_NAMES or "product" not in data:
            raise RuntimeError(f"{TABLE_PATH} was built for another colour vocabulary: rebuild it with "
                               "benchmarks/colors_learn.py")
        return data["product" if product else "fine"]


@functools.cache
def name_families() -> np.ndarray:
    """Family index of every fine name (COLOR_NAMES order)."""
    return np.array([COLOR_FAMILIES.index(FINE_COLORS[n][0]) for n in COLOR_NAMES], dtype=np.uint8)
