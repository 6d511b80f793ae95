"""Two real `fashionlens serve` replicas on one PostgreSQL: started at once on a new database (one migrates it),
an item added through one is found by a search on the other with its index caught up to the store's revision,
and an image analysed (or added) through both at the same moment is stored once."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from conftest import SAMPLES, start_server, stop_server, wait_until_up
from databases import drop_schema, postgres_url


def upload(base: str, path: str, photo) -> httpx.Response:
    return httpx.post(f"{base}{path}", files={"file": (photo.name, photo.read_bytes(), "image/jpeg")}, timeout=120)


def at_once(call, bases: list[str]) -> list[httpx.Response]:
    with ThreadPoolExecutor(len(bases)) as pool:
        return list(pool.map(call, bases))


@pytest.fixture
def replicas(tmp_path):
    """Two replicas on a fresh PostgreSQL schema, each with its own media folder, started together."""
    url = postgres_url()
    servers = [start_server(url, env={"FASHIONLENS_MEDIA_DIR": str(tmp_path / f"media{i}")}) for i in range(2)]
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
