"""`fashionlens analyze --engine ray`: every photo's analysis stored in the history, the same as the
single-process pipeline gives (with SQLite, where the driver writes, and PostgreSQL, where Ray's workers do); a
copy of a photo stored once, a broken one reported and the job going on; a rerun that stores nothing twice."""

from __future__ import annotations

import json
import shutil

import pytest
from conftest import SAMPLES
from test_ingest import runner

from fashionlens.catalog import Catalog
from fashionlens.catalog.analyses import AnalysisHistory
from fashionlens.catalog.similar import add_similar
from fashionlens.cli import app
from fashionlens.pipeline import Analyzer, PipelineConfig

pytest.importorskip("ray")


def same_answer(got: dict, want: dict) -> None:
    """The same garments, labels, colours and similar items; scores and boxes to float tolerance."""
    assert (got["sha256"], got["width"], got["height"], got["models"]) == (
        want["sha256"], want["width"], want["height"], want["models"])
    assert [g["label"] for g in got["items"]] == [g["label"] for g in want["items"]]
    for g, w in zip(got["items"], want["items"], strict=True):
        assert g["score"] == pytest.approx(w["score"], abs=2e-3)
        assert g["box"] == pytest.approx(w["box"], abs=1.0)
        assert {t: [s["label"] for s in v] for t, v in g["attributes"].items()} == \
               {t: [s["label"] for s in v] for t, v in w["attributes"].items()}
        assert [c["name"] for c in g["colors"]] == [c["name"] for c in w["colors"]]
        assert [h["id"] for h in g["similar"]] == [h["id"] for h in w["similar"]]
        assert [h["score"] for h in g["similar"]] == pytest.approx([h["score"] for h in w["similar"]], abs=2e-3)


def test_ray_analysis_is_stored_as_the_single_process_one(local_ray, db, tmp_path):
    with Catalog.open(db) as catalog:  # items for the similar ones
        catalog.ingest(sorted(SAMPLES.glob("*.jpg"))[::6], classifier=None, colors=False)
    folder = tmp_path / "photos"
    folder.mkdir()
    photos = [shutil.copy(SAMPLES / name, folder) for name in ("dress_2.jpg", "longsleeve_3.jpg")]
    shutil.copy(photos[0], folder / "copy.jpg")
    (folder / "broken.jpg").write_text("not an image")
    run = ["analyze", str(folder), "--db", str(db), "--engine", "ray", "--ray-address", local_ray, "--actors", "1",
           "--batch-size", "2", "--json"]

    result = runner.invoke(app, run)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert (report["analysed"], report["already_present"], report["failed"]) == (2, 1, 1)
    assert report["failures"] == [{"source": str(folder / "broken.jpg"), "reason": "not an image (unrecognised content)"}]

    with Catalog.open(db) as catalog:
        analyzer = Analyzer(PipelineConfig(), embedder=catalog.embedder)
        history = AnalysisHistory(catalog.store.engine)
        assert history.count() == 2
        for photo in photos:
            analysis = analyzer.analyze(photo)
            add_similar(analysis, catalog, analyzer.config.similar_k, analyzer.config.similar_filter)
            want = analysis.to_json()
            stored = history.find(want["sha256"], analyzer.models_key)
            assert stored is not None and stored.source in (str(photo), str(folder / "copy.jpg"))
            same_answer(stored.document, want)

    again = runner.invoke(app, run)  # a rerun analyses and stores nothing twice
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout.strip().splitlines()[-1])["already_present"] == 3
    with Catalog.open(db) as catalog:
        assert AnalysisHistory(catalog.store.engine).count() == 2


def test_a_batch_of_analyses_is_stored_once_each_even_by_two_writers_at_once(db):
    """What the actors (PostgreSQL) or the driver (SQLite) call: one transaction a batch; an image stored before,
    or twice in the batch, keeps its first row; two writers racing with the same batch store it once."""
    from concurrent.futures import ThreadPoolExecutor

    from fashionlens.catalog.analyses import NewAnalysis

    document = {"items": [{"label": "dress", "colors": [{"name": "red"}]}]}
    with Catalog.open(db) as catalog:
        history = AnalysisHistory(catalog.store.engine)
        first, _ = history.save("a", "m", "a.jpg", document)
        batch = [NewAnalysis(sha, "m", f"{sha}.jpg", document) for sha in ("a", "b", "b", "c")]
        saved = history.save_many(batch)
        assert saved[0] == (first.id, False) and saved[1][1] and saved[2] == (saved[1][0], False) and saved[3][1]
        assert history.count() == 3 and history.page(label="dress")[0] == 3
        racing = [NewAnalysis(f"r{i}", "m", f"r{i}.jpg", document) for i in range(20)]
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(history.save_many, [racing, racing]))
        assert [a[0] for a in results[0]] == [b[0] for b in results[1]]  # the same ids
        assert sum(created for result in results for _, created in result) == 20 and history.count() == 23


def test_ray_analysis_needs_a_database(tmp_path):
    result = runner.invoke(app, ["analyze", str(SAMPLES / "hat_1.jpg"), "--engine", "ray"])
    assert result.exit_code == 2 and "it needs --db" in " ".join(result.output.split())
