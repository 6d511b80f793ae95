"""What every route shares: the service, typed path and query values, and reading an image from a request (a
multipart upload or a JSON document with a URL)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from typing import Annotated

from fastapi import Path as PathParam, Query, Request, Response
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from fashionlens.fetch import fetch_bytes
from fashionlens.service.core import Service
from fashionlens.service.errors import ApiError
from fashionlens.service.media import THUMBNAIL_SIZES, MediaStore
from fashionlens.service.schemas import ErrorOut

MAX_ID = 2**31 - 1  # ids are 32-bit in the schema; larger ones cannot exist
RowId = Annotated[int, PathParam(ge=1, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=100)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
Text = Annotated[str | None, Query(max_length=200)]
ImageSize = Annotated[int | None, Query(description="A resized JPEG whose longer side is at most this many pixels: "
                                                    "64, 128, 256, 512 or 1024.")]
ImageVersion = Annotated[str | None, Query(alias="v", min_length=8, max_length=64, pattern="^[0-9a-f]+$",
                                           description="The image's sha256 (or its first 8+ characters): the answer "
                                                       "is then cached as immutable.")]
ERRORS = {code: {"model": ErrorOut} for code in (400, 401, 403, 404, 413, 415, 422, 429, 503)}
IMAGE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif", "BMP": "image/bmp",
               "MPO": "image/jpeg"}


def get_service(request: Request) -> Service:
    return request.app.state.service


def only_query(*names: str) -> Callable[[Request], None]:
    """A dependency refusing query parameters the route does not take: `?label=shoes` on items is a mistake to
    name (422), not a filter to ignore."""

    def check(request: Request) -> None:
        unknown = sorted(set(request.query_params) - set(names))
        if unknown:
            raise ApiError(422, "unknown_filter", f"unknown query parameter {', '.join(unknown)}: this route takes "
                                                  f"{', '.join(names)}")

    return check


def body_schema(json_model: type, fields: dict) -> dict:
    """OpenAPI for a route that takes either an image upload (multipart) or a JSON document."""
    return {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
            "file": {"type": "string", "format": "binary"}, **fields}}},
        "application/json": {"schema": json_model.model_json_schema()}}}}


def content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def parse_json(text: str | bytes, code: str, what: str, status: int = 400):
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than json's parser goes
        raise ApiError(status, code, f"{what} is not valid JSON ({exc})") from None


async def fetch(request: Request, url: str) -> bytes:
    return await run_in_threadpool(fetch_bytes, url, request.app.state.settings.fetch)


async def image_input(request: Request) -> tuple[bytes, str, dict]:
    """(image bytes, source, the other fields) from a multipart upload (`file`) or JSON with a `url`."""
    kind = content_type(request)
    if kind == "multipart/form-data":
        form = await request.form(max_files=1, max_fields=20)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ApiError(422, "missing_file", "multipart body needs an image in the field 'file'")
        data = await upload.read()
        fields = {k: v for k, v in form.items() if k != "file" and isinstance(v, str)}
        return data, f"upload:{(upload.filename or 'image')[:200]}", fields
    if kind == "application/json":
        document = parse_json(await request.body(), "invalid_json", "request body")
        if not isinstance(document, dict):
            raise ApiError(422, "invalid_request", "JSON body must be an object")
        url = document.get("url")
        if not isinstance(url, str) or not url:
            raise ApiError(422, "invalid_request", "url: a JSON body needs an http(s) 'url' string")
        return await fetch(request, url), url[:2048], {k: v for k, v in document.items() if k != "url"}
    raise ApiError(415, "unsupported_media_type",
                   f"Content-Type {kind or '(none)'!r}: send multipart/form-data with a 'file', or JSON with a 'url'")


def image_response(request: Request, media: MediaStore, sha256: str, original: Callable[[], bytes | None],
                   what: str, size: int | None, version: str | None) -> Response:
    """A kept photo, whole (its sniffed type) or as a resized JPEG (`size`), with its content hash as the ETag.

    Ids can be reused after a delete, so a plain URL is revalidated on each use (a 304 costs no image read); with
    `v` = the image's hash the URL names one image for good and is cached as immutable."""
    if version is not None and not sha256.startswith(version):
        raise ApiError(404, "not_found", f"{what}: v={version} is not its image's hash (the image has changed)")
    if size is not None and size not in THUMBNAIL_SIZES:
        raise ApiError(422, "invalid_request", f"size={size}: expected one of {', '.join(map(str, THUMBNAIL_SIZES))}")
    etag = f'"{sha256}"' if size is None else f'"{sha256}-{size}"'
    headers = {"ETag": etag, "Cache-Control": "public, max-age=31536000, immutable" if version else "no-cache",
               "X-Content-Type-Options": "nosniff"}
    if etag in (tag.strip() for tag in request.headers.get("if-none-match", "").split(",")):
        return Response(status_code=304, headers=headers)
    data = original() if size is None else media.thumbnail(sha256, size, original)
    if data is None:
        raise ApiError(404, "not_found", f"{what}: its image is no longer available")
    return Response(data, media_type="image/jpeg" if size else _sniffed_type(data), headers=headers)


def _sniffed_type(data: bytes) -> str:
    try:
        with Image.open(io.BytesIO(data)) as image:
            return IMAGE_TYPES.get(image.format or "", "application/octet-stream")
    except Exception:  # a kept file is one that decoded before; be safe anyway
        return "application/octet-stream"
