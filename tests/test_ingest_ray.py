"""`fashionlens ingest --engine ray`: the same items, attributes and embeddings as the single-process ingest (with
SQLite, where the driver writes, and PostgreSQL, where Ray's workers do); a run killed with SIGKILL or stopped
with Ctrl-C halfway and started again (every image once); an unreachable Ray address; a database the workers
cannot reach. One local Ray with 2 CPUs (`local_ray`) serves the whole session."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from databases import PG_DSN, drop_schema, postgres_url
from test_ingest import LOCAL, ingest, photos

from fashionlens.catalog import Catalog, CatalogError
from fashionlens.ray_jobs import RayOptions

ray = pytest.importorskip("ray")


def by_hash(catalog: Catalog) -> dict[str, tuple]:
    """sha256 -> (item, embedding) of every item."""
    vectors = {int(i): v for ids, vs in catalog.store.embeddings() for i, v in zip(ids, vs, strict=True)}
    items = catalog.items(list(vectors))
    return {item.sha256: (item, vectors[i]) for i, item in items.items()}


def test_ray_gives_the_single_process_items_attributes_and_embeddings(local_ray, db, tmp_path, server):
    root, base, _ = server
    files = photos(tmp_path / "shop", 4) + [root / p.name for p in photos(root, 1, start=4)]
    copy = tmp_path / "shop" / "copy.jpg"
    copy.write_bytes(files[0].read_bytes())
    broken = tmp_path / "shop" / "broken.jpg"
    broken.write_text("not an image")
    sources = [*files[:4], f"{base}/{files[4].name}", copy, broken, f"{base}/missing.jpg"]
    attributes = [{"brand": f"b{i}"} for i in range(len(sources))]
    with Catalog.open(tmp_path / "local.db") as local:
        expected = local.ingest(sources, attributes, fetch_policy=LOCAL)
        want = by_hash(local)
    with Catalog.open(db) as catalog:
        report = catalog.ingest(sources, attributes, ray=RayOptions(actors=1), batch_size=4, fetch_policy=LOCAL)
        got = by_hash(catalog)
        assert (len(report.added), len(report.present)) == (len(expected.added), len(expected.present)) == (5, 1)
        failures = sorted((f.source, f.reason) for f in report.failed)
        assert failures == sorted((f.source, f.reason) for f in expected.failed) and len(failures) == 2
        assert got.keys() == want.keys()
        # one image from two sources in one job: whichever reaches the store first is the item (workers race)
        twins = {str(sources[0]): attributes[0], str(copy): attributes[5]}
        for sha, (item, vector) in got.items():
            other, other_vector = want[sha]
            if other.source in twins:
                assert item.attributes == twins[item.source]
            else:
                assert (item.source, item.attributes) == (other.source, other.attributes)
            assert {k: p["value"] for k, p in item.predicted.items()} == {k: p["value"] for k, p in other.predicted.items()}
            for key, p in item.predicted.items():
                assert p["score"] == pytest.approx(other.predicted[key]["score"], abs=2e-4)
            assert [c["name"] for c in item.colors] == [c["name"] for c in other.colors]
            np.testing.assert_allclose(vector, other_vector, atol=1e-5)
        hit = catalog.search([files[2]], top_k=1)[0].results[0]  # the index was caught up from the store
        assert Path(hit.image).name == files[2].name
        assert catalog.index_path.exists()


def pg_sources(url: str) -> list[str]:
    import psycopg

    schema = url.rsplit("%3D", 1)[1]
    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        try:
            return [row[0] for row in conn.execute(f"SELECT source FROM {schema}.items")]
        except psycopg.errors.UndefinedTable:
            return []


@pytest.mark.parametrize("how", ["kill", "interrupt"])
def test_stopped_ray_ingest_resumes_with_every_image_once(local_ray, tmp_path, how):
    """SIGKILL halfway, or Ctrl-C (SIGINT to the command's process group, as a terminal sends it): it ends after
    the current batch, saying how to resume."""
    url = postgres_url()
    try:
        files = photos(tmp_path / "shop", 30)
        process = subprocess.Popen([sys.executable, "-m", "fashionlens.cli", "ingest", str(tmp_path / "shop"),
                                    "--db", url, "--engine", "ray", "--ray-address", local_ray, "--actors", "1",
                                    "--batch-size", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   text=True, start_new_session=True)
        try:
            deadline = time.monotonic() + 240
            while len(stored := pg_sources(url)) < 4:
                assert process.poll() is None and time.monotonic() < deadline, process.communicate()
                time.sleep(0.05)
            if how == "kill":
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(30)
            else:
                os.killpg(process.pid, signal.SIGINT)
                _, err = process.communicate(timeout=60)
                assert process.returncode == 130, err
                assert "run the same command again to resume" in err
                stored = pg_sources(url)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        assert 4 <= len(stored) < 30
        with Catalog.open(url) as catalog:
            report = catalog.ingest(files, ray=RayOptions(actors=1), batch_size=8)
            assert len(report.added) + len(report.present) == 30 and not report.failed
            assert sorted(pg_sources(url)) == sorted(str(f) for f in files)  # each once
            assert len(catalog.search([files[7]], top_k=30)[0].results) == 30  # the index holds them all
    finally:
        drop_schema(url)


def test_unreachable_ray_address_is_a_clear_error(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens once it is closed
    result = ingest(photos(tmp_path / "shop", 1)[0], "--db", tmp_path / "c.db", "--engine", "ray",
                    "--ray-address", f"127.0.0.1:{port}")
    assert result.exit_code == 2
    assert f"--ray-address 127.0.0.1:{port}: no Ray cluster answers there" in " ".join(result.output.split())


def test_database_the_workers_cannot_reach_is_reported_before_any_work(local_ray, tmp_path):
    url = postgres_url()
    try:
        files = photos(tmp_path / "shop", 2)
        with Catalog.open(url) as catalog:  # the driver reaches it; the workers' environment names no service
            with pytest.raises(CatalogError, match='Ray workers cannot reach the database.*service "nowhere" not found'):
                catalog.ingest(files, ray=RayOptions(runtime_env={"env_vars": {"PGSERVICE": "nowhere"}}))
            assert len(catalog) == 0
    finally:
        drop_schema(url)


def test_engine_options_need_the_ray_engine(tmp_path):
    result = ingest(tmp_path, "--db", tmp_path / "c.db", "--ray-address", "127.0.0.1:6379")
    assert result.exit_code == 2 and "--ray-address and --actors need --engine ray" in result.output
