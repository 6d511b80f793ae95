"""Running the service on a network: token scopes and the token file, the bind check, rate limits (429) and the
bounded model queue (503) with Retry-After, Prometheus metrics, readiness, and access logs with request ids."""

from __future__ import annotations

import json
import logging

import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from conftest import SAMPLES, running_service
from fashionlens.service.access import Scope, Tokens, is_loopback
from fashionlens.service.errors import ApiError
from fashionlens.service.limits import ModelQueue, RateLimiter

TOKEN = "ops-write"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RATE = 20


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    with running_service(tmp_path_factory.mktemp("ops"), api_token=f"{TOKEN},second-write", read_tokens="ops-read",
                         rate_limit=RATE, max_queue=2) as client:
        yield client


def photo(name: str = "shorts_2.jpg") -> dict:
    return {"file": (name, (SAMPLES / name).read_bytes(), "image/jpeg")}


# tokens


def test_tokens_come_from_the_settings_and_a_token_file(tmp_path):
    path = tmp_path / "tokens"
    path.write_text("# shop tools\nwrite tool-token\n\nread  viewer-token \n")
    tokens = Tokens.from_settings(" a , b ,", "r1,r2", path)
    assert tokens.write == ("a", "b", "tool-token") and tokens.read == ("r1", "r2", "viewer-token")
    assert [tokens.scope_of(t) for t in ("b", "tool-token", "r2", "viewer-token", "c", "", "a,b")] == \
        [Scope.WRITE, Scope.WRITE, Scope.READ, Scope.READ, None, None, None]
    assert not Tokens.from_settings(None, " , ", None).required
    path.write_text("admin secret\n")
    with pytest.raises(ValueError, match="line 1"):
        Tokens.from_settings(None, None, path)
    with pytest.raises(ValueError, match="token file"):
        Tokens.from_settings(None, None, tmp_path / "absent")


@pytest.mark.parametrize("host,loopback", [("127.0.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True),
                                           ("127.0.0.5", True), ("0.0.0.0", False), ("::", False),
                                           ("192.168.1.4", False), ("shop.example.com", False)])
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback


def test_serve_refuses_a_network_address_without_a_token(tmp_path, monkeypatch):
    from fashionlens.cli import app

    for name in ("FASHIONLENS_API_TOKEN", "FASHIONLENS_READ_TOKENS", "FASHIONLENS_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    result = CliRunner().invoke(app, ["serve", "--db", str(tmp_path / "x.db"), "--host", "0.0.0.0"],
                                env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert "no API token" in result.output and "--insecure" in result.output and "FASHIONLENS_API_TOKEN" in result.output
    assert not (tmp_path / "x.db").exists()  # refused before anything was opened


# rate limits and the queue


def test_the_token_bucket_refills_at_its_rate():
    now = [0.0]
    limiter = RateLimiter(60, clock=lambda: now[0])  # one a second, bursts of 60
    for _ in range(60):
        limiter.take("a")
    with pytest.raises(ApiError) as refused:
        limiter.take("a")
    assert refused.value.status == 429 and refused.value.headers == {"Retry-After": "1"}
    limiter.take("b")  # another client has its own bucket
    now[0] = 2.0
    limiter.take("a")
    limiter.take("a")
    with pytest.raises(ApiError):
        limiter.take("a")


def test_a_burst_of_100_analyses_from_one_client_gets_429s_past_the_limit(client):
    answers = [client.post("/v1/analyze", json={}, headers=AUTH) for _ in range(100)]  # cheap: 422 when let in
    codes = [a.status_code for a in answers]
    assert codes[:RATE] == [422] * RATE and codes[RATE:] == [429] * (100 - RATE)
    refused = answers[-1]
    assert refused.json()["error"]["code"] == "too_many_requests"
    assert int(refused.headers["Retry-After"]) >= 1
    assert client.get("/v1/items", headers=AUTH).status_code == 200  # reads are not limited
    assert client.post("/v1/analyze", json={}, headers={"Authorization": "Bearer second-write"}).status_code == 422


def test_a_full_queue_answers_503_with_retry_after_and_stores_nothing(client):
    service = client.app.state.service
    before = client.get("/v1/health").json()["analyses"]
    slots = [service.queue.slot() for _ in range(service.queue.limit)]
    for slot in slots:  # as if two analyses were running and waiting
        slot.__enter__()
    try:
        busy = client.post("/v1/analyze", files=photo(), headers={"Authorization": "Bearer second-write"})
        assert busy.status_code == 503, busy.text
        assert busy.json()["error"]["code"] == "busy" and int(busy.headers["Retry-After"]) >= 1
        assert client.get("/v1/health").json()["analyses"] == before
    finally:
        for slot in slots:
            slot.__exit__(None, None, None)
    assert service.queue.depth == 0
    answer = client.post("/v1/analyze", files=photo(), headers={"Authorization": "Bearer second-write"})
    assert answer.status_code == 201, answer.text


def test_the_queue_counts_and_frees_its_slots():
    queue = ModelQueue(1)
    with queue.slot():
        assert queue.depth == 1
        with pytest.raises(ApiError) as refused, queue.slot():
            pass
        assert refused.value.status == 503 and "Retry-After" in refused.value.headers
    assert queue.depth == 0
    with pytest.raises(RuntimeError), queue.slot():
        raise RuntimeError("a failed analysis frees its slot")
    assert queue.depth == 0


# operations


def test_metrics_parse_and_show_requests_latency_stages_queue_and_models(client):
    client.post("/v1/analyze", files=photo("pants_3.jpg"), headers=AUTH)
    client.get("/v1/items/1", headers=AUTH)
    text = client.get("/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    requests = families["fashionlens_http_requests"]
    assert any(s.labels == {"method": "GET", "route": "/v1/items/{item_id}", "status": "200"} and s.value >= 1
               for s in requests.samples)
    latency = families["fashionlens_http_request_duration_seconds"]
    assert latency.type == "histogram"
    buckets = [s for s in latency.samples if s.name.endswith("_bucket") and s.labels["route"] == "/v1/analyze"]
    assert buckets and buckets[-1].labels["le"] == "+Inf" and buckets[-1].value >= 1
    stages = {s.labels["stage"] for s in families["fashionlens_analysis_stage_seconds"].samples}
    assert "total" in stages and len(stages) > 1
    assert families["fashionlens_model_queue_depth"].samples[0].value == 0
    assert families["fashionlens_model_queue_limit"].samples[0].value == 2
    assert {s.labels["role"] for s in families["fashionlens_model_info"].samples} >= {"detector"}
    paths = {s.labels["route"] for s in requests.samples}
    assert not any(p.startswith("/v1/items/") and "{" not in p for p in paths)  # templates, never raw ids


def test_ready_says_models_and_database(client):
    answer = client.get("/v1/ready")
    assert answer.status_code == 200 and answer.json() == {"status": "ready", "models": True, "database": True}


def test_each_request_has_an_id_echoed_and_logged_as_json(client, caplog):
    with caplog.at_level(logging.INFO, logger="fashionlens.access"):
        given = client.get("/v1/health", headers={"X-Request-ID": "shop-42.a"})
        made = client.get("/v1/items", headers={"X-Request-ID": "bad id\nwith newline"})
        refused = client.get("/v1/items")
    assert given.headers["X-Request-ID"] == "shop-42.a"
    assert len(made.headers["X-Request-ID"]) == 32 and made.headers["X-Request-ID"] != "bad id\nwith newline"
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "fashionlens.access"]
    by_id = {line["request_id"]: line for line in lines}
    assert by_id["shop-42.a"]["route"] == "/v1/health" and by_id["shop-42.a"]["status"] == 200
    assert by_id[made.headers["X-Request-ID"]]["path"] == "/v1/items"
    assert by_id[refused.headers["X-Request-ID"]]["status"] == 401
    assert all({"time", "method", "path", "duration_ms", "client"} <= line.keys() for line in lines)


def test_settings_from_the_environment(monkeypatch):
    from fashionlens.service.settings import ServiceSettings

    monkeypatch.setenv("FASHIONLENS_RATE_LIMIT", "7")
    monkeypatch.setenv("FASHIONLENS_MAX_QUEUE", "3")
    monkeypatch.setenv("FASHIONLENS_READ_TOKENS", "r")
    settings = ServiceSettings.from_env()
    assert (settings.rate_limit, settings.max_queue, settings.read_tokens) == (7, 3, "r")
    monkeypatch.setenv("FASHIONLENS_MAX_QUEUE", "0")
    with pytest.raises(ValueError, match="at least 1"):
        ServiceSettings.from_env()
