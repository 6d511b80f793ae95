"""Shared fixtures: a private feature cache per test session, generated images, the shared data folder."""

from __future__ import annotations

import os
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[2] / "shared" / "datasets"
pytest_plugins = ["databases"]  # the `db` fixture: each catalogue test on SQLite and on PostgreSQL


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """Tests never read or fill the user's ~/.cache; the backbone ONNX export is made once per session."""
    os.environ["FASHIONLENS_CACHE"] = str(tmp_path_factory.mktemp("fashionlens-cache"))
    yield


@pytest.fixture(scope="session")
def shared_datasets() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"real data not found at {SHARED} (a fresh clone has no ../shared)")
    return SHARED


@pytest.fixture(scope="session")
def local_ray():
    """A local Ray on 2 CPUs, shared by the Ray tests of the session (starting one takes seconds); yields its
    address, which another process's `--ray-address` can join."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


SAMPLES = Path(__file__).resolve().parents[1] / "samples" / "clothing"
STREET = Path(__file__).resolve().parents[1] / "samples" / "street"  # two CCP street photos (Apache-2.0)


@contextmanager
def running_service(tmp_path: Path, db: str | None = None, **overrides):
    """A TestClient on a fresh service (temporary SQLite unless `db`), its catalogue seeded with 6 samples."""
    from fastapi.testclient import TestClient

    from fashionlens.service.app import create_app
    from fashionlens.service.settings import ServiceSettings

    seed = tuple(str(p) for p in sorted(SAMPLES.glob("*.jpg"))[::5])
    settings = ServiceSettings(db=db or str(tmp_path / "service.db"), seed=seed, media_dir=tmp_path / "media")
    settings = replace(settings, **overrides)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def service_client(tmp_path_factory):
    """One seeded service per test module (starting one loads every model: a few seconds)."""
    with running_service(tmp_path_factory.mktemp("service")) as client:
        yield client


def start_server(db: str, *args: str, env: dict | None = None):
    """A real `fashionlens serve` on a free port, not waited for; (base URL, process)."""
    import socket
    import subprocess
    import sys

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "fashionlens.cli", "serve", "--db", db, "--port", str(port),
                               "--log-level", "warning", *args],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              env={**os.environ, "COLUMNS": "200", **(env or {})})
    return f"http://127.0.0.1:{port}", server


def wait_until_up(base: str, server, timeout: float = 240) -> None:
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while True:
        assert server.poll() is None, server.stdout.read()
        try:
            if httpx.get(f"{base}/v1/health", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, "the service did not start"
        time.sleep(0.5)


def stop_server(server) -> None:
    """SIGTERM; the process's output is left in `server.output`."""
    import signal

    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
    server.output = server.communicate(timeout=60)[0]


@contextmanager
def served(tmp_path: Path, *args: str, env: dict | None = None, timeout: float = 240):
    """A real `fashionlens serve` on a free port with a SQLite file in `tmp_path`; yields (base URL, process).

    Stopped with SIGTERM on exit; the process's output is left in `process.output`."""
    base, server = start_server(str(tmp_path / "serve.db"), *args, env=env)
    try:
        wait_until_up(base, server, timeout)
        yield base, server
    finally:
        stop_server(server)


def garments_in(parsed, boxes: list, labels: list[str], scores: list[float], rules=None):
    """`garment_masks` on boxes given as lists with their kinds' names, as the pipeline's stages call it."""
    import numpy as np

    from fashionlens.detect.detections import Detections
    from fashionlens.pipeline.garment_masks import MaskRules, garment_masks

    classes = list(dict.fromkeys(labels))
    found = Detections(np.asarray(boxes, np.float32).reshape(-1, 4), [classes.index(k) for k in labels], scores)
    return garment_masks(parsed, found, classes, rules or MaskRules())


@pytest.fixture
def server(tmp_path):
    """A local HTTP server over `tmp_path / "www"`, counting the requests for each path (the ingest tests)."""
    root = tmp_path / "www"
    root.mkdir()
    hits: dict[str, int] = {}

    class Handler(SimpleHTTPRequestHandler):
        def do_GET(self):
            hits[self.path] = hits.get(self.path, 0) + 1
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}", hits
    httpd.shutdown()
    httpd.server_close()


SLOW_MODULES = {
    "test_analyze_ray", "test_audit", "test_bad_input", "test_catalog_cli", "test_classify", "test_cli",
    "test_detect_model", "test_ingest", "test_ingest_ray", "test_integration", "test_one_describer", "test_parse",
    "test_pipeline", "test_recipe", "test_service", "test_service_operations", "test_service_replicas",
    "test_service_schema", "test_web_api", "test_web_page",
}
"""Modules whose tests train models, start services or analyse photos (most take a second or more, measured with
`pytest --durations=0`); single slow tests elsewhere carry `@pytest.mark.slow` themselves."""


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.module.__name__ in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def service_text_model(tmp_path_factory):
    """A text model in the service's own embedding space (the default embedder's), trained on random vectors with
    titles naming a colour and a garment: enough to exercise search by words, not to rank well."""
    import numpy as np

    from fashionlens.embeddings import default_embedder
    from fashionlens.text.train import TextTrainConfig, _fit
    from fashionlens.text.words import HashingConfig, words_of

    embedder = default_embedder()
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(64, embedder.dim)).astype(np.float32)
    colours, kinds = ["Red", "Navy Blue", "Green", "Black"], ["Shirt", "Dress", "Jeans"]
    titles = [f"Acme {colours[i % 4]} {kinds[i % 3]}" for i in range(64)]
    vocabulary = {w: 1 for t in titles for w in words_of(t)}
    config = TextTrainConfig(dim=16, epochs=2, batch_size=32, hashing=HashingConfig(buckets=2**10))
    model = _fit(vectors, titles, vocabulary, config, {"key": embedder.key, "dim": embedder.dim, "model": "default"})
    return model.save(tmp_path_factory.mktemp("service-text") / "model")
