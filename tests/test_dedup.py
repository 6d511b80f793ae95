"""Duplicate finding on generated images: planted copies found (augmented exports too), distinct pictures and colour
variants left alone, letterbox bars trimmed, bad files reported."""

from __future__ import annotations

import dataclasses
import io
import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageOps
from typer.testing import CliRunner

from fashionlens.cli import app
from fashionlens.dedup import (EXACT, NEAR, Fingerprints, Thresholds, covering_groups, find_duplicates,
                               group_fingerprints, near_pairs)
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


def test_far_hash_pairs_need_the_embeddings_to_agree():
    """Beyond `far_hamming` bits a hash pair is a candidate only where the cosine reaches `far_min_cosine`: a
    catalogue's look-alikes share hashes, not embeddings. Without embeddings every pair within the radius stays."""
    ph = ["0000000000000000", "000000000000003f", "000000000000003f", "0000000000000003"]  # 6, 6 and 2 bits from 0
    vectors = np.array([[1, 0], [0, 1], [1, 0], [0, 1]], np.float32)  # 1 and 3 look unlike 0, 2 like it
    limits = Thresholds(max_hamming=10, min_signature=2.0, far_hamming=2, far_min_cosine=0.95)
    pairs = near_pairs(Fingerprints(["a", "b", "c", "d"], ph, None, vectors), limits).tolist()
    assert [0, 2] in pairs and [0, 3] in pairs  # far but alike; near in the hash whatever the embeddings say
    assert [0, 1] not in pairs  # far and unlike: a look-alike
    assert [0, 1] in near_pairs(Fingerprints(["a", "b", "c", "d"], ph), limits).tolist()


def test_components_skip_the_pairs_a_group_already_joins(planted, monkeypatch):
    """A split keeps whole groups together, so a pair inside a group already joined is not verified: every
    planted copy is still grouped with its original, with fewer verifications."""
    import fashionlens.dedup.groups as dedup
    from fashionlens.dedup import CANDIDATES, group_labels, hash_images, verified_pairs

    _, originals, copies, _ = planted
    files = [originals[0], *copies, *originals[1:6]]
    _, fp, _ = hash_images(files, progress=False)
    candidates = near_pairs(fp, CANDIDATES)
    calls = []
    counting = dedup.verify_pair

    def counted(a, b):
        calls.append(1)
        return counting(a, b)

    monkeypatch.setattr(dedup, "verify_pair", counted)
    labels = {}
    for components in (False, True):
        calls.clear()
        pairs = verified_pairs(files, candidates, progress=False, sha256=fp.sha256, components=components)
        labels[components] = (group_labels(fp, transitive=True, pairs=pairs), len(calls))
    (every, all_checks), (joined, fewer_checks) = labels[False], labels[True]
    assert (every == joined).all() and len(set(joined[:1 + len(copies)].tolist())) == 1
    assert len(set(joined.tolist())) == 1 + 5  # the other originals stay apart
    assert fewer_checks < all_checks and all_checks == len(candidates)


def test_byte_identical_files_are_measured_once_against_another_image(planted, tmp_path, monkeypatch):
    import fashionlens.dedup.groups as dedup
    from fashionlens.cache import FeatureCache
    from fashionlens.dedup import verified_pairs
    from fashionlens.fingerprints import sha256_file

    _, originals, _, byte_copy = planted
    files = [originals[1], byte_copy, originals[2]]
    calls = []
    counting = dedup.verify_pair
    monkeypatch.setattr(dedup, "verify_pair", lambda a, b: calls.append(1) or counting(a, b))
    found = verified_pairs(files, np.array([[0, 2], [1, 2]]), progress=False, cache=FeatureCache(tmp_path / "c.sqlite"),
                           sha256=[sha256_file(f) for f in files])
    assert len(calls) == 1 and not len(found)  # one sha256 pair, one measurement; no copies


def test_covering_groups_hold_every_link_without_chaining_them():
    # a chain of links 0~1~2~3 (say 2~3 is a false one), 4 and 5 the same bytes, 6 alone
    fp = Fingerprints(["a", "b", "c", "d", "e", "e", "f"], [None] * 7)
    groups = covering_groups(fp, np.array([[0, 1], [1, 2], [2, 3]]))
    assert [(g.kind, g.members) for g in groups] == [(NEAR, [1, 0, 2]), (NEAR, [2, 1, 3]), (EXACT, [4, 5])]
    assert not any({0, 3} <= set(g.members) for g in groups)  # chained, 0 and 3 would share a group
    assert covering_groups(Fingerprints([], []), np.zeros((0, 2), np.int64)) == []


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


def _rotate(image, degrees):
    return image.rotate(degrees, Image.Resampling.BILINEAR, fillcolor=(0, 0, 0))


def _shear(image, degrees):
    k = np.tan(np.radians(degrees))
    return image.transform(image.size, Image.Transform.AFFINE, (1, k, -k * image.height / 2, 0, 1, 0),
                           Image.Resampling.BILINEAR, fillcolor=(0, 0, 0))


def _letterbox(image, colour, side=400):
    scale = side / max(image.size)
    small = image.resize((round(image.width * scale), round(image.height * scale)))
    canvas = Image.new("RGB", (side, side), colour)
    canvas.paste(small, ((side - small.width) // 2, (side - small.height) // 2))
    return canvas


# what an annotation tool's augmented export makes of one photo, at the strengths the issue names
AUGMENTED = {
    "rotated +15": lambda im: _rotate(im, 15),
    "rotated -8": lambda im: _rotate(im, -8),
    "sheared 10": lambda im: _shear(im, 10),
    "turned 90": lambda im: im.transpose(Image.Transpose.ROTATE_90),
    "turned 180": lambda im: im.transpose(Image.Transpose.ROTATE_180),
    "mirrored": ImageOps.mirror,
    "greyscale": lambda im: ImageOps.grayscale(im).convert("RGB"),
    "darker 25%": lambda im: ImageEnhance.Brightness(im).enhance(0.75),
    "brighter 25%": lambda im: ImageEnhance.Brightness(im).enhance(1.25),
    "blurred 1.5 px": lambda im: im.filter(ImageFilter.GaussianBlur(1.5)),
    "black bars": lambda im: _letterbox(im, (0, 0, 0)),
    "white bars": lambda im: _letterbox(im, (255, 255, 255)),
    "turned 90 + black bars + blur": lambda im: _letterbox(im, (0, 0, 0)).transpose(
        Image.Transpose.ROTATE_270).filter(ImageFilter.GaussianBlur(1.0)),
}


def _garment(colour: tuple[int, int, int], seed: int = 0) -> Image.Image:
    """A t-shirt of one colour, with seams and a print, on a textured studio backdrop shared by every colour."""
    rng = np.random.default_rng(seed)
    backdrop = (rng.normal(200, 12, (300, 260, 1)) * np.ones(3)).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(backdrop)
    draw = ImageDraw.Draw(image)
    for x in range(0, 260, 20):  # the studio floor's boards
        draw.line((x, 250, x + 30, 300), fill=(150, 140, 120), width=2)
    body = [(70, 60), (110, 45), (150, 45), (190, 60), (230, 110), (200, 130), (185, 110), (185, 250),
            (75, 250), (75, 110), (60, 130), (30, 110)]
    draw.polygon(body, fill=colour, outline=(30, 30, 30))
    shade = tuple(int(c * 0.6) for c in colour)
    for y in range(140, 240, 25):
        draw.line((85, y, 175, y + 5), fill=shade, width=3)
    draw.ellipse((110, 120, 150, 160), fill=(240, 240, 240), outline=(20, 20, 20), width=3)
    draw.rectangle((118, 170, 142, 200), outline=(20, 20, 20), width=2)
    return image


@pytest.fixture(scope="module")
def augmented_export(tmp_path_factory):
    """Two generated photos, each with every augmented version of it as an export would hold them."""
    root = tmp_path_factory.mktemp("export")
    families = {}
    for name, original in (("shapes", _picture(3)), ("garment", _garment((200, 40, 40)))):
        paths = [root / f"{name}.png"]
        original.save(paths[0])
        for k, (transform_name, transform) in enumerate(AUGMENTED.items()):
            paths.append(root / f"{name}_aug{k}.jpg")
            transform(original).save(paths[-1], "JPEG", quality=90)
        families[name] = paths
    for seed in (4, 5):  # two other pictures, neither of them a copy
        path = root / f"other{seed}.png"
        _picture(seed).save(path)
    return root, families


@pytest.mark.slow
def test_augmented_versions_are_grouped_with_their_original(augmented_export):
    root, families = augmented_export
    report = find_duplicates([root], embeddings=False, progress=False)
    assert report.images == sum(map(len, families.values())) + 2
    groups = sorted(sorted(group.images) for group in report.groups)
    assert groups == sorted(sorted(map(str, paths)) for paths in families.values()), [
        [Path(p).name for p in g] for g in groups]
    assert all(group.kind == NEAR for group in report.groups)


@pytest.mark.parametrize("transform_name", list(AUGMENTED))
def test_each_transform_is_verified_as_a_copy(augmented_export, transform_name):
    from fashionlens.dedup.verify import DEFAULT_RULE, Picture, verify_pair

    _, families = augmented_export
    k = list(AUGMENTED).index(transform_name)
    for paths in families.values():
        original, copy = Picture(Image.open(paths[0])), Picture(Image.open(paths[k + 1]))
        check = verify_pair(original, copy)
        assert check.passes(DEFAULT_RULE), (paths[k + 1].name, check)


def test_colour_variants_of_one_garment_are_not_grouped(tmp_path):
    colours = {"red": (200, 40, 40), "blue": (40, 60, 190), "green": (40, 160, 60), "yellow": (230, 200, 40)}
    for name, colour in colours.items():
        _garment(colour).save(tmp_path / f"{name}.png")
    ImageEnhance.Brightness(_garment(colours["red"])).enhance(0.8).save(tmp_path / "red_darker.jpg", quality=90)
    report = find_duplicates([tmp_path], embeddings=False, progress=False)
    assert [sorted(Path(p).name for p in g.images) for g in report.groups] == [["red.png", "red_darker.jpg"]]
    # the unverified thresholds alone would merge them: the verification is what keeps them apart
    unverified = find_duplicates([tmp_path], embeddings=False, verify=False, progress=False)
    assert max(len(g.images) for g in unverified.groups) > 2


def _cutout(image: Image.Image, boxes=((0.1, 0.12, 0.28, 0.26), (0.62, 0.5, 0.8, 0.66), (0.3, 0.78, 0.46, 0.94),
                                        (0.7, 0.05, 0.86, 0.2))) -> Image.Image:
    """Black boxes pasted over the picture (fractions of its sides), as an export's cutout does."""
    out = image.copy()
    draw = ImageDraw.Draw(out)
    for left, top, right, bottom in boxes:
        draw.rectangle((left * out.width, top * out.height, right * out.width, bottom * out.height), fill=(0, 0, 0))
    return out


def _zoomed(image: Image.Image, share: float = 0.6) -> Image.Image:
    """A crop keeping `share` of the picture's area (off-centre), scaled back to the picture's size."""
    side = np.sqrt(share)
    left, top = round(0.3 * (1 - side) * image.width), round(0.8 * (1 - side) * image.height)
    box = (left, top, left + round(side * image.width), top + round(side * image.height))
    return image.crop(box).resize(image.size, Image.Resampling.BILINEAR)


# what a real annotation tool's export does beyond the benchmark's first augmented set
EXPORTED = {
    "cutout boxes": _cutout,
    "rotated 20 in greyscale": lambda im: ImageOps.grayscale(_rotate(im, 20)).convert("RGB"),
    "60% crop": _zoomed,
}


@pytest.mark.slow
@pytest.mark.parametrize("name", ["shapes", "garment"])
def test_cutout_rotated_greyscale_and_cropped_versions_are_grouped_with_the_original(tmp_path, name):
    original = _picture(3) if name == "shapes" else _garment((200, 40, 40))
    original.save(tmp_path / "original.png")
    for k, transform in enumerate(EXPORTED.values()):
        transform(original).save(tmp_path / f"version{k}.jpg", "JPEG", quality=90)
    for seed in (4, 5):  # two other pictures
        _picture(seed).save(tmp_path / f"other{seed}.png")
    report = find_duplicates([tmp_path], progress=False)  # a crop is a candidate through the embedding's neighbours
    assert [sorted(Path(p).name for p in g.images) for g in report.groups] == [
        ["original.png"] + [f"version{k}.jpg" for k in range(len(EXPORTED))]]


def test_colour_variants_under_the_same_cutout_are_not_grouped(tmp_path):
    colours = {"red": (200, 40, 40), "blue": (40, 60, 190), "green": (40, 160, 60), "yellow": (230, 200, 40)}
    for name, colour in colours.items():
        _cutout(_garment(colour)).save(tmp_path / f"{name}.png")
    ImageEnhance.Brightness(_cutout(_garment(colours["red"]))).enhance(0.8).save(tmp_path / "red_darker.jpg", quality=90)
    report = find_duplicates([tmp_path], embeddings=False, progress=False)
    assert [sorted(Path(p).name for p in g.images) for g in report.groups] == [["red.png", "red_darker.jpg"]]


def _model_in(shirt: str, colour: tuple[int, int, int] = (165, 165, 165), seed: int = 7) -> Image.Image:
    """One model in one pose and light on a white studio floor, in a grey check shirt or a printed T-shirt of
    `colour`, as a catalogue's 60x80 thumbnail: everything but the shirt is the same picture (`seed`: the hair
    and the jeans' creases, another model's in another shoot)."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (300, 400), (250, 250, 250))
    draw = ImageDraw.Draw(image)
    skin = (214, 170, 140)
    draw.polygon([(70, 110), (230, 110), (250, 250), (215, 255), (205, 170), (95, 170), (85, 255), (50, 250)], fill=skin)
    draw.ellipse((120, 20, 180, 95), fill=skin)
    draw.rectangle((140, 90, 160, 110), fill=skin)
    for _ in range(40):  # creases and stitching of the jeans
        x, y = rng.integers(100, 200), rng.integers(240, 395)
        draw.line((x, y, x + rng.integers(-15, 15), y + rng.integers(5, 25)),
                  fill=tuple(int(c) for c in rng.integers(20, 120, 3)), width=2)
    draw.rectangle((100, 240, 200, 395), outline=(30, 45, 80), width=3)
    draw.line((150, 240, 150, 395), fill=(30, 45, 80), width=4)
    for _ in range(25):  # hair
        x, y = rng.integers(118, 182), rng.integers(12, 40)
        draw.ellipse((x, y, x + 9, y + 6), fill=(40, 30, 25))
    draw.ellipse((133, 50, 143, 56), fill=(30, 30, 30))
    draw.ellipse((157, 50, 167, 56), fill=(30, 30, 30))
    body = [(85, 110), (215, 110), (230, 170), (205, 175), (200, 250), (100, 250), (95, 175), (70, 170)]
    if shirt == "check":
        draw.polygon(body, fill=(200, 200, 200))
        for k in range(70, 235, 16):
            draw.line((k, 110, k, 250), fill=(110, 110, 110), width=4)
            draw.line((70, k + 40, 230, k + 40), fill=(110, 110, 110), width=4)
    else:
        draw.polygon(body, fill=colour)
        draw.ellipse((130, 150, 170, 190), fill=(235, 235, 235))
        draw.rectangle((130, 215, 170, 232), fill=(60, 60, 60))
    return image.resize((60, 80), Image.Resampling.LANCZOS)


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def test_one_model_in_another_shirt_is_not_a_copy_of_the_thumbnail():
    from fashionlens.dedup.verify import DEFAULT_RULE, CopyRule, Picture, verify_pair

    check, printed = Picture(_model_in("check")), Picture(_jpeg(_model_in("print"), 90))
    before = CopyRule(min_inliers=20, min_similarity=0.9, max_colour_change=0.05, min_local_similarity=-1.0,
                      max_colour_residual=255.0, min_fine_similarity=-1.0)
    look_alike = verify_pair(check, printed, before)
    assert look_alike.passes(before), look_alike  # face, arms, jeans and floor agree: the whole-overlap rule took it
    assert look_alike.local_similarity < DEFAULT_RULE.min_local_similarity  # the cells over the shirt do not
    assert not verify_pair(check, printed).passes(DEFAULT_RULE)
    for copy in (_jpeg(_model_in("check"), 50), ImageOps.mirror(_jpeg(_model_in("check"), 80)),
                 _model_in("check").crop((2, 3, 59, 78))):
        found = verify_pair(check, Picture(copy))
        assert found.passes(DEFAULT_RULE), found


@pytest.mark.parametrize("shirt, other", [((200, 40, 40), (115, 80, 60)),  # red and brown, as grey the same
                                          ((235, 235, 235), (200, 225, 250))])  # white and a pale blue
def test_a_shirt_of_another_shade_is_no_copy(shirt, other):
    from fashionlens.dedup.verify import DEFAULT_RULE, Picture, verify_pair

    original = Picture(_model_in("print", shirt))
    variant = verify_pair(original, Picture(_jpeg(_model_in("print", other), 90)))
    assert not variant.passes(DEFAULT_RULE), variant
    blind = dataclasses.replace(DEFAULT_RULE, max_colour_residual=255.0, min_fine_similarity=-1.0)
    assert variant.passes(blind)  # the hue test and the grey picture alone take it: the residual colour does not
    for copy in (ImageEnhance.Brightness(_model_in("print", shirt)).enhance(1.2),
                 ImageEnhance.Brightness(_model_in("print", shirt)).enhance(0.8),
                 ImageEnhance.Contrast(_model_in("print", shirt)).enhance(0.75), _jpeg(_model_in("print", shirt), 40),
                 ImageOps.grayscale(_model_in("print", shirt)).convert("RGB")):
        found = verify_pair(original, Picture(copy))
        assert found.passes(DEFAULT_RULE), found
    black = ImageOps.grayscale(_model_in("print", (40, 40, 40))).convert("RGB")  # no colour to compare: the greys
    assert not verify_pair(original, Picture(black)).passes(DEFAULT_RULE)


@pytest.mark.parametrize("shirt, seed", [((200, 40, 40), 8), ((200, 40, 40), 11), ((40, 60, 160), 8),
                                         ((40, 60, 160), 11)])
def test_another_model_in_the_same_shirt_and_pose_is_no_copy(shirt, seed):
    """A catalogue's 60x80 thumbnails of two models in one shirt, pose and light agree in every quarter of the
    frame; the finer grid sees the hair and the creases that differ."""
    from fashionlens.dedup.verify import DEFAULT_RULE, Picture, verify_pair

    original, other = Picture(_model_in("print", shirt)), Picture(_jpeg(_model_in("print", shirt, seed), 90))
    coarse = dataclasses.replace(DEFAULT_RULE, min_fine_similarity=-1.0)
    assert verify_pair(original, other, coarse).passes(coarse)  # the quarters alone took it
    found = verify_pair(original, other)
    assert not found.passes(DEFAULT_RULE), found
    for copy in (_jpeg(_model_in("print", shirt), 40), ImageOps.mirror(_model_in("print", shirt)),
                 ImageEnhance.Brightness(_model_in("print", shirt)).enhance(1.2)):
        assert verify_pair(original, Picture(copy)).passes(DEFAULT_RULE)


def test_a_greyscale_copy_keeps_the_grey_levels_of_its_original():
    """A greyscale export keeps the luma of the photo it was made from; a grey picture whose greys were mapped
    otherwise (another exposure: a grey product shot on the set of a red one) is no copy on a few keypoints,
    though one gain and offset would map one onto the other. Where many keypoints agree (an export's greyscale
    then relit version of a detailed photo) it is. A grey product photographed keeps a little colour and is
    compared by its colours."""
    from fashionlens.dedup.verify import DEFAULT_RULE, Picture, verify_pair

    red = _model_in("print", (200, 40, 40))
    original, grey = Picture(red), ImageOps.grayscale(red).convert("RGB")
    assert Picture(grey).desaturated and original.coloured
    found = verify_pair(original, Picture(_jpeg(grey, 85)))
    assert found.passes(DEFAULT_RULE) and found.grey_shift < 2, found
    blind = dataclasses.replace(DEFAULT_RULE, max_grey_shift=255.0)
    few_keypoints = dataclasses.replace(DEFAULT_RULE, recoloured_min_inliers=10 ** 6)
    for other in (ImageEnhance.Contrast(grey).enhance(0.7), ImageEnhance.Brightness(grey).enhance(0.85)):
        found = verify_pair(original, Picture(_jpeg(other, 85)))
        assert found.passes(blind) and not found.passes(few_keypoints), found
        assert found.inliers >= DEFAULT_RULE.recoloured_min_inliers and found.passes(DEFAULT_RULE), found
    tinted = Image.blend(grey, Image.new("RGB", grey.size, (140, 110, 90)), 0.15)  # a grey product, not a file
    tinted_picture = Picture(tinted)
    assert not tinted_picture.coloured and not tinted_picture.desaturated
    assert not verify_pair(original, tinted_picture).passes(DEFAULT_RULE)


def test_cached_verifications_are_not_measured_again(tmp_path):
    """A pair verified before is judged from its cached figures: its images are not read again."""
    from fashionlens.cache import FeatureCache
    from fashionlens.dedup import VERIFICATION_CACHE_KEY, verified_pairs

    paths = []
    for k, image in enumerate((_model_in("check"), _model_in("print", seed=8))):  # no copies of each other
        paths.append(tmp_path / f"{k}.png")
        image.save(paths[-1])
    sha = [f"{k:064x}" for k in range(2)]
    assert not len(verified_pairs(paths, np.array([[0, 1]]), progress=False, sha256=sha))
    cache = FeatureCache(tmp_path / "cache.sqlite")
    cache.put_vectors(VERIFICATION_CACHE_KEY, [(f"{sha[0]}:{sha[1]}", np.array([1, 40, 0.99, 0, 0, 0.95, 0, 1, 0],
                                                                              np.float32))])
    assert verified_pairs(paths, np.array([[0, 1]]), progress=False, cache=cache, sha256=sha).tolist() == [[0, 1]]


@pytest.mark.parametrize("colour", [(0, 0, 0), (255, 255, 255)])
def test_padding_trim_removes_black_and_white_bars(colour):
    from fashionlens.dedup.signature import padding_box, signature, trim_padding

    picture = _garment((40, 60, 190))  # its backdrop is neither black nor white
    canvas = Image.new("RGB", (400, 380), colour)
    canvas.paste(picture, (90, 40))  # bars of different widths on all four sides
    assert padding_box(canvas) == (90, 40, 90 + picture.width, 40 + picture.height)
    buffer = io.BytesIO()
    canvas.save(buffer, "JPEG", quality=85)  # JPEG noise at the bars' edges
    left, top, right, bottom = padding_box(Image.open(buffer))
    assert abs(left - 90) <= 2 and abs(top - 40) <= 2 and abs(right - 350) <= 2 and abs(bottom - 340) <= 2
    assert trim_padding(picture) is picture  # nothing to trim
    assert float(signature(canvas) @ signature(picture)) > 0.99
    blank = Image.new("RGB", (100, 100), colour)
    assert padding_box(blank) == (0, 0, 100, 100)  # all bar: kept whole rather than trimmed away


def test_split_groups_verified_copies_and_names_the_leaks():
    from fashionlens.splits import make_split

    n = 12
    sha = [f"s{i}" for i in range(n)]
    ph = [f"{i:016x}" for i in range(n)]
    strata = ["a", "b"] * (n // 2)
    layout = ["train"] * 8 + ["validation"] * 2 + ["test"] * 2
    copies = np.array([[0, 8], [1, 2], [9, 10], [3, 4], [4, 11]])  # as dedup.copy_pairs would find them
    split = make_split(strata, sha, ph, layout, copies=copies)
    assert split.duplicate_groups == 4 and split.duplicate_images == 9
    assert split.dropped_leaks == 3  # 0 (copy of 8), 3 and 4 (chained to 11)
    assert sorted((leak.members, leak.splits) for leak in split.leaks) == [
        ([0, 8], ["train", "validation"]), ([3, 4, 11], ["train", "train", "test"]),
        ([9, 10], ["validation", "test"])]
    assert split.summary()["leaking_groups"] == 3
    assert make_split(strata, sha, ph, layout).leaks == []  # without the copies nothing links them


def test_training_copies_are_found_from_cached_signatures(augmented_export, tmp_path, monkeypatch):
    from fashionlens.cache import FeatureCache
    from fashionlens.dedup import SIGNATURE_CACHE_KEY, dataset_copy_pairs
    from fashionlens.fingerprints import perceptual_hash, sha256_file

    _, families = augmented_export
    paths = families["garment"][:4] + families["shapes"][:3]
    sha = [sha256_file(p) for p in paths]
    ph = [perceptual_hash(Image.open(p).convert("RGB")) for p in paths]
    cache = FeatureCache(tmp_path / "cache.sqlite")
    pairs = dataset_copy_pairs(paths, sha, ph, cache, progress=False)
    within = {tuple(sorted(p)) for p in pairs.tolist()}
    assert within and all((a < 4) == (b < 4) for a, b in within)  # never across the two pictures
    assert len(cache.features(SIGNATURE_CACHE_KEY, sha)) == len(paths)
    assert cache.phashes(sha) == dict(zip(sha, ph, strict=True))  # the features' hashes are kept as they were
    import fashionlens.dedup.groups as dedup

    def unreadable(*args, **kwargs):
        raise AssertionError("a second run read an image")

    monkeypatch.setattr(dedup, "load_image", unreadable)  # signatures, mirrored hashes and verifications are cached
    again = dataset_copy_pairs(paths, sha, ph, cache, progress=False)
    assert {tuple(sorted(p)) for p in again.tolist()} == within


def _hue_saturation(image: Image.Image, turn: int, saturation: float) -> Image.Image:
    """The whole picture's hue turned (of 256 steps) and its saturation scaled, as an export's colour jitter does."""
    h, s, v = image.convert("HSV").split()
    h = h.point(lambda x: (x + turn) % 256)
    s = s.point(lambda x: min(255, round(x * saturation)))
    return Image.merge("HSV", (h, s, v)).convert("RGB")


def test_an_exports_hue_and_saturation_change_is_a_copy_but_another_colour_is_not():
    """One colour change for the whole picture (hue turned by 11 degrees, saturation up by 20%, 10% darker) is
    what an export makes; the same garment in another colour on the same set is another product."""
    from fashionlens.dedup.verify import DEFAULT_RULE, Picture, verify_pair

    original = Picture(_garment((200, 40, 40)))
    version = ImageEnhance.Brightness(_hue_saturation(_garment((200, 40, 40)), 8, 1.2)).enhance(0.9)
    found = verify_pair(original, Picture(_jpeg(version, 90)))
    assert found.passes(DEFAULT_RULE), found
    usual_only = dataclasses.replace(DEFAULT_RULE, recoloured_min_inliers=10 ** 6)
    assert not found.passes(usual_only), found  # one gain and offset for all channels leaves the change behind
    for colour in ((40, 60, 190), (200, 120, 40), (150, 30, 90)):
        other = verify_pair(original, Picture(_jpeg(_garment(colour), 90)))
        assert not other.passes(DEFAULT_RULE), (colour, other)


def test_transitive_groups_are_scipys_connected_components():
    """Group ids numbered as scipy's connected_components numbers them (splits hash them), on random link graphs."""
    csgraph = pytest.importorskip("scipy.sparse.csgraph", reason="scipy (the train extra) is the reference")
    from scipy.sparse import coo_matrix

    from fashionlens.dedup.groups import _Graph

    rng = np.random.default_rng(0)
    for n, links in [(1, 0), (5, 0), (40, 12), (300, 280), (2000, 900), (50, 400)]:
        pairs = rng.integers(0, n, (links, 2))
        pairs = pairs[pairs[:, 0] != pairs[:, 1]]
        graph = _Graph.from_pairs(pairs, n)
        matrix = coo_matrix((np.ones(len(pairs)), (pairs[:, 0], pairs[:, 1])), shape=(n, n)).tocsr()
        symmetric = ((matrix + matrix.T) > 0).tocsr()
        assert np.array_equal(graph.indptr, symmetric.indptr) and np.array_equal(graph.indices, symmetric.indices)
        got, expected = graph.components(), csgraph.connected_components(symmetric, directed=False)[1]
        assert got.dtype == expected.dtype and np.array_equal(got, expected)
