"""`/v1/items` and `/v1/search`: add, browse, read and delete catalogue items, and find similar ones."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from fashionlens.service.access import require_read, require_write
from fashionlens.service.core import Service, clean_attributes
from fashionlens.service.deps import (ERRORS, MAX_ID, ImageSize, ImageVersion, Limit, Offset, RowId, Text, body_schema,
                                      content_type, fetch, get_service, image_input, image_response, only_query,
                                      parse_json)
from fashionlens.service.errors import ApiError
from fashionlens.service.limits import limit_rate
from fashionlens.service.schemas import AddItemUrl, FacetsOut, ItemOut, ItemPage, SearchOut, SearchRequest

router = APIRouter(tags=["catalogue"], responses=ERRORS, dependencies=[Depends(require_read)])
WRITE = [Depends(require_write), Depends(limit_rate)]


@router.post("/v1/items", response_model=ItemOut, status_code=201, dependencies=WRITE,
             openapi_extra=body_schema(AddItemUrl, {"attributes": {"type": "string", "description": "JSON object"}}))
async def add_item(request: Request, response: Response, svc: Service = Depends(get_service)):
    """Add a catalogue item from an upload (with `attributes` as a JSON object string) or a URL. An image already
    in the catalogue is returned as it is (200)."""
    data, source, fields = await image_input(request)
    attributes = fields.get("attributes")
    if isinstance(attributes, str):
        attributes = parse_json(attributes, "invalid_attributes", "attributes", 422) if attributes.strip() else {}
    item, created = await run_in_threadpool(svc.add_item, data, source, clean_attributes(attributes))
    response.status_code = 201 if created else 200
    return item.to_json()


@router.get("/v1/items", response_model=ItemPage,
            dependencies=[Depends(only_query("category", "color", "where", "limit", "offset"))])
def list_items(svc: Service = Depends(get_service), category: Text = None, color: Text = None,
               where: Annotated[list[str], Query(description="KEY=VALUE, any attribute; repeatable")] = [],
               limit: Limit = 20, offset: Offset = 0):
    """Catalogue items, newest first, matching every filter given; a filter on a key no item has is a 422 that
    names the known keys (see /v1/facets)."""
    filters = _where(where) | {k: v for k, v in (("category", category), ("color", color)) if v}
    total, page = svc.items_page(filters, limit, offset)
    return {"items": [i.to_json() for i in page], "total": total, "limit": limit, "offset": offset}


@router.get("/v1/facets", response_model=FacetsOut)
def facets(svc: Service = Depends(get_service), limit: Annotated[int, Query(ge=1, le=1000)] = 100):
    """What the catalogue can be filtered by: for each attribute (given, predicted and `color`), its values with how
    many items carry them, most common first (at most `limit` values per attribute)."""
    with svc.catalog_lock:
        counts = svc.catalog.store.label_counts()
    return {"facets": {key: [{"value": v, "count": n} for v, n in list(values.items())[:limit]]
                       for key, values in counts.items()}}


@router.get("/v1/items/{item_id}", response_model=ItemOut)
def get_item(item_id: RowId, svc: Service = Depends(get_service)):
    return svc.item(item_id).to_json()


@router.get("/v1/items/{item_id}/image", response_class=Response)
def item_image(request: Request, item_id: RowId, size: ImageSize = None, v: ImageVersion = None,
               svc: Service = Depends(get_service)):
    """The item's image, or a resized copy (`size`); `v` (its hash) makes the URL cacheable for good."""
    item = svc.item(item_id)

    def original() -> bytes | None:
        data = svc.media.get(item.sha256)
        source = Path(item.source)
        if data is None and source.is_absolute() and source.is_file():  # added from a file by `ingest`
            data = source.read_bytes()
        return data

    return image_response(request, svc.media, item.sha256, original, f"item {item_id}", size, v)


@router.delete("/v1/items/{item_id}", status_code=204, dependencies=WRITE)
def delete_item(item_id: RowId, svc: Service = Depends(get_service)):
    svc.remove_item(item_id)
    return Response(status_code=204)


@router.post("/v1/search", response_model=SearchOut,
             openapi_extra=body_schema(SearchRequest, {"top_k": {"type": "integer", "minimum": 1, "maximum": 100},
                                                       "filters": {"type": "string", "description": "JSON object"}}))
async def search(request: Request, svc: Service = Depends(get_service)):
    """Similar catalogue items to an uploaded photo, a photo URL or a catalogue item (`item_id`); or, with a text
    model, the items best matching `text` (words it never saw are listed in `unknown_words`; a text with no other
    word is a 422)."""
    if content_type(request) == "application/json":
        try:
            query = SearchRequest.model_validate_json(await request.body())
        except ValueError as exc:
            raise ApiError(422, "invalid_request", f"search body: {_first_error(exc)}") from None
        if sum(v is not None for v in (query.item_id, query.url, query.text)) != 1:
            raise ApiError(422, "invalid_request", "give exactly one of 'item_id', 'url' and 'text'")
        filters = _checked_filters(query.filters)
        if query.text is not None:
            if not query.text.strip():
                raise ApiError(422, "invalid_request", "text: give some words")
            hits, unknown = await run_in_threadpool(svc.search_text, query.text, query.top_k, filters)
            return {"results": [h.to_json() for h in hits], "unknown_words": unknown}
        if query.item_id is not None:
            if not 1 <= query.item_id <= MAX_ID:
                raise ApiError(404, "not_found", f"no catalogue item {query.item_id}")
            hits = await run_in_threadpool(svc.search_item, query.item_id, query.top_k, filters)
        else:
            data = await fetch(request, query.url)
            hits = await run_in_threadpool(svc.search_image, data, query.url, query.top_k, filters)
    else:
        data, source, fields = await image_input(request)
        try:
            top_k = int(fields.get("top_k", 10))
        except ValueError:
            raise ApiError(422, "invalid_request", "top_k must be a whole number") from None
        if not 1 <= top_k <= 100:
            raise ApiError(422, "invalid_request", "top_k: between 1 and 100")
        filters = parse_json(fields.get("filters") or "{}", "invalid_request", "filters", 422)
        hits = await run_in_threadpool(svc.search_image, data, source, top_k, _checked_filters(filters))
    return {"results": [h.to_json() for h in hits]}


def _where(where: list[str]) -> dict[str, list[str]]:
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
