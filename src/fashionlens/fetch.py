"""Fetch an image by URL without letting the URL reach into the network it runs in (SSRF).

The URL and every redirect it leads to are checked before any connection: http(s) only, no credentials, and
every address the host resolves to must be public unless the policy allows it. The request then goes to the
very address that was checked (the name is kept for the Host header and TLS), so a DNS answer that changes
between the check and the connection (rebinding) cannot send it elsewhere. Size and time are capped for the
whole fetch. The body is returned as bytes: the Content-Type is not trusted, callers sniff the bytes with
`fashionlens.images.load_image`.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
import time
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Literal

import httpx

FetchErrorCode = Literal["url_invalid", "url_forbidden", "fetch_failed", "fetch_timeout", "too_large", "http_status"]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_LENGTH = 2048
METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "metadata.tencentyun.com",
    }
)
"""Cloud instance-metadata names, refused by name whatever they resolve to (only naming them in `allow` lifts it)."""

_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
_REFUSED_KINDS = (  # most specific first: is_private also holds for loopback and link-local addresses
    ("loopback", "a loopback"),
    ("link_local", "a link-local"),
    ("unspecified", "an unspecified"),
    ("multicast", "a multicast"),
    ("private", "a private"),
    ("reserved", "a reserved"),
)
_SHARED_NETWORK = ipaddress.IPv4Network("100.64.0.0/10")  # carrier-grade NAT; not is_private in Python 3.11


def _user_agent() -> str:
    try:
        return f"fashionlens/{version('fashionlens')}"
    except PackageNotFoundError:
        return "fashionlens"


class FetchError(ValueError):
    """A URL that was not fetched: `code` says which rule stopped it, `reason` says why in words."""

    def __init__(self, code: FetchErrorCode, url: str, reason: str, status: int | None = None):
        self.code = code
        self.url = url
        self.reason = reason
        self.status = status
        super().__init__(f"{url}: {reason}")


@dataclass(frozen=True)
class FetchPolicy:
    """Limits of one fetch. `allow` lists CIDRs or exact host names that may resolve to non-public addresses."""

    max_bytes: int = 20 * 2**20
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    total_timeout: float = 20.0
    max_redirects: int = 5
    allow: tuple[str, ...] = ()
    user_agent: str = _user_agent()

    def __post_init__(self) -> None:
        if isinstance(self.allow, str):  # a bare string would be read as its characters
            raise ValueError("FetchPolicy.allow must be a tuple of CIDRs or host names, not a string")
        if self.max_bytes <= 0:
            raise ValueError(f"FetchPolicy.max_bytes must be positive, got {self.max_bytes}")
        for name in ("connect_timeout", "read_timeout", "total_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"FetchPolicy.{name} must be positive, got {getattr(self, name)}")
        if self.max_redirects < 0:
            raise ValueError(f"FetchPolicy.max_redirects must be 0 or more, got {self.max_redirects}")
        _allow_rules(self.allow)  # a malformed CIDR fails here, not at the first fetch

    @classmethod
    def from_env(cls, **overrides) -> FetchPolicy:
        """FASHIONLENS_FETCH_ALLOW (comma separated), FASHIONLENS_MAX_IMAGE_BYTES, FASHIONLENS_FETCH_TIMEOUT
        (total seconds); keyword overrides win over the environment."""
        values: dict = {}
        if allow := os.environ.get("FASHIONLENS_FETCH_ALLOW", "").strip():
            values["allow"] = tuple(part.strip() for part in allow.split(",") if part.strip())
        if size := os.environ.get("FASHIONLENS_MAX_IMAGE_BYTES", "").strip():
            values["max_bytes"] = _env_number("FASHIONLENS_MAX_IMAGE_BYTES", size, int)
        if seconds := os.environ.get("FASHIONLENS_FETCH_TIMEOUT", "").strip():
            values["total_timeout"] = _env_number("FASHIONLENS_FETCH_TIMEOUT", seconds, float)
        return cls(**{**values, **overrides})


def _env_number(name: str, text: str, kind: type[int] | type[float]) -> int | float:
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a valid {kind.__name__}") from None


def is_url(text: str) -> bool:
    """True for text that names an http(s) URL rather than a local path."""
    return text[:8].lower().startswith(("http://", "https://"))


def fetch_bytes(url: str, policy: FetchPolicy | None = None) -> bytes:
    """The body of `url` after following at most `policy.max_redirects` checked redirects; a FetchError otherwise."""
    policy = policy or FetchPolicy()
    networks, names = _allow_rules(policy.allow)
    deadline = _Deadline(policy.total_timeout)
    current = url
    try:
        with httpx.Client(trust_env=False, follow_redirects=False) as client:  # no proxies, no .netrc
            for _ in range(policy.max_redirects + 1):
                target = _Target.check(current, networks, names)
                response = _send(client, target, policy, deadline)
                try:
                    location = response.headers.get("location")
                    if response.status_code in _REDIRECT_STATUSES and location:
                        current = _join(target, location)
                        continue
                    if not 200 <= response.status_code < 300:
                        raise FetchError(
                            "http_status",
                            current,
                            f"HTTP {response.status_code} {response.reason_phrase}".strip(),
                            response.status_code,
                        )
                    return _read_body(response, target, policy, deadline)
                finally:
                    response.close()
            raise FetchError("fetch_failed", url, f"more than {policy.max_redirects} redirects")
    except FetchError as exc:
        if exc.url == url:
            raise
        raise FetchError(exc.code, url, f"redirected to {exc.url}: {exc.reason}", exc.status) from None
    finally:
        deadline.close()


@dataclass(frozen=True)
class _Target:
    """A URL that passed every check, with the addresses its host resolved to (the only ones connected to)."""

    url: httpx.URL
    text: str
    addresses: tuple[str, ...]

    @classmethod
    def check(cls, text: str, networks: tuple[IPNetwork, ...], names: frozenset[str]) -> _Target:
        url = _parse(text)
        host = url.raw_host.decode("ascii").lower()
        name = host.rstrip(".")
        if name in METADATA_HOSTS and name not in names:
            raise FetchError("url_forbidden", text, f"{name} is a cloud metadata host")
        infos = _resolve(text, host, url.port or (443 if url.scheme == "https" else 80))
        addresses = tuple(dict.fromkeys(info[4][0] for info in infos))
        if name in names:
            return cls(url, text, addresses)
        for address in addresses:
            ip = _unmapped(ipaddress.ip_address(address))
            kind = _refused_kind(ip)
            if kind and not any(ip in network for network in networks if network.version == ip.version):
                what = "is" if _is_address(host) else "resolves to"
                raise FetchError(
                    "url_forbidden",
                    text,
                    f"host {what} {kind} address (add it to FASHIONLENS_FETCH_ALLOW to fetch from it)",
                )
        return cls(url, text, addresses)


def _parse(text: str) -> httpx.URL:
    if not text:
        raise FetchError("url_invalid", text, "empty URL")
    if len(text) > MAX_URL_LENGTH:
        raise FetchError("url_invalid", text, f"URL longer than {MAX_URL_LENGTH} characters")
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, ValueError) as exc:
        raise FetchError("url_invalid", text, f"not a valid URL ({exc})") from None
    if url.scheme not in ("http", "https"):
        shown = f"scheme {url.scheme!r} is" if url.scheme else "URL without a scheme is"
        raise FetchError("url_invalid", text, f"{shown} not fetched (only http and https)")
    if url.userinfo:
        raise FetchError("url_invalid", text, "credentials in the URL (user:password@) are not accepted")
    if not url.raw_host:
        raise FetchError("url_invalid", text, "URL has no host")
    if url.port is not None and not 1 <= url.port <= 65535:
        raise FetchError("url_invalid", text, f"port {url.port} is outside 1-65535")
    return url


def _resolve(text: str, host: str, port: int) -> list:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise FetchError("fetch_failed", text, f"cannot resolve host {host} ({reason})") from None
    if not infos:
        raise FetchError("fetch_failed", text, f"host {host} resolves to no address")
    return infos


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _unmapped(ip: IPAddress) -> IPAddress:
    """::ffff:127.0.0.1 reaches 127.0.0.1, so it is judged (and allowed) as 127.0.0.1."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _refused_kind(ip: IPAddress) -> str | None:
    """What kind of non-public address `ip` is ("a loopback"), or None for a public unicast address."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.sixtofour is not None:  # 2002::/16 carries an IPv4 address
        return _refused_kind(ip.sixtofour)
    for kind, words in _REFUSED_KINDS:
        if getattr(ip, f"is_{kind}"):
            return words
    if ip in _SHARED_NETWORK:
        return "a shared (carrier-grade NAT)"
    if isinstance(ip, ipaddress.IPv6Address) and ip.is_site_local:
        return "a site-local"
    if not ip.is_global:
        return "a non-global"
    return None


def _allow_rules(allow: tuple[str, ...]) -> tuple[tuple[IPNetwork, ...], frozenset[str]]:
    """Split `allow` into networks (CIDRs or single addresses) and lower-case host names."""
    networks, names = [], set()
    for entry in allow:
        entry = entry.strip()
        try:
            network = ipaddress.ip_network(entry.strip("[]"), strict=False)
        except ValueError:
            if "/" in entry or not entry:
                raise ValueError(f"allow entry {entry!r} is neither a CIDR nor a host name") from None
            names.add(entry.lower().rstrip("."))
            continue
        networks.append(network)
    return tuple(networks), frozenset(names)


def _send(client: httpx.Client, target: _Target, policy: FetchPolicy, deadline: _Deadline) -> httpx.Response:
    """GET to the checked addresses in turn (the next one only if connecting fails), headers streamed."""
    headers = {
        "Host": target.url.netloc.decode("ascii"),
        "User-Agent": policy.user_agent,
        "Accept": "image/*, */*;q=0.5",
        "Accept-Encoding": "identity",  # a compressed body could expand far past max_bytes
        "Connection": "close",  # no connection is reused for another host name (its TLS name would not match)
    }
    extensions: dict = {"trace": deadline.trace}
    if target.url.scheme == "https":
        extensions["sni_hostname"] = target.url.raw_host.decode("ascii")
    error: Exception | None = None
    for address in target.addresses:
        remaining = deadline.remaining()
        if remaining <= 0:
            raise FetchError("fetch_timeout", target.text, f"took longer than {policy.total_timeout:g} s")
        timeout = httpx.Timeout(
            min(policy.read_timeout, remaining),
            connect=min(policy.connect_timeout, remaining),
            pool=remaining,
        )
        request = client.build_request(
            "GET", target.url.copy_with(host=address), headers=headers, timeout=timeout, extensions=extensions
        )
        try:
            return client.send(request, stream=True)
        except httpx.ConnectError as exc:
            error = exc
        except httpx.HTTPError as exc:
            raise _transport_error(exc, target, policy, deadline) from None
    raise _transport_error(error, target, policy, deadline) from None


def _read_body(response: httpx.Response, target: _Target, policy: FetchPolicy, deadline: _Deadline) -> bytes:
    url = target.text
    limit = f"the {policy.max_bytes}-byte limit (FASHIONLENS_MAX_IMAGE_BYTES)"
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise FetchError("fetch_failed", url, f"compressed response (Content-Encoding: {encoding}) not accepted")
    length = response.headers.get("content-length", "").strip()
    if length.isdigit() and int(length) > policy.max_bytes:
        raise FetchError("too_large", url, f"Content-Length {length} is over {limit}")
    body = bytearray()
    try:
        for chunk in response.iter_raw():
            body += chunk
            if len(body) > policy.max_bytes:
                raise FetchError("too_large", url, f"body is over {limit}")
            if deadline.expired():
                break
    except httpx.HTTPError as exc:
        raise _transport_error(exc, target, policy, deadline) from None
    if deadline.expired():  # also catches a body cut short by the deadline's shutdown
        raise FetchError("fetch_timeout", url, f"took longer than {policy.total_timeout:g} s")
    return bytes(body)


def _join(target: _Target, location: str) -> str:
    try:
        return str(target.url.join(location).copy_with(fragment=None))
    except (httpx.InvalidURL, ValueError) as exc:
        raise FetchError("url_invalid", target.text, f"invalid redirect Location {location!r} ({exc})") from None


def _transport_error(exc: Exception, target: _Target, policy: FetchPolicy, deadline: _Deadline) -> FetchError:
    """The FetchError for an httpx failure; the message names the URL, never the address connected to."""
    if deadline.expired():
        return FetchError("fetch_timeout", target.text, f"took longer than {policy.total_timeout:g} s")
    if isinstance(exc, httpx.TimeoutException):
        what = "connecting" if isinstance(exc, httpx.ConnectTimeout) else "waiting for the server"
        return FetchError("fetch_timeout", target.text, f"timed out {what}")
    detail = str(exc) or type(exc).__name__
    for address in target.addresses:
        detail = detail.replace(address, target.url.host)
    kind = "connection failed" if isinstance(exc, httpx.ConnectError) else "transfer failed"
    return FetchError("fetch_failed", target.text, f"{kind} ({detail})")


class _Deadline:
    """The time limit of the whole fetch, redirects included.

    httpx limits each read, so a server dripping a byte just inside `read_timeout` would hold a fetch forever;
    at the deadline every socket this fetch opened is shut down, which ends any blocked read (headers, TLS
    handshake or body). The sockets are duplicated when opened so the shutdown never touches a reused descriptor.
    """

    def __init__(self, seconds: float):
        self._end = time.monotonic() + seconds
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._fired = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        return self._end - time.monotonic()

    def expired(self) -> bool:
        return self._fired or self.remaining() <= 0

    def trace(self, event: str, info: dict) -> None:
        """httpcore's trace hook: keeps a handle on each connected socket."""
        if event != "connection.connect_tcp.complete":
            return
        sock = info["return_value"].get_extra_info("socket").dup()
        with self._lock:
            self._sockets.append(sock)
            if self._fired:
                _shutdown(sock)

    def _fire(self) -> None:
        with self._lock:
            self._fired = True
            for sock in self._sockets:
                _shutdown(sock)

    def close(self) -> None:
        self._timer.cancel()
        with self._lock:
            for sock in self._sockets:
                sock.close()
            self._sockets.clear()


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:  # already closed by the peer
        pass
