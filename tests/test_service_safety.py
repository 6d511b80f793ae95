"""The HTTP service under bad input: every case is a 4xx JSON error with its stable code and a message, never a
traceback, and the service still answers afterwards.

One service serves the module, made with an API token and small limits (2 MiB bodies; fetches of 256 KiB that
end after 1 s) so the limits are cheap to cross. URL cases fetch from a local server on 127.0.0.2: still
loopback, so refused by default; the service allow-lists 127.0.0.2/32 alone, so 127.0.0.1 stays refused.
"""

from __future__ import annotations

import io
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from conftest import SAMPLES, running_service
from fashionlens.fetch import FetchPolicy

TOKEN = "s3cret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
UPLOAD_LIMIT = 2 * 2**20
FETCH_LIMIT = 256 * 2**10
FETCH_SECONDS = 1.0
ORIGIN_HOST = "127.0.0.2"
PHOTO = (SAMPLES / "dress_2.jpg").read_bytes()  # not among the samples the service is seeded with


# bad bytes, built here


def _blank_png(width: int, height: int) -> bytes:
    """A valid 1-bit greyscale PNG of any size, written row by row: 20000x20000 is tens of KB on disk and
    would be 400 Mpx decoded (the classic decompression bomb), without ever holding it in memory here."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def _encoded(kind: str, size=(64, 48)) -> bytes:
    out = io.BytesIO()
    Image.linear_gradient("L").resize(size).convert("RGB").save(out, kind)
    return out.getvalue()


JPEG = _encoded("JPEG")
BOMB = _blank_png(20_000, 20_000)
OVER_50_MPX = _blank_png(8_000, 8_000)  # under PIL's own bomb limit, over the service's
SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'
HTML = b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>"
DEEP = b"[" * 100_000  # deeper than json's parser goes: a RecursionError, not a ValueError
PDF = b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def test_the_bombs_are_small_on_the_wire_and_huge_decoded():
    assert len(BOMB) < 200_000 and len(OVER_50_MPX) < 50_000
    assert struct.unpack(">II", BOMB[16:24]) == (20_000, 20_000)  # IHDR: PIL itself refuses to open it
    with Image.open(io.BytesIO(OVER_50_MPX)) as image:  # the header alone, nothing decoded
        assert image.size == (8_000, 8_000)
    with Image.open(io.BytesIO(_blank_png(13, 7))) as image:  # the same writer makes images that decode
        assert image.convert("L").getextrema() == (0, 0)


# the local origin server


class _Origin(BaseHTTPRequestHandler):
    """HTTP/1.0: a body without Content-Length ends when the connection closes."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        routes = {
            "/photo.jpg": lambda: self._send(200, PHOTO, "image/jpeg"),
            "/missing.jpg": lambda: self._send(404, b"not found", "text/plain"),
            "/page.jpg": lambda: self._send(200, HTML, "image/jpeg"),  # the type lies; the bytes are sniffed
            "/big.jpg": lambda: self._send(200, b"\xff" * (FETCH_LIMIT + 1), "image/jpeg"),
            "/big-unannounced.jpg": lambda: self._send(200, b"\xff" * (FETCH_LIMIT * 2), "image/jpeg", length=False),
            "/bomb.png": lambda: self._send(200, BOMB, "image/png"),
            "/to-private": lambda: self._redirect("http://10.0.0.1/photo.jpg"),
            "/to-loopback": lambda: self._redirect("http://127.0.0.1/photo.jpg"),
            "/to-file": lambda: self._redirect("file:///etc/passwd"),
            "/loop": lambda: self._redirect("/loop"),
            "/slow.jpg": self._drip,
        }
        try:
            routes.get(self.path, lambda: self._send(404, b"no route", "text/plain"))()
        except OSError:  # the service gave up on us (time or size limit): what those cases expect
            pass

    def _send(self, status: int, body: bytes, kind: str, length: bool = True):
        self.send_response(status)
        self.send_header("Content-Type", kind)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str):
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _drip(self):
        """A byte every 0.1 s: each read is quick, only the fetch's total time limit ends it."""
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.end_headers()
        for _ in range(int(FETCH_SECONDS * 30)):
            self.wfile.write(b"\xff")
            self.wfile.flush()
            time.sleep(0.1)


@dataclass(frozen=True)
class Origin:
    base: str
    closed_port: int  # a port nothing listens on

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture(scope="module")
def origin():
    server = ThreadingHTTPServer((ORIGIN_HOST, 0), _Origin)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    with socket.socket() as spare:
        spare.bind((ORIGIN_HOST, 0))
        closed_port = spare.getsockname()[1]
    yield Origin(f"http://{ORIGIN_HOST}:{server.server_address[1]}", closed_port)
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def client(tmp_path_factory, origin):
    policy = FetchPolicy(allow=(f"{ORIGIN_HOST}/32",), total_timeout=FETCH_SECONDS, max_bytes=FETCH_LIMIT)
    with running_service(tmp_path_factory.mktemp("safety"), api_token=TOKEN, max_upload_bytes=UPLOAD_LIMIT,
                         fetch=policy) as client:
        yield client


# the cases

Request = Callable[[Origin], dict]


def upload(data: bytes, name: str = "photo.jpg", kind: str = "image/jpeg", **fields) -> Request:
    return lambda _: {"files": {"file": (name, data, kind)}, "data": fields}


def body(content: bytes | None, kind: str | None) -> Request:
    return lambda _: {"content": content, "headers": {"Content-Type": kind} if kind else {}}


def document(value: object) -> Request:
    return lambda _: {"json": value}


def url(address: str) -> Request:
    return lambda _: {"json": {"url": address}}


def origin_url(path: str) -> Request:
    return lambda origin: {"json": {"url": origin.url(path)}}


def nothing(_: Origin) -> dict:
    return {}


@dataclass(frozen=True)
class Bad:
    id: str
    method: str
    path: str
    request: Request
    status: int
    code: str
    auth: bool = False  # send the right token (writes), so the case fails for its own reason and not for 401


CASES = [
    # uploads that are not usable images
    Bad("truncated-jpeg", "POST", "/v1/analyze", upload(JPEG[: len(JPEG) // 2]), 422, "invalid_image"),
    Bad("zero-bytes", "POST", "/v1/analyze", upload(b""), 422, "invalid_image"),
    Bad("text-named-jpg", "POST", "/v1/analyze", upload(b"just some text\n" * 20), 415, "not_an_image"),
    Bad("svg", "POST", "/v1/analyze", upload(SVG, "logo.svg", "image/svg+xml"), 415, "not_an_image"),
    Bad("html", "POST", "/v1/analyze", upload(HTML, "page.jpg"), 415, "not_an_image"),
    Bad("pdf-header", "POST", "/v1/analyze", upload(PDF, "doc.png", "image/png"), 415, "not_an_image"),
    Bad("tiff-not-accepted", "POST", "/v1/analyze", upload(_encoded("TIFF"), "x.tif", "image/tiff"), 415,
        "not_an_image"),
    Bad("png-20000x20000", "POST", "/v1/analyze", upload(BOMB, "bomb.png", "image/png"), 413, "image_too_large"),
    Bad("png-64mpx", "POST", "/v1/analyze", upload(OVER_50_MPX, "big.png", "image/png"), 413, "image_too_large"),
    Bad("bad-image-as-item", "POST", "/v1/items", upload(JPEG[:100]), 422, "invalid_image", auth=True),
    Bad("bad-image-as-search", "POST", "/v1/search", upload(SVG, "q.svg"), 415, "not_an_image"),
    # bodies of the wrong size, shape or type
    Bad("huge-upload", "POST", "/v1/analyze", upload(JPEG + b"\0" * (UPLOAD_LIMIT + 2**20)), 413, "too_large"),
    Bad("huge-json", "POST", "/v1/analyze", body(b" " * (UPLOAD_LIMIT + 2**20), "application/json"), 413, "too_large"),
    Bad("huge-chunked", "POST", "/v1/analyze",
        lambda _: {"content": iter([b" " * 2**20] * 3), "headers": {"Content-Type": "application/json"}},
        413, "too_large"),
    Bad("content-type-text", "POST", "/v1/analyze", body(b"http://example.com/a.jpg", "text/plain"), 415,
        "unsupported_media_type"),
    Bad("content-type-xml", "POST", "/v1/analyze", body(b"<url>x</url>", "application/xml"), 415,
        "unsupported_media_type"),
    Bad("content-type-none", "POST", "/v1/analyze", body(JPEG, None), 415, "unsupported_media_type"),
    Bad("raw-jpeg-body", "POST", "/v1/analyze", body(JPEG, "image/jpeg"), 415, "unsupported_media_type"),
    Bad("multipart-without-file", "POST", "/v1/analyze",
        lambda _: {"files": {"photo": ("a.jpg", JPEG, "image/jpeg")}}, 422, "missing_file"),
    Bad("multipart-file-as-text", "POST", "/v1/analyze", lambda _: {"data": {"file": "not a file"},
                                                                     "files": {"x": ("x", b"x")}}, 422, "missing_file"),
    Bad("multipart-two-files", "POST", "/v1/analyze",
        lambda _: {"files": [("file", ("a.jpg", JPEG, "image/jpeg")), ("file", ("b.jpg", JPEG, "image/jpeg"))]},
        400, "bad_request"),
    Bad("multipart-without-boundary", "POST", "/v1/analyze", body(b"--x\r\n", "multipart/form-data"), 400,
        "bad_request"),
    Bad("bad-json", "POST", "/v1/analyze", body(b'{"url": ', "application/json"), 400, "invalid_json"),
    Bad("json-not-utf8", "POST", "/v1/analyze", body(b'{"url": "\xff\xfe"}', "application/json"), 400,
        "invalid_json"),
    Bad("json-nested-100000-deep", "POST", "/v1/analyze", body(DEEP, "application/json"), 400, "invalid_json"),
    Bad("json-array", "POST", "/v1/analyze", document(["http://example.com/a.jpg"]), 422, "invalid_request"),
    Bad("json-null", "POST", "/v1/analyze", body(b"null", "application/json"), 422, "invalid_request"),
    Bad("url-missing", "POST", "/v1/analyze", document({"link": "http://example.com/a.jpg"}), 422,
        "invalid_request"),
    Bad("url-not-a-string", "POST", "/v1/analyze", document({"url": 42}), 422, "invalid_request"),
    Bad("url-empty", "POST", "/v1/analyze", url(""), 422, "invalid_request"),
    # URLs that must not be fetched
    Bad("url-127.0.0.1", "POST", "/v1/analyze", url("http://127.0.0.1/"), 403, "url_forbidden"),
    Bad("url-127.0.0.1-port-of-origin", "POST", "/v1/analyze",
        lambda o: {"json": {"url": o.url("/photo.jpg").replace(ORIGIN_HOST, "127.0.0.1")}}, 403, "url_forbidden"),
    Bad("url-10.0.0.1", "POST", "/v1/analyze", url("http://10.0.0.1/"), 403, "url_forbidden"),
    Bad("url-metadata", "POST", "/v1/analyze", url("http://169.254.169.254/latest/meta-data/"), 403,
        "url_forbidden"),
    Bad("url-metadata-by-name", "POST", "/v1/analyze", url("http://metadata.google.internal/"), 403,
        "url_forbidden"),
    Bad("url-ipv6-loopback", "POST", "/v1/analyze", url("http://[::1]/"), 403, "url_forbidden"),
    Bad("url-ipv4-mapped-ipv6", "POST", "/v1/analyze", url("http://[::ffff:127.0.0.1]/"), 403, "url_forbidden"),
    Bad("url-localhost", "POST", "/v1/analyze", url("http://localhost/"), 403, "url_forbidden"),
    Bad("url-0.0.0.0", "POST", "/v1/analyze", url("http://0.0.0.0/"), 403, "url_forbidden"),
    Bad("url-decimal-loopback", "POST", "/v1/analyze", url("http://2130706433/"), 403, "url_forbidden"),
    Bad("url-file", "POST", "/v1/analyze", url("file:///etc/passwd"), 400, "url_invalid"),
    Bad("url-ftp", "POST", "/v1/analyze", url("ftp://example.com/a.jpg"), 400, "url_invalid"),
    Bad("url-gopher", "POST", "/v1/analyze", url("gopher://127.0.0.1:6379/_INFO"), 400, "url_invalid"),
    Bad("url-credentials", "POST", "/v1/analyze", url("http://user:pw@example.com/a.jpg"), 400, "url_invalid"),
    Bad("url-no-scheme", "POST", "/v1/analyze", url("example.com/a.jpg"), 400, "url_invalid"),
    Bad("url-too-long", "POST", "/v1/analyze", url("http://example.com/" + "a" * 3000), 400, "url_invalid"),
    Bad("url-to-private-as-item", "POST", "/v1/items", url("http://10.0.0.1/a.jpg"), 403, "url_forbidden",
        auth=True),
    Bad("url-to-private-as-search", "POST", "/v1/search", url("http://10.0.0.1/a.jpg"), 403, "url_forbidden"),
    # what the allow-listed origin answers
    Bad("redirect-to-10.0.0.1", "POST", "/v1/analyze", origin_url("/to-private"), 403, "url_forbidden"),
    Bad("redirect-to-127.0.0.1", "POST", "/v1/analyze", origin_url("/to-loopback"), 403, "url_forbidden"),
    Bad("redirect-to-file", "POST", "/v1/analyze", origin_url("/to-file"), 400, "url_invalid"),
    Bad("redirect-loop", "POST", "/v1/analyze", origin_url("/loop"), 422, "fetch_failed"),
    Bad("slow-drip", "POST", "/v1/analyze", origin_url("/slow.jpg"), 422, "fetch_timeout"),
    Bad("http-404", "POST", "/v1/analyze", origin_url("/missing.jpg"), 422, "http_status"),
    Bad("connection-refused", "POST", "/v1/analyze",
        lambda o: {"json": {"url": f"http://{ORIGIN_HOST}:{o.closed_port}/a.jpg"}}, 422, "fetch_failed"),
    Bad("fetched-html", "POST", "/v1/analyze", origin_url("/page.jpg"), 415, "not_an_image"),
    Bad("fetched-bomb", "POST", "/v1/analyze", origin_url("/bomb.png"), 413, "image_too_large"),
    Bad("fetched-over-size", "POST", "/v1/analyze", origin_url("/big.jpg"), 413, "too_large"),
    Bad("fetched-over-size-unannounced", "POST", "/v1/analyze", origin_url("/big-unannounced.jpg"), 413,
        "too_large"),
    # ids, queries and routes
    Bad("analysis-0", "GET", "/v1/analyses/0", nothing, 422, "invalid_request"),
    Bad("analysis-minus-1", "GET", "/v1/analyses/-1", nothing, 422, "invalid_request"),
    Bad("analysis-abc", "GET", "/v1/analyses/abc", nothing, 422, "invalid_request"),
    Bad("analysis-huge-id", "GET", "/v1/analyses/99999999999999", nothing, 422, "invalid_request"),
    Bad("analysis-missing", "GET", "/v1/analyses/999", nothing, 404, "not_found"),
    Bad("analysis-image-missing", "GET", "/v1/analyses/999/image", nothing, 404, "not_found"),
    Bad("item-missing", "GET", "/v1/items/999", nothing, 404, "not_found"),
    Bad("item-image-missing", "GET", "/v1/items/999/image", nothing, 404, "not_found"),
    Bad("item-delete-missing", "DELETE", "/v1/items/999", nothing, 404, "not_found", auth=True),
    Bad("limit-0", "GET", "/v1/analyses?limit=0", nothing, 422, "invalid_request"),
    Bad("limit-1000", "GET", "/v1/analyses?limit=1000", nothing, 422, "invalid_request"),
    Bad("offset-negative", "GET", "/v1/items?offset=-1", nothing, 422, "invalid_request"),
    Bad("since-not-a-date", "GET", "/v1/analyses?since=not-a-date", nothing, 422, "invalid_request"),
    Bad("where-without-equals", "GET", "/v1/items?where=category", nothing, 422, "invalid_filter"),
    Bad("unknown-route", "GET", "/v1/nothing-here", nothing, 404, "not_found"),
    Bad("wrong-method", "PUT", "/v1/health", nothing, 405, "method_not_allowed"),
    Bad("wrong-method-on-analyze", "GET", "/v1/analyze", nothing, 405, "method_not_allowed"),
    # search documents
    Bad("search-item-and-url", "POST", "/v1/search", document({"item_id": 1, "url": "http://example.com/a.jpg"}),
        422, "invalid_request"),
    Bad("search-neither", "POST", "/v1/search", document({"top_k": 3}), 422, "invalid_request"),
    Bad("search-top-k-0", "POST", "/v1/search", document({"item_id": 1, "top_k": 0}), 422, "invalid_request"),
    Bad("search-top-k-1000", "POST", "/v1/search", document({"item_id": 1, "top_k": 1000}), 422,
        "invalid_request"),
    Bad("search-filters-list", "POST", "/v1/search", document({"item_id": 1, "filters": ["category"]}), 422,
        "invalid_request"),
    Bad("search-filters-empty-value", "POST", "/v1/search", document({"item_id": 1, "filters": {"category": ""}}),
        422, "invalid_filter"),
    Bad("search-item-id-text", "POST", "/v1/search", document({"item_id": "one"}), 422, "invalid_request"),
    Bad("search-item-missing", "POST", "/v1/search", document({"item_id": 999}), 404, "not_found"),
    Bad("search-item-id-huge", "POST", "/v1/search", document({"item_id": 2**40}), 404, "not_found"),
    Bad("search-bad-json", "POST", "/v1/search", body(b"{", "application/json"), 422, "invalid_request"),
    Bad("search-upload-top-k-text", "POST", "/v1/search", upload(JPEG, top_k="many"), 422, "invalid_request"),
    Bad("search-upload-filters-not-json", "POST", "/v1/search", upload(JPEG, filters="{"), 422, "invalid_request"),
    Bad("search-json-100000-deep", "POST", "/v1/search", body(DEEP, "application/json"), 422, "invalid_request"),
    Bad("search-upload-filters-100000-deep", "POST", "/v1/search", upload(JPEG, filters=DEEP.decode()), 422,
        "invalid_request"),
    Bad("search-upload-filters-nested", "POST", "/v1/search", upload(JPEG, filters='{"color": {"a": 1}}'), 422,
        "invalid_filter"),
    # item attributes
    Bad("attributes-not-json", "POST", "/v1/items", upload(PHOTO, attributes="{colour: red"), 422,
        "invalid_attributes", auth=True),
    Bad("attributes-nested", "POST", "/v1/items", upload(PHOTO, attributes='{"colour": {"main": "red"}}'), 422,
        "invalid_attributes", auth=True),
    Bad("attributes-100000-deep", "POST", "/v1/items", upload(PHOTO, attributes=DEEP.decode()), 422,
        "invalid_attributes", auth=True),
    Bad("attributes-array", "POST", "/v1/items", upload(PHOTO, attributes='["red"]'), 422, "invalid_attributes",
        auth=True),
    Bad("attributes-too-many", "POST", "/v1/items",
        upload(PHOTO, attributes="{" + ",".join(f'"k{i}": "v"' for i in range(60)) + "}"), 422,
        "invalid_attributes", auth=True),
    Bad("attributes-value-too-long", "POST", "/v1/items", upload(PHOTO, attributes='{"note": "' + "x" * 500 + '"}'),
        422, "invalid_attributes", auth=True),
]


def test_the_suite_is_large_and_its_ids_are_unique():
    assert len(CASES) >= 30
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_a_json_4xx_and_the_service_keeps_serving(client, origin, case):
    response = client.request(case.method, case.path, **_merged(case, origin))
    assert (response.status_code, _code(response)) == (case.status, case.code), response.text[:500]
    assert response.headers["content-type"].startswith("application/json")
    message = response.json()["error"]["message"]
    assert isinstance(message, str) and message.strip()
    assert "Traceback" not in response.text and 'File "' not in response.text
    assert client.get("/v1/health").status_code == 200


def _merged(case: Bad, origin: Origin) -> dict:
    """The case's request arguments; its own headers (a Content-Type) join the token rather than replace it."""
    kwargs = case.request(origin)
    if case.auth:
        kwargs["headers"] = {**AUTH, **(kwargs.get("headers") or {})}
    return kwargs


def _code(response) -> str | None:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


# the API token


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"},
                                     {"Authorization": TOKEN}], ids=["none", "wrong", "basic-scheme", "no-scheme"])
def test_writes_without_the_token_are_refused(client, headers):
    added = client.post("/v1/items", files={"file": ("dress.jpg", PHOTO, "image/jpeg")}, headers=headers)
    removed = client.delete("/v1/items/1", headers=headers)
    for response in (added, removed):
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"
    assert client.get("/v1/items/1").status_code == 200  # nothing was removed


def test_writes_with_the_token_work_and_reads_need_none(client):
    added = client.post("/v1/items", files={"file": ("dress.jpg", PHOTO, "image/jpeg")}, headers=AUTH)
    assert added.status_code == 201, added.text
    item_id = added.json()["id"]
    for path in ("/v1/health", "/v1/models", "/v1/items", f"/v1/items/{item_id}", f"/v1/items/{item_id}/image",
                 "/v1/analyses"):
        assert client.get(path).status_code == 200, path
    assert client.post("/v1/search", json={"item_id": item_id, "top_k": 2}).status_code == 200
    assert client.delete(f"/v1/items/{item_id}", headers=AUTH).status_code == 204
    assert client.delete(f"/v1/items/{item_id}", headers=AUTH).status_code == 404


def test_fetching_from_the_allow_listed_origin_works(client, origin):
    """The URL cases above fail for their own reason: the same origin serves a real photo."""
    response = client.post("/v1/search", json={"url": origin.url("/photo.jpg"), "top_k": 1})
    assert response.status_code == 200, response.text
    assert len(response.json()["results"]) == 1


def test_after_all_that_a_good_photo_is_analysed(client):
    photo = SAMPLES / "skirt_3.jpg"  # analyse needs no token
    response = client.post("/v1/analyze", files={"file": (photo.name, photo.read_bytes(), "image/jpeg")})
    assert response.status_code == 201, response.text
    assert response.json()["items"]
