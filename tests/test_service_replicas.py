"""Several replicas on one PostgreSQL. Cheap first, with catalogues in threads: a new database opened by several at
once is migrated once; each catalogue's index follows the others' adds and removes by the store's revision; one
image added through two at once is stored once. Then two real `fashionlens serve` processes, started together:
an item added through one is found by a search on the other, and a photo analysed (or added) through both at
the same moment is stored once."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from conftest import SAMPLES, start_server, stop_server, wait_until_up
from databases import drop_schema, postgres_url

from fashionlens.catalog import Catalog


@pytest.fixture
def pg_url():
    url = postgres_url()
    yield url
    drop_schema(url)


def test_a_new_database_opened_by_several_at_once_is_migrated_once(pg_url, tmp_path):
    """Four processes (replicas starting together) open it at the same moment, once each has imported what it
    needs: without a lock, all but one fail creating its tables."""
    code = ("import pathlib, sys, time; from fashionlens.catalog.store import Store; go = pathlib.Path(sys.argv[2])\n"
            "pathlib.Path(sys.argv[3]).touch()\nwhile not go.exists(): time.sleep(0.01)\n"
            "print(Store(sys.argv[1]).state().uid)")
    go = tmp_path / "go"
    processes = [subprocess.Popen([sys.executable, "-c", code, pg_url, str(go), str(tmp_path / f"ready{i}")],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(4)]
    deadline = time.monotonic() + 300
    while not all((tmp_path / f"ready{i}").exists() for i in range(4)):
        assert time.monotonic() < deadline and all(p.poll() is None for p in processes)
        time.sleep(0.05)
    go.touch()
    outputs = [process.communicate(timeout=300) for process in processes]
    assert [process.returncode for process in processes] == [0] * 4, [err[-300:] for _, err in outputs]
    assert len({out.strip() for out, _ in outputs}) == 1  # one state row, made once


def test_catalogues_on_one_database_follow_each_others_writes(pg_url):
    vectors = np.random.default_rng(0).normal(size=(4, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)

    def add(catalog, rows):
        return catalog.add_vectors(vectors[rows], sha256s=[f"sha{i}" for i in rows], sources=[f"s{i}" for i in rows],
                                   embedding_key="test")

    with Catalog.open(pg_url) as a, Catalog.open(pg_url) as b:
        first = add(a, [0, 1])
        assert [h.id for h in b.search(vectors[:2], top_k=1)[0].results] == first[:1]
        assert b.index_revision == b.store.revision() == 1
        later = add(b, [2])
        assert a.search(vectors[2:3], top_k=1)[0].results[0].id == later[0]  # a catches up to b's write
        a.remove(first[:1])
        assert first[0] not in [h.id for h in b.search(vectors[:1], top_k=4)[0].results]
        assert a.index_revision == b.index_revision == a.store.revision() == 3

        with ThreadPoolExecutor(2) as pool:  # the same image through both at once
            added = list(pool.map(lambda catalog: add(catalog, [3]), [a, b]))
        assert sorted(map(len, added)) == [0, 1] and len(a) == 3
        assert len(b.search(vectors[3:4], top_k=4)[0].results) == 3


def upload(base: str, path: str, photo) -> httpx.Response:
    return httpx.post(f"{base}{path}", files={"file": (photo.name, photo.read_bytes(), "image/jpeg")}, timeout=120)


def at_once(call, bases: list[str]) -> list[httpx.Response]:
    with ThreadPoolExecutor(len(bases)) as pool:
        return list(pool.map(call, bases))


@pytest.fixture
def replicas(tmp_path):
    """Two replicas on a fresh PostgreSQL schema, each with its own media folder, started together; whole photos
    only (no detector or parser to load: what is shared does not depend on them)."""
    url = postgres_url()
    servers = [start_server(url, env={"FASHIONLENS_MEDIA_DIR": str(tmp_path / f"media{i}"),
                                      "FASHIONLENS_DETECTOR": "none"}) for i in range(2)]
    try:
        for base, server in servers:
            wait_until_up(base, server, timeout=600)  # two loading every model at once
        yield [base for base, _ in servers]
    finally:
        for _, server in servers:
            stop_server(server)
        drop_schema(url)


def test_replicas_share_the_catalogue_and_the_history(replicas):
    a, b = replicas
    added = upload(a, "/v1/items", SAMPLES / "dress_1.jpg")
    assert added.status_code == 201, added.text
    item_id = added.json()["id"]

    deadline = time.monotonic() + 5  # found through the other replica within a few seconds
    while True:
        hits = upload(b, "/v1/search", SAMPLES / "dress_1.jpg").json()["results"]
        if hits and hits[0]["id"] == item_id or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert hits[0]["id"] == item_id and hits[0]["score"] == pytest.approx(1, abs=1e-3)
    health = httpx.get(f"{b}/v1/health").json()
    assert health["items"] == 1 and health["index_revision"] == health["revision"] >= 1

    photo = SAMPLES / "hat_2.jpg"
    analysed = at_once(lambda base: upload(base, "/v1/analyze", photo), [a, b])
    assert sorted(r.status_code for r in analysed) == [200, 201], [r.text for r in analysed]
    assert analysed[0].json()["id"] == analysed[1].json()["id"]
    assert [httpx.get(f"{base}/v1/analyses").json()["total"] for base in (a, b)] == [1, 1]

    items = at_once(lambda base: upload(base, "/v1/items", SAMPLES / "shoes_1.jpg"), [a, b])
    assert sorted(r.status_code for r in items) == [200, 201], [r.text for r in items]
    assert items[0].json()["id"] == items[1].json()["id"]
    assert [httpx.get(f"{base}/v1/health").json()["items"] for base in (a, b)] == [2, 2]
