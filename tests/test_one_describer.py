"""One photo, one description: the service's catalogue items, local ingest and the pipeline's whole-photo item
read their attributes through `fashionlens.attributes`, so they agree (a `type=` filter finds items however
they came in)."""

from __future__ import annotations

import numpy as np

from conftest import SAMPLES
from fashionlens.catalog import Catalog
from fashionlens.fingerprints import sha256_bytes
from fashionlens.pipeline import Analyzer, PipelineConfig

PHOTO = SAMPLES / "shirt_1.jpg"  # a product shot: the pipeline describes it whole


def test_the_service_ingest_and_analyze_describe_one_photo_alike(service_client, tmp_path):
    data = PHOTO.read_bytes()
    stored = service_client.post("/v1/items", files={"file": ("shirt.jpg", data, "image/jpeg")})
    assert stored.status_code in (200, 201), stored.text
    by_service = stored.json()

    with Catalog.open(tmp_path / "ingest.db") as catalog:
        catalog.ingest([PHOTO])
        (by_ingest,) = catalog.list()
        ids, vectors = next(catalog.store.embeddings())
    assert by_ingest.sha256 == sha256_bytes(data)
    assert set(by_ingest.predicted) >= {"category", "type"}  # ingest once stored the category alone
    assert by_ingest.predicted == by_service["predicted"]
    assert [c["name"] for c in by_ingest.colors] == [c["name"] for c in by_service["colors"]]

    analysis = Analyzer(PipelineConfig(similar_k=0)).analyze(PHOTO)
    (whole,) = analysis.items
    assert analysis.sha256 == by_ingest.sha256
    assert {task: labels[0].label for task, labels in whole.attributes.items()} == {
        task: p["value"] for task, p in by_ingest.predicted.items()}
    assert np.abs(whole.embedding - vectors[0]).max() < 1e-5
    # a photo on a floor, not a studio backdrop: everywhere its colours are the parser's garment pixels'
    assert whole.color_source == "mask"
    assert [c.name for c in whole.colors] == [c["name"] for c in by_ingest.colors]
