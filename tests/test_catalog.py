"""The catalogue on generated vectors: store, index and filtered search against a brute-force reference, adds
and deletes keeping index and store in step, a missing or stale index rebuilt; on SQLite and PostgreSQL."""

from __future__ import annotations

import subprocess

import numpy as np
import pytest

from fashionlens.catalog import Catalog, CatalogError, IndexSettings, database_url

DIM = 32
KEY = "test-vectors"
COLOURS = ["red", "blue", "green", "black"]
CATEGORIES = ["dress", "shirt", "pants", "shoes", "hat"]
SMALL = IndexSettings(flat_limit=300, pca_dims=16, nprobe=4, train_size=2000, exact_filter_limit=50)


def clustered(n: int, seed: int = 0) -> np.ndarray:
    """Clusters with a decaying spectrum, as real embeddings have (so PCA keeps the neighbours)."""
    rng = np.random.default_rng(seed)
    spectrum = 0.7 ** np.arange(DIM)
    centres = np.random.default_rng(99).normal(size=(20, DIM)) * spectrum
    x = centres[rng.integers(0, 20, n)] + 0.4 * rng.normal(size=(n, DIM)) * spectrum
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def attributes(n: int) -> list[dict]:
    return [{"category": CATEGORIES[i % 5], "color": COLOURS[i % 4]} for i in range(n)]


def add(catalog: Catalog, vectors: np.ndarray, start: int = 0) -> list[int]:
    n = len(vectors)
    return catalog.add_vectors(vectors, sha256s=[f"sha{start + i}" for i in range(n)],
                               sources=[f"img{start + i}.jpg" for i in range(n)],
                               attributes=attributes(start + n)[start:], embedding_key=KEY)


def brute_force(vectors: np.ndarray, ids: np.ndarray, queries: np.ndarray, k: int) -> list[list[int]]:
    order = np.argsort(-(queries @ vectors.T), axis=1, kind="stable")[:, :k]
    return [[int(ids[j]) for j in row] for row in order]


def open_catalog(db, tmp_path, settings: IndexSettings = SMALL) -> Catalog:
    return Catalog.open(db, settings=settings, index_path=tmp_path / "index.faiss")


def test_exact_search_matches_brute_force_with_filters(db, tmp_path):
    vectors = clustered(200)
    with open_catalog(db, tmp_path) as catalog:
        ids = np.array(add(catalog, vectors))
        queries = clustered(5, seed=1)
        assert catalog.stats()["index_kind"] == "IDMap2,Flat"
        got = catalog.search(queries, top_k=7)
        assert [[h.id for h in r.results] for r in got] == brute_force(vectors, ids, queries, 7)
        got = catalog.search(queries, top_k=7, where={"category": "dress", "color": "red"})
        keep = np.array([a["category"] == "dress" and a["color"] == "red" for a in attributes(200)])
        assert keep.sum() == 10
        assert [[h.id for h in r.results] for r in got] == brute_force(vectors[keep], ids[keep], queries, 7)
        assert all(h.attributes == {"category": "dress", "color": "red"} for r in got for h in r.results)
        scores = [h.score for h in got[0].results]
        assert scores == sorted(scores, reverse=True)


def test_filter_matching_fewer_items_than_k_and_none(tmp_path):
    with open_catalog(tmp_path / "c.db", tmp_path) as catalog:
        add(catalog, clustered(50))
        got = catalog.search(clustered(1, seed=3), top_k=10, where={"category": "dress", "color": "red"})
        assert len(got[0].results) == 3  # items 0, 20, 40
        assert catalog.search(clustered(1), top_k=10, where={"category": "jumpsuit"})[0].results == []
        many = catalog.search(clustered(1), top_k=10, where={"color": ["red", "blue"]})[0].results
        assert {h.attributes["color"] for h in many} == {"red", "blue"}


def test_approximate_index_above_the_flat_limit_never_starves_a_filter(db, tmp_path):
    vectors = clustered(1500)
    with open_catalog(db, tmp_path) as catalog:
        ids = np.array(add(catalog, vectors))
        assert catalog.stats()["index_kind"].startswith("PCA16,L2norm,IVF")
        queries = clustered(20, seed=2)
        rare = np.array([a["category"] == "hat" and a["color"] == "black" for a in attributes(1500)])  # 5%
        got = catalog.search(queries, top_k=10, where={"category": "hat", "color": "black"})
        truth = brute_force(vectors[rare], ids[rare], queries, 10)
        assert all(len(r.results) == 10 for r in got)
        recall = np.mean([len({h.id for h in r.results} & set(t)) / 10 for r, t in zip(got, truth, strict=True)])
        assert recall >= 0.9
        unfiltered = catalog.search(queries, top_k=10)
        truth = brute_force(vectors, ids, queries, 10)
        assert np.mean([len({h.id for h in r.results} & set(t)) / 10 for r, t in zip(unfiltered, truth, strict=True)]) >= 0.9


def test_rare_filter_on_the_approximate_index_is_exact(tmp_path):
    """A filter matching few items skips the index: its items' stored vectors are scored exactly."""
    from dataclasses import replace

    vectors = clustered(1500)
    with open_catalog(str(tmp_path / "catalog.db"), tmp_path, replace(SMALL, exact_filter_limit=100)) as catalog:
        ids = np.array(add(catalog, vectors))
        queries = clustered(20, seed=3)
        rare = np.array([a["category"] == "hat" and a["color"] == "black" for a in attributes(1500)])  # 75 items
        got = catalog.search(queries, top_k=10, where={"category": "hat", "color": "black"})
        assert [[h.id for h in r.results] for r in got] == brute_force(vectors[rare], ids[rare], queries, 10)
        removed = got[0].results[0].id
        catalog.remove([removed])  # the cached filter (and its vectors) must not outlive the change
        again = catalog.search(queries[:1], top_k=10, where={"category": "hat", "color": "black"})
        assert removed not in {h.id for h in again[0].results} and len(again[0].results) == 10


def test_add_and_remove_keep_index_and_store_in_step(db, tmp_path):
    vectors = clustered(120)
    with open_catalog(db, tmp_path) as catalog:
        ids = add(catalog, vectors[:100])
        assert add(catalog, vectors[:10]) == []  # same images again: nothing new
        assert len(catalog) == 100
        removed = catalog.remove(ids[:30] + [10**9])
        assert removed == ids[:30]
        more = add(catalog, vectors[100:], start=100)
        assert len(catalog) == 90
        assert np.array_equal(catalog._ready_index().ids(), catalog.store.ids())
        hits = catalog.search(vectors[:30], top_k=1)
        assert all(r.results[0].id not in ids[:30] for r in hits)
        assert catalog.search(vectors[100:101], top_k=1)[0].results[0].id == more[0]
    with open_catalog(db, tmp_path) as reopened:  # the saved index is current
        assert reopened.search(vectors[100:101], top_k=1)[0].results[0].id == more[0]
        assert len(reopened._ready_index()) == 90


def test_missing_or_stale_index_is_rebuilt_from_the_store(tmp_path):
    db = tmp_path / "c.db"
    vectors = clustered(60)
    with open_catalog(db, tmp_path) as catalog:
        ids = add(catalog, vectors[:40])
    (tmp_path / "index.faiss").unlink()
    with open_catalog(db, tmp_path) as catalog:
        assert catalog.search(vectors[:1], top_k=1)[0].results[0].id == ids[0]
    # another writer changes the store behind a saved index
    other = Catalog.open(db, settings=SMALL, index_path=tmp_path / "elsewhere.faiss")
    new = add(other, vectors[40:], start=40)
    other.remove(ids[:5])
    other.close()
    with open_catalog(db, tmp_path) as catalog:
        assert catalog.search(vectors[40:41], top_k=1)[0].results[0].id == new[0]
        assert all(catalog.search(vectors[:5], top_k=1)[i].results[0].id not in ids[:5] for i in range(5))
        assert np.array_equal(catalog._ready_index().ids(), catalog.store.ids())
    # an index from another catalogue is not trusted
    other_db = tmp_path / "other.db"
    with Catalog.open(other_db, settings=SMALL, index_path=tmp_path / "index.faiss") as foreign:
        add(foreign, vectors[:3])
        assert len(foreign._ready_index()) == 3


def test_index_interrupted_between_store_and_index_save(tmp_path):
    """A crash after the store commit but before the index save: the next open catches up."""
    db = tmp_path / "c.db"
    vectors = clustered(30)
    with open_catalog(db, tmp_path) as catalog:
        add(catalog, vectors[:20])
    crashed = open_catalog(db, tmp_path)
    crashed._save_if_due = lambda: None  # simulate the kill: store written, index never saved
    new = add(crashed, vectors[20:], start=20)
    crashed.store.close()
    with open_catalog(db, tmp_path) as catalog:
        assert catalog.search(vectors[25:26], top_k=1)[0].results[0].id == new[5]


def test_embedding_space_is_fixed_per_catalogue(tmp_path):
    with open_catalog(tmp_path / "c.db", tmp_path) as catalog:
        add(catalog, clustered(5))
        with pytest.raises(CatalogError, match="test-vectors"):
            catalog.add_vectors(clustered(1, seed=9), sha256s=["x"], sources=["x"], embedding_key="other")


def test_where_needs_a_value(tmp_path):
    with open_catalog(tmp_path / "c.db", tmp_path) as catalog:
        add(catalog, clustered(5))
        with pytest.raises(ValueError, match="category"):
            catalog.search(clustered(1), where={"category": ""})


def test_database_url(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FASHIONLENS_DB", raising=False)
    assert database_url() == f"sqlite:///{tmp_path / 'fashionlens-catalog.db'}"
    monkeypatch.setenv("FASHIONLENS_DB", "x.db")
    assert database_url() == f"sqlite:///{tmp_path / 'x.db'}"
    assert database_url("postgresql+psycopg://u@h/db") == "postgresql+psycopg://u@h/db"
    with pytest.raises(CatalogError, match="unknown kind of database"):
        Catalog.open("nonsense://host/db")
    with pytest.raises(CatalogError, match="cannot open the database"):
        Catalog.open("postgresql+psycopg://nobody@127.0.0.1:1/nothing?connect_timeout=2")


def test_migrations_create_the_schema_once(tmp_path):
    db = tmp_path / "c.db"
    Catalog.open(db).close()
    Catalog.open(db).close()  # already at head: nothing to do
    tables = subprocess.run(["sqlite3", str(db), ".tables"], capture_output=True, text=True)
    if tables.returncode == 0:
        assert set(tables.stdout.split()) >= {"alembic_version", "catalog_state", "items", "item_labels"}


def test_colour_filters_take_a_family_or_a_fine_name(db, tmp_path):
    """Items store their colours' fine names and families: color=blue finds navy and sky-blue items, color=navy only
    navy ones; a colour given by name only (as earlier versions stored it) gets its family."""
    def colour(name, family=None, fraction=1.0):
        return {"name": name, "fraction": fraction, "rgb": [0, 0, 0], **({"family": family} if family else {})}
    colours = [[colour("navy", "blue")], [colour("sky blue", "blue")], [colour("burgundy", "red")],
               [colour("navy")],  # as an earlier version stored it: no family
               [colour("white", "white", 0.9), colour("navy", "blue", 0.1)]]  # navy too small a share to filter
    with open_catalog(db, tmp_path) as catalog:
        ids = catalog.add_vectors(clustered(len(colours)), sha256s=[f"c{i}" for i in range(len(colours))],
                                  sources=[f"c{i}.jpg" for i in range(len(colours))], colors=colours,
                                  embedding_key=KEY)

        def found(word):
            return sorted(h.id for h in catalog.search(clustered(1, seed=5), top_k=10, where={"color": word})[0].results)
        assert found("blue") == sorted([ids[0], ids[1], ids[3]])
        assert found("Navy") == sorted([ids[0], ids[3]])
        assert found("red") == found("burgundy") == [ids[2]]
        assert found("white") == [ids[4]] and found("purple") == []
        facets = catalog.stats()["labels"]["color"]
        assert facets["blue"] == 3 and facets["navy"] == 2 and facets["red"] == facets["burgundy"] == 1
