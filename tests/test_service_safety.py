"""The HTTP service under bad input: every case is a 4xx JSON error with its stable code and a message, never a
traceback; the service still answers afterwards, and nothing was stored for it (no analysis, no item, no file).

One service serves the module, made with tokens in both scopes and small limits (2 MiB bodies; fetches of 256 KiB
that end after 1 s) so the limits are cheap to cross. Every case sends the read-write token, so it fails for its
own reason. URL cases fetch from a local server on 127.0.0.2: still loopback, so refused by default; the service
allow-lists 127.0.0.2/32 alone, so 127.0.0.1 stays refused. Host names under `.loopback.test` and `.private.test`
resolve (here, by a patched resolver) to 127.0.0.1 and 10.0.0.7: a DNS name is checked by what it resolves to.

Valid photos in unusual forms (CMYK, 16-bit, palette, EXIF-rotated, alpha) are no bad input: they are analysed.
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
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import SAMPLES, running_service
from fashionlens.fetch import FetchPolicy

TOKEN = "s3cret"
READ_TOKEN = "just-looking"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
READ = {"Authorization": f"Bearer {READ_TOKEN}"}
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
PNG, WEBP, GIF = _encoded("PNG"), _encoded("WEBP"), _encoded("GIF")


def _corrupt(data: bytes) -> bytes:
    """The first third kept (the header: it opens as its format), the rest overwritten: it fails to decode."""
    return data[: len(data) // 3] + b"\xff" * (len(data) - len(data) // 3)
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
def media(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("safety")


@pytest.fixture(scope="module")
def client(media, origin):
    policy = FetchPolicy(allow=(f"{ORIGIN_HOST}/32",), total_timeout=FETCH_SECONDS, max_bytes=FETCH_LIMIT)
    with running_service(media, api_token=f"other-token,{TOKEN}", read_tokens=READ_TOKEN,
                         max_upload_bytes=UPLOAD_LIMIT, fetch=policy, rate_limit=10_000) as client:
        yield client


@pytest.fixture(autouse=True)
def _test_names(monkeypatch):
    """`*.loopback.test` resolves to 127.0.0.1 and `*.private.test` to 10.0.0.7, as a hostile DNS could answer."""
    real = socket.getaddrinfo

    def resolve(host, port, *args, **kwargs):
        name = str(host).rstrip(".")
        fixed = "127.0.0.1" if name.endswith(".loopback.test") else "10.0.0.7" if name.endswith(".private.test") else None
        if fixed is None:
            return real(host, port, *args, **kwargs)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (fixed, port))]

    monkeypatch.setattr(socket, "getaddrinfo", resolve)


def stored(client, media: Path) -> tuple:
    """What the service keeps: its counts of analyses and items, and every file under its folder."""
    health = client.get("/v1/health").json()
    return health["analyses"], health["items"], sorted(str(p) for p in (media / "media").rglob("*"))


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


CASES = [
    # uploads that are not usable images
    Bad("truncated-jpeg", "POST", "/v1/analyze", upload(JPEG[: len(JPEG) // 2]), 422, "invalid_image"),
    Bad("truncated-png", "POST", "/v1/analyze", upload(PNG[: len(PNG) // 2], "x.png", "image/png"), 422,
        "invalid_image"),
    Bad("truncated-webp", "POST", "/v1/analyze", upload(WEBP[: len(WEBP) // 2], "x.webp", "image/webp"), 422,
        "invalid_image"),
    Bad("truncated-gif", "POST", "/v1/analyze", upload(GIF[: len(GIF) // 2], "x.gif", "image/gif"), 422,
        "invalid_image"),
    Bad("corrupt-jpeg", "POST", "/v1/analyze", upload(_corrupt(JPEG)), 422, "invalid_image"),
    Bad("corrupt-png", "POST", "/v1/analyze", upload(_corrupt(PNG), "x.png", "image/png"), 422, "invalid_image"),
    Bad("corrupt-webp", "POST", "/v1/analyze", upload(_corrupt(WEBP), "x.webp", "image/webp"), 422, "invalid_image"),
    Bad("corrupt-gif", "POST", "/v1/analyze", upload(_corrupt(GIF), "x.gif", "image/gif"), 422, "invalid_image"),
    Bad("zero-bytes", "POST", "/v1/analyze", upload(b""), 422, "invalid_image"),
    Bad("text-with-traversal-name", "POST", "/v1/analyze", upload(b"not a photo", "../../../etc/passwd"), 415,
        "not_an_image"),
    Bad("text-with-unicode-name", "POST", "/v1/analyze",
        upload(b"not a photo", "\u30c9\u30ec\u30b9\u202e\U0001f457.jpg"), 415, "not_an_image"),
    Bad("text-named-jpg", "POST", "/v1/analyze", upload(b"just some text\n" * 20), 415, "not_an_image"),
    Bad("svg", "POST", "/v1/analyze", upload(SVG, "logo.svg", "image/svg+xml"), 415, "not_an_image"),
    Bad("html", "POST", "/v1/analyze", upload(HTML, "page.jpg"), 415, "not_an_image"),
    Bad("pdf-header", "POST", "/v1/analyze", upload(PDF, "doc.png", "image/png"), 415, "not_an_image"),
    Bad("tiff-not-accepted", "POST", "/v1/analyze", upload(_encoded("TIFF"), "x.tif", "image/tiff"), 415,
        "not_an_image"),
    Bad("png-20000x20000", "POST", "/v1/analyze", upload(BOMB, "bomb.png", "image/png"), 413, "image_too_large"),
    Bad("png-64mpx", "POST", "/v1/analyze", upload(OVER_50_MPX, "big.png", "image/png"), 413, "image_too_large"),
    Bad("bad-image-as-item", "POST", "/v1/items", upload(JPEG[:100]), 422, "invalid_image"),
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
    Bad("url-name-resolving-to-loopback", "POST", "/v1/analyze", url("http://shop.loopback.test/a.jpg"), 403,
        "url_forbidden"),
    Bad("url-name-resolving-to-private", "POST", "/v1/analyze", url("http://cdn.private.test/a.jpg"), 403,
        "url_forbidden"),
    Bad("url-file", "POST", "/v1/analyze", url("file:///etc/passwd"), 400, "url_invalid"),
    Bad("url-ftp", "POST", "/v1/analyze", url("ftp://example.com/a.jpg"), 400, "url_invalid"),
    Bad("url-gopher", "POST", "/v1/analyze", url("gopher://127.0.0.1:6379/_INFO"), 400, "url_invalid"),
    Bad("url-credentials", "POST", "/v1/analyze", url("http://user:pw@example.com/a.jpg"), 400, "url_invalid"),
    Bad("url-no-scheme", "POST", "/v1/analyze", url("example.com/a.jpg"), 400, "url_invalid"),
    Bad("url-too-long", "POST", "/v1/analyze", url("http://example.com/" + "a" * 3000), 400, "url_invalid"),
    Bad("url-to-private-as-item", "POST", "/v1/items", url("http://10.0.0.1/a.jpg"), 403, "url_forbidden"),
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
    Bad("item-delete-missing", "DELETE", "/v1/items/999", nothing, 404, "not_found"),
    Bad("limit-0", "GET", "/v1/analyses?limit=0", nothing, 422, "invalid_request"),
    Bad("limit-1000", "GET", "/v1/analyses?limit=1000", nothing, 422, "invalid_request"),
    Bad("offset-negative", "GET", "/v1/items?offset=-1", nothing, 422, "invalid_request"),
    Bad("since-not-a-date", "GET", "/v1/analyses?since=not-a-date", nothing, 422, "invalid_request"),
    Bad("where-without-equals", "GET", "/v1/items?where=category", nothing, 422, "invalid_filter"),
    Bad("where-unknown-key", "GET", "/v1/items?where=label=shoes", nothing, 422, "unknown_filter"),
    Bad("items-unknown-parameter", "GET", "/v1/items?label=shoes", nothing, 422, "unknown_filter"),
    Bad("analyses-unknown-parameter", "GET", "/v1/analyses?category=dress", nothing, 422, "unknown_filter"),
    Bad("search-unknown-filter-key", "POST", "/v1/search", document({"item_id": 1, "filters": {"label": "shoes"}}),
        422, "unknown_filter"),
    Bad("search-upload-unknown-filter-key", "POST", "/v1/search", upload(JPEG, filters='{"label": "shoes"}'), 422,
        "unknown_filter"),
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
    Bad("search-top-k-huge", "POST", "/v1/search", document({"item_id": 1, "top_k": 10**30}), 422, "invalid_request"),
    Bad("search-top-k-float", "POST", "/v1/search", document({"item_id": 1, "top_k": 2.5}), 422, "invalid_request"),
    Bad("search-item-id-infinite", "POST", "/v1/search", body(b'{"item_id": 1e999}', "application/json"), 422,
        "invalid_request"),
    Bad("limit-huge", "GET", "/v1/items?limit=" + "9" * 40, nothing, 422, "invalid_request"),
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
        "invalid_attributes"),
    Bad("attributes-nested", "POST", "/v1/items", upload(PHOTO, attributes='{"colour": {"main": "red"}}'), 422,
        "invalid_attributes"),
    Bad("attributes-100000-deep", "POST", "/v1/items", upload(PHOTO, attributes=DEEP.decode()), 422,
        "invalid_attributes"),
    Bad("attributes-array", "POST", "/v1/items", upload(PHOTO, attributes='["red"]'), 422, "invalid_attributes"),
    Bad("attributes-too-many", "POST", "/v1/items",
        upload(PHOTO, attributes="{" + ",".join(f'"k{i}": "v"' for i in range(60)) + "}"), 422,
        "invalid_attributes"),
    Bad("attributes-value-too-long", "POST", "/v1/items", upload(PHOTO, attributes='{"note": "' + "x" * 500 + '"}'),
        422, "invalid_attributes"),
]


def test_the_suite_is_large_and_its_ids_are_unique():
    assert len(CASES) >= 40
    assert len({case.id for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input_is_a_json_4xx_and_nothing_is_stored(client, media, origin, case):
    before = stored(client, media)
    kwargs = case.request(origin)
    kwargs["headers"] = {**AUTH, **(kwargs.get("headers") or {})}  # the case's own Content-Type joins the token
    response = client.request(case.method, case.path, **kwargs)
    assert (response.status_code, _code(response)) == (case.status, case.code), response.text[:500]
    assert response.headers["content-type"].startswith("application/json")
    message = response.json()["error"]["message"]
    assert isinstance(message, str) and message.strip()
    assert "Traceback" not in response.text and 'File "' not in response.text
    assert stored(client, media) == before  # checked through /v1/health: the service is alive too


def _code(response) -> str | None:
    try:
        return response.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def _unusual(mode: str, exif_rotation: int | None = None, kind: str = "PNG") -> bytes:
    """The photo in another pixel mode (or turned on its side with an EXIF orientation that turns it back)."""
    photo = Image.open(SAMPLES / "skirt_3.jpg").convert("RGB")
    out = io.BytesIO()
    if exif_rotation:
        exif = Image.Exif()
        exif[0x0112] = exif_rotation  # 6: shown turned 90 degrees clockwise
        photo.transpose(Image.Transpose.ROTATE_90).save(out, "JPEG", exif=exif)
    elif mode == "I;16":
        Image.fromarray((np.asarray(photo.convert("L"), dtype=np.uint16) * 257)).save(out, "PNG")
    else:
        image = photo.convert(mode) if mode != "P" else photo.quantize(64)
        if mode == "RGBA":
            image.putalpha(Image.linear_gradient("L").resize(image.size))
        image.save(out, kind)
    return out.getvalue()


UNUSUAL = {"cmyk-jpeg": lambda: _unusual("CMYK", kind="JPEG"), "16-bit-grey-png": lambda: _unusual("I;16"),
           "palette-png": lambda: _unusual("P"), "palette-gif": lambda: _unusual("P", kind="GIF"),
           "alpha-png": lambda: _unusual("RGBA"), "alpha-webp": lambda: _unusual("RGBA", kind="WEBP"),
           "exif-rotated-jpeg": lambda: _unusual("RGB", exif_rotation=6)}


@pytest.mark.parametrize("name", UNUSUAL)
def test_valid_photos_in_unusual_forms_are_analysed(client, name):
    response = client.post("/v1/analyze", files={"file": (f"{name}.img", UNUSUAL[name](), "image/png")}, headers=AUTH)
    assert response.status_code in (200, 201), response.text[:300]
    assert response.json()["items"]
    if name == "exif-rotated-jpeg":  # turned back upright: the stored size is the photo's own, not the sideways one
        with Image.open(SAMPLES / "skirt_3.jpg") as photo:
            assert (response.json()["width"], response.json()["height"]) == photo.size


def test_a_path_traversal_file_name_is_only_a_label(client, media):
    name = "../../../../tmp/evil-\u00fcn\u00efc\u00f8d\u00e9-\U0001f457\u202egpj.jpg"
    response = client.post("/v1/analyze", files={"file": (name, PHOTO, "image/jpeg")}, headers=AUTH)
    assert response.status_code in (200, 201), response.text[:300]
    assert not Path("/tmp/evil").exists()
    kept = [p for p in (media / "media").rglob("*") if p.is_file()]
    assert kept and all(p.resolve().is_relative_to((media / "media").resolve()) for p in kept)


# access: tokens in two scopes


ITEM_ID = 1  # a seeded item
READS = [("GET", "/v1/analyses", None), ("GET", "/v1/analyses/1", None), ("GET", "/v1/analyses/1/image", None),
         ("GET", "/v1/items", None), ("GET", f"/v1/items/{ITEM_ID}", None), ("GET", f"/v1/items/{ITEM_ID}/image", None),
         ("GET", "/v1/facets", None), ("POST", "/v1/search", {"item_id": ITEM_ID, "top_k": 2})]
WRONG = {"none": {}, "wrong": {"Authorization": "Bearer wrong"}, "basic-scheme": {"Authorization": f"Basic {TOKEN}"},
         "no-scheme": {"Authorization": TOKEN}, "prefix": {"Authorization": f"Bearer {TOKEN[:-1]}"},
         "joined": {"Authorization": f"Bearer other-token,{TOKEN}"}}


@pytest.mark.parametrize("headers", WRONG.values(), ids=WRONG.keys())
def test_without_a_valid_token_reads_and_writes_are_401(client, media, headers):
    before = stored(client, media)
    answers = [client.request(method, path, json=body, headers=headers) for method, path, body in READS]
    answers += [client.post("/v1/analyze", files={"file": ("dress.jpg", PHOTO, "image/jpeg")}, headers=headers),
                client.post("/v1/items", files={"file": ("dress.jpg", PHOTO, "image/jpeg")}, headers=headers),
                client.delete(f"/v1/items/{ITEM_ID}", headers=headers)]
    for response in answers:
        assert response.status_code == 401, (response.request.url, response.text)
        assert response.json()["error"]["code"] == "unauthorized"
        assert response.headers["www-authenticate"] == "Bearer"
    assert stored(client, media) == before


def test_health_ready_metrics_and_docs_stay_open(client):
    for path in ("/v1/health", "/v1/ready", "/metrics", "/docs", "/openapi.json", "/", "/ui/app.js"):
        assert client.get(path).status_code == 200, path
    assert client.get("/v1/health").json()["token_required"] is True


def test_a_read_token_reads_and_cannot_write(client, media):
    client.post("/v1/analyze", files={"file": ("skirt.jpg", (SAMPLES / "skirt_3.jpg").read_bytes(), "image/jpeg")},
                headers=AUTH)  # so that analysis 1 exists
    for method, path, body in READS:
        assert client.request(method, path, json=body, headers=READ).status_code == 200, path
    before = stored(client, media)
    for response in (client.post("/v1/analyze", files={"file": ("dress.jpg", PHOTO, "image/jpeg")}, headers=READ),
                     client.post("/v1/items", files={"file": ("dress.jpg", PHOTO, "image/jpeg")}, headers=READ),
                     client.delete(f"/v1/items/{ITEM_ID}", headers=READ)):
        assert response.status_code == 403, response.text
        assert response.json()["error"]["code"] == "forbidden"
    assert stored(client, media) == before


def test_either_write_token_writes(client):
    added = client.post("/v1/items", files={"file": ("dress.jpg", PHOTO, "image/jpeg")}, headers=AUTH)
    assert added.status_code == 201, added.text
    item_id = added.json()["id"]
    assert client.get(f"/v1/items/{item_id}/image", headers=AUTH).content == PHOTO
    assert client.delete(f"/v1/items/{item_id}", headers={"Authorization": "Bearer other-token"}).status_code == 204
    assert client.delete(f"/v1/items/{item_id}", headers=AUTH).status_code == 404


def test_an_unknown_filter_key_names_the_known_ones(client):
    answer = client.get("/v1/items", params={"where": "label=shoes"}, headers=READ)
    assert answer.status_code == 422
    message = answer.json()["error"]["message"]
    assert "label" in message and "category" in message and "color" in message
    assert "takes category, color, where, limit, offset" in client.get("/v1/items?label=shoes", headers=READ).text
    assert client.get("/v1/items", params={"where": "category=dress"}, headers=READ).status_code == 200


def test_fetching_from_the_allow_listed_origin_works(client, origin):
    """The URL cases above fail for their own reason: the same origin serves a real photo."""
    response = client.post("/v1/search", json={"url": origin.url("/photo.jpg"), "top_k": 1}, headers=READ)
    assert response.status_code == 200, response.text
    assert len(response.json()["results"]) == 1


def test_after_all_that_a_good_photo_is_analysed(client):
    photo = SAMPLES / "outwear_1.jpg"
    response = client.post("/v1/analyze", files={"file": (photo.name, photo.read_bytes(), "image/jpeg")}, headers=AUTH)
    assert response.status_code == 201, response.text
    assert response.json()["items"]
