"""`/v1/analyze` and `/v1/analyses`: analyse a photo, and read the history of analyses."""

from __future__ import annotations

from datetime import datetime, timezone

from fastapi import APIRouter, Depends, Request, Response
from starlette.concurrency import run_in_threadpool

from fashionlens.service.access import require_read, require_write
from fashionlens.service.core import Service
from fashionlens.service.deps import (ERRORS, ImageSize, ImageVersion, Limit, Offset, RowId, Text, body_schema,
                                      get_service, image_input, image_response, only_query)
from fashionlens.service.errors import ApiError
from fashionlens.service.limits import limit_rate
from fashionlens.service.schemas import AnalysisOut, AnalysisPage, AnalyzeUrl

router = APIRouter(tags=["analyses"], responses=ERRORS, dependencies=[Depends(require_read)])


@router.post("/v1/analyze", response_model=AnalysisOut, status_code=201, openapi_extra=body_schema(AnalyzeUrl, {}),
             dependencies=[Depends(require_write), Depends(limit_rate)])
async def analyze(request: Request, response: Response, svc: Service = Depends(get_service)):
    """Analyse a photo (upload or URL): garments with boxes, attributes, colours and similar items. The result is
    stored, so it needs a read-write token when the service has tokens; the same image under the same models
    returns its stored analysis (200 instead of 201)."""
    data, source, _ = await image_input(request)
    stored, created = await run_in_threadpool(svc.analyze, data, source)
    if created:
        request.app.state.metrics.observe_stages(stored.document.get("timings_ms", {}))
    response.status_code = 201 if created else 200
    return stored.to_json()


@router.get("/v1/analyses/{analysis_id}", response_model=AnalysisOut)
def get_analysis(analysis_id: RowId, svc: Service = Depends(get_service)):
    found = svc.history.get(analysis_id)
    if found is None:
        raise ApiError(404, "not_found", f"no analysis {analysis_id}")
    return found.to_json()


@router.get("/v1/analyses", response_model=AnalysisPage,
            dependencies=[Depends(only_query("label", "color", "since", "until", "limit", "offset"))])
def list_analyses(svc: Service = Depends(get_service), label: Text = None, color: Text = None,
                  since: datetime | None = None, until: datetime | None = None, limit: Limit = 20, offset: Offset = 0):
    """Past analyses, newest first; `label` and `color` match any garment in them, `since`/`until` the time."""
    total, page = svc.history.page(label=label, color=color, since=_utc(since, "since"), until=_utc(until, "until"),
                                   limit=limit, offset=offset)
    return {"items": [a.to_json() for a in page], "total": total, "limit": limit, "offset": offset}


@router.get("/v1/analyses/{analysis_id}/image", response_class=Response)
def analysis_image(request: Request, analysis_id: RowId, size: ImageSize = None, v: ImageVersion = None,
                   svc: Service = Depends(get_service)):
    """The photo as received, or resized (`size`); `v` (its hash) makes the URL cacheable for good."""
    found = svc.history.get(analysis_id)
    if found is None:
        raise ApiError(404, "not_found", f"no analysis {analysis_id}")
    sha = found.document["sha256"]
    return image_response(request, svc.media, sha, lambda: svc.media.get(sha), f"analysis {analysis_id}", size, v)


def _utc(moment: datetime | None, name: str) -> datetime | None:
    """A time bound in UTC (a naive one is taken as UTC): SQLite keeps times without their offset."""
    if moment is None:
        return None
    try:
        return moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    except (OverflowError, ValueError):
        raise ApiError(422, "invalid_request", f"{name}: {moment.isoformat()} is out of range in UTC") from None
