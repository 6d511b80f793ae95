"""The HTTP API (FastAPI): analyse photos, read the history, manage and search the catalogue.

`create_app(settings)` builds the app; the models load and the database migrates in its lifespan, so a test
client or `uvicorn` gets a ready service. Handlers are `async` only to read the request body; the work itself runs
in the thread pool.
"""

from __future__ import annotations

import hmac
import io
import json
import logging
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated

from fastapi import Depends, FastAPI, Path as PathParam, Query, Request, Response
from fastapi.responses import RedirectResponse
from PIL import Image
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from fashionlens import __version__
from fashionlens.fetch import fetch_bytes
from fashionlens.fingerprints import sha256_bytes
from fashionlens.service.core import Service, clean_attributes
from fashionlens.service.errors import ApiError, BodyLimit, install_error_handlers
from fashionlens.service.schemas import (AddItemUrl, AnalysisOut, AnalysisPage, AnalyzeUrl, ErrorOut, HealthOut,
                                         ItemOut, ItemPage, SearchOut, SearchRequest)
from fashionlens.service.settings import ServiceSettings

log = logging.getLogger("fashionlens.service")

MAX_ID = 2**31 - 1  # ids are 32-bit in the schema; larger ones cannot exist
ItemId = Annotated[int, PathParam(ge=1, le=MAX_ID)]
Limit = Annotated[int, Query(ge=1, le=100)]
Offset = Annotated[int, Query(ge=0, le=10_000_000)]
ERRORS = {code: {"model": ErrorOut} for code in (400, 401, 403, 404, 413, 415, 422)}
IMAGE_TYPES = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp", "GIF": "image/gif", "BMP": "image/bmp",
               "MPO": "image/jpeg"}


def _body(json_model: type, fields: dict) -> dict:
    """OpenAPI for a route that takes either an image upload (multipart) or a JSON document."""
    return {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
            "file": {"type": "string", "format": "binary"}, **fields}}},
        "application/json": {"schema": json_model.model_json_schema()}}}}


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    settings = settings or ServiceSettings.from_env()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service = await run_in_threadpool(Service, settings)
        if settings.seed:
            await run_in_threadpool(_seed, service, settings.seed)
        app.state.service = service
        yield
        await run_in_threadpool(service.close)

    app = FastAPI(title="fashionlens", version=__version__, lifespan=lifespan,
                  description="Find the garments in a photo, name their category, colours and attributes, and "
                              "find similar items in the catalogue.")
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes)

    def service(request: Request) -> Service:
        return request.app.state.service

    def require_token(request: Request) -> None:
        if not settings.api_token:
            return
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), settings.api_token.encode()):
            raise ApiError(401, "unauthorized", "this endpoint needs the header 'Authorization: Bearer <token>' "
                                                "with the service's API token")

    async def image_input(request: Request) -> tuple[bytes, str, dict]:
        """(image bytes, source, the other fields) from a multipart upload (`file`) or JSON with a `url`."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "multipart/form-data":
            form = await request.form(max_files=1, max_fields=20)
            upload = form.get("file")
            if not isinstance(upload, UploadFile):
                raise ApiError(422, "missing_file", "multipart body needs an image in the field 'file'")
            data = await upload.read()
            fields = {k: v for k, v in form.items() if k != "file" and isinstance(v, str)}
            return data, f"upload:{(upload.filename or 'image')[:200]}", fields
        if kind == "application/json":
            try:
                document = json.loads(await request.body())
            except (ValueError, RecursionError) as exc:  # RecursionError: nested deeper than json's parser goes
                raise ApiError(400, "invalid_json", f"request body is not valid JSON ({exc})") from None
            if not isinstance(document, dict):
                raise ApiError(422, "invalid_request", "JSON body must be an object")
            url = document.get("url")
            if not isinstance(url, str) or not url:
                raise ApiError(422, "invalid_request", "url: a JSON body needs an http(s) 'url' string")
            data = await run_in_threadpool(fetch_bytes, url, settings.fetch)
            return data, url[:2048], {k: v for k, v in document.items() if k != "url"}
        raise ApiError(415, "unsupported_media_type",
                       f"Content-Type {kind or '(none)'!r}: send multipart/form-data with a 'file', or JSON with a 'url'")

    @app.get("/", include_in_schema=False)
    def home():
        return RedirectResponse("/docs")

    @app.get("/v1/health", response_model=HealthOut, tags=["system"])
    def health(svc: Service = Depends(service)):
        return svc.health()

    @app.get("/v1/models", tags=["system"])
    def models(svc: Service = Depends(service)) -> dict:
        """The models every analysis records, and the catalogue's embedding space."""
        return svc.models()

    @app.post("/v1/analyze", response_model=AnalysisOut, status_code=201, tags=["analyses"], responses=ERRORS,
              openapi_extra=_body(AnalyzeUrl, {}))
    async def analyze(request: Request, response: Response, svc: Service = Depends(service)):
        """Analyse a photo (upload or URL): garments with boxes, attributes, colours and similar items. The result
        is stored; the same image under the same models returns its stored analysis (200 instead of 201)."""
        data, source, _ = await image_input(request)
        stored, created = await run_in_threadpool(svc.analyze, data, source)
        response.status_code = 201 if created else 200
        return stored.to_json()

    @app.get("/v1/analyses/{analysis_id}", response_model=AnalysisOut, tags=["analyses"], responses=ERRORS)
    def get_analysis(analysis_id: ItemId, svc: Service = Depends(service)):
        found = svc.history.get(analysis_id)
        if found is None:
            raise ApiError(404, "not_found", f"no analysis {analysis_id}")
        return found.to_json()

    @app.get("/v1/analyses", response_model=AnalysisPage, tags=["analyses"], responses=ERRORS)
    def list_analyses(svc: Service = Depends(service), label: Annotated[str | None, Query(max_length=200)] = None,
                      color: Annotated[str | None, Query(max_length=200)] = None, since: datetime | None = None,
                      until: datetime | None = None, limit: Limit = 20, offset: Offset = 0):
        """Past analyses, newest first; `label` and `color` match any garment in them, `since`/`until` the time."""
        total, page = svc.history.page(label=label, color=color, since=_utc(since, "since"), until=_utc(until, "until"),
                                       limit=limit, offset=offset)
        return {"items": [a.to_json() for a in page], "total": total, "limit": limit, "offset": offset}

    @app.get("/v1/analyses/{analysis_id}/image", tags=["analyses"], responses=ERRORS,
             response_class=Response)
    def analysis_image(analysis_id: ItemId, svc: Service = Depends(service)):
        found = svc.history.get(analysis_id)
        data = svc.media.get(found.document["sha256"]) if found else None
        if data is None:
            raise ApiError(404, "not_found", f"no image kept for analysis {analysis_id}")
        return _image_response(data)

    @app.post("/v1/items", response_model=ItemOut, status_code=201, tags=["catalogue"], responses=ERRORS,
              dependencies=[Depends(require_token)],
              openapi_extra=_body(AddItemUrl, {"attributes": {"type": "string", "description": "JSON object"}}))
    async def add_item(request: Request, response: Response, svc: Service = Depends(service)):
        """Add a catalogue item from an upload (with `attributes` as a JSON object string) or a URL. An image
        already in the catalogue is returned as it is (200)."""
        data, source, fields = await image_input(request)
        attributes = fields.get("attributes")
        if isinstance(attributes, str):
            try:
                attributes = json.loads(attributes) if attributes.strip() else {}
            except (ValueError, RecursionError):
                raise ApiError(422, "invalid_attributes", "attributes: not a JSON object") from None
        item, created = await run_in_threadpool(svc.add_item, data, source, clean_attributes(attributes))
        response.status_code = 201 if created else 200
        return item.to_json()

    @app.get("/v1/items", response_model=ItemPage, tags=["catalogue"], responses=ERRORS)
    def list_items(svc: Service = Depends(service), category: Annotated[str | None, Query(max_length=200)] = None,
                   color: Annotated[str | None, Query(max_length=200)] = None,
                   where: Annotated[list[str], Query(description="KEY=VALUE, any attribute; repeatable")] = [],
                   limit: Limit = 20, offset: Offset = 0):
        """Catalogue items, newest first, matching every filter given."""
        filters = _filters(where) | {k: v for k, v in (("category", category), ("color", color)) if v}
        total, page = svc.items_page(filters, limit, offset)
        return {"items": [i.to_json() for i in page], "total": total, "limit": limit, "offset": offset}

    @app.get("/v1/items/{item_id}", response_model=ItemOut, tags=["catalogue"], responses=ERRORS)
    def get_item(item_id: ItemId, svc: Service = Depends(service)):
        return svc.item(item_id).to_json()

    @app.get("/v1/items/{item_id}/image", tags=["catalogue"], responses=ERRORS, response_class=Response)
    def item_image(item_id: ItemId, svc: Service = Depends(service)):
        item = svc.item(item_id)
        data = svc.media.get(item.sha256)
        if data is None and Path(item.source).is_file():
            data = Path(item.source).read_bytes()
        if data is None:
            raise ApiError(404, "not_found", f"item {item_id}: its image is no longer available")
        return _image_response(data)

    @app.delete("/v1/items/{item_id}", status_code=204, tags=["catalogue"], responses=ERRORS,
                dependencies=[Depends(require_token)])
    def delete_item(item_id: ItemId, svc: Service = Depends(service)):
        svc.remove_item(item_id)
        return Response(status_code=204)

    @app.post("/v1/search", response_model=SearchOut, tags=["catalogue"], responses=ERRORS,
              openapi_extra=_body(SearchRequest, {"top_k": {"type": "integer", "minimum": 1, "maximum": 100},
                                                  "filters": {"type": "string", "description": "JSON object"}}))
    async def search(request: Request, svc: Service = Depends(service)):
        """Similar catalogue items to an uploaded photo, a photo URL or a catalogue item (`item_id`)."""
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind == "application/json":
            try:
                query = SearchRequest.model_validate_json(await request.body())
            except ValueError as exc:
                raise ApiError(422, "invalid_request", f"search body: {_first_error(exc)}") from None
            if (query.item_id is None) == (query.url is None):
                raise ApiError(422, "invalid_request", "give exactly one of 'item_id' and 'url'")
            filters = _checked_filters(query.filters)
            if query.item_id is not None:
                if not 1 <= query.item_id <= MAX_ID:
                    raise ApiError(404, "not_found", f"no catalogue item {query.item_id}")
                hits = await run_in_threadpool(svc.search_item, query.item_id, query.top_k, filters)
            else:
                data = await run_in_threadpool(fetch_bytes, query.url, settings.fetch)
                hits = await run_in_threadpool(svc.search_image, data, query.url, query.top_k, filters)
        else:
            data, source, fields = await image_input(request)
            try:
                top_k = int(fields.get("top_k", 10))
                filters = json.loads(fields.get("filters") or "{}")
            except (ValueError, RecursionError):
                raise ApiError(422, "invalid_request", "top_k must be a number and filters a JSON object") from None
            if not 1 <= top_k <= 100:
                raise ApiError(422, "invalid_request", "top_k: between 1 and 100")
            hits = await run_in_threadpool(svc.search_image, data, source, top_k, _checked_filters(filters))
        return {"results": [h.to_json() for h in hits]}

    return app


def _seed(service: Service, sources: tuple[str, ...]) -> None:
    from fashionlens.cli_common import expand_paths

    files, _ = expand_paths(list(sources))
    with service.catalog_lock:
        report = service.catalog.ingest(files)
    log.info("catalogue seeded: %s", report.to_json())


def _utc(moment: datetime | None, name: str) -> datetime | None:
    """A time bound in UTC (a naive one is taken as UTC): SQLite keeps times without their offset."""
    if moment is None:
        return None
    try:
        return moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    except (OverflowError, ValueError):
        raise ApiError(422, "invalid_request", f"{name}: {moment.isoformat()} is out of range in UTC") from None


def _filters(where: list[str]) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    for item in where:
        key, sep, value = item.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ApiError(422, "invalid_filter", f"where={item!r}: expected KEY=VALUE")
        filters.setdefault(key.strip(), []).append(value.strip())
    return filters


def _checked_filters(filters: object) -> dict:
    if not isinstance(filters, dict) or not all(
            isinstance(v, str) or (isinstance(v, list) and all(isinstance(x, str) for x in v)) for v in filters.values()):
        raise ApiError(422, "invalid_filter", 'filters: expected {"key": "value" or ["value", ...]}')
    if any(not str(k).strip() or not v or (isinstance(v, str) and not v.strip())
           or (isinstance(v, list) and any(not x.strip() for x in v)) for k, v in filters.items()):
        raise ApiError(422, "invalid_filter", "filters: every key and value must be non-empty")
    return filters


def _first_error(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        first = errors()[0]
        return f"{'.'.join(str(p) for p in first.get('loc', ()))}: {first.get('msg', '')}"
    return str(exc)


def _image_response(data: bytes) -> Response:
    """The kept photo with its sniffed type; its sha256 is the ETag (ids can be reused after a delete)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            media_type = IMAGE_TYPES.get(image.format or "", "application/octet-stream")
    except Exception:  # a kept file is one that decoded before; be safe anyway
        media_type = "application/octet-stream"
    return Response(data, media_type=media_type,
                    headers={"ETag": f'"{sha256_bytes(data)}"', "Cache-Control": "public, max-age=3600"})
