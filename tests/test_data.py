"""Data readers (class folders, CSV/TSV tables) and duplicate grouping, on small files made in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fashionlens.data import (
    LabeledImages,
    Sample,
    SkippedInput,
    parse_label_map,
    parse_where,
    read_folder,
    read_table,
)
from fashionlens.dedup import Fingerprints, Thresholds, group_labels
from fashionlens.fingerprints import perceptual_hash, sha256_bytes


def make_image(path: Path, colour=(200, 40, 40), size=(8, 8)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".gif": "GIF", ".bmp": "BMP"}
    Image.new("RGB", size, colour).save(path, fmt[path.suffix.lower()])
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def by_name(data: LabeledImages) -> dict[str, Sample]:
    return {s.path.name: s for s in data.samples}


# =========================================================================== read_folder


def test_read_folder_flat(tmp_path):
    make_image(tmp_path / "dress" / "d1.jpg")
    make_image(tmp_path / "dress" / "d2.png")
    make_image(tmp_path / "hat" / "h1.webp")
    data = read_folder(tmp_path)
    assert isinstance(data, LabeledImages)
    assert len(data) == 3
    assert data.tasks == ["category"]
    assert data.source == str(tmp_path)
    assert data.classes("category") == ["dress", "hat"]
    assert data.counts("category") == {"dress": 2, "hat": 1}
    assert all(s.split is None for s in data.samples)
    assert {n: s.labels for n, s in by_name(data).items()} == {
        "d1.jpg": {"category": "dress"},
        "d2.png": {"category": "dress"},
        "h1.webp": {"category": "hat"},
    }
    assert data.skipped == []
    assert data.only_split("train") is data  # no split layout: every sample counts


def test_read_folder_task_name_and_nested_files(tmp_path):
    make_image(tmp_path / "shoes" / "left" / "a.jpg")
    make_image(tmp_path / "shoes" / "b.JPG")
    data = read_folder(tmp_path, task="garment")
    assert data.tasks == ["garment"]
    assert sorted(s.labels["garment"] for s in data.samples) == ["shoes", "shoes"]


def test_read_folder_with_splits(tmp_path):
    make_image(tmp_path / "train" / "dress" / "a.jpg")
    make_image(tmp_path / "train" / "hat" / "b.jpg")
    make_image(tmp_path / "validation" / "dress" / "c.jpg")
    make_image(tmp_path / "test" / "hat" / "d.jpg")
    data = read_folder(tmp_path)
    assert len(data) == 4
    names = by_name(data)
    assert (names["a.jpg"].split, names["a.jpg"].labels) == ("train", {"category": "dress"})
    assert (names["b.jpg"].split, names["b.jpg"].labels) == ("train", {"category": "hat"})
    assert (names["c.jpg"].split, names["c.jpg"].labels) == ("validation", {"category": "dress"})
    assert (names["d.jpg"].split, names["d.jpg"].labels) == ("test", {"category": "hat"})
    assert data.classes("category") == ["dress", "hat"]  # split names are not classes
    assert [s.path.name for s in data.only_split("train").samples] == ["a.jpg", "b.jpg"]
    assert [s.path.name for s in data.only_split("validation").samples] == ["c.jpg"]


@pytest.mark.parametrize("alias", ["val", "valid", "Val", "VALIDATION"])
def test_read_folder_val_alias(tmp_path, alias):
    make_image(tmp_path / "train" / "dress" / "a.jpg")
    make_image(tmp_path / alias / "dress" / "b.jpg")
    names = by_name(read_folder(tmp_path))
    assert names["a.jpg"].split == "train"
    assert names["b.jpg"].split == "validation"


def test_read_folder_skips_non_images(tmp_path):
    make_image(tmp_path / "dress" / "a.jpg")
    write(tmp_path / "dress" / "notes.txt", "hello")
    write(tmp_path / "dress" / "README", "no suffix")
    write(tmp_path / "dress" / ".DS_Store", "hidden")  # hidden files are ignored, not reported
    data = read_folder(tmp_path)
    assert [s.path.name for s in data.samples] == ["a.jpg"]
    skipped = {Path(s.source).name: s.reason for s in data.skipped}
    assert set(skipped) == {"notes.txt", "README"}
    assert ".txt" in skipped["notes.txt"] and "not an image" in skipped["notes.txt"]
    assert "no suffix" in skipped["README"]
    assert all(isinstance(s, SkippedInput) for s in data.skipped)
    assert data.summary()["skipped"] == 2


def test_read_folder_hidden_class_folders_ignored(tmp_path):
    make_image(tmp_path / "dress" / "a.jpg")
    make_image(tmp_path / ".thumbnails" / "a.jpg")
    assert read_folder(tmp_path).classes("category") == ["dress"]


def test_read_folder_empty(tmp_path):
    with pytest.raises(ValueError, match="no images found") as info:
        read_folder(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_read_folder_only_non_images(tmp_path):
    write(tmp_path / "dress" / "notes.txt", "x")
    with pytest.raises(ValueError, match="no images found"):
        read_folder(tmp_path)


def test_read_folder_images_not_in_class_folders(tmp_path):
    make_image(tmp_path / "loose.jpg")
    with pytest.raises(ValueError, match="class"):
        read_folder(tmp_path)


def test_read_folder_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found") as info:
        read_folder(tmp_path / "nope")
    assert "nope" in str(info.value)


# =========================================================================== parse_where / parse_label_map


def test_parse_where():
    assert parse_where(["type=product", "gender=Men,Women"]) == {"type": {"product"}, "gender": {"Men", "Women"}}
    assert parse_where(["gender=Men", "gender = Women "]) == {"gender": {"Men", "Women"}}
    assert parse_where([]) == {}


@pytest.mark.parametrize("term", ["type", "=product", ""])
def test_parse_where_errors(term):
    with pytest.raises(ValueError, match="COLUMN=VALUE") as info:
        parse_where([term])
    assert repr(term) in str(info.value)


def test_parse_label_map():
    assert parse_label_map(["decor:A,B=X"]) == {"decor": {"A": "X", "B": "X"}}
    assert parse_label_map(["decor:Gzhel, Khokhloma = Russia", "decor:Iznik=Turkey", "type:0=pattern"]) == {
        "decor": {"Gzhel": "Russia", "Khokhloma": "Russia", "Iznik": "Turkey"},
        "type": {"0": "pattern"},
    }


@pytest.mark.parametrize("term", ["decor", "decor:A", "decor:A=", ":A=X", "A=X"])
def test_parse_label_map_errors(term):
    with pytest.raises(ValueError, match="TASK:LABEL") as info:
        parse_label_map([term])
    assert repr(term) in str(info.value)


# =========================================================================== read_table


@pytest.fixture
def decor(tmp_path):
    """A decor-like table: images next to the table, in images/, and elsewhere by absolute path."""
    make_image(tmp_path / "pics" / "g1.png")
    make_image(tmp_path / "images" / "k1.png")
    make_image(tmp_path / "b1.png")
    outside = make_image(tmp_path / "elsewhere" / "abs.jpg")
    table = write(
        tmp_path / "table.csv",
        "file,decor,type\n"
        "pics/g1.png,Gzhel,pattern\n"  # relative to the table
        "k1,Khokhloma,product\n"  # bare name, no suffix, found in images/
        "b1,Iznik,product\n"  # bare name, no suffix, next to the table
        f"{outside},Neglyubka,pattern\n",  # absolute path
    )
    return table, outside


def test_read_table_csv_path_kinds(decor, tmp_path):
    table, outside = decor
    data = read_table(table, image_column="file", tasks=["decor"])
    assert data.source == str(table)
    assert data.tasks == ["decor"]
    assert data.skipped == []
    got = [(s.path, s.labels) for s in data.samples]
    assert got == [
        (tmp_path / "pics" / "g1.png", {"decor": "Gzhel"}),
        (tmp_path / "images" / "k1.png", {"decor": "Khokhloma"}),
        (tmp_path / "b1.png", {"decor": "Iznik"}),
        (outside, {"decor": "Neglyubka"}),
    ]
    assert all(s.path.is_file() and s.split is None for s in data.samples)


def test_read_table_two_tasks(decor):
    table, _ = decor
    data = read_table(table, image_column="file", tasks=["decor", "type"])
    assert data.tasks == ["decor", "type"]
    assert data.samples[0].labels == {"decor": "Gzhel", "type": "pattern"}
    assert data.counts("type") == {"pattern": 2, "product": 2}


def test_read_table_tsv(tmp_path):
    make_image(tmp_path / "images" / "101.jpg")
    make_image(tmp_path / "images" / "102.jpg")
    table = write(tmp_path / "styles.tsv", "id\tarticleType\tbaseColour\n101\tShirts\tNavy Blue\n102\tJeans\tBlue\n")
    data = read_table(table, image_column="id", tasks=["articleType", "baseColour"])
    assert [(s.path.name, s.labels) for s in data.samples] == [
        ("101.jpg", {"articleType": "Shirts", "baseColour": "Navy Blue"}),
        ("102.jpg", {"articleType": "Jeans", "baseColour": "Blue"}),
    ]


def test_read_table_images_root(tmp_path):
    make_image(tmp_path / "photos" / "x.jpg")
    table = write(tmp_path / "meta" / "t.csv", "img,label\nx.jpg,a\nx,a\n")
    data = read_table(table, image_column="img", tasks=["label"], images_root=tmp_path / "photos")
    assert [s.path for s in data.samples] == [tmp_path / "photos" / "x.jpg"] * 2


def test_read_table_where(decor):
    table, _ = decor
    data = read_table(table, image_column="file", tasks=["decor"], where=parse_where(["type=product"]))
    assert [s.labels["decor"] for s in data.samples] == ["Khokhloma", "Iznik"]
    data = read_table(table, image_column="file", tasks=["decor"], where=parse_where(["decor=Gzhel,Iznik"]))
    assert [s.labels["decor"] for s in data.samples] == ["Gzhel", "Iznik"]


def test_read_table_where_matches_nothing(decor):
    table, _ = decor
    with pytest.raises(ValueError, match="no usable rows"):
        read_table(table, image_column="file", tasks=["decor"], where=parse_where(["type=vase"]))


def test_read_table_label_map(decor):
    table, _ = decor
    data = read_table(
        table,
        image_column="file",
        tasks=["decor"],
        label_map=parse_label_map(["decor:Gzhel,Khokhloma=Russia", "decor:Iznik=Turkey"]),
    )
    assert [s.labels["decor"] for s in data.samples] == ["Russia", "Russia", "Turkey", "Neglyubka"]
    assert data.classes("decor") == ["Neglyubka", "Russia", "Turkey"]


def test_read_table_label_map_for_unknown_task(decor):
    table, _ = decor
    with pytest.raises(ValueError, match="'country'"):
        read_table(table, image_column="file", tasks=["decor"], label_map=parse_label_map(["country:A=B"]))


@pytest.mark.parametrize(
    ("kwargs", "missing"),
    [
        ({"image_column": "image", "tasks": ["decor"]}, "'image'"),
        ({"image_column": "file", "tasks": ["colour"]}, "'colour'"),
        ({"image_column": "file", "tasks": ["decor"], "where": {"gender": {"Men"}}}, "'gender'"),
        ({"image_column": "file", "tasks": ["decor"], "split_column": "fold"}, "'fold'"),
    ],
)
def test_read_table_unknown_column(decor, kwargs, missing):
    table, _ = decor
    with pytest.raises(ValueError) as info:
        read_table(table, **kwargs)
    message = str(info.value)
    assert str(table) in message
    assert missing in message
    assert "file, decor, type" in message  # and lists the columns there are


def test_read_table_missing_image_reported_with_line(tmp_path):
    make_image(tmp_path / "a.jpg")
    table = write(tmp_path / "table.csv", "file,label\na.jpg,x\nghost.jpg,y\n,z\na.jpg,w\n")
    data = read_table(table, image_column="file", tasks=["label"])
    assert [s.labels["label"] for s in data.samples] == ["x", "w"]
    assert [(s.source, s.reason) for s in data.skipped] == [
        (f"{table}:3", "image 'ghost.jpg' not found"),
        (f"{table}:4", "empty 'file'"),
    ]
    assert all(s.source.endswith(("table.csv:3", "table.csv:4")) for s in data.skipped)


def test_read_table_line_numbers_count_physical_lines(tmp_path):
    """Blank lines and quoted multi-line fields must not shift the line a skipped row is reported at."""
    make_image(tmp_path / "a.jpg")
    table = write(
        tmp_path / "table.csv",
        "file,label,note\n"  # 1
        "a.jpg,x,plain\n"  # 2
        "\n"  # 3 (blank)
        'a.jpg,y,"two\n'  # 4
        'lines"\n'  # 5
        "ghost.jpg,z,\n",  # 6
    )
    data = read_table(table, image_column="file", tasks=["label"])
    assert [s.labels["label"] for s in data.samples] == ["x", "y"]
    assert [s.source for s in data.skipped] == [f"{table}:6"]


def test_read_table_empty_labels(tmp_path):
    for name in "abcd":
        make_image(tmp_path / f"{name}.jpg")
    table = write(
        tmp_path / "table.csv",
        "file,colour,usage\n"
        "a.jpg,Red,Casual\n"
        "b.jpg,,Formal\n"  # one task unlabelled: kept, that label None
        "c.jpg,  ,\n"  # no label at all: skipped
        "d.jpg,Blue, \n",
    )
    data = read_table(table, image_column="file", tasks=["colour", "usage"])
    assert [(s.path.name, s.labels) for s in data.samples] == [
        ("a.jpg", {"colour": "Red", "usage": "Casual"}),
        ("b.jpg", {"colour": None, "usage": "Formal"}),
        ("d.jpg", {"colour": "Blue", "usage": None}),
    ]
    assert [(s.source, s.reason) for s in data.skipped] == [(f"{table}:4", "no label in any task column")]
    assert data.classes("colour") == ["Blue", "Red"]
    assert data.counts("usage") == {"Casual": 1, "Formal": 1}
    assert data.summary()["tasks"] == {"colour": {"Blue": 1, "Red": 1}, "usage": {"Casual": 1, "Formal": 1}}


def test_read_table_empty_label_is_not_mapped(tmp_path):
    make_image(tmp_path / "a.jpg")
    make_image(tmp_path / "b.jpg")
    table = write(tmp_path / "t.csv", "file,label,other\na.jpg,,o\nb.jpg,A,o\n")
    data = read_table(table, image_column="file", tasks=["label", "other"], label_map={"label": {"": "X", "A": "Z"}})
    assert [s.labels["label"] for s in data.samples] == [None, "Z"]


def test_read_table_split_column(tmp_path):
    for name in "abcd":
        make_image(tmp_path / f"{name}.jpg")
    table = write(
        tmp_path / "t.csv", "file,label,split\na.jpg,x,train\nb.jpg,x,Validation\nc.jpg,y,test\nd.jpg,y,other\n"
    )
    data = read_table(table, image_column="file", tasks=["label"], split_column="split")
    assert [s.split for s in data.samples] == ["train", "validation", "test", None]


def test_read_table_bom_and_quoting(tmp_path):
    make_image(tmp_path / "my photo.jpg")
    table = tmp_path / "t.csv"
    table.write_bytes('\ufefffile,label\n"my photo.jpg","Dress, long"\n'.encode("utf-8"))
    data = read_table(table, image_column="file", tasks=["label"])
    assert data.samples[0].labels == {"label": "Dress, long"}


def test_read_table_missing_table(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        read_table(tmp_path / "nope.csv", image_column="file", tasks=["label"])


def test_read_table_no_usable_rows(tmp_path):
    table = write(tmp_path / "t.csv", "file,label\nghost.jpg,x\n")
    with pytest.raises(ValueError, match="no usable rows") as info:
        read_table(table, image_column="file", tasks=["label"])
    assert str(table) in str(info.value)


def test_labeled_images_subset_and_summary(decor):
    table, _ = decor
    data = read_table(table, image_column="file", tasks=["decor", "type"])
    sub = data.subset([0, 2])
    assert [s.labels["decor"] for s in sub.samples] == ["Gzhel", "Iznik"]
    assert sub.tasks == data.tasks and sub.skipped == []
    summary = data.summary()
    assert summary["images"] == 4 and summary["source"] == str(table)


# =========================================================================== fingerprints


def duplicate_groups(sha256s, labels):
    """Split grouping (transitive, same hash) with readable stand-ins for hashes: equal names, equal hashes."""
    rng = np.random.default_rng(0)
    codes = {name: f"{int(rng.integers(0, 2**63)):016x}" for name in sorted({x for x in labels if x})}
    fingerprints = Fingerprints(list(sha256s), [codes.get(x) for x in labels])
    return group_labels(fingerprints, Thresholds(max_hamming=0), transitive=True).tolist()


def test_duplicate_groups_by_sha256():
    groups = duplicate_groups(["s1", "s2", "s1", "s3"], [None, None, None, None])
    assert groups[0] == groups[2]
    assert len({groups[0], groups[1], groups[3]}) == 3


def test_duplicate_groups_by_phash():
    groups = duplicate_groups(["s1", "s2", "s3", "s4"], ["p1", "p2", "p1", None])
    assert groups[0] == groups[2]
    assert len({groups[0], groups[1], groups[3]}) == 3


def test_duplicate_groups_transitive():
    # 0-1 same bytes, 1-2 same phash, 2-3 same bytes, 4-5 same phash, 6 alone
    sha = ["a", "a", "b", "b", "c", "d", "e"]
    ph = ["p0", "p1", "p1", "p3", "q", "q", None]
    groups = duplicate_groups(sha, ph)
    assert groups[0] == groups[1] == groups[2] == groups[3]
    assert groups[4] == groups[5]
    assert len({groups[0], groups[4], groups[6]}) == 3


def test_duplicate_groups_transitive_late_link():
    """A link found in the second pass (phash) merges two groups formed in the first (sha256)."""
    groups = duplicate_groups(["a", "b", "b", "a"], ["p1", "p2", "p1", "p4"])  # {0,3} + {1,2} joined by 0~2
    assert len(set(groups)) == 1
    groups = duplicate_groups(["x", "y", "y", "z"], ["p", "q", "r", "p"])  # 0~3 by phash, 1~2 by sha
    assert groups[0] == groups[3] and groups[1] == groups[2] and groups[0] != groups[1]


def test_duplicate_groups_empty_and_unique():
    assert duplicate_groups([], []) == []
    groups = duplicate_groups(["a", "b", "c"], ["p", "q", "r"])
    assert len(set(groups)) == 3


def test_fingerprints_of_real_copies(tmp_path):
    """Byte-identical files share a sha256; a re-encoded, resized copy shares only the perceptual hash."""
    base = Image.new("RGB", (128, 128), (255, 255, 255))
    base.paste((200, 30, 30), (20, 10, 70, 120))
    base.paste((30, 30, 200), (80, 40, 120, 90))
    original = tmp_path / "a.png"
    base.save(original)
    copy = tmp_path / "b.png"
    copy.write_bytes(original.read_bytes())
    small = tmp_path / "c.jpg"
    base.resize((96, 96)).save(small, quality=90)
    other = tmp_path / "d.png"
    other_img = Image.new("RGB", (128, 128), (255, 255, 255))
    other_img.paste((30, 200, 30), (0, 0, 128, 40))
    other_img.save(other)

    files = [original, copy, small, other]
    sha = [sha256_bytes(p.read_bytes()) for p in files]
    ph = []
    for path in files:
        with Image.open(path) as image:
            ph.append(perceptual_hash(image.convert("RGB")))
    assert sha[0] == sha[1] != sha[2]
    assert len(ph[0]) == 16
    assert ph[0] == ph[2] != ph[3]
    groups = duplicate_groups(sha, ph)
    assert groups[0] == groups[1] == groups[2] != groups[3]
