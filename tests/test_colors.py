"""Named colours on generated images: every palette name, boxes, white-backdrop removal, the CLI's JSON."""

from __future__ import annotations

import json

import pytest
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from fashionlens.cli import app
from fashionlens.colors import COLOR_NAMES, PALETTE, ColorShare, named_colors


@pytest.mark.parametrize("name", COLOR_NAMES)
def test_each_palette_colour_is_named(name):
    for rgb in PALETTE[name]:
        shares = named_colors(Image.new("RGB", (40, 30), rgb))
        assert [s.name for s in shares] == [name], rgb
        assert shares[0].fraction == 1.0 and shares[0].rgb == rgb


def test_proportions_and_order():
    image = Image.new("RGB", (100, 100), (200, 30, 40))  # red
    image.paste((25, 35, 70), (0, 0, 100, 30))  # navy band, 30%
    image.paste((240, 210, 40), (0, 30, 100, 40))  # yellow band, 10%
    shares = named_colors(image, top=5)
    assert [s.name for s in shares] == ["red", "navy", "yellow"]
    assert [round(s.fraction, 2) for s in shares] == [0.6, 0.3, 0.1]
    assert named_colors(image, top=1)[0] == ColorShare("red", shares[0].fraction, (200, 30, 40))
    assert ColorShare("red", 1.0, (200, 30, 40)).hex == "#c81e28"


def test_box_restricts_the_region():
    image = Image.new("RGB", (200, 100), (40, 140, 60))  # green left
    image.paste((40, 80, 180), (120, 0, 200, 100))  # blue right, 40%
    assert [s.name for s in named_colors(image)] == ["green", "blue"]
    assert [s.name for s in named_colors(image, box=(125.5, 10, 190, 90))] == ["blue"]
    assert [s.name for s in named_colors(image, box=(0, 0, 119, 100))] == ["green"]
    with pytest.raises(ValueError, match="x1 < x2"):
        named_colors(image, box=(50, 0, 10, 10))
    with pytest.raises(ValueError, match="outside"):
        named_colors(image, box=(300, 0, 400, 10))


def _product_photo(garment_rgb, background=(255, 255, 255)):
    """A garment shape on a studio backdrop, like a catalogue thumbnail (small garment, big backdrop)."""
    image = Image.new("RGB", (120, 160), background)
    draw = ImageDraw.Draw(image)
    draw.polygon([(40, 30), (80, 30), (95, 60), (85, 130), (35, 130), (25, 60)], fill=garment_rgb)
    return image


def test_white_backdrop_is_removed_for_product_photos():
    image = _product_photo((25, 35, 70))  # navy garment on white, ~30% of the frame
    auto = named_colors(image)
    assert auto[0].name == "navy" and auto[0].fraction > 0.95
    kept = named_colors(image, remove_background=False)
    assert kept[0].name == "white" and kept[0].fraction > 0.6


def test_white_inside_a_garment_is_kept_and_a_white_garment_survives():
    image = _product_photo((200, 30, 40))
    ImageDraw.Draw(image).rectangle((50, 70, 70, 110), fill=(255, 255, 255))  # a white print on the red shirt
    names = {s.name: s.fraction for s in named_colors(image)}
    assert set(names) == {"red", "white"} and 0.1 < names["white"] < 0.3
    # a white garment filling the frame: the border is white, but removing it would leave nothing
    assert named_colors(Image.new("RGB", (60, 80), (250, 250, 250)))[0].name == "white"


def test_coloured_backdrop_is_not_removed():
    image = _product_photo((25, 35, 70), background=(240, 130, 30))
    names = [s.name for s in named_colors(image)]
    assert names[0] == "orange" and "navy" in names


def test_cli_colors_json(tmp_path):
    path = tmp_path / "shirt.png"
    _product_photo((200, 30, 40)).save(path)
    result = CliRunner().invoke(app, ["colors", str(path), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["image"] == str(path) and out["box"] is None
    first = out["colors"][0]
    assert set(first) == {"name", "fraction", "rgb", "hex"}
    assert first["name"] == "red" and first["rgb"] == [200, 30, 40] and first["hex"] == "#c81e28"

    boxed = CliRunner().invoke(app, ["colors", str(path), "--box", "0,0,20,20", "--json"])
    assert json.loads(boxed.stdout)["colors"][0]["name"] == "white"  # the box is all backdrop: kept, not removed
    assert CliRunner().invoke(app, ["colors", str(path), "--box", "1,2,3"]).exit_code != 0
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    failed = CliRunner().invoke(app, ["colors", str(bad)])
    assert failed.exit_code == 2 and "not an image" in failed.output


def _garment_on_contrast(size=(100, 100)):
    """A red garment shape with a blue and a skin-tone background inside its box; returns (image, mask, box)."""
    import numpy as np

    w, h = size
    yy, xx = np.mgrid[:h, :w]
    rgb = np.zeros((h, w, 3), np.uint8)
    rgb[:] = (30, 60, 200)  # blue
    rgb[: h // 2, : w // 2] = (230, 180, 150)  # skin
    mask = ((xx - w / 2) / (w * 0.3)) ** 2 + ((yy - h / 2) / (h * 0.4)) ** 2 <= 1  # an oval dress
    rgb[mask] = (210, 30, 40)
    return Image.fromarray(rgb), mask, (w * 0.1, h * 0.05, w * 0.9, h * 0.95)


def test_mask_counts_only_the_garments_pixels():
    image, mask, box = _garment_on_contrast()
    with_mask = named_colors(image, box, mask=mask)
    assert with_mask[0].name == "red" and with_mask[0].fraction > 0.9 and with_mask[0].rgb == (210, 30, 40)
    from_box = named_colors(image, box)
    assert from_box[0].fraction < 0.7
    assert {"blue", "beige"} & {s.name for s in from_box}  # the background, counted without the mask
    no_box = named_colors(image, mask=mask)  # the mask's own box
    assert no_box[0].name == "red" and no_box[0].fraction > 0.9


def test_mask_is_reduced_with_the_image_for_large_photos():
    import numpy as np

    image, mask, box = _garment_on_contrast((900, 700))  # reduced to MAX_SIDE: the mask must follow the same grid
    first = named_colors(image, box, mask=mask)[0]
    assert first.name == "red" and first.fraction > 0.95
    shifted = np.roll(mask, 200, axis=1)  # the same shape, mostly off the garment: the mask is what counts
    assert named_colors(image, box, mask=shifted)[0].fraction < 0.75


def test_mask_skips_the_white_backdrop_removal_and_checks_its_input():
    import numpy as np

    image = _product_photo((250, 250, 250))  # a white garment on a white backdrop, with a navy print
    image.paste((25, 35, 70), (45, 60, 75, 100))
    outline = Image.new("L", image.size, 0)
    ImageDraw.Draw(outline).polygon([(40, 30), (80, 30), (95, 60), (85, 130), (35, 130), (25, 60)], fill=255)
    mask = np.asarray(outline) > 0
    assert named_colors(image)[0].name == "navy"  # the flood fill takes the white garment with the backdrop
    first, second = named_colors(image, mask=mask)[:2]
    assert (first.name, second.name) == ("white", "navy") and 0.6 < first.fraction < 0.9
    with pytest.raises(ValueError, match="no pixels"):
        named_colors(image, mask=np.zeros_like(mask))
    with pytest.raises(ValueError, match="no pixels"):
        named_colors(image, (0, 0, 20, 20), mask=mask)  # the mask lies outside the box
    with pytest.raises(ValueError, match="shape"):
        named_colors(image, mask=mask[:10])
