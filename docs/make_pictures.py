"""Makes the documentation's pictures from the repository's samples and shipped models, small enough to commit.

    python docs/make_pictures.py            # from the repository root, with .venv active

Writes docs/img/street-analysed.jpg (what `fashionlens analyze` finds on a sample street photo: boxes, labels and
mask outlines), docs/img/confusion.png (`fashionlens evaluate` of the shipped classifier on the 30 samples),
docs/img/dedup-group.jpg (a group `fashionlens dedup` finds among a sample photo's edited versions and the other
samples), docs/img/audit-copy.jpg (an audit finding from docs/audit/) and docs/web-analyse.png (the browser test's
screenshot of the Analyse view, with a palette). Every file is checked to stay under 150 KB.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
OUT = DOCS / "img"
SAMPLES = ROOT / "samples"
MAX_BYTES = 150_000


def _font(size: int):
    return ImageFont.load_default(size=size)


def street_analysed(photo: Path = SAMPLES / "street" / "ccp_0034.jpg") -> Path:
    """The pipeline's garments drawn on a street photo: each box and label in its class colour, its mask outlined."""
    from fashionlens.detect.draw import class_colour
    from fashionlens.pipeline import Analyzer

    document = Analyzer().analyze(photo).to_json()
    image = ImageOps.exif_transpose(Image.open(photo)).convert("RGB")
    scale = 2  # the CCP photos are 320 px wide: drawn twice as large so the labels read
    image = image.resize((image.width * scale, image.height * scale), Image.LANCZOS)
    draw = ImageDraw.Draw(image)
    labels = sorted({item["label"] for item in document["items"]})
    font = _font(18)
    for item in sorted(document["items"], key=lambda i: i["score"]):
        rgb = class_colour(labels.index(item["label"]))
        for polygon in item.get("polygons", []):
            points = [(x * scale, y * scale) for x, y in zip(polygon[::2], polygon[1::2], strict=True)]
            if len(points) > 2:
                draw.line([*points, points[0]], fill=rgb, width=2)
        box = [v * scale for v in item["box"]]
        draw.rectangle(box, outline=rgb, width=3)
        text = f"{item['label']} {item['score']:.2f}"
        left, top, right, bottom = draw.textbbox((box[0], box[1]), text, font=font)
        y = box[1] - (bottom - top) - 4 if box[1] - (bottom - top) - 4 >= 0 else box[1]
        draw.rectangle((box[0], y, box[0] + right - left + 6, y + bottom - top + 4), fill=rgb)
        draw.text((box[0] + 3, y + 2 - (top - box[1])), text, fill=(255, 255, 255), font=font)
    return _save(image, OUT / "street-analysed.jpg")


def confusion(classifier: Path = ROOT / "src" / "fashionlens" / "assets" / "garment-classifier") -> Path:
    """`fashionlens evaluate` on the samples laid out as class folders; its confusion matrix PNG, kept small."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "samples"
        for photo in sorted((SAMPLES / "clothing").glob("*.jpg")):
            label = photo.stem.rsplit("_", 1)[0]
            (data / label).mkdir(parents=True, exist_ok=True)
            shutil.copy(photo, data / label / photo.name)
        report = Path(tmp) / "report"
        subprocess.run([sys.executable, "-m", "fashionlens.cli", "evaluate", str(classifier), str(data), "--out",
                        str(report)], check=True, stdout=subprocess.DEVNULL)
        matrices = sorted(report.rglob("confusion*.png"))
        if not matrices:
            raise SystemExit(f"no confusion matrix PNG in {report}: {sorted(p.name for p in report.rglob('*'))}")
        image = Image.open(matrices[0]).convert("RGB")
    image.thumbnail((800, 800), Image.LANCZOS)
    return _save(image.quantize(colors=128, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE),
                 OUT / "confusion.png")


def dedup_group(original: Path = SAMPLES / "clothing" / "dress_1.jpg") -> Path:
    """Edited versions of one sample among the other samples; the group `find_duplicates` reports, as a sheet."""
    from fashionlens.dedup import find_duplicates

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for photo in sorted((SAMPLES / "clothing").glob("*.jpg")):
            shutil.copy(photo, folder / photo.name)
        image = Image.open(original).convert("RGB")
        w, h = image.size
        versions = {
            "mirrored": ImageOps.mirror(image),
            "greyscale": ImageOps.grayscale(image).convert("RGB"),
            "cropped": image.crop((w // 10, h // 10, w - w // 10, h - h // 12)),
            "rotated 8 degrees": image.rotate(8, resample=Image.BICUBIC, fillcolor=(0, 0, 0)),
            "re-encoded at half size": image.resize((w // 2, h // 2), Image.LANCZOS),
        }
        for name, version in versions.items():
            version.save(folder / f"{original.stem}-{name.split()[0]}.jpg", quality=80)
        report = find_duplicates([folder], progress=False)
        group = next((g for g in report.groups if any(Path(p).name == original.name for p in g.images)), None)
        if group is None:
            raise SystemExit(f"dedup found no group with {original.name}: {report.groups}")
        tiles = [(Path(p).stem.replace(f"{original.stem}-", "").replace(original.stem, "original"),
                  Image.open(p).convert("RGB")) for p in sorted(group.images)]
        return _save(_sheet(tiles, f"fashionlens dedup: one group of {len(tiles)} images among 35"),
                     OUT / "dedup-group.jpg")


def audit_copy(folder: Path = DOCS / "audit" / "clothing-small") -> Path:
    """An audit finding: the two files of one photo filed under different labels, with the audit's captions."""
    captions = {c["file"]: c for c in json.loads((folder / "captions.json").read_text())}
    tiles = []
    for name in ("04-copy.jpg", "05-copy.jpg"):
        caption = captions.get(name, {})
        label = caption.get("image", name).split("/")
        tiles.append((" / ".join(label[-3:-1]) if len(label) > 2 else caption.get("caption", name),
                      Image.open(folder / name).convert("RGB")))
    return _save(_sheet(tiles, "fashionlens audit: one photo filed as shorts and as skirt"), OUT / "audit-copy.jpg")


SCREENSHOT = ROOT / "artifacts" / "screenshots" / "analyse.png"  # tests/test_web_page.py writes it


def web_page(path: Path = DOCS / "web-analyse.png") -> Path:
    """The web page's Analyse view as a 160-colour palette PNG, at most 1,000 px wide: from the browser test's
    latest screenshot when there is one (`make test` with Chromium), else the picture already in docs/."""
    image = Image.open(SCREENSHOT if SCREENSHOT.exists() else path).convert("RGB")
    image = image.crop((0, 0, image.width, min(image.height, round(image.width * 0.8))))  # the photo and its first cards
    image.thumbnail((1000, 1000), Image.LANCZOS)
    return _save(image.quantize(colors=160, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE), path)


def _sheet(tiles: list[tuple[str, Image.Image]], title: str, height: int = 220) -> Image.Image:
    """Images side by side at one height, each captioned, under a title."""
    font, title_font = _font(14), _font(18)
    scaled = [(caption, image.resize((max(1, round(image.width * height / image.height)), height), Image.LANCZOS))
              for caption, image in tiles]
    gap, top = 10, 34
    width = sum(image.width for _, image in scaled) + gap * (len(scaled) + 1)
    sheet = Image.new("RGB", (width, top + height + 30), "white")
    draw = ImageDraw.Draw(sheet)
    draw.text((gap, 8), title, fill=(20, 20, 20), font=title_font)
    x = gap
    for caption, image in scaled:
        sheet.paste(image, (x, top))
        draw.text((x, top + height + 6), caption, fill=(60, 60, 60), font=font)
        x += image.width + gap
    return sheet


def _save(image: Image.Image, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".png":
        image.save(path, optimize=True)
    else:
        image.save(path, quality=82, optimize=True)
    size = path.stat().st_size
    if size > MAX_BYTES:
        raise SystemExit(f"{path}: {size:,} bytes, over the {MAX_BYTES:,} allowed for a documentation picture")
    print(f"{path.relative_to(ROOT)}: {image.width}x{image.height}, {size / 1000:.0f} KB")
    return path


if __name__ == "__main__":
    web_page()
    audit_copy()
    street_analysed()
    confusion()
    dedup_group()
