"""Duplicate finding on generated images: planted copies found, distinct pictures left alone, bad files reported."""

from __future__ import annotations

import json
import random
import shutil

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageOps
from typer.testing import CliRunner

from fashionlens.cli import app
from fashionlens.dedup import (EXACT, NEAR, Fingerprints, Thresholds, find_duplicates, group_fingerprints,
                               near_pairs)
from fashionlens.fingerprints import hash_codes


def _picture(seed: int) -> Image.Image:
    """A distinct, photo-sized picture: random soft shapes on a random gradient."""
    rng = random.Random(seed)
    w, h = 320, 240
    x = np.linspace(0, 1, w)[None, :, None]
    y = np.linspace(0, 1, h)[:, None, None]
    a, b = np.array([rng.randint(0, 255) for _ in range(3)]), np.array([rng.randint(0, 255) for _ in range(3)])
    image = Image.fromarray((a * (1 - x) * (1 - y) + b * x * y + 60 * y).clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = rng.randint(0, w - 60), rng.randint(0, h - 60)
        box = (x0, y0, x0 + rng.randint(40, 160), y0 + rng.randint(40, 120))
        fill = tuple(rng.randint(0, 255) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=fill)
    return image


COPIES = {
    "jpeg50": lambda im: (im, "JPEG", {"quality": 50}),
    "webp": lambda im: (im, "WEBP", {"quality": 80}),
    "small": lambda im: (im.resize((160, 120)), "JPEG", {"quality": 85}),
    "large": lambda im: (im.resize((560, 420)), "PNG", {}),
    "cropped": lambda im: (im.crop((6, 5, 314, 235)), "JPEG", {"quality": 90}),  # 4% off each side
    "flipped": lambda im: (ImageOps.mirror(im), "PNG", {}),
    "brighter": lambda im: (ImageEnhance.Brightness(im).enhance(1.15), "JPEG", {"quality": 90}),
}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """12 distinct pictures; picture 0 has one copy of each kind, picture 1 a byte copy in a subfolder."""
    root = tmp_path_factory.mktemp("dedup")
    (root / "sub" / "deeper").mkdir(parents=True)
    originals = []
    for i in range(12):
        path = root / f"p{i:02d}.png"
        _picture(i).save(path)
        originals.append(path)
    copies = []
    for name, make in COPIES.items():
        image, fmt, params = make(_picture(0))
        path = root / "sub" / f"p00_{name}.{fmt.lower()}"
        image.save(path, fmt, **params)
        copies.append(path)
    byte_copy = root / "sub" / "deeper" / "p01_copy.png"
    shutil.copyfile(originals[1], byte_copy)
    (root / "sub" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    (root / "notes.txt").write_text("not an image, and not an image suffix either")
    return root, originals, copies, byte_copy


def test_finds_planted_copies_and_leaves_distinct_pictures_alone(planted):
    root, originals, copies, byte_copy = planted
    report = find_duplicates([root], embeddings=False, progress=False)
    assert report.images == 12 + len(copies) + 1
    assert [(f.source.endswith("broken.jpg"), "cannot" in f.reason or "corrupt" in f.reason)
            for f in report.failures] == [(True, True)]
    by_kind = {g.kind: g for g in report.groups}
    assert len(report.groups) == 2 and set(by_kind) == {EXACT, NEAR}
    assert sorted(by_kind[NEAR].images) == sorted(map(str, [originals[0], *copies]))
    assert sorted(by_kind[EXACT].images) == sorted(map(str, [originals[1], byte_copy]))


def test_flip_needs_the_mirrored_hash(planted):
    root, originals, copies, _ = planted
    flipped = next(p for p in copies if "flipped" in p.name)
    with_flip = find_duplicates([originals[0], flipped], embeddings=False, progress=False)
    assert [g.kind for g in with_flip.groups] == [NEAR]
    from fashionlens.dedup import hash_images

    _, fp, _ = hash_images([originals[0], flipped], progress=False)
    assert not len(near_pairs(Fingerprints(fp.sha256, fp.phash)))  # without the mirrored hash: no link


def test_group_fingerprints_links_by_hash_and_by_embedding():
    def unit(v):
        v = np.asarray(v, dtype=np.float32)
        return v / np.linalg.norm(v)

    sha = ["a", "b", "c", "d", "a", "e"]
    ph = ["0000000000000000", "000000000000000f", "ffffffffffffffff", "0f0f0f0f0f0f0f0f", "0000000000000000", None]
    vectors = np.stack([unit([1, 0, 0]), unit([0, 1, 0]), unit([0, 0, 1]), unit([0, 0.2, 1]), unit([1, 0, 0]),
                        unit([0.05, 1, 0])])
    fp = Fingerprints(sha, ph, None, vectors)
    limits = Thresholds(max_hamming=4, min_cosine=0.95)
    # 0~1 and 1~4 by hash (4 bits), 0~4 same bytes, 2~3 by cosine (0.98), 1~5 by cosine; 5 has no hash
    assert near_pairs(fp, limits).tolist() == [[0, 1], [0, 4], [1, 4], [1, 5], [2, 3]]
    groups = group_fingerprints(fp, limits)
    assert [(g.kind, g.members) for g in groups] == [(NEAR, [0, 1, 4, 5]), (NEAR, [2, 3])]
    only_bytes = group_fingerprints(Fingerprints(sha, [None] * 6), limits)
    assert [(g.kind, g.members) for g in only_bytes] == [(EXACT, [0, 4])]
    assert group_fingerprints(Fingerprints([], [])) == []
    with pytest.raises(ValueError, match="disagree"):
        Fingerprints(["a"], [])


def test_hash_codes_round_trip():
    codes = hash_codes(["0123456789abcdef", "ffffffffffffffff"])
    assert codes.dtype == np.uint8 and codes.shape == (2, 8)
    assert bytes(codes[0]).hex() == "0123456789abcdef" and codes[1].tolist() == [255] * 8


def test_cli_dedup_json_lines(planted):
    root, originals, copies, byte_copy = planted
    result = CliRunner().invoke(app, ["dedup", str(root), "--json", "--no-embeddings"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(set(line) == {"kind", "images"} for line in lines)
    assert sorted(line["kind"] for line in lines) == [EXACT, NEAR]
    assert "broken.jpg" in result.output and "broken.jpg" not in result.stdout  # reported on stderr

    readable = CliRunner().invoke(app, ["dedup", str(originals[1]), str(byte_copy), "--no-embeddings"])
    assert readable.exit_code == 0 and "exact" in readable.stdout and "1 duplicate groups" in readable.stdout
    missing = CliRunner().invoke(app, ["dedup", str(root / "nope")])
    assert missing.exit_code == 2 and "not found" in missing.output


def test_split_keeps_near_duplicates_together():
    from fashionlens.splits import make_split

    n = 40
    rng = np.random.default_rng(0)
    ph = [f"{int(x):016x}" for x in rng.integers(0, 2**63, n)]
    sha = [f"s{i}" for i in range(n)]
    near = [(0, 1), (2, 3), (4, 5)]
    for i, j in near:  # the copy's hash differs in 3 bits, its bytes entirely
        ph[j] = f"{int(ph[i], 16) ^ 0b1011:016x}"
    strata = ["a", "b"] * (n // 2)
    split = make_split(strata, sha, ph, validation=0.25, test=0.25, seed=0, max_hamming=6)
    assert split.duplicate_groups == 3 and split.duplicate_images == 6
    parts = [set(split.train), set(split.validation), set(split.test)]
    for i, j in near:
        assert any(i in part and j in part for part in parts)
    exact_only = make_split(strata, sha, ph, validation=0.25, test=0.25, seed=0, max_hamming=-1)
    assert exact_only.duplicate_groups == 0
    same_hash = make_split(strata, sha, ph, validation=0.25, test=0.25, seed=0)  # the default: equal hashes only
    assert same_hash.duplicate_groups == 0
