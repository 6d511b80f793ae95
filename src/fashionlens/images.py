"""Safe image decoding: the one place that decides what counts as a readable image.

Every reader in fashionlens goes through `load_image`, so a truncated file, a text file named `.jpg` or a
decompression bomb fails the same way everywhere: an `ImageError` that names the file and the reason.
"""

from __future__ import annotations

import io
import warnings
from glob import glob
from pathlib import Path

from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"})
ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "BMP", "GIF", "MPO"})
MAX_PIXELS = 50_000_000
"""Images above this many pixels are refused before decoding (a 20000x20000 PNG is 400 Mpx)."""

ImageFile.LOAD_TRUNCATED_IMAGES = False


class ImageError(ValueError):
    """An image that cannot be used, with the file it came from and why. `code` sorts the reasons for callers
    that answer with one (the HTTP service): "not_an_image", "image_too_large" or "invalid_image"."""

    def __init__(self, source: str, reason: str, code: str = "invalid_image"):
        self.source = source
        self.reason = reason
        self.code = code
        super().__init__(f"{source}: {reason}")


def is_image_file(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def find_files(arguments: list[str]) -> tuple[list[Path], list[str]]:
    """Files, folders (their image files, recursively) and globs, in a stable order; the arguments that match
    nothing are returned apart. A named file is kept whatever it holds, so reading it says what is wrong."""
    found: list[Path] = []
    missing: list[str] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if is_image_file(p))
        elif path.exists():
            found.append(path)
        elif matches := sorted(glob(argument, recursive=True)):
            found += [Path(m) for m in matches if Path(m).is_file()]
        else:
            missing.append(argument)
    return found, missing


def load_image(
    source: str | Path | bytes,
    *,
    name: str | None = None,
    min_size: int | None = None,
    max_pixels: int = MAX_PIXELS,
) -> Image.Image:
    """Decode to an upright RGB image: EXIF orientation applied, alpha flattened on white.

    `min_size` lets JPEG decode at a reduced scale (PIL's draft mode) while keeping both sides at least
    that large, which makes large photos several times cheaper to read for a 240-pixel model.
    """
    label = name or (str(source) if not isinstance(source, bytes) else "<bytes>")
    try:
        if isinstance(source, bytes):
            if not source:
                raise ImageError(label, "empty file (0 bytes)")
            fp = io.BytesIO(source)
        else:
            path = Path(source)
            if not path.exists():
                raise ImageError(label, "file not found")
            if path.is_dir():
                raise ImageError(label, "is a directory, not an image")
            if path.stat().st_size == 0:
                raise ImageError(label, "empty file (0 bytes)")
            fp = path
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(fp) as image:  # closes the file on every path, refused or not
                if image.format not in ALLOWED_FORMATS:
                    raise ImageError(label, f"unsupported image format {image.format}", "not_an_image")
                width, height = image.size
                if width * height > max_pixels:
                    raise ImageError(
                        label,
                        f"image is {width}x{height} ({width * height / 1e6:.0f} Mpx), over the "
                        f"{max_pixels / 1e6:.0f} Mpx limit (possible decompression bomb)",
                        "image_too_large",
                    )
                if min_size and image.format == "JPEG":
                    scale = min(width, height) / min_size
                    if scale >= 2:
                        image.draft("RGB", (int(width / scale) + 1, int(height / scale) + 1))
                image.load()
                return to_rgb(ImageOps.exif_transpose(image))  # exif_transpose returns a new image
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(label, "not an image (unrecognised content)", "not_an_image") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(label, f"refused as a possible decompression bomb ({exc})", "image_too_large") from None
    except OSError as exc:
        raise ImageError(label, f"cannot decode ({exc})") from None
    except (ValueError, SyntaxError, EOFError) as exc:
        raise ImageError(label, f"corrupt image ({exc})") from None


def to_rgb(image: Image.Image) -> Image.Image:
    """Greyscale, palette and CMYK to RGB; any transparency composited onto white."""
    if image.mode == "RGB":
        return image
    has_alpha = image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info)
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def read_image_file(path: Path, min_size: int | None = None) -> tuple[bytes, Image.Image]:
    """The file's bytes (for hashing) and its decoded image; an unreadable file is an ImageError too."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ImageError(str(path), f"cannot read ({exc.strerror or exc})") from None
    return data, load_image(data, name=str(path), min_size=min_size)


def encode_png(image: Image.Image) -> bytes:
    """A PIL image as lossless PNG bytes: what a library user's in-memory image is hashed and stored as, so it has
    one sha256 however often it is given."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
