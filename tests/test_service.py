"""The HTTP service end to end: analyse, history, catalogue, search; SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import create_engine, func, select

from conftest import SAMPLES, running_service, served
from databases import drop_schema, postgres_url
from fashionlens.catalog.models import AnalysisRecord
from fashionlens.fetch import FetchPolicy
from fashionlens.pipeline import PipelineConfig

PHOTO = SAMPLES / "dress_2.jpg"


def upload(client, path: Path, url: str = "/v1/analyze", **fields):
    return client.post(url, files={"file": (path.name, path.read_bytes(), "image/jpeg")}, data=fields)


def reencoded(path: Path, quality: int) -> bytes:
    """The same photo as different bytes (a new image to the service)."""
    out = io.BytesIO()
    Image.open(path).save(out, "JPEG", quality=quality)
    return out.getvalue()


def test_analyze_returns_the_documented_fields_and_stores_them(service_client):
    response = upload(service_client, PHOTO)
    assert response.status_code == 201, response.text
    doc = response.json()
    assert set(doc) >= {"id", "width", "height", "items", "models", "timings_ms"}
    assert (doc["width"], doc["height"]) == Image.open(PHOTO).size
    assert doc["items"], "a dress photo should yield at least one garment"
    for item in doc["items"]:
        x1, y1, x2, y2 = item["box"]
        assert 0 <= x1 < x2 <= doc["width"] and 0 <= y1 < y2 <= doc["height"]
        assert 0 < item["score"] <= 1
        scores = [s["score"] for s in item["attributes"]["category"]]
        assert scores == sorted(scores, reverse=True)
        assert item["colors"] and abs(sum(c["fraction"] for c in item["colors"]) - 1) < 0.35
        for hit in item["similar"]:  # filtered by the garment's predicted category
            assert hit["attributes"]["category"] == item["attributes"]["category"][0]["label"]
    assert {"detector", "embedding"} <= set(doc["models"])
    assert doc["timings_ms"]["total"] >= doc["timings_ms"]["detect"] > 0
    assert service_client.get(f"/v1/analyses/{doc['id']}").json() == doc
    image = service_client.get(f"/v1/analyses/{doc['id']}/image")
    assert image.status_code == 200 and image.content == PHOTO.read_bytes() and image.headers["etag"]


def test_the_same_image_reuses_its_analysis(service_client):
    first = upload(service_client, SAMPLES / "pants_1.jpg")
    again = upload(service_client, SAMPLES / "pants_1.jpg")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()


def test_history_filters_by_label_colour_and_date_and_pages(service_client):
    ids = [upload(service_client, SAMPLES / name).json()["id"] for name in ("skirt_1.jpg", "shorts_2.jpg", "hat_1.jpg")]
    everything = service_client.get("/v1/analyses", params={"limit": 100}).json()
    assert set(ids) <= {a["id"] for a in everything["items"]}
    assert [a["id"] for a in everything["items"]] == sorted((a["id"] for a in everything["items"]), reverse=True)
    label = everything["items"][0]["items"][0]["label"]
    color = everything["items"][0]["items"][0]["colors"][0]["name"]
    matches = {"label": lambda g: {g["label"]}, "color": lambda g: {c["name"] for c in g["colors"]}}
    for key, value in (("label", label), ("color", color)):
        page = service_client.get("/v1/analyses", params={key: value}).json()
        assert page["total"] >= 1
        assert all(any(value in matches[key](g) for g in a["items"]) for a in page["items"])
    first_page = service_client.get("/v1/analyses", params={"limit": 2}).json()
    second_page = service_client.get("/v1/analyses", params={"limit": 2, "offset": 2}).json()
    assert first_page["total"] == everything["total"] and len(first_page["items"]) == 2
    assert not {a["id"] for a in first_page["items"]} & {a["id"] for a in second_page["items"]}
    tomorrow = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    assert service_client.get("/v1/analyses", params={"since": tomorrow}).json()["total"] == 0
    assert service_client.get("/v1/analyses", params={"until": tomorrow}).json()["total"] == everything["total"]
    earlier_elsewhere = (datetime.now(timezone.utc) - timedelta(minutes=10)).astimezone(timezone(timedelta(hours=5)))
    assert service_client.get("/v1/analyses", params={"since": earlier_elsewhere.isoformat()}).json()["total"] == \
        everything["total"]


def test_catalogue_add_get_list_search_delete(service_client):
    data = reencoded(SAMPLES / "dress_3.jpg", 70)
    added = service_client.post("/v1/items", files={"file": ("dress.jpg", data, "image/jpeg")},
                                data={"attributes": json.dumps({"category": "dress", "brand": "Acme", "price": 19.5})})
    assert added.status_code == 201, added.text
    item = added.json()
    assert item["given"] == {"category": "dress", "brand": "Acme", "price": "19.5"}
    assert item["predicted"]["category"]["value"] and item["colors"]
    again = service_client.post("/v1/items", files={"file": ("copy.jpg", data, "image/jpeg")})
    assert again.status_code == 200 and again.json()["id"] == item["id"]
    assert service_client.get(f"/v1/items/{item['id']}").json() == item
    assert service_client.get(f"/v1/items/{item['id']}/image").content == data

    by_brand = service_client.get("/v1/items", params={"where": "brand=acme"}).json()
    assert [i["id"] for i in by_brand["items"]] == [item["id"]]
    dresses = service_client.get("/v1/items", params={"category": "dress"}).json()
    assert item["id"] in {i["id"] for i in dresses["items"]}
    assert all(i["attributes"]["category"] == "dress" for i in dresses["items"])

    similar = service_client.post("/v1/search", json={"item_id": item["id"], "top_k": 3}).json()["results"]
    assert similar and item["id"] not in {h["id"] for h in similar}
    by_upload = service_client.post("/v1/search", files={"file": ("q.jpg", data, "image/jpeg")},
                                    data={"top_k": "2", "filters": json.dumps({"category": "dress"})}).json()["results"]
    assert by_upload[0]["id"] == item["id"] and by_upload[0]["score"] > 0.99
    assert all(h["attributes"]["category"] == "dress" for h in by_upload)

    assert service_client.delete(f"/v1/items/{item['id']}").status_code == 204
    assert service_client.get(f"/v1/items/{item['id']}").status_code == 404
    assert service_client.delete(f"/v1/items/{item['id']}").json()["error"]["code"] == "not_found"


def test_health_models_and_docs(service_client):
    health = service_client.get("/v1/health").json()
    assert health["status"] == "ok" and health["items"] >= 6 and health["database"] == "sqlite"
    models = service_client.get("/v1/models").json()
    assert models["catalog"]["embedding"] == models["models"]["embedding"]["name"]
    assert service_client.get("/docs").status_code == 200
    paths = service_client.get("/openapi.json").json()["paths"]
    assert {"/v1/analyze", "/v1/analyses/{analysis_id}", "/v1/items", "/v1/search", "/v1/health"} <= set(paths)


@pytest.fixture
def image_server():
    """Serves samples/clothing on 127.0.0.2 (loopback, so the service refuses it unless allow-listed)."""
    server = ThreadingHTTPServer(("127.0.0.2", 0), partial(SimpleHTTPRequestHandler, directory=str(SAMPLES)))
    server.RequestHandlerClass.log_message = lambda *a: None
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.2:{server.server_address[1]}"
    server.shutdown()


def test_analyze_and_add_by_url_when_allow_listed(tmp_path, image_server):
    with running_service(tmp_path, fetch=FetchPolicy(allow=("127.0.0.2/32",))) as client:
        url = f"{image_server}/shirt_2.jpg"
        analysis = client.post("/v1/analyze", json={"url": url})
        assert analysis.status_code == 201, analysis.text
        assert analysis.json()["source"] == url
        item = client.post("/v1/items", json={"url": f"{image_server}/hat_2.jpg", "attributes": {"category": "hat"}})
        assert item.status_code == 201 and item.json()["image"].endswith("/hat_2.jpg")
        assert client.post("/v1/search", json={"url": url, "top_k": 2}).status_code == 200
    with running_service(tmp_path / "strict") as client:
        refused = client.post("/v1/analyze", json={"url": url})
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "url_forbidden"


def test_concurrent_requests_for_one_new_image_store_one_row(tmp_path):
    data = reencoded(PHOTO, 80)
    with running_service(tmp_path, max_queue=8) as client:  # all 8 queue for the models (a smaller bound: 503s)
        def send(_):
            return client.post("/v1/analyze", files={"file": ("x.jpg", data, "image/jpeg")})

        with ThreadPoolExecutor(8) as pool:
            responses = list(pool.map(send, range(8)))
        assert all(r.status_code in (200, 201) for r in responses)
        assert len({r.json()["id"] for r in responses}) == 1
    engine = create_engine(f"sqlite:///{tmp_path / 'service.db'}")
    with engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(AnalysisRecord)) == 1


def test_changed_models_analyse_again(tmp_path):
    with running_service(tmp_path) as client:
        first = upload(client, PHOTO).json()
    with running_service(tmp_path, pipeline=replace(PipelineConfig(), min_score=0.6)) as client:
        again = upload(client, PHOTO)
        assert again.status_code == 201 and again.json()["id"] != first["id"]
        assert all(g["score"] >= 0.6 for g in again.json()["items"] if not g["whole_image"])
        assert client.get(f"/v1/analyses/{first['id']}").json() == first  # the old one is kept


def test_service_on_postgresql(tmp_path):
    url = postgres_url()
    try:
        with running_service(tmp_path, db=url) as client:
            assert client.get("/v1/health").json()["database"] == "postgresql"
            first = upload(client, PHOTO)
            assert first.status_code == 201
            assert upload(client, PHOTO).json()["id"] == first.json()["id"]
            label = first.json()["items"][0]["label"]
            assert client.get("/v1/analyses", params={"label": label}).json()["total"] == 1
            item = upload(client, SAMPLES / "skirt_3.jpg", "/v1/items", attributes='{"category": "skirt"}')
            assert item.status_code == 201
            found = client.get("/v1/items", params={"category": "skirt"}).json()["items"]
            assert item.json()["id"] in {i["id"] for i in found}
            assert client.get("/v1/analyses/2147483647").status_code == 404
    finally:
        drop_schema(url)


def test_analyze_cli_prints_one_document_per_photo(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_text("not an image")
    result = subprocess.run([sys.executable, "-m", "fashionlens.cli", "analyze", str(PHOTO), str(bad), "--json"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 1 and lines[0]["image"] == str(PHOTO) and lines[0]["items"]
    assert "bad.jpg" in result.stdout + result.stderr


def test_a_catalogue_made_before_the_service_gains_its_tables_on_open(tmp_path):
    from alembic import command
    from sqlalchemy import inspect

    from fashionlens.catalog import Catalog
    from fashionlens.catalog.store import migration_config

    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        config = migration_config(conn)
        command.upgrade(config, "0001")
    assert "analyses" not in inspect(engine).get_table_names()
    Catalog.open(url).close()
    assert {"analyses", "analysis_labels", "items"} <= set(inspect(engine).get_table_names())


def test_serve_command_runs_a_real_server_and_stops_cleanly(tmp_path):
    """What `make demo` runs: `fashionlens serve` with a seeded SQLite catalogue, then SIGTERM."""
    import signal

    import httpx

    with served(tmp_path, "--seed", str(SAMPLES / "hat_1.jpg"), "--seed", str(SAMPLES / "dress_1.jpg")) as (base, server):
        assert httpx.get(f"{base}/v1/health").json()["items"] == 2
        answer = httpx.post(f"{base}/v1/analyze", files={"file": ("p.jpg", PHOTO.read_bytes(), "image/jpeg")},
                            timeout=60)
        assert answer.status_code == 201
        page = httpx.get(f"{base}/")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert server.returncode in (0, -signal.SIGTERM), server.output  # uvicorn re-raises the signal after a clean stop
    assert f"{base}/" in server.output and "Traceback" not in server.output
    with create_engine(f"sqlite:///{tmp_path / 'serve.db'}").connect() as conn:
        assert conn.scalar(select(func.count()).select_from(AnalysisRecord)) == 1


def test_an_ingested_item_serves_its_file(service_client):
    item = service_client.get("/v1/items", params={"where": "category=hat"}).json()["items"][0]
    image = service_client.get(f"/v1/items/{item['id']}/image")
    assert image.status_code == 200 and image.headers["content-type"] == "image/jpeg"
    assert image.content == Path(item["image"]).read_bytes()
