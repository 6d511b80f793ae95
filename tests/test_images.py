"""The input layer's contract: every bad file fails as an ImageError naming the file and the reason;
every supported file comes back as an upright RGB image."""

from __future__ import annotations

import gc
import io
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from fashionlens import images
from fashionlens.images import ImageError, is_image_file, load_image, to_rgb


# --------------------------------------------------------------------------- helpers


def noise(size=(64, 48), mode="RGB", seed=0) -> Image.Image:
    """Random pixels: compress badly, so cutting the file in half really cuts image data."""
    channels = {"RGB": 3, "L": 1}[mode]
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0], channels) if channels > 1 else (size[1], size[0])
    return Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)


def save(image: Image.Image, path: Path, fmt: str | None = None, **params) -> Path:
    image.save(path, fmt, **params)
    return path


def expect_error(source, *reason_words: str, **kwargs) -> ImageError:
    """load_image must raise ImageError whose message names the file and contains every reason word."""
    with pytest.raises(ImageError) as info:
        load_image(source, **kwargs)
    err = info.value
    expected_source = kwargs.get("name") or ("<bytes>" if isinstance(source, bytes) else str(source))
    assert err.source == expected_source
    assert str(err).startswith(f"{expected_source}: ")
    assert err.reason and err.reason in str(err)
    for word in reason_words:
        assert word.lower() in err.reason.lower(), f"{word!r} not in reason {err.reason!r}"
    return err


def png_with_ihdr_size(tmp_path: Path, width: int, height: int) -> Path:
    """A valid small PNG whose IHDR is rewritten to claim width x height (CRC fixed), pixel data unchanged."""
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buf, "PNG")
    data = bytearray(buf.getvalue())
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    # 8 signature bytes, then IHDR: length (4) + type (4) + 13 data bytes + crc (4)
    data[16:20] = struct.pack(">I", width)
    data[20:24] = struct.pack(">I", height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    path = tmp_path / "bomb.png"
    path.write_bytes(bytes(data))
    return path


# --------------------------------------------------------------------------- bad inputs


def test_missing_file(tmp_path):
    expect_error(tmp_path / "nope.jpg", "not found")


def test_directory(tmp_path):
    folder = tmp_path / "photo.jpg"
    folder.mkdir()
    expect_error(folder, "directory")


def test_zero_bytes_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    expect_error(path, "empty", "0 bytes")


def test_zero_bytes_from_bytes():
    expect_error(b"", "empty", "0 bytes")
    expect_error(b"", "empty", name="upload.jpg")


def test_text_file_named_jpg(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("this is not a picture\n" * 20)
    expect_error(path, "not an image")


def test_html_bytes_named():
    expect_error(b"<html><body>404 Not Found</body></html>", "not an image", name="https://x/y.jpg")


def test_truncated_jpeg(tmp_path):
    whole = save(noise((128, 96)), tmp_path / "whole.jpg", "JPEG", quality=90)
    load_image(whole)  # the uncut file is fine
    data = whole.read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(data[: len(data) // 2])
    expect_error(cut, "truncated")


def test_truncated_jpeg_bytes(tmp_path):
    buf = io.BytesIO()
    noise((128, 96)).save(buf, "JPEG", quality=90)
    data = buf.getvalue()
    expect_error(data[: len(data) // 2], "truncated", name="cut.jpg")


def test_truncated_png(tmp_path):
    whole = save(noise((128, 96)), tmp_path / "whole.png", "PNG")
    load_image(whole)
    data = whole.read_bytes()
    cut = tmp_path / "cut.png"
    cut.write_bytes(data[: len(data) // 2])
    err = expect_error(cut)
    assert any(w in err.reason.lower() for w in ("truncated", "corrupt", "cannot decode")), err.reason


def test_loading_truncated_files_is_not_switched_on():
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False


def test_max_pixels_parameter(tmp_path):
    path = save(Image.new("RGB", (20, 20)), tmp_path / "small.png")
    expect_error(path, "20x20", "decompression bomb", max_pixels=399)
    assert load_image(path, max_pixels=400).size == (20, 20)


def test_default_limit_allows_ordinary_photos(tmp_path):
    path = save(Image.new("RGB", (20, 20)), tmp_path / "small.png")
    assert load_image(path).size == (20, 20)
    assert 20_000_000 <= images.MAX_PIXELS < 20000 * 20000


def forbid_decoding(monkeypatch):
    """From here on, fail the test if any pixel data is decoded."""

    def refuse(self, *args, **kwargs):
        raise AssertionError("pixel data was decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    monkeypatch.setattr(Image.Image, "load", refuse)


def test_header_only_decompression_bomb(tmp_path, monkeypatch):
    """A PNG whose IHDR claims 20000x20000 (400 Mpx) is refused from the header alone."""
    path = png_with_ihdr_size(tmp_path, 20000, 20000)
    assert path.stat().st_size < 200
    forbid_decoding(monkeypatch)
    expect_error(path, "decompression bomb")


def test_header_only_bomb_from_bytes(tmp_path, monkeypatch):
    data = png_with_ihdr_size(tmp_path, 20000, 20000).read_bytes()
    forbid_decoding(monkeypatch)
    expect_error(data, "decompression bomb", name="upload.png")


def test_header_only_bomb_without_pil_limit(tmp_path, monkeypatch):
    """fashionlens' own limit holds even where PIL's global MAX_IMAGE_PIXELS has been switched off."""
    path = png_with_ihdr_size(tmp_path, 20000, 20000)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    forbid_decoding(monkeypatch)
    expect_error(path, "20000x20000", "400 Mpx", "decompression bomb")


def test_header_between_limits(tmp_path, monkeypatch):
    """60 Mpx: under PIL's own warning threshold, over fashionlens' 50 Mpx default."""
    path = png_with_ihdr_size(tmp_path, 10000, 6000)
    forbid_decoding(monkeypatch)
    expect_error(path, "10000x6000", "decompression bomb")


def test_header_pil_warning_range_refused_even_with_high_limit(tmp_path, monkeypatch):
    """100 Mpx is over PIL's DecompressionBombWarning threshold: refused even with max_pixels raised."""
    path = png_with_ihdr_size(tmp_path, 10000, 10000)
    forbid_decoding(monkeypatch)
    expect_error(path, "decompression bomb", max_pixels=10**9)


def test_svg_refused(tmp_path):
    path = tmp_path / "logo.svg"
    path.write_text(
        '<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10">'
        '<rect width="10" height="10" fill="red"/></svg>\n'
    )
    expect_error(path, "not an image")


@pytest.mark.parametrize(("fmt", "suffix"), [("TIFF", ".tif"), ("PPM", ".ppm"), ("ICO", ".ico"), ("TGA", ".tga")])
def test_other_formats_pil_reads_are_refused(tmp_path, fmt, suffix):
    path = save(Image.new("RGB", (16, 16), (1, 2, 3)), tmp_path / f"pic{suffix}", fmt)
    expect_error(path, "unsupported image format", fmt)


def test_disallowed_format_disguised_as_jpg(tmp_path):
    path = save(Image.new("RGB", (16, 16)), tmp_path / "really_tiff.jpg", "TIFF")
    expect_error(path, "unsupported image format TIFF")


# --------------------------------------------------------------------------- good inputs


@pytest.mark.parametrize(
    ("fmt", "suffix"), [("JPEG", ".jpg"), ("PNG", ".png"), ("WEBP", ".webp"), ("BMP", ".bmp"), ("GIF", ".gif")]
)
def test_supported_formats(tmp_path, fmt, suffix):
    colour = (200, 30, 40)
    path = save(Image.new("RGB", (32, 24), colour), tmp_path / f"pic{suffix}", fmt)
    image = load_image(path)
    assert image.mode == "RGB"
    assert image.size == (32, 24)
    tolerance = 0 if fmt in ("PNG", "BMP", "GIF") else 12
    assert np.abs(np.asarray(image, dtype=int)[12, 16] - colour).max() <= tolerance
    assert is_image_file(path)


def test_lossless_webp_exact(tmp_path):
    source = noise((20, 10))
    path = save(source, tmp_path / "pic.webp", "WEBP", lossless=True)
    assert np.array_equal(np.asarray(load_image(path)), np.asarray(source))


def test_gif_first_frame(tmp_path):
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    with Image.open(path) as check:
        assert check.n_frames == 3
    image = load_image(path)
    assert image.mode == "RGB" and image.size == (16, 16)
    assert image.getpixel((8, 8)) == (255, 0, 0)


def test_exif_orientation_applied(tmp_path):
    source = Image.new("RGB", (40, 20), (255, 0, 0))
    source.paste((0, 0, 255), (0, 0, 20, 20))  # left half blue, right half red
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: rotate 90 CW to display
    path = save(source, tmp_path / "rotated.jpg", "JPEG", exif=exif.tobytes(), quality=95)
    with Image.open(path) as raw:
        assert raw.size == (40, 20) and raw.getexif()[0x0112] == 6
    image = load_image(path)
    assert image.size == (20, 40)
    # rotated 90 degrees clockwise: the left (blue) half is now on top
    top, bottom = image.getpixel((10, 5)), image.getpixel((10, 35))
    assert top[2] > 200 and top[0] < 60
    assert bottom[0] > 200 and bottom[2] < 60


def test_exif_orientation_from_bytes(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 8
    buf = io.BytesIO()
    Image.new("RGB", (40, 20)).save(buf, "JPEG", exif=exif.tobytes())
    assert load_image(buf.getvalue()).size == (20, 40)


def test_rgba_flattened_on_white(tmp_path):
    source = Image.new("RGBA", (4, 4), (0, 0, 0, 0))  # fully transparent black
    source.putpixel((1, 1), (255, 0, 0, 255))  # one opaque red
    source.putpixel((2, 2), (0, 0, 0, 128))  # half-transparent black
    image = load_image(save(source, tmp_path / "alpha.png"))
    assert image.mode == "RGB"
    assert image.getpixel((0, 0)) == (255, 255, 255)
    assert image.getpixel((1, 1)) == (255, 0, 0)
    assert all(120 <= v <= 135 for v in image.getpixel((2, 2)))


def test_rgba_webp_flattened_on_white(tmp_path):
    source = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    image = load_image(save(source, tmp_path / "alpha.webp", "WEBP", lossless=True))
    assert image.getpixel((4, 4)) == (255, 255, 255)


def test_la_flattened_on_white(tmp_path):
    source = Image.new("LA", (4, 4), (0, 0))
    source.putpixel((3, 3), (50, 255))
    image = load_image(save(source, tmp_path / "la.png"))
    assert image.mode == "RGB"
    assert image.getpixel((0, 0)) == (255, 255, 255)
    assert image.getpixel((3, 3)) == (50, 50, 50)


@pytest.mark.parametrize(("fmt", "suffix"), [("PNG", ".png"), ("GIF", ".gif")])
def test_palette_with_transparency_flattened_on_white(tmp_path, fmt, suffix):
    source = Image.new("P", (4, 4), 0)
    source.putpalette([0, 0, 0, 255, 0, 0] + [0, 0, 0] * 254)  # index 0 black (transparent), 1 red
    source.putpixel((1, 1), 1)
    path = save(source, tmp_path / f"palette{suffix}", fmt, transparency=0)
    with Image.open(path) as raw:
        assert raw.mode == "P" and "transparency" in raw.info
    image = load_image(path)
    assert image.mode == "RGB"
    assert image.getpixel((0, 0)) == (255, 255, 255)
    assert image.getpixel((1, 1)) == (255, 0, 0)


def test_palette_without_transparency(tmp_path):
    source = Image.new("P", (4, 4), 1)
    source.putpalette([0, 0, 0, 0, 128, 0] + [0, 0, 0] * 254)
    image = load_image(save(source, tmp_path / "palette.png"))
    assert image.mode == "RGB" and image.getpixel((0, 0)) == (0, 128, 0)


def test_greyscale_to_rgb(tmp_path):
    source = Image.new("L", (10, 10), 77)
    image = load_image(save(source, tmp_path / "grey.png"))
    assert image.mode == "RGB" and image.getpixel((5, 5)) == (77, 77, 77)
    image = load_image(save(source, tmp_path / "grey.jpg", "JPEG"))
    assert image.mode == "RGB" and all(abs(v - 77) <= 2 for v in image.getpixel((5, 5)))


def test_cmyk_jpeg_to_rgb(tmp_path):
    source = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # red in CMYK
    path = save(source, tmp_path / "cmyk.jpg", "JPEG", quality=95)
    with Image.open(path) as raw:
        assert raw.mode == "CMYK"
    image = load_image(path)
    assert image.mode == "RGB"
    r, g, b = image.getpixel((8, 8))
    assert r > 200 and g < 60 and b < 60


def test_load_from_bytes(tmp_path):
    buf = io.BytesIO()
    Image.new("RGB", (12, 7), (1, 2, 3)).save(buf, "PNG")
    image = load_image(buf.getvalue())
    assert image.mode == "RGB" and image.size == (12, 7) and image.getpixel((0, 0)) == (1, 2, 3)


def test_load_from_str_path(tmp_path):
    path = save(Image.new("RGB", (5, 6)), tmp_path / "pic.png")
    assert load_image(str(path)).size == (5, 6)


def test_uppercase_suffix_and_name(tmp_path):
    path = save(Image.new("RGB", (5, 6)), tmp_path / "PIC.JPEG", "JPEG")
    assert is_image_file(path)
    assert load_image(path, name="catalogue/PIC.JPEG").size == (5, 6)


def test_loaded_image_is_independent_of_file(tmp_path):
    path = save(Image.new("RGB", (8, 8), (9, 9, 9)), tmp_path / "pic.png")
    image = load_image(path)
    path.unlink()
    assert image.getpixel((0, 0)) == (9, 9, 9)


def test_min_size_draft_keeps_both_sides_large_enough(tmp_path):
    path = save(noise((800, 600)), tmp_path / "big.jpg", "JPEG")
    image = load_image(path, min_size=240)
    assert image.mode == "RGB"
    assert min(image.size) >= 240
    assert image.size[0] < 800  # decoded at a reduced scale
    assert load_image(path).size == (800, 600)


def test_min_size_draft_greyscale_jpeg(tmp_path):
    path = save(noise((800, 600), mode="L"), tmp_path / "big_grey.jpg", "JPEG")
    image = load_image(path, min_size=200)
    assert image.mode == "RGB" and min(image.size) >= 200


def _make_file(tmp_path: Path, kind: str) -> Path:
    if kind == "gif":
        frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
        frames[0].save(tmp_path / "a.gif", "GIF", save_all=True, append_images=frames[1:])
        return tmp_path / "a.gif"
    if kind == "png":
        return save(Image.new("RGB", (8, 8)), tmp_path / "a.png")
    if kind == "tiff":
        return save(Image.new("RGB", (8, 8)), tmp_path / "a.tif", "TIFF")
    if kind == "bomb":
        return png_with_ihdr_size(tmp_path, 20000, 20000)
    if kind == "too_big":
        return save(Image.new("RGB", (8, 8)), tmp_path / "big.png")
    data = save(noise((128, 96)), tmp_path / "whole.jpg", "JPEG").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    return tmp_path / "cut.jpg"


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["png", "gif", "tiff", "bomb", "too_big", "truncated"])
def test_no_file_left_open(tmp_path, kind):
    """Neither a good file (including multi-frame GIF) nor a refused one leaves its file handle open:
    scanning a folder of thousands of photos must not run out of descriptors or lock files on Windows."""
    path = _make_file(tmp_path, kind)
    gc.collect()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        try:
            load_image(path, max_pixels=10 if kind == "too_big" else images.MAX_PIXELS)
        except ImageError:
            assert kind != "png" and kind != "gif"
        gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaks


# --------------------------------------------------------------------------- helpers in images.py


def test_is_image_file(tmp_path):
    good = save(Image.new("RGB", (2, 2)), tmp_path / "a.png")
    assert is_image_file(good)
    (tmp_path / "notes.txt").write_text("x")
    assert not is_image_file(tmp_path / "notes.txt")
    hidden = save(Image.new("RGB", (2, 2)), tmp_path / ".hidden.png")
    assert not is_image_file(hidden)
    (tmp_path / "dir.jpg").mkdir()
    assert not is_image_file(tmp_path / "dir.jpg")
    assert not is_image_file(tmp_path / "missing.jpg")


def test_to_rgb_modes():
    rgb = Image.new("RGB", (2, 2), (1, 2, 3))
    assert to_rgb(rgb) is rgb
    assert to_rgb(Image.new("RGBA", (2, 2), (0, 0, 0, 0))).getpixel((0, 0)) == (255, 255, 255)
    assert to_rgb(Image.new("PA", (2, 2))).mode == "RGB"
    assert to_rgb(Image.new("I;16", (2, 2))).mode == "RGB"
    assert to_rgb(Image.new("1", (2, 2), 1)).getpixel((0, 0)) == (255, 255, 255)


def test_image_error_is_value_error():
    err = ImageError("a.jpg", "broken")
    assert isinstance(err, ValueError)
    assert (err.source, err.reason, str(err)) == ("a.jpg", "broken", "a.jpg: broken")
