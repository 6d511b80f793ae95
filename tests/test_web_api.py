"""What the web page needs from the service: its own files at `/`, resized and cacheable images, and facets."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from conftest import SAMPLES
from fashionlens.service.media import MediaStore, thumbnail_bytes
from fashionlens.service.routes_web import WEB


def test_the_page_files_are_small_and_load_nothing_from_elsewhere():
    files = [p for p in WEB.iterdir() if p.is_file()]
    assert {p.suffix for p in files} >= {".html", ".js", ".css"}
    assert sum(p.stat().st_size for p in files) <= 300_000  # the budget for the page's own files
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), path.name
        assert not re.search(r"""(import|fetch)\s*\(?\s*["'](https?:)?//""", text), path.name
        assert "@import" not in text and "url(http" not in text, path.name


def test_the_page_is_served_at_the_root_with_a_strict_policy(service_client):
    page = service_client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert service_client.head("/").status_code == 200
    for src in re.findall(r"""(?:src|href)="(/ui/[^"]+)\"""", page.text):
        asset = service_client.get(src)
        assert asset.status_code == 200, src
        assert asset.headers["cache-control"] == "no-cache" and asset.headers["etag"]
    script = service_client.get("/ui/app.js")
    assert "javascript" in script.headers["content-type"]
    assert service_client.get("/ui/app.js", headers={"If-None-Match": script.headers["etag"]}).status_code == 304
    missing = service_client.get("/ui/nothing.js")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert "/" not in service_client.get("/openapi.json").json()["paths"]  # the page is not part of the API


def _jpeg_size(data: bytes) -> tuple[int, int]:
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "JPEG"
        return image.size


def test_item_thumbnails_are_resized_cached_and_revalidated(service_client, tmp_path):
    item = service_client.get("/v1/items", params={"limit": 1}).json()["items"][0]
    url = f"/v1/items/{item['id']}/image"
    original = Image.open(item["image"]).size
    small = service_client.get(url, params={"size": 128})
    assert small.status_code == 200 and small.headers["content-type"] == "image/jpeg"
    width, height = _jpeg_size(small.content)
    assert max(width, height) == 128 and abs(width / height - original[0] / original[1]) < 0.02
    assert small.headers["etag"] == f'"{item["sha256"]}-128"' and small.headers["cache-control"] == "no-cache"
    again = service_client.get(url, params={"size": 128}, headers={"If-None-Match": small.headers["etag"]})
    assert again.status_code == 304 and not again.content
    # never enlarged: the samples are smaller than 1024 px
    assert _jpeg_size(service_client.get(url, params={"size": 1024}).content) == original
    pinned = service_client.get(url, params={"size": 256, "v": item["sha256"][:16]})
    assert pinned.status_code == 200 and "immutable" in pinned.headers["cache-control"]
    whole = service_client.get(url, params={"v": item["sha256"]})
    assert whole.content == open(item["image"], "rb").read() and "immutable" in whole.headers["cache-control"]


@pytest.mark.parametrize("params, status, code", [
    ({"size": 100}, 422, "invalid_request"),
    ({"size": "big"}, 422, "invalid_request"),
    ({"v": "0" * 16}, 404, "not_found"),
    ({"v": "xyz"}, 422, "invalid_request"),
])
def test_bad_image_queries_get_clear_errors(service_client, params, status, code):
    item = service_client.get("/v1/items", params={"limit": 1}).json()["items"][0]
    answer = service_client.get(f"/v1/items/{item['id']}/image", params=params)
    assert answer.status_code == status and answer.json()["error"]["code"] == code
    if "size" in params and status == 422 and params["size"] == 100:
        assert "64, 128, 256, 512, 1024" in answer.json()["error"]["message"]


def test_analysis_thumbnails_come_from_the_kept_photo(service_client):
    photo = SAMPLES / "skirt_2.jpg"
    analysis = service_client.post("/v1/analyze", files={"file": (photo.name, photo.read_bytes(), "image/jpeg")}).json()
    thumb = service_client.get(f"/v1/analyses/{analysis['id']}/image", params={"size": 64, "v": analysis["sha256"][:8]})
    assert thumb.status_code == 200 and max(_jpeg_size(thumb.content)) == 64
    assert service_client.get("/v1/analyses/999999/image", params={"size": 64}).status_code == 404
    for garment in analysis["items"]:  # the page asks for similar items' thumbnails by their hash
        assert all(len(hit["sha256"]) == 64 for hit in garment["similar"])


def test_a_thumbnail_is_made_once_and_an_upright_copy(tmp_path):
    image = Image.new("RGB", (300, 100), "red")
    exif = image.getexif()
    exif[0x0112] = 6  # rotated: the upright photo is 100 wide and 300 tall
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    assert _jpeg_size(thumbnail_bytes(out.getvalue(), 64)) == (21, 64)
    store = MediaStore(tmp_path)
    calls = []

    def original():
        calls.append(1)
        return out.getvalue()

    sha = "a" * 64
    first = store.thumbnail(sha, 128, original)
    assert store.thumbnail(sha, 128, original) == first and len(calls) == 1
    assert store.thumbnail("b" * 64, 128, lambda: None) is None
    with pytest.raises(ValueError, match="thumbnail size 100"):
        store.thumbnail(sha, 100, original)


def test_facets_count_what_the_catalogue_can_be_filtered_by(service_client):
    facets = service_client.get("/v1/facets").json()["facets"]
    total = service_client.get("/v1/items").json()["total"]
    assert sum(f["count"] for f in facets["category"]) == total
    first = facets["category"][0]
    assert service_client.get("/v1/items", params={"category": first["value"]}).json()["total"] == first["count"]
    assert [f["count"] for f in facets["color"]] == sorted((f["count"] for f in facets["color"]), reverse=True)
    assert all(len(values) <= 1 for values in service_client.get("/v1/facets", params={"limit": 1}).json()["facets"].values())
    assert service_client.get("/v1/facets", params={"limit": 0}).status_code == 422
