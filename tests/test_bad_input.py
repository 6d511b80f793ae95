"""Photos of every awkward size and kind through `Analyzer.analyze`, `fashionlens analyze` / `detect` and
`POST /v1/analyze`: each gets a result or a reason that names it; none ends a batch or makes the service answer 500."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from conftest import SAMPLES, running_service
from fashionlens.cli import app
from fashionlens.pipeline import Analyzer

runner = CliRunner()
DRESS = SAMPLES / "dress_2.jpg"


def _photo() -> Image.Image:
    return Image.open(DRESS).convert("RGB")


# name -> (image, format it is saved in)
CASES = {
    "one-pixel": (lambda: Image.new("RGB", (1, 1), "red"), "PNG"),
    "sliver-3x500": (lambda: Image.new("RGB", (3, 500), (40, 60, 200)), "PNG"),
    "sliver-500x3": (lambda: Image.new("RGB", (500, 3), (40, 60, 200)), "PNG"),
    "tiny-16x16": (lambda: _photo().resize((16, 16)), "JPEG"),
    "thumbnail-60x80": (lambda: _photo().resize((60, 80)), "JPEG"),
    "garment-fills-frame": (lambda: _photo().crop((60, 70, 130, 190)), "JPEG"),
    "blank-white": (lambda: Image.new("RGB", (300, 400), "white"), "JPEG"),
    "blank-black": (lambda: Image.new("RGB", (300, 400), "black"), "PNG"),
    "greyscale": (lambda: _photo().convert("L"), "JPEG"),
    "rgba": (lambda: _photo().convert("RGBA"), "PNG"),
    "cmyk": (lambda: _photo().convert("CMYK"), "JPEG"),
    "wide-4000x20": (lambda: _photo().resize((4000, 20)), "JPEG"),
    "tall-20x4000": (lambda: _photo().resize((20, 4000)), "PNG"),
    "noise": (lambda: Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8)), "PNG"),
}


def _bytes(name: str) -> bytes:
    make, fmt = CASES[name]
    out = io.BytesIO()
    make().save(out, fmt)
    return out.getvalue()


def _flat(text: str) -> str:
    """Console output with the line wrapping undone."""
    return " ".join(text.split())


def _file(folder: Path, name: str) -> Path:
    path = folder / f"{name}.{CASES[name][1].lower().replace('jpeg', 'jpg')}"
    path.write_bytes(_bytes(name))
    return path


@pytest.fixture(scope="module")
def analyzer():
    return Analyzer()


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> list[Path]:
    folder = tmp_path_factory.mktemp("awkward")
    return [_file(folder, name) for name in CASES]


@pytest.mark.parametrize("name", list(CASES))
def test_every_awkward_photo_is_analysed_with_boxes_and_masks_inside_it(analyzer, name):
    size = Image.open(io.BytesIO(_bytes(name))).size
    result = analyzer.analyze(_bytes(name), name=name)
    assert (result.width, result.height) == size
    assert result.items, "a photo where nothing is found is described whole"
    for g in result.items:
        x1, y1, x2, y2 = g.box
        assert 0 <= x1 < x2 <= size[0] and 0 <= y1 < y2 <= size[1], g.box
        assert g.mask is None or g.mask.shape == (size[1], size[0])
        assert g.colors and g.attributes


def test_analyze_cli_reports_each_failure_by_name_and_goes_on(photos, tmp_path, monkeypatch):
    broken = tmp_path / "broken.jpg"
    broken.write_text("not an image")
    boom = _file(tmp_path, "tiny-16x16").rename(tmp_path / "boom.jpg")
    original = Analyzer.analyze

    def failing(self, image, **kwargs):  # an unforeseen error inside the pipeline, on one photo only
        if Path(image).name == "boom.jpg":
            raise RuntimeError("something inside broke")
        return original(self, image, **kwargs)

    monkeypatch.setattr(Analyzer, "analyze", failing)
    coco = tmp_path / "coco.json"
    result = runner.invoke(app, ["analyze", str(broken), str(boom), *map(str, photos), "--json", "--similar", "0",
                                 "--coco", str(coco)])
    assert result.exit_code == 0, result.output
    analysed = [json.loads(line)["image"] for line in result.stdout.splitlines() if line.startswith("{")]
    assert analysed == [str(p) for p in photos]
    assert [image["file_name"] for image in json.loads(coco.read_text())["images"]] == analysed
    assert f"{broken}: not an image" in _flat(result.stderr)
    assert f"{boom}: analysis failed (RuntimeError: something inside broke)" in _flat(result.stderr)
    assert "Traceback" not in result.output


def test_analyze_cli_fails_only_when_every_photo_failed(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_text("not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    result = runner.invoke(app, ["analyze", str(broken), str(tmp_path / "empty.png")])
    assert result.exit_code == 1
    assert "broken.jpg: not an image" in _flat(result.output) and "empty.png: empty file" in _flat(result.output)


def test_detect_cli_goes_on_past_an_image_the_detector_fails_on(photos, tmp_path, monkeypatch):
    from fashionlens.detect.inference import Detector

    original = Detector._decode

    def failing(self, images, scales, sizes, min_score):  # an error on the 1x1 image, in any batch holding it
        if (1, 1) in sizes:
            raise RuntimeError("decoding broke")
        return original(self, images, scales, sizes, min_score)

    monkeypatch.setattr(Detector, "_decode", failing)
    result = runner.invoke(app, ["detect", *map(str, photos), "--json", "--draw", str(tmp_path / "drawn")])
    assert result.exit_code == 0, result.output
    detected = [json.loads(line)["image"] for line in result.stdout.splitlines() if line.startswith("{")]
    assert detected == [str(p) for p in photos if p.stem != "one-pixel"]
    assert f"{photos[0]}: detection failed (RuntimeError: decoding broke)" in _flat(result.stderr)
    assert len(list((tmp_path / "drawn").iterdir())) == len(photos) - 1


def test_the_service_answers_each_awkward_photo_with_a_result(tmp_path):
    with running_service(tmp_path) as client:
        for name in CASES:
            response = client.post("/v1/analyze", files={"file": (f"{name}.img", _bytes(name), "image/png")})
            assert response.status_code == 201, (name, response.text[:300])
            assert response.json()["items"]
        for data in (b"", b"not an image", _bytes("cmyk")[:200]):  # empty, not an image, cut short
            response = client.post("/v1/analyze", files={"file": ("bad.jpg", data, "image/jpeg")})
            assert 400 <= response.status_code < 500, response.text[:300]
            assert response.json()["error"]["message"]


# fashion-products thumbnails (60x80) that raised TypeError in `cut_out` before issue 29's fix: a shoe box split in
# two on the parser's 256x341 grid, the second part too thin to keep one pixel of the photo
CRASHED = ("15053.jpg", "15083.jpg", "16252.jpg")


def test_the_thumbnails_that_crashed_are_analysed_everywhere(analyzer, shared_datasets, tmp_path):
    photos = [shared_datasets / "fashion-products" / "images" / name for name in CRASHED]
    if not all(p.is_file() for p in photos):
        pytest.skip(f"fashion-products thumbnails {CRASHED} are absent")
    for photo in photos:
        for g in analyzer.analyze(photo).items:
            x1, y1, x2, y2 = g.box
            assert 0 <= x1 < x2 <= 60 and 0 <= y1 < y2 <= 80
    result = runner.invoke(app, ["analyze", *map(str, photos), "--json", "--similar", "0"])
    assert result.exit_code == 0 and not result.stderr.strip(), result.output
    assert [json.loads(line)["image"] for line in result.stdout.splitlines()] == [str(p) for p in photos]
    with running_service(tmp_path) as client:
        for photo in photos:
            response = client.post("/v1/analyze", files={"file": (photo.name, photo.read_bytes(), "image/jpeg")})
            assert response.status_code == 201, response.text[:300]


def test_an_image_its_preparation_fails_on_is_an_item_with_a_reason(photos):
    """A batch reader's worker never raises: a file `prepare` fails on comes back with why, as an unreadable one does."""
    from fashionlens.features import ImageFileDataset

    class Sizes(ImageFileDataset):
        def prepare(self, i, data, image):
            if image.width == 1:
                raise ValueError("too narrow to letterbox")
            return image.size

    items = [Sizes(photos)[i] for i in range(len(photos))]
    assert items[0] == (0, None, "preparation failed (ValueError: too narrow to letterbox)")
    assert [item for _, item, _ in items[1:]] == [Image.open(p).size for p in photos[1:]]
