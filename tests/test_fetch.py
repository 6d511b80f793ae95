"""fetch_bytes against a real local HTTP server: what is fetched, what is refused, and that refusals connect nowhere."""

from __future__ import annotations

import io
import shutil
import socket
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from fashionlens import fetch
from fashionlens.fetch import FetchError, FetchPolicy, fetch_bytes, is_url
from fashionlens.images import load_image

LOCAL = FetchPolicy(allow=("127.0.0.1/32",))


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 6), (200, 30, 30)).save(out, "PNG")
    return out.getvalue()


PNG = _png()


class _Handler(BaseHTTPRequestHandler):
    """HTTP/1.0, so a body without Content-Length ends when the connection closes."""

    seen: list[tuple[str, str]] = []  # (path, Host header) of every request

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        _Handler.seen.append((self.path, self.headers.get("Host", "")))
        route = getattr(self, "route_" + self.path.strip("/").replace("-", "_").replace(".", "_"), None)
        try:
            route() if route else self._send(404, b"not found")
        except OSError:  # the client gave up (time or size limit), which is what some tests expect
            pass

    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, length: int | None = None):
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str):
        self._send(302, headers={"Location": location}, length=0)

    def route_image_png(self):
        self._send(200, PNG, {"Content-Type": "text/plain"}, len(PNG))  # a wrong type: not trusted, not needed

    def route_relative(self):
        self._redirect("image.png")

    def route_self(self):
        self._redirect("/self")

    def route_loop_a(self):
        self._redirect("/loop-b")

    def route_loop_b(self):
        self._redirect("/loop-a")

    def route_to_private(self):
        self._redirect("http://10.0.0.1/")

    def route_to_metadata(self):
        self._redirect("http://169.254.169.254/latest/meta-data/")

    def route_to_file(self):
        self._redirect("file:///etc/passwd")

    def route_to_rebound(self):
        self._redirect("http://cdn.example.com/image.png")

    def route_drip(self):
        self._send(200, length=100)
        for _ in range(100):
            self.wfile.write(b"x")
            self.wfile.flush()
            time.sleep(0.5)

    def route_drip_headers(self):
        self.wfile.write(b"HTTP/1.0 200 OK\r\n")
        for _ in range(100):
            self.wfile.write(b"X")
            self.wfile.flush()
            time.sleep(0.5)

    def route_big(self):
        self._send(200, b"x" * 5000, length=5000)

    def route_big_unsized(self):
        self._send(200, b"x" * 5000)

    def route_lying_short(self):
        self._send(200, b"x" * 5000, length=100)

    def route_lying_long(self):
        self._send(200, b"x" * 100, length=500)

    def route_gzip(self):
        self._send(200, b"\x1f\x8b" + b"x" * 10, {"Content-Encoding": "gzip"}, 12)


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def seen():
    _Handler.seen.clear()
    return _Handler.seen


@pytest.fixture
def no_connect(monkeypatch):
    """Fails the test if anything opens a TCP connection."""
    attempts = []

    def refuse(address, *args, **kwargs):
        attempts.append(address)
        raise AssertionError(f"connection attempted to {address}")

    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


@pytest.fixture
def dns(monkeypatch):
    """Host names answered from a table (list of addresses, or a function of the call count); others really."""
    table: dict = {}
    calls: list[str] = []
    real = socket.getaddrinfo

    def fake(host, port, *args, **kwargs):
        if host not in table:
            return real(host, port, *args, **kwargs)
        calls.append(host)
        answer = table[host]
        addresses = answer(calls.count(host)) if callable(answer) else answer
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", (a, port, 0, 0))
            if ":" in a
            else (socket.AF_INET, socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]

    monkeypatch.setattr(fetch.socket, "getaddrinfo", fake)
    return table, calls


def _error(url: str, policy: FetchPolicy | None = None) -> FetchError:
    with pytest.raises(FetchError) as info:
        fetch_bytes(url, policy)
    return info.value


def test_fetches_an_image_from_an_allowed_address(server, seen):
    data = fetch_bytes(f"{server}/image.png", LOCAL)
    assert data == PNG
    assert load_image(data).size == (8, 6)
    assert seen == [("/image.png", server.removeprefix("http://"))]


def test_relative_redirect_is_followed(server):
    assert fetch_bytes(f"{server}/relative", LOCAL) == PNG


def test_404_is_http_status(server):
    error = _error(f"{server}/missing", LOCAL)
    assert (error.code, error.status) == ("http_status", 404)
    assert "HTTP 404" in error.reason
    assert str(error) == f"{server}/missing: {error.reason}"


@pytest.mark.parametrize("path", ["/self", "/loop-a"])
def test_redirect_loops_stop_after_max_redirects(server, seen, path):
    error = _error(f"{server}{path}", FetchPolicy(allow=LOCAL.allow, max_redirects=3))
    assert error.code == "fetch_failed"
    assert "more than 3 redirects" in error.reason
    assert len(seen) == 4  # the first request and three redirects


@pytest.mark.parametrize(
    ("path", "target"),
    [("/to-private", "http://10.0.0.1/"), ("/to-metadata", "http://169.254.169.254/latest/meta-data/")],
)
def test_redirect_to_a_private_address_is_forbidden(server, seen, path, target):
    error = _error(f"{server}{path}", LOCAL)
    assert error.code == "url_forbidden"
    assert error.url == f"{server}{path}"
    assert target in error.reason
    assert [p for p, _ in seen] == [path]


def test_redirect_to_another_scheme_is_invalid(server):
    assert _error(f"{server}/to-file", LOCAL).code == "url_invalid"


@pytest.mark.slow
def test_slow_drip_body_is_stopped_by_total_timeout(server):
    start = time.monotonic()
    error = _error(f"{server}/drip", FetchPolicy(allow=LOCAL.allow, total_timeout=1.0))
    assert error.code == "fetch_timeout"
    assert time.monotonic() - start < 2.0


@pytest.mark.slow
def test_slow_drip_headers_are_stopped_by_total_timeout(server):
    start = time.monotonic()
    error = _error(f"{server}/drip-headers", FetchPolicy(allow=LOCAL.allow, total_timeout=1.0))
    assert error.code == "fetch_timeout"
    assert time.monotonic() - start < 2.0


def test_content_length_over_the_limit_is_refused_before_reading(server):
    error = _error(f"{server}/big", FetchPolicy(allow=LOCAL.allow, max_bytes=1000))
    assert error.code == "too_large"
    assert "Content-Length 5000" in error.reason and "1000-byte limit" in error.reason


def test_body_without_length_is_cut_at_the_limit(server):
    error = _error(f"{server}/big-unsized", FetchPolicy(allow=LOCAL.allow, max_bytes=1000))
    assert error.code == "too_large"
    assert "1000-byte limit" in error.reason
    assert fetch_bytes(f"{server}/big-unsized", FetchPolicy(allow=LOCAL.allow, max_bytes=5000)) == b"x" * 5000


def test_lying_content_length_never_exceeds_it(server):
    """A body longer than its Content-Length is read only up to the length; a shorter one is an error."""
    assert fetch_bytes(f"{server}/lying-short", FetchPolicy(allow=LOCAL.allow, max_bytes=1000)) == b"x" * 100
    error = _error(f"{server}/lying-long", LOCAL)
    assert error.code == "fetch_failed"
    assert "127.0.0.1" not in error.reason


def test_compressed_body_is_refused(server):
    assert _error(f"{server}/gzip", LOCAL).code == "fetch_failed"


def test_connection_refused_is_fetch_failed():
    with socket.socket() as sock:  # a port that was free a moment ago
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    error = _error(f"http://127.0.0.1:{port}/", LOCAL)
    assert error.code == "fetch_failed"
    assert "connection failed" in error.reason and "Traceback" not in error.reason


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/",
        "http://localhost/",
        "http://[::1]/",
        "http://10.0.0.1/",
        "http://172.16.5.4/",
        "http://192.168.1.1/",
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0/",
        "http://[::]/",
        "http://[::ffff:127.0.0.1]/",
        "http://[::ffff:10.0.0.1]/",
        "http://2130706433/",  # decimal 127.0.0.1, which getaddrinfo (inet_aton) accepts
        "http://0x7f.1/",
        "http://100.64.0.1/",
        "http://224.0.0.1/",
        "http://[fe80::1]/",
        "http://[fd00::1]/",
        "http://[2002:7f00:1::]/",  # 6to4 around 127.0.0.1
        "https://metadata.google.internal/computeMetadata/v1/",
        "http://metadata/",
    ],
)
def test_non_public_addresses_are_forbidden_without_connecting(url, no_connect):
    error = _error(url)
    assert error.code == "url_forbidden", error
    assert no_connect == []


def test_allow_list_is_per_network(server, no_connect):
    """An allowed 127.0.0.1 does not open 10.0.0.0/8 or the metadata name."""
    assert _error("http://10.0.0.1/", LOCAL).code == "url_forbidden"
    assert _error("http://metadata.google.internal/", FetchPolicy(allow=("169.254.0.0/16",))).code == "url_forbidden"
    assert no_connect == []


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "ftp://example.com/a.jpg",
        "gopher://example.com/",
        "data:image/png;base64,AAAA",
        "not a url",
        "example.com/a.jpg",
        "http://user:pw@example.com/",
        "http://user@example.com/",
        "http:///a.jpg",
        "http://example.com:0/",
        "http://example.com:65536/",
        "http://example.com:http/",
        "http://example.com/" + "a" * 2048,
    ],
)
def test_invalid_urls(url, no_connect):
    error = _error(url)
    assert error.code == "url_invalid", error
    assert no_connect == []


def test_name_resolving_to_a_private_address_is_forbidden(dns, no_connect):
    table, _ = dns
    table["cdn.example.com"] = ["10.0.0.1"]
    error = _error("http://cdn.example.com/a.jpg")
    assert error.code == "url_forbidden"
    assert "10.0.0.1" not in str(error)  # the internal address is not disclosed
    assert no_connect == []


def test_one_private_address_among_several_is_forbidden(dns, no_connect):
    table, _ = dns
    table["mixed.example.com"] = ["93.184.216.34", "10.0.0.1"]
    assert _error("http://mixed.example.com/").code == "url_forbidden"
    assert no_connect == []


def test_redirect_to_a_name_resolving_privately_is_forbidden(server, dns):
    table, _ = dns
    table["cdn.example.com"] = ["10.0.0.1"]
    error = _error(f"{server}/to-rebound", LOCAL)
    assert error.code == "url_forbidden"
    assert "http://cdn.example.com/image.png" in error.reason


def test_connects_to_the_checked_address_not_a_second_lookup(server, dns, seen):
    """DNS rebinding: later answers point inside, but the request goes to the address that was checked."""
    table, calls = dns
    table["shop.example"] = lambda n: ["127.0.0.1"] if n == 1 else ["10.0.0.1"]
    port = server.rsplit(":", 1)[1]
    assert fetch_bytes(f"http://shop.example:{port}/image.png", LOCAL) == PNG
    assert calls == ["shop.example"]
    assert seen == [("/image.png", f"shop.example:{port}")]


def test_allowed_host_name_and_fallback_to_the_next_address(server, dns, seen):
    table, _ = dns
    table["intranet.example"] = ["::1", "127.0.0.1"]  # nothing listens on ::1, so the second address is used
    port = server.rsplit(":", 1)[1]
    assert fetch_bytes(f"http://intranet.example:{port}/image.png", FetchPolicy(allow=("intranet.example",))) == PNG
    assert seen == [("/image.png", f"intranet.example:{port}")]


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    """A TLS listener with a self-signed certificate that records the SNI name of each handshake."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    key, cert = folder / "key.pem", folder / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
         "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=shop.example"],
        check=True, capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    names: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve():
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            try:
                with context.wrap_socket(conn, server_side=True):
                    pass
            except (OSError, ssl.SSLError):
                pass

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1], names
    listener.close()


def test_https_sends_the_host_name_as_sni(tls_server, dns):
    port, names = tls_server
    table, _ = dns
    table["shop.example"] = ["127.0.0.1"]
    error = _error(f"https://shop.example:{port}/a.jpg", LOCAL)
    assert error.code == "fetch_failed"  # the certificate is self-signed, so verification fails
    assert "CERTIFICATE_VERIFY_FAILED" in error.reason
    assert "127.0.0.1" not in str(error)
    assert names[-1] == "shop.example"


def test_is_url():
    assert is_url("http://example.com/a.jpg") and is_url("HTTPS://example.com/")
    assert not is_url("photos/a.jpg") and not is_url("/tmp/http://x") and not is_url("ftp://example.com/")


def test_policy_from_env(monkeypatch):
    monkeypatch.setenv("FASHIONLENS_FETCH_ALLOW", "10.0.0.0/8, images.internal ,")
    monkeypatch.setenv("FASHIONLENS_MAX_IMAGE_BYTES", "1000")
    monkeypatch.setenv("FASHIONLENS_FETCH_TIMEOUT", "2.5")
    policy = FetchPolicy.from_env(max_redirects=1)
    assert policy.allow == ("10.0.0.0/8", "images.internal")
    assert (policy.max_bytes, policy.total_timeout, policy.max_redirects) == (1000, 2.5, 1)
    assert FetchPolicy.from_env(max_bytes=5).max_bytes == 5
    assert policy.user_agent.startswith("fashionlens/")
    monkeypatch.setenv("FASHIONLENS_MAX_IMAGE_BYTES", "big")
    with pytest.raises(ValueError, match="FASHIONLENS_MAX_IMAGE_BYTES"):
        FetchPolicy.from_env()


def test_policy_rejects_a_malformed_allow_entry():
    with pytest.raises(ValueError, match="10.0.0.0/33"):
        FetchPolicy(allow=("10.0.0.0/33",))
    with pytest.raises(ValueError, match="tuple"):
        FetchPolicy(allow="127.0.0.1/32")
