"""Search by words: a generated catalogue whose titles name colours and garments, a text model trained on it, and
the catalogue, CLI and API searching it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fashionlens.catalog import Catalog
from fashionlens.model_folder import ModelError
from fashionlens.text.model import load_text_model
from fashionlens.text.train import TextTrainConfig, _fit, read_titles
from fashionlens.text.words import HashingConfig, canonical, words_of

KEY = "synthetic:test"
COLOURS = ["red", "navy blue", "green", "black"]
KINDS = ["shirt", "dress", "jeans"]
BRANDS = ["acme", "zeta", "orbit"]


def generated(n: int = 240, seed: int = 0):
    """Embeddings whose first dimensions encode a colour and a garment kind (plus noise), and titles that name
    them among brand words, as a shop writes them."""
    rng = np.random.default_rng(seed)
    colours = rng.integers(len(COLOURS), size=n)
    kinds = rng.integers(len(KINDS), size=n)
    vectors = rng.normal(0, 0.3, size=(n, 16)).astype(np.float32)
    vectors[np.arange(n), colours] += 1.5
    vectors[np.arange(n), len(COLOURS) + kinds] += 1.5
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    titles = [f"{BRANDS[i % 3].title()} Women {COLOURS[c].title()} {KINDS[k].title()}"
              for i, (c, k) in enumerate(zip(colours, kinds, strict=True))]
    attributes = [{"colour": COLOURS[c], "kind": KINDS[k]} for c, k in zip(colours, kinds, strict=True)]
    return vectors, titles, attributes


@pytest.fixture(scope="module")
def text_model(tmp_path_factory):
    vectors, titles, _ = generated()
    vocabulary = {}
    for title in titles:
        for word in set(words_of(title)):
            vocabulary[word] = vocabulary.get(word, 0) + 1
    config = TextTrainConfig(dim=32, epochs=30, batch_size=64, hashing=HashingConfig(buckets=2**12))
    model = _fit(vectors, titles, vocabulary, config, {"key": KEY, "dim": 16, "model": "backbone"})
    model.save(tmp_path_factory.mktemp("text") / "model")
    return model


@pytest.fixture()
def catalog(tmp_path):
    vectors, titles, attributes = generated(seed=1)  # other items than the model was trained on
    with Catalog.open(tmp_path / "c.db") as cat:
        cat.add_vectors(vectors, sha256s=[f"s{i}" for i in range(len(vectors))],
                        sources=[f"/items/{i}.jpg" for i in range(len(vectors))], attributes=attributes,
                        embedding_key=KEY)
        yield cat


def test_words_join_hyphens_and_meet_plurals():
    assert words_of("Puma Men's Cat Red T-shirt") == ["puma", "mens", "cat", "red", "tshirt"]
    vocabulary = {"tshirt", "watch", "shoes", "accessory"}
    assert canonical("tshirts", vocabulary) == "tshirt"
    assert canonical("watches", vocabulary) == "watch"
    assert canonical("shoe", vocabulary) == "shoes"
    assert canonical("accessories", vocabulary) == "accessory"
    assert canonical("zebra", vocabulary) is None


@pytest.mark.slow
def test_colour_queries_find_items_of_that_colour(catalog, text_model):
    for colour in COLOURS:
        result = catalog.search_text([colour], text_model, top_k=10)[0]
        assert result.error is None and not result.unknown_words
        assert [h.attributes["colour"] for h in result.results] == [colour] * 10, colour


@pytest.mark.slow
def test_colour_query_ranks_items_of_that_colour_first_by_their_stored_colours(text_model, tmp_path):
    """Embeddings that carry no colour at all (only the garment kind): the stored colours alone put the navy
    items first for a navy query, in the shop's words ("navy blue" is the family blue)."""
    vectors, titles, attributes = generated(seed=2)
    flat = vectors.copy()
    flat[:, :len(COLOURS)] = 0
    flat /= np.linalg.norm(flat, axis=1, keepdims=True)
    colors = [[{"name": "navy" if a["colour"] == "navy blue" else a["colour"], "fraction": 0.9, "rgb": [0, 0, 0]}]
              for a in attributes]
    with Catalog.open(tmp_path / "flat.db") as cat:
        cat.add_vectors(flat, sha256s=[f"f{i}" for i in range(len(flat))], attributes=attributes, colors=colors,
                        sources=[f"/flat/{i}.jpg" for i in range(len(flat))], embedding_key=KEY)
        plain = cat.search_text(["navy blue dress"], text_model, top_k=5, color_weight=0)[0].results
        ranked = cat.search_text(["navy blue dress"], text_model, top_k=5)[0].results
    assert [h.attributes["colour"] for h in plain] != ["navy blue"] * 5  # the embedding alone does not separate
    assert [h.attributes for h in ranked] == [{"colour": "navy blue", "kind": "dress"}] * 5


def test_query_colour_words_map_to_families():
    from fashionlens.text.colors import color_match, query_families

    assert query_families("men navy blue shirts") == {"blue"}
    assert query_families("Women Off White Grey Melange tops") == {"white", "grey"}
    assert query_families("women maroon kurtas") == {"red"}
    assert query_families("men casual shoes") == set()
    stored = [{"name": "navy", "fraction": 0.6}, {"name": "white", "fraction": 0.3}]
    assert color_match(stored, {"blue"}) == pytest.approx(0.6)
    assert color_match(stored, {"blue", "white"}) == pytest.approx(0.9)
    assert color_match(stored, {"red"}) == 0.0


@pytest.mark.slow
def test_filters_apply_to_text_search(catalog, text_model):
    result = catalog.search_text(["red"], text_model, top_k=10, where={"kind": "dress"})[0]
    assert result.results and all(h.attributes["kind"] == "dress" for h in result.results)
    assert all(h.attributes["colour"] == "red" for h in result.results[:5])
    both = catalog.search_text(["green jeans"], text_model, top_k=5)[0]
    assert all(h.attributes == {"colour": "green", "kind": "jeans"} for h in both.results)


@pytest.mark.slow
def test_unknown_words_are_reported_and_only_unknown_is_an_error(catalog, text_model):
    some, none = catalog.search_text(["red zebra dresses", "zebra quokka"], text_model)
    assert some.unknown_words == ["zebra"] and some.error is None
    assert all(h.attributes == {"colour": "red", "kind": "dress"} for h in some.results[:5])
    assert none.results == [] and "zebra" in none.error and none.unknown_words == ["zebra", "quokka"]
    assert none.to_json()["unknown_words"] == ["zebra", "quokka"]


@pytest.mark.slow
def test_scores_are_the_models_own_similarity(catalog, text_model):
    """The index ranks by the query vector alone; the reported score adds the query's offset, so it equals the
    model's text-image score."""
    hit = catalog.search_text(["black shirt"], text_model, top_k=1)[0].results[0]
    stored = next(v for _, v in catalog.store.embeddings(np.array([hit.id])))
    expected = text_model.image_vectors(stored) @ text_model.text_vectors(["black shirt"])[0][0]
    assert hit.score == pytest.approx(float(expected[0]), abs=1e-4)


@pytest.mark.slow
def test_model_folder_round_trips_and_refuses_damage(text_model, tmp_path):
    loaded = load_text_model(text_model.folder)
    texts = ["red dress", "acme navy blue shirts"]
    # float32 round-off of sums in another order: a few parts in a million of vectors whose entries reach ~10
    np.testing.assert_allclose(loaded.query_vectors(texts)[0], text_model.query_vectors(texts)[0], rtol=1e-5, atol=1e-5)
    assert loaded.vocabulary == text_model.vocabulary and loaded.embedding_key == KEY
    copy = tmp_path / "copy"
    shutil.copytree(text_model.folder, copy)
    weights = copy / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-4] + b"\0\0\0\0")
    with pytest.raises(ModelError, match="does not match the manifest"):
        load_text_model(copy)
    with pytest.raises(ModelError, match="model folder not found"):
        load_text_model(tmp_path / "nowhere")


@pytest.mark.slow
def test_a_catalogue_of_another_embedding_is_refused(text_model, tmp_path):
    with Catalog.open(tmp_path / "other.db") as cat:
        cat.add_vectors(generated(4)[0], sha256s=list("abcd"), sources=list("abcd"), embedding_key="other:key")
        with pytest.raises(ModelError, match="other:key"):
            cat.search_text(["red"], text_model)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fashionlens", *args], capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_cli_text_search_prints_json_lines_and_exits_2_on_unknown_words(catalog, text_model):
    db = str(catalog.store.url)
    catalog.close()
    done = _cli("catalog", "search", "--db", db, "--text", "green", "--text-model", str(text_model.folder),
                "--where", "kind=shirt", "--top-k", "3", "--json")
    assert done.returncode == 0, done.stderr
    line = json.loads(done.stdout)
    assert line["query"] == "green" and len(line["results"]) == 3
    assert all(r["attributes"] == {"colour": "green", "kind": "shirt"} for r in line["results"])
    assert set(line["results"][0]) == {"id", "image", "sha256", "score", "attributes", "colors"}
    done = _cli("catalog", "search", "--db", db, "--text", "zebra", "--text-model", str(text_model.folder))
    assert done.returncode == 2 and "zebra" in done.stderr


def _table(tmp_path: Path, rows: list[str], header: str = "id,title,colour") -> Path:
    from PIL import Image

    for i in range(len(rows)):
        Image.new("RGB", (32, 32), (200, 30 * i, 30)).save(tmp_path / f"{i}.jpg")
    table = tmp_path / "styles.csv"
    table.write_text("\n".join([header, *[f"{i},{r}" for i, r in enumerate(rows)]]) + "\n")
    return table


def test_titles_table_needs_its_text_column_and_reports_empty_titles(tmp_path):
    table = _table(tmp_path, ["Acme Red Shirt,red", ",blue", "Zeta Green Dress,green"])
    with pytest.raises(ValueError, match="no column 'productDisplayName'"):
        read_titles(table, tmp_path, "id", "productDisplayName")
    titled = read_titles(table, tmp_path, "id", "title", ["colour"])
    assert titled.titles == ["Acme Red Shirt", "Zeta Green Dress"]
    assert titled.attributes == [{"colour": "red"}, {"colour": "green"}]
    assert [(s.source.endswith(":3"), s.reason) for s in titled.skipped] == [(True, "empty 'title'")]


@pytest.mark.slow
def test_train_text_cli_refuses_a_table_without_the_text_column(tmp_path):
    table = _table(tmp_path, ["Acme Red Shirt,red"])
    done = _cli("train-text", str(tmp_path), "--labels", str(table), "--image-column", "id",
                "--text-column", "productDisplayName", "--out", str(tmp_path / "m"))
    assert done.returncode == 2 and "productDisplayName" in done.stderr and not (tmp_path / "m").exists()


@pytest.mark.slow
def test_api_searches_by_words_and_refuses_unknown_ones(tmp_path, service_text_model):
    from conftest import running_service

    with running_service(tmp_path, text_model=service_text_model) as client:
        found = client.post("/v1/search", json={"text": "red zebra shirt", "top_k": 3})
        assert found.status_code == 200, found.text
        assert len(found.json()["results"]) == 3 and found.json()["unknown_words"] == ["zebra"]
        filtered = client.post("/v1/search", json={"text": "red", "filters": {"category": "no-such"}})
        assert filtered.status_code == 200 and filtered.json()["results"] == []
        unknown = client.post("/v1/search", json={"text": "zebra quokka"})
        assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "unknown_words"
        assert "zebra" in unknown.json()["error"]["message"]
        both = client.post("/v1/search", json={"text": "red", "item_id": 1})
        assert both.status_code == 422 and both.json()["error"]["code"] == "invalid_request"
        assert client.post("/v1/search", json={"text": "  "}).status_code == 422
        assert client.get("/v1/models").json()["text_model"]["words"] == 9  # acme, 4 colours (navy, blue), 3 kinds
    with running_service(tmp_path / "plain") as client:
        answer = client.post("/v1/search", json={"text": "red"})
        assert answer.status_code == 422 and answer.json()["error"]["code"] == "no_text_model"


@pytest.mark.slow
def test_train_text_cli_trains_reports_and_writes_a_loadable_folder(tmp_path):
    """End to end on 40 generated photos (real backbone features): titles name each photo's colour."""
    from PIL import Image

    colours = {"red": (200, 30, 30), "green": (30, 160, 40), "blue": (30, 40, 200), "yellow": (230, 220, 40)}
    rows = []
    for i in range(40):
        name = list(colours)[i % 4]
        image = Image.new("RGB", (64, 80), colours[name])
        image.putpixel((i, i), (i, i, i))  # every file distinct
        image.save(tmp_path / f"{i}.jpg")
        rows.append(f"{i},Acme Women {name.title()} Top,{name}" if i != 5 else f"{i},,{name}")
    table = tmp_path / "styles.csv"
    table.write_text("\n".join(["id,title,baseColour", *rows]) + "\n")
    done = _cli("train-text", str(tmp_path), "--labels", str(table), "--image-column", "id", "--text-column",
                "title", "--model", "backbone", "--validation", "0.3", "--epochs", "150", "--out", str(tmp_path / "m"),
                "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["skipped"] == [{"source": f"{table}:7", "reason": "empty 'title'"}]
    assert sum(report["counts"].values()) == 39 and report["counts"]["validation"] > 0
    assert 0 <= report["validation"]["recall@10"] <= 1
    model = load_text_model(tmp_path / "m")
    assert {"red", "green", "acme", "top"} <= set(model.vocabulary) and model.embedding["model"] == "backbone"
    tags = _cli("tag", str(tmp_path / "0.jpg"), str(tmp_path / "1.jpg"), "--text-model", str(tmp_path / "m"),
                "--phrases", "red,green,zebra", "--json")
    assert tags.returncode == 0, tags.stderr
    lines = [json.loads(line) for line in tags.stdout.splitlines()]
    assert [sorted(line["scores"]) for line in lines] == [["green", "red"]] * 2
    assert "zebra" in tags.stderr
    assert lines[0]["scores"]["red"] > lines[0]["scores"]["green"]  # 0.jpg is red, 1.jpg green
    assert lines[1]["scores"]["green"] > lines[1]["scores"]["red"]


@pytest.mark.slow
def test_text_search_runs_without_pytorch(catalog, text_model):
    """Inference is NumPy and SciPy: loading a text model and searching a catalogue by words imports no torch."""
    db = str(catalog.store.url)
    catalog.close()
    code = ("import sys; from fashionlens.catalog import Catalog; from fashionlens.text import load_text_model; "
            f"c = Catalog.open({db!r}); r = c.search_text(['red'], load_text_model({str(text_model.folder)!r}))[0]; "
            "print(len(r.results), 'torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["10", "False"], done.stderr


def test_query_vectors_are_the_sparse_products_to_the_bit(text_model):
    """The query side adds the weights' rows itself (no scipy in the base install): the very floats that the
    sparse feature matrix's product gave, so stored rankings do not move."""
    sparse = pytest.importorskip("scipy.sparse", reason="scipy (the train extra) is the reference")
    texts = ["red shirt", "Navy-Blue jeans acme", "zeta women green dress dress", "unknownword", "", "black"]
    parsed = [text_model.parse(t) for t in texts]
    rows, cols, vals = [], [], []
    for row, p in enumerate(parsed):
        for bucket, weight in text_model.hashing.features(p.words).items():
            rows.append(row), cols.append(bucket), vals.append(weight)
    matrix = sparse.csr_matrix((np.array(vals, np.float32), (rows, cols)), shape=(len(texts), text_model.hashing.buckets))
    expected = np.asarray(matrix.tocsc()[:, text_model.text_rows] @ text_model.text_weights, np.float32)
    got = np.stack([text_model.hashing.weighted_rows(p.words, text_model.text_rows, text_model.text_weights)
                    for p in parsed])
    assert np.array_equal(got, expected) and np.abs(expected).sum() > 0
