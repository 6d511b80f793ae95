"""`fashionlens catalog` on a few generated images: add (a folder and a table, duplicates, a bad file), search --json
round trip with filters, list, stats, remove."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from fashionlens.catalog import Catalog
from fashionlens.cli import app
from fashionlens.colors import family_of

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples" / "clothing"
COLOURS = {"red": (200, 30, 35), "blue": (40, 70, 190), "green": (40, 150, 60)}
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, ["catalog", *[str(a) for a in args]])


def garment(colour: tuple[int, int, int], seed: int) -> Image.Image:
    """A coloured shape on white, different in each picture."""
    rng = np.random.default_rng(seed)
    img = np.full((96, 96, 3), 255, np.uint8)
    top, left = rng.integers(5, 25, 2)
    img[top:top + 60, left:left + 60] = colour
    img = img.astype(np.int16) + rng.integers(-8, 8, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("shop")
    (folder / "sub").mkdir()
    for i, (name, rgb) in enumerate(COLOURS.items()):
        for j in range(2):
            garment(rgb, 10 * i + j).save(folder / ("sub" if j else ".") / f"{name}_{j}.jpg", quality=95)
    shutil.copy(SAMPLES / "dress_1.jpg", folder / "dress_1.jpg")
    shutil.copy(folder / "red_0.jpg", folder / "sub" / "red_copy.jpg")  # same bytes: one item
    (folder / "broken.jpg").write_bytes(b"not a jpeg at all")
    return folder


@pytest.fixture(scope="module")
def catalogue(images, tmp_path_factory) -> tuple[Path, object]:
    db = tmp_path_factory.mktemp("db") / "shop.db"
    table = images / "labels.csv"
    table.write_text("image,category,brand\nred_0.jpg,dress,acme\nblue_0.jpg,skirt,\n")  # attributes of two
    result = invoke("add", images, table, "--db", db, "--json")
    return db, result


def test_add_reports_summary_and_bad_images(catalogue):
    db, result = catalogue
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert {k: summary[k] for k in ("added", "already_present", "failed")} == {"added": 7, "already_present": 1, "failed": 1}
    assert summary["failures"][0]["source"].endswith("broken.jpg") and "not an image" in summary["failures"][0]["reason"]


def test_adding_again_keeps_one_item_per_image(catalogue, images):
    db, _ = catalogue
    result = invoke("add", images / "red_0.jpg", images / "sub", "--db", db, "--json")
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["added"], summary["already_present"], summary["failed"]) == (0, 5, 0)
    with Catalog.open(db) as catalog:
        assert len(catalog) == 7


def test_search_json_round_trip(catalogue, images):
    db, _ = catalogue
    queries = [images / "red_0.jpg", images / "dress_1.jpg"]
    result = invoke("search", *queries, "--db", db, "--top-k", 3, "--json")
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.strip().splitlines()]
    assert [line["query"] for line in lines] == [str(q) for q in queries]
    for line in lines:
        assert len(line["results"]) == 3
        assert line["results"][0]["score"] == pytest.approx(1.0, abs=1e-3)  # the image itself
        scores = [r["score"] for r in line["results"]]
        assert scores == sorted(scores, reverse=True)
        assert set(line["results"][0]) >= {"id", "image", "score", "attributes"}
    red = lines[0]["results"][0]
    assert red["image"] in (str(images / "red_0.jpg"), str(images / "sub" / "red_copy.jpg"))
    assert red["attributes"]["category"] == "dress" and red["attributes"]["brand"] == "acme"  # given wins
    assert family_of(red["colors"][0]) == "red"
    dress = lines[1]["results"][0]
    assert dress["attributes"]["category"] == "dress"  # predicted by the shipped classifier


def test_search_filters_by_colour_and_attribute(catalogue, images):
    db, _ = catalogue
    result = invoke("search", images / "dress_1.jpg", "--db", db, "--where", "color=red", "--json")
    assert result.exit_code == 0, result.output
    hits = json.loads(result.stdout)["results"]
    assert len(hits) == 2 and all("red" in {family_of(c) for c in h["colors"]} for h in hits)
    result = invoke("search", images / "blue_0.jpg", "--db", db, "--where", "brand=ACME", "--json")
    hits = json.loads(result.stdout)["results"]
    assert [Path(h["image"]).name for h in hits] == ["red_0.jpg"]  # values compare case-insensitively
    result = invoke("search", images / "red_0.jpg", "--db", db, "--where", "category=skirt", "--json")
    hits = json.loads(result.stdout)["results"]
    assert "blue_0.jpg" in [Path(h["image"]).name for h in hits]
    assert all(h["attributes"]["category"] == "skirt" for h in hits)
    result = invoke("search", images / "red_0.jpg", "--db", db, "--where", "category")
    assert result.exit_code == 2 and "COLUMN=VALUE" in result.output
    result = invoke("search", images / "red_0.jpg", "--db", db, "--where", "label=skirt")  # a typo for category
    assert result.exit_code == 2 and "unknown filter key label" in result.output
    assert "brand" in result.output and "category" in result.output  # the known keys are named


def test_search_reports_unusable_queries(catalogue, images):
    db, _ = catalogue
    result = invoke("search", images / "broken.jpg", images / "blue_0.jpg", "--db", db, "--json")
    assert result.exit_code == 0, result.output
    assert len(result.stdout.strip().splitlines()) == 1
    assert "broken.jpg" in result.output


def test_list_stats_remove(catalogue, tmp_path):
    db, _ = catalogue
    copy = tmp_path / "copy.db"
    shutil.copy(db, copy)  # keep the module's catalogue intact for the other tests
    listed = [json.loads(line) for line in invoke("list", "--db", copy, "--json").stdout.strip().splitlines()]
    assert len(listed) == 7
    stats = json.loads(invoke("stats", "--db", copy, "--json").stdout)
    assert stats["items"] == 7 and stats["labels"]["category"]["dress"] >= 2
    result = invoke("remove", listed[0]["id"], 999, "--db", copy)
    assert result.exit_code == 1 and "no such id: 999" in result.output
    assert json.loads(invoke("stats", "--db", copy, "--json").stdout)["items"] == 6
    result = invoke("search", Path(listed[0]["image"]), "--db", copy, "--json")
    assert listed[0]["id"] not in [h["id"] for h in json.loads(result.stdout)["results"]]


def test_dedup_finds_near_copies_among_catalogue_items(tmp_path):
    """A re-encoded, resized copy and a mirrored copy of a photo are separate items (other bytes) but one near
    group; the other photos stay apart."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("dress_1", "hat_1", "pants_1", "shoes_1"):
        shutil.copy(SAMPLES / f"{name}.jpg", folder / f"{name}.jpg")
    original = Image.open(SAMPLES / "dress_1.jpg")
    original.resize((original.width * 3 // 4, original.height * 3 // 4)).save(folder / "dress_small.jpg", quality=70)
    original.transpose(Image.Transpose.FLIP_LEFT_RIGHT).save(folder / "dress_mirror.jpg", quality=90)
    db = tmp_path / "shop.db"
    assert invoke("add", folder, "--db", db, "--no-colors").exit_code == 0
    result = runner.invoke(app, ["dedup", "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    groups = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [sorted(Path(p).name for p in g["images"]) for g in groups] == [["dress_1.jpg", "dress_mirror.jpg", "dress_small.jpg"]]
    assert groups[0]["kind"] == "near"
