"""`fashionlens ingest`: folders, tables with attribute columns, URLs from a local server (with a 404 and a
non-image), reruns that read and download nothing, a run killed with SIGKILL or stopped with Ctrl-C and started
again (every image exactly once), a table without its image column."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from fashionlens.catalog import Catalog
from fashionlens.cli import app
from fashionlens.fetch import FetchPolicy

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = sorted((ROOT / "samples" / "clothing").glob("*.jpg"))
LOCAL = FetchPolicy(allow=("127.0.0.1/32",))
runner = CliRunner()


def ingest(*args):
    return runner.invoke(app, ["ingest", *[str(a) for a in args]])


def summary(result) -> dict:
    assert result.stdout.strip(), result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


def photos(folder: Path, n: int, start: int = 0) -> list[Path]:
    """`n` distinct JPEGs: the 30 samples, then re-encodings of them at other qualities (other bytes)."""
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(start, start + n):
        source = SAMPLES[i % len(SAMPLES)]
        path = folder / f"{source.stem}_{i}.jpg"
        if i < len(SAMPLES):
            path.write_bytes(source.read_bytes())
        else:
            Image.open(source).save(path, quality=60 + i // len(SAMPLES))
        out.append(path)
    return out


def item_rows(db: Path) -> list[tuple[str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT source, sha256 FROM items").fetchall()


def test_folder_ingest_and_rerun(tmp_path):
    folder = tmp_path / "shop"
    files = photos(folder / "a", 4) + photos(folder / "b" / "c", 2, start=4)
    (folder / "notes.txt.bak").write_text("not an image")
    db = tmp_path / "c.db"
    result = ingest(folder, "--db", db, "--json", "--no-colors")
    assert result.exit_code == 0, result.output
    assert summary(result)["added"] == 6 and summary(result)["failed"] == 0
    assert sorted(s for s, _ in item_rows(db)) == sorted(str(f) for f in files)
    again = ingest(folder, "--db", db, "--json")
    assert (summary(again)["added"], summary(again)["already_present"]) == (0, 6)


def test_class_folders_give_each_image_its_folder_as_the_label(tmp_path):
    folder = tmp_path / "shop"
    dresses, shirts = photos(folder / "dress", 2), photos(folder / "shirt", 2, start=2)
    db = tmp_path / "c.db"
    result = ingest(folder, "--db", db, "--json", "--no-colors", "--classifier", "none")
    assert result.exit_code == 0, result.output
    with Catalog.open(db) as catalog:
        given = {Path(i.source).name: i.attributes for i in catalog.list()}
    assert given == {**{f.name: {"category": "dress"} for f in dresses}, **{f.name: {"category": "shirt"} for f in shirts}}
    plain = tmp_path / "plain.db"
    assert ingest(folder, "--db", plain, "--json", "--no-colors", "--classifier", "none", "--folder-label",
                  "none").exit_code == 0
    with Catalog.open(plain) as catalog:
        assert all(not i.attributes for i in catalog.list())


def test_table_attributes_are_stored_and_filterable(tmp_path):
    files = photos(tmp_path / "img", 3)
    table = tmp_path / "items.csv"
    table.write_text("image,brand,season\n"
                     f"img/{files[0].name},Acme,summer\n"
                     f"{files[1]},Zeta,\n"  # absolute path; an empty cell is no attribute
                     f"img/{files[2].name},Acme,winter\n"
                     ",Nobody,summer\n")
    db = tmp_path / "c.db"
    result = ingest(table, "--db", db, "--json")
    assert result.exit_code == 0, result.output
    got = summary(result)
    assert (got["added"], got["failed"]) == (3, 1)
    assert got["failures"][0] == {"source": f"{table}:5", "reason": "empty 'image'"}
    with Catalog.open(db) as catalog:
        items = {Path(i.source).name: i for i in catalog.list()}
        assert items[files[0].name].attributes == {"brand": "Acme", "season": "summer"}
        assert items[files[1].name].attributes == {"brand": "Zeta"}
        hits = catalog.search([files[0]], top_k=5, where={"brand": "acme"})[0].results
        assert sorted(Path(h.image).name for h in hits) == sorted([files[0].name, files[2].name])


def test_urls_with_failures_then_a_rerun_that_downloads_nothing(tmp_path, server):
    root, base, hits = server
    files = photos(root, 3)
    (root / "page.html").write_text("<html>not an image</html>")
    urls = [f"{base}/{f.name}" for f in files] + [f"{base}/missing.jpg", f"{base}/page.html"]
    local = photos(tmp_path / "local", 1, start=3)
    db = tmp_path / "c.db"
    spools = set(Path(tempfile.gettempdir()).glob("fashionlens-ingest-*"))
    with Catalog.open(db) as catalog:
        report = catalog.ingest(urls + local, [{"n": str(i)} for i in range(6)], fetch_policy=LOCAL, workers=4)
        assert len(report.added) == 4
        reasons = {f.source: f.reason for f in report.failed}
        assert reasons.keys() == {urls[3], urls[4]}
        assert "404" in reasons[urls[3]] and "not an image" in reasons[urls[4]]
        stored = {i.source: i for i in catalog.list()}
        assert set(stored) == set(urls[:3]) | {str(local[0])}
        assert stored[urls[1]].attributes == {"n": "1"}
    assert all(hits[f"/{f.name}"] == 1 for f in files)
    with Catalog.open(db) as catalog:
        again = catalog.ingest(urls + local, fetch_policy=LOCAL)
    assert (len(again.added), len(again.present), len(again.failed)) == (0, 4, 2)
    assert all(hits[f"/{f.name}"] == 1 for f in files)  # stored URLs are not downloaded again
    assert set(Path(tempfile.gettempdir()).glob("fashionlens-ingest-*")) == spools  # downloads deleted


def test_refused_address_is_a_failure_not_a_crash(tmp_path, server, monkeypatch):
    root, base, _ = server
    photos(root, 1)
    monkeypatch.delenv("FASHIONLENS_FETCH_ALLOW", raising=False)
    listing = tmp_path / "urls.txt"
    listing.write_text(f"# one URL\n{base}/{SAMPLES[0].stem}_0.jpg\n")
    result = ingest(listing, "--db", tmp_path / "c.db", "--json")
    assert result.exit_code == 1
    assert "FASHIONLENS_FETCH_ALLOW" in summary(result)["failures"][0]["reason"]
    monkeypatch.setenv("FASHIONLENS_FETCH_ALLOW", "127.0.0.1/32")
    assert summary(ingest(listing, "--db", tmp_path / "c.db", "--json"))["added"] == 1


def _start(folder: Path, db: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fashionlens.cli", "ingest", str(folder), "--db", str(db),
                             "--batch-size", "4"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def _wait_for_items(process: subprocess.Popen, db: Path, at_least: int, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if (n := len(item_rows(db))) >= at_least:
                return n
        except sqlite3.OperationalError:  # not created or migrated yet
            pass
        time.sleep(0.02)
    raise AssertionError(f"no {at_least} items before the process ended: {process.communicate()}")


@pytest.mark.parametrize("how", ["kill", "interrupt"])
def test_stopped_run_resumes_with_every_image_once(tmp_path, how):
    folder = tmp_path / "shop"
    files = photos(folder, 40)
    db = tmp_path / "c.db"
    process = _start(folder, db)
    try:
        stored = _wait_for_items(process, db, 4)
        if how == "kill":
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)
        else:
            process.send_signal(signal.SIGINT)
            _, err = process.communicate(timeout=60)
            assert process.returncode == 130, err
            assert "run the same command again to resume" in err
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert 4 <= stored < 40
    result = ingest(folder, "--db", db, "--json", "--batch-size", 16)
    assert result.exit_code == 0, result.output
    rows = item_rows(db)
    assert sorted(s for s, _ in rows) == sorted(str(f) for f in files)  # each once
    assert summary(result)["added"] + summary(result)["already_present"] == 40


def test_table_without_its_image_column(tmp_path):
    table = tmp_path / "t.tsv"
    table.write_text("url\tbrand\nx.jpg\tacme\n")
    result = ingest(table, "--db", tmp_path / "c.db")
    assert result.exit_code == 2
    assert "t.tsv: no image column 'image' (columns: url, brand)" in " ".join(result.output.split())
