"""Photos the service received (uploads and fetched URLs), kept by content hash so the history and the catalogue
can show them again, and their resized copies for the web page's grids; every file is written atomically, so a
crash never leaves half a file under a valid name."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

from PIL import Image

from fashionlens.atomic import atomic_path
from fashionlens.images import load_image

THUMBNAIL_SIZES = (64, 128, 256, 512, 1024)  # a fixed set, so requests cannot fill the disk with variants


def _checked(sha256: str) -> str:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError(f"{sha256!r} is not a sha256 hex digest")
    return sha256


def thumbnail_bytes(data: bytes, size: int, name: str = "<image>") -> bytes:
    """An upright JPEG whose longer side is at most `size` (never enlarged), transparency flattened on white."""
    image = load_image(data, name=name, min_size=size)  # JPEG draft mode: big photos decode at a fraction
    image.thumbnail((size, size), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=82, optimize=True, progressive=True)
    return out.getvalue()


class MediaStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        return self.root / _checked(sha256)[:2] / sha256

    def put(self, sha256: str, data: bytes) -> Path:
        path = self.path(sha256)
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                tmp.write_bytes(data)
        return path

    def get(self, sha256: str) -> bytes | None:
        path = self.path(sha256)
        return path.read_bytes() if path.is_file() else None

    def thumbnail(self, sha256: str, size: int, original: Callable[[], bytes | None]) -> bytes | None:
        """The resized copy of the image with this hash, made once from `original()` and then read from disk;
        None when the original is gone."""
        if size not in THUMBNAIL_SIZES:
            raise ValueError(f"thumbnail size {size}: expected one of {THUMBNAIL_SIZES}")
        path = self.root / "thumbnails" / str(size) / _checked(sha256)[:2] / f"{sha256}.jpg"
        if path.is_file():
            return path.read_bytes()
        source = original()
        if source is None:
            return None
        data = thumbnail_bytes(source, size, name=sha256)
        with atomic_path(path) as tmp:
            tmp.write_bytes(data)
        return data
