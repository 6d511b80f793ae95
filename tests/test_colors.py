"""Named colours on generated images: the vocabulary, light (cast, shade, highlights), family grouping, backdrop
removal, masks, and the CLI over several images."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image, ImageDraw
from typer.testing import CliRunner

from fashionlens.cli import app
from fashionlens.colors import (COLOR_FAMILIES, COLOR_NAMES, FINE_COLORS, ColorShare, WhiteBalance,
                                estimate_balance, family_of, named_colors, whole_photo_colors)
from fashionlens.colors.light import linear_to_srgb, srgb_to_linear
from fashionlens.colors.vocabulary import filter_terms

NO_CAST = WhiteBalance()


def test_vocabulary_has_twelve_families_and_every_fine_name_one_of_them():
    assert len(COLOR_FAMILIES) == 12 and set(COLOR_FAMILIES) <= set(COLOR_NAMES)
    assert {family for family, _ in FINE_COLORS.values()} == set(COLOR_FAMILIES)
    assert family_of("Navy") == "blue" and family_of(" burgundy ") == "red" and family_of("cream") == "beige"
    assert family_of("blue") == "blue" and family_of("neon") == "green" and family_of("plaid") is None
    assert {"navy", "sky blue", "blue"} <= filter_terms("Blue") and "red" not in filter_terms("blue")
    assert filter_terms("navy") == {"navy"}


@pytest.mark.parametrize("rgb,family", [
    ((12, 12, 14), "black"), ((245, 245, 245), "white"), ((128, 128, 128), "grey"), ((200, 30, 40), "red"),
    ((240, 130, 30), "orange"), ((240, 210, 40), "yellow"), ((40, 140, 60), "green"), ((40, 80, 180), "blue"),
    ((25, 35, 75), "blue"), ((110, 50, 140), "purple"), ((240, 120, 170), "pink"), ((110, 70, 40), "brown"),
    ((225, 205, 170), "beige"), ((128, 0, 32), "red"),
])
def test_plain_colours_are_named_in_their_family(rgb, family):
    shares = named_colors(Image.new("RGB", (40, 30), rgb), balance=NO_CAST)
    assert [(s.family, s.rgb) for s in shares] == [(family, rgb)]
    assert shares[0].fraction == pytest.approx(1.0) and FINE_COLORS[shares[0].name][0] == family


def test_navy_and_burgundy_get_their_fine_names():
    assert named_colors(Image.new("RGB", (40, 30), (25, 35, 75)), balance=NO_CAST)[0].name == "navy"
    assert named_colors(Image.new("RGB", (40, 30), (110, 20, 40)), balance=NO_CAST)[0].name in {"burgundy", "wine"}


def test_shares_are_grouped_by_family_first():
    """A blue garment photographed as navy, denim and slate pixels is one blue share, larger than the grey."""
    image = Image.new("RGB", (100, 100), (128, 128, 128))
    for i, rgb in enumerate([(25, 35, 75), (60, 95, 140), (45, 70, 160)]):
        image.paste(rgb, (20 + 20 * i, 10, 40 + 20 * i, 90))
    first, second = named_colors(image, balance=NO_CAST)[:2]
    assert (first.family, second.family) == ("blue", "grey") and first.fraction > second.fraction
    assert first.to_json().keys() == {"name", "family", "hex", "fraction", "rgb"}


def test_order_and_box():
    image = Image.new("RGB", (200, 100), (40, 140, 60))  # green left
    image.paste((40, 80, 180), (120, 0, 200, 100))  # blue right
    assert [s.family for s in named_colors(image, balance=NO_CAST)] == ["green", "blue"]
    assert [s.family for s in named_colors(image, box=(125.5, 10, 190, 90), balance=NO_CAST)] == ["blue"]
    assert ColorShare("red", 1.0, (200, 30, 40)).hex == "#c81e28"
    assert ColorShare("navy", 1.0, (25, 35, 75)).family == "blue"
    with pytest.raises(ValueError, match="x1 < x2"):
        named_colors(image, box=(50, 0, 10, 10))
    with pytest.raises(ValueError, match="outside"):
        named_colors(image, box=(300, 0, 400, 10))


def _street_photo(garment, cast=(0.85, 0.97, 1.2)):
    """A street-like photo: a light wall, a skin-toned face and arm, a shaded garment (`garment(x, y)` gives its
    colour from 0..1 across and down it), all under a colour cast (per-channel gains in linear light, like
    skylight in shade). Returns the photo and the garment's box."""
    h, w = 300, 200
    rgb = np.zeros((h, w, 3))
    rgb[:] = (238, 236, 232)  # the wall
    rgb[20:80, 70:130] = (224, 172, 140)  # face
    rgb[100:220, 20:45] = (214, 160, 128)  # arm
    yy, xx = np.mgrid[100:260, 50:150]
    rgb[100:260, 50:150] = garment((xx - 50) / 100, (yy - 100) / 160)
    cast_rgb = linear_to_srgb(srgb_to_linear(rgb) * np.array(cast))
    return Image.fromarray(np.round(cast_rgb).astype(np.uint8)), (50, 100, 150, 260)


def _shaded(rgb, dark=0.45):
    """Fabric with folds: brightness swings between `dark` and 1 of the colour across the garment."""
    base = np.array(rgb, dtype=float)
    return lambda x, y: base * (dark + (1 - dark) * (0.5 + 0.5 * np.sin(x * 9 + y * 4)))[..., None]


def test_black_under_a_blue_cast_is_black_not_navy():
    image, box = _street_photo(_shaded((45, 45, 48), dark=0.4))
    first = named_colors(image, box, balance=estimate_balance(image))[0]
    assert first.family == "black", first
    assert named_colors(image, box)[0].family == "black"  # estimated from the whole photo when not given


def test_grey_under_a_blue_cast_is_not_blue():
    image, box = _street_photo(_shaded((140, 140, 140), dark=0.7))
    first = named_colors(image, box)[0]
    assert first.family == "grey", first


def test_white_in_shade_is_white():
    image, box = _street_photo(_shaded((235, 235, 235), dark=0.8), cast=(0.6, 0.65, 0.75))  # dim, bluish light
    assert named_colors(image, box)[0].family == "white"


def test_red_with_highlights_is_red_not_pink():
    red = np.array((190, 25, 35), dtype=float)
    shine = np.array((250, 150, 160), dtype=float)

    def garment(x, y):
        t = np.clip(np.sin(x * 6 + y * 3), 0, 1)[..., None] ** 4  # narrow bright folds
        return red * (1 - t) + shine * t
    image, box = _street_photo(garment, cast=(1.0, 1.0, 1.0))
    assert named_colors(image, box)[0].family == "red"


def _product_photo(garment_rgb, background=(255, 255, 255)):
    """A garment shape on a studio backdrop, like a catalogue thumbnail (small garment, big backdrop)."""
    image = Image.new("RGB", (120, 160), background)
    draw = ImageDraw.Draw(image)
    draw.polygon(SHIRT, fill=garment_rgb)
    return image


SHIRT = [(40, 30), (80, 30), (95, 60), (85, 130), (35, 130), (25, 60)]


def test_white_backdrop_is_removed_for_product_photos():
    image = _product_photo((25, 35, 75))  # navy garment on white, ~30% of the frame
    auto = named_colors(image)
    assert (auto[0].name, auto[0].family) == ("navy", "blue") and auto[0].fraction > 0.95
    kept = {s.family: s.fraction for s in named_colors(image, remove_background=False)}
    assert kept["white"] > 0.3  # counted, though less than the centred garment


def test_a_light_grey_studio_backdrop_is_removed_too():
    image = _product_photo((200, 30, 40), background=(222, 222, 222))
    assert [s.family for s in named_colors(image)] == ["red"]


def test_white_tshirt_on_white_backdrop_keeps_its_colour():
    """An off-white T-shirt with a grey outline, soft shading and a small yellow print, on pure white."""
    image = _product_photo((246, 245, 241))
    draw = ImageDraw.Draw(image)
    draw.line(SHIRT + SHIRT[:1], fill=(170, 170, 168), width=2)
    draw.polygon([(40, 100), (85, 100), (85, 128), (36, 128)], fill=(232, 231, 227))  # shade near the hem
    draw.ellipse((52, 55, 68, 71), fill=(240, 200, 30))  # the print
    first = named_colors(image)[0]
    assert first.family == "white" and first.fraction > 0.6, named_colors(image)


def test_white_inside_a_garment_is_kept():
    image = _product_photo((200, 30, 40))
    ImageDraw.Draw(image).rectangle((50, 70, 70, 110), fill=(255, 255, 255))  # a white print on the red shirt
    shares = {s.family: s.fraction for s in named_colors(image)}
    assert set(shares) == {"red", "white"} and 0.1 < shares["white"] < 0.4
    # a white garment filling the frame: the border is white, but removing it would leave nothing
    assert named_colors(Image.new("RGB", (60, 80), (250, 250, 250)))[0].family == "white"


def test_coloured_backdrop_is_not_removed():
    image = _product_photo((25, 35, 75), background=(240, 130, 30))
    shares = {s.family: s.fraction for s in named_colors(image)}
    assert shares["orange"] > 0.3 and "blue" in shares


def test_a_photo_described_whole_counts_the_garments_pixels_only_off_a_studio_backdrop():
    on_floor = _product_photo((25, 35, 75), background=(240, 130, 30))  # a navy shirt laid on an orange floor
    shirt = np.zeros((on_floor.height, on_floor.width), bool)
    ImageDraw.Draw(drawn := Image.fromarray(shirt)).polygon(SHIRT, fill=True)
    shirt = np.asarray(drawn)
    colors, source = whole_photo_colors(on_floor, lambda: shirt)
    assert source == "mask" and [c.family for c in colors] == ["blue"]
    assert whole_photo_colors(on_floor, lambda: None)[1] == "image"  # the parser saw no garment: the photo

    def never():
        raise AssertionError("a studio shot is named without parsing it")
    colors, source = whole_photo_colors(_product_photo((25, 35, 75)), never)
    assert source == "image" and [c.family for c in colors] == ["blue"]  # the namer left the backdrop out


def _garment_on_contrast(size=(100, 100)):
    """A red garment shape with a blue and a skin-tone background inside its box; returns (image, mask, box)."""
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
    with_mask = named_colors(image, box, mask=mask, balance=NO_CAST)
    assert with_mask[0].family == "red" and with_mask[0].fraction > 0.9 and with_mask[0].rgb == (210, 30, 40)
    from_box = named_colors(image, box, balance=NO_CAST)
    assert from_box[0].fraction < 0.8 and "blue" in {s.family for s in from_box}
    no_box = named_colors(image, mask=mask, balance=NO_CAST)  # the mask's own box
    assert no_box[0].family == "red" and no_box[0].fraction > 0.9


def test_mask_is_reduced_with_the_image_for_large_photos():
    image, mask, box = _garment_on_contrast((900, 700))  # reduced to MAX_SIDE: the mask must follow the same grid
    first = named_colors(image, box, mask=mask, balance=NO_CAST)[0]
    assert first.family == "red" and first.fraction > 0.95
    shifted = np.roll(mask, 200, axis=1)  # the same shape, mostly off the garment: the mask is what counts
    assert named_colors(image, box, mask=shifted, balance=NO_CAST)[0].fraction < 0.85


def test_mask_checks_its_input():
    image = _product_photo((250, 250, 250))
    outline = Image.new("L", image.size, 0)
    ImageDraw.Draw(outline).polygon(SHIRT, fill=255)
    mask = np.asarray(outline) > 0
    assert named_colors(image, mask=mask)[0].family == "white"
    with pytest.raises(ValueError, match="no pixels"):
        named_colors(image, mask=np.zeros_like(mask))
    with pytest.raises(ValueError, match="no pixels"):
        named_colors(image, (0, 0, 20, 20), mask=mask)  # the mask lies outside the box
    with pytest.raises(ValueError, match="shape"):
        named_colors(image, mask=mask[:10])


def test_white_balance_removes_a_cast_and_leaves_a_neutral_photo_alone():
    image, _ = _street_photo(_shaded((140, 140, 140)))
    r, g, b = estimate_balance(image).gains
    assert r > 1.05 and b < 0.95  # the blue cast is pulled back
    neutral, _ = _street_photo(_shaded((140, 140, 140)), cast=(1, 1, 1))
    assert max(abs(v - 1) for v in estimate_balance(neutral).gains) < 0.1
    pixels = np.array([[10, 128, 250]], dtype=np.uint8)
    assert (NO_CAST.apply(pixels) == pixels).all()


def test_cli_colors_several_images_and_a_bad_one(tmp_path):
    red, navy = tmp_path / "red.png", tmp_path / "navy.png"
    _product_photo((200, 30, 40)).save(red)
    _product_photo((25, 35, 75)).save(navy)
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    result = CliRunner().invoke(app, ["colors", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["image"] for line in lines] == [str(navy), str(red)]
    first = lines[1]["colors"][0]
    assert set(first) == {"name", "family", "hex", "fraction"} and lines[1]["box"] is None
    assert first["family"] == "red" and first["hex"] == "#c81e28"
    assert lines[0]["colors"][0]["name"] == "navy"
    assert "bad.jpg" in result.stderr

    table = CliRunner().invoke(app, ["colors", str(red), str(navy)])
    assert table.exit_code == 0 and "navy" in table.stdout and "red" in table.stdout
    boxed = CliRunner().invoke(app, ["colors", str(red), "--box", "0,0,20,20", "--json"])
    assert json.loads(boxed.stdout)["colors"][0]["family"] == "white"  # all backdrop: kept, not removed
    assert CliRunner().invoke(app, ["colors", str(red), "--box", "1,2,3"]).exit_code != 0
    failed = CliRunner().invoke(app, ["colors", str(bad)])
    assert failed.exit_code == 1 and "bad.jpg" in failed.stderr
