"""The HTTP API (FastAPI): analyse photos, read the history, manage and search the catalogue.

`create_app(settings)` builds the app; the models load and the database migrates in its lifespan, so a test
client or `uvicorn` gets a ready service. Routes are `async` only to read the request body; the work itself runs
in the thread pool. Each group of routes lives in its own module (`routes_*.py`); access in `access.py`, limits in
`limits.py`, metrics and access logs in `observe.py`. The API docs (`/docs`, `/redoc`) are FastAPIOffline's: their
assets are served from the pinned `fastapi-offline` package, not a CDN, so they work without internet.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request, Response
from fastapi_offline import FastAPIOffline
from starlette.concurrency import run_in_threadpool

from fashionlens import __version__
from fashionlens.service import routes_analyses, routes_catalog, routes_web
from fashionlens.service.access import Tokens
from fashionlens.service.core import Service
from fashionlens.service.deps import get_service
from fashionlens.service.errors import ApiError, BodyLimit, install_error_handlers
from fashionlens.service.limits import RateLimiter
from fashionlens.service.observe import Metrics, Observe
from fashionlens.service.schemas import ErrorOut, HealthOut, ReadyOut
from fashionlens.service.settings import ServiceSettings

log = logging.getLogger("fashionlens.service")


def create_app(settings: ServiceSettings | None = None) -> FastAPI:
    settings = settings or ServiceSettings.from_env()
    tokens = Tokens.from_settings(settings.api_token, settings.read_tokens, settings.token_file)
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service = await run_in_threadpool(Service, settings)
        if settings.seed:
            await run_in_threadpool(_seed, service, settings.seed)
        metrics.watch_service(service)
        app.state.service = service
        yield
        await run_in_threadpool(service.close)

    app = FastAPIOffline(title="fashionlens", version=__version__, lifespan=lifespan, static_url="/docs-assets",
                  description="Find the garments in a photo, name their category, colours and attributes, and "
                              "find similar items in the catalogue.")
    app.state.settings, app.state.tokens, app.state.metrics = settings, tokens, metrics
    app.state.rate_limiter = RateLimiter(settings.rate_limit)
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes)
    app.add_middleware(Observe, metrics=metrics)  # outermost: it sees every answer, the 413s included
    app.include_router(routes_analyses.router)
    app.include_router(routes_catalog.router)
    app.include_router(routes_web.router)
    app.mount("/ui", routes_web.page_files(), name="ui")

    @app.get("/v1/health", response_model=HealthOut, tags=["system"])
    def health(svc: Service = Depends(get_service)):
        """Open to all: the counts, and whether the other routes need a token (`token_required`)."""
        return {**svc.health(), "token_required": tokens.required}

    @app.get("/v1/ready", response_model=ReadyOut, tags=["system"], responses={503: {"model": ErrorOut}})
    def ready(request: Request):
        """Readiness: 200 once the models are loaded and the database answers, else 503."""
        service = getattr(request.app.state, "service", None)
        if service is None:
            raise ApiError(503, "not_ready", "the models are still loading")
        try:
            service.ready()
        except Exception as exc:  # any failure to reach the database means "not ready", with its reason logged
            log.warning("readiness: the database does not answer: %s", exc)
            raise ApiError(503, "not_ready", "the database does not answer") from None
        return {"status": "ready", "models": True, "database": True}

    @app.get("/v1/models", tags=["system"])
    def models(svc: Service = Depends(get_service)) -> dict:
        """The models every analysis records, and the catalogue's embedding space."""
        return svc.models()

    @app.get("/metrics", include_in_schema=False)
    def metrics_page(request: Request) -> Response:
        """Prometheus metrics (open, like health: counts and timings, no stored data)."""
        body, content_type = metrics.exposition(request.headers.get("accept"))
        return Response(body, media_type=content_type)

    return app


def _seed(service: Service, sources: tuple[str, ...]) -> None:
    from fashionlens.images import find_files

    files, _ = find_files(list(sources))
    with service.catalog_lock:
        report = service.catalog.ingest(files)
    log.info("catalogue seeded: %s", report.to_json())
