"""Who may do what: bearer tokens in two scopes, read (browse and search) and write (analyse, add, delete).

With no token configured the service is open, and `serve` only binds to loopback. With any token, every route
that reads or writes stored data needs one; a read token on a write is 403. Tokens are compared in constant time,
each against every configured one, so the answer's timing says nothing about which came close.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from fashionlens.service.errors import ApiError


class Scope(str, Enum):
    READ = "read"
    WRITE = "write"


@dataclass(frozen=True)
class Tokens:
    write: tuple[str, ...] = ()
    read: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        return bool(self.write or self.read)

    @classmethod
    def from_settings(cls, api_token: str | None, read_tokens: str | None, token_file: Path | None) -> Tokens:
        write, read = _split(api_token), _split(read_tokens)
        if token_file is not None:
            more_write, more_read = _read_file(token_file)
            write, read = write + more_write, read + more_read
        return cls(write, read)

    def scope_of(self, given: str) -> Scope | None:
        """The scope `given` grants (write includes read), or None. Every token is compared, match or not."""
        given_bytes = given.encode()
        is_write = any([hmac.compare_digest(given_bytes, t.encode()) for t in self.write])
        is_read = any([hmac.compare_digest(given_bytes, t.encode()) for t in self.read])
        return Scope.WRITE if is_write else Scope.READ if is_read else None


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(t.strip() for t in (value or "").split(",") if t.strip())


def _read_file(path: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """`read <token>` or `write <token>` a line; blank lines and `#` comments are skipped."""
    write, read = [], []
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise ValueError(f"token file {path}: {exc.strerror or exc}") from None
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        scope, _, token = line.partition(" ")
        if scope not in ("read", "write") or not token.strip():
            raise ValueError(f"token file {path}, line {number}: expected 'read <token>' or 'write <token>'")
        (write if scope == "write" else read).append(token.strip())
    return tuple(write), tuple(read)


def is_loopback(host: str) -> bool:
    """Whether `host` (as given to --host) only listens on this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


bearer = HTTPBearer(auto_error=False, description="A read token (GET and search) or a read-write token.")


def _scope(request: Request, credentials: HTTPAuthorizationCredentials | None) -> Scope:
    tokens: Tokens = request.app.state.tokens
    if not tokens.required:
        return Scope.WRITE
    scope = tokens.scope_of(credentials.credentials.strip()) if credentials is not None else None
    if scope is None:
        raise ApiError(401, "unauthorized", "this endpoint needs the header 'Authorization: Bearer <token>' with "
                                            "one of the service's API tokens")
    request.state.client_key = "token:" + hashlib.sha256(credentials.credentials.strip().encode()).hexdigest()[:16]
    return scope


def require_read(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Scope:
    return _scope(request, credentials)


def require_write(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Scope:
    if _scope(request, credentials) is not Scope.WRITE:
        raise ApiError(403, "forbidden", "this token is read-only; analysing and changing the catalogue need a "
                                         "read-write token (FASHIONLENS_API_TOKEN)")
    return Scope.WRITE
