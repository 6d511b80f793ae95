"""Every error the service answers is JSON with a stable code and a message: {"error": {"code", "message"}}.

Nothing else ever reaches the client: validation errors are reshaped, and unknown exceptions are logged and
answered with a bare 500 (no traceback).
"""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from fashionlens.catalog.search import UnknownFilterKey
from fashionlens.fetch import FetchError
from fashionlens.images import ImageError

log = logging.getLogger("fashionlens.service")

IMAGE_STATUS = {"not_an_image": 415, "image_too_large": 413, "invalid_image": 422}
FETCH_STATUS = {"url_invalid": 400, "url_forbidden": 403, "too_large": 413, "fetch_timeout": 422,
                "fetch_failed": 422, "http_status": 422}
HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
              406: "not_acceptable", 413: "too_large", 415: "unsupported_media_type", 422: "invalid_request",
              429: "too_many_requests", 503: "busy"}


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers or {}


def error_body(code: str, message: str, **extra) -> dict:
    return {"error": {"code": code, "message": message, **extra}}


def _response(status: int, code: str, message: str, headers=None, **extra) -> JSONResponse:
    return JSONResponse(error_body(code, message, **extra), status_code=status, headers=headers)


class BodyLimit:
    """Request bodies over `max_bytes` get the JSON 413 (Starlette's own limit answers in plain text whenever the
    Content-Length is over it). A declared length is refused before the body is read; a chunked body is counted as
    it arrives and the handler reading it gets the same error."""

    def __init__(self, app: ASGIApp, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    def _error(self) -> ApiError:
        return ApiError(413, "too_large",
                        f"request body is over the {self.max_bytes}-byte limit (FASHIONLENS_MAX_UPLOAD_BYTES)")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length", "").strip()
        if length.isdigit() and int(length) > self.max_bytes:
            error = self._error()
            await _response(error.status, error.code, error.message)(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_bytes:
                raise self._error()
            return message

        await self.app(scope, counted, send)


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_request: Request, exc: ApiError):
        headers = {"WWW-Authenticate": "Bearer", **exc.headers} if exc.status == 401 else exc.headers
        return _response(exc.status, exc.code, exc.message, headers)

    @app.exception_handler(ImageError)
    async def image_error(_request: Request, exc: ImageError):
        return _response(IMAGE_STATUS.get(exc.code, 422), exc.code, str(exc))

    @app.exception_handler(FetchError)
    async def fetch_error(_request: Request, exc: FetchError):
        return _response(FETCH_STATUS.get(exc.code, 422), exc.code, str(exc))

    @app.exception_handler(UnknownFilterKey)
    async def unknown_filter(_request: Request, exc: UnknownFilterKey):
        return _response(422, "unknown_filter", str(exc))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request: Request, exc: RequestValidationError):
        problems = [{"field": ".".join(str(p) for p in e.get("loc", ())), "message": e.get("msg", "")}
                    for e in exc.errors()]
        first = problems[0] if problems else {"field": "", "message": "invalid request"}
        return _response(422, "invalid_request", f"{first['field']}: {first['message']}", details=problems)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request: Request, exc: StarletteHTTPException):
        code = HTTP_CODES.get(exc.status_code, "http_error")
        return _response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return _response(500, "internal_error", "the server failed to handle this request; it has been logged")
