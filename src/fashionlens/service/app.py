"""The HTTP API (FastAPI): analyse photos, read the history, manage and search the catalogue.

`create_app(settings)` builds the app; the models load and the database migrates in its lifespan, so a test
client or `uvicorn` gets a ready service. Routes are `async` only to read the request body; the work itself runs
in the thread pool. Each group of routes lives in its own module (`routes_*.py`).
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from starlette.concurrency import run_in_threadpool

from fashionlens import __version__
from fashionlens.service import routes_analyses, routes_catalog, routes_web
from fashionlens.service.core import Service
from fashionlens.service.deps import get_service
from fashionlens.service.errors import BodyLimit, install_error_handlers
from fashionlens.service.schemas import HealthOut
from fashionlens.service.settings import ServiceSettings

log = logging.getLogger("fashionlens.service")


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
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(BodyLimit, max_bytes=settings.max_upload_bytes)
    app.include_router(routes_analyses.router)
    app.include_router(routes_catalog.router)
    app.include_router(routes_web.router)
    app.mount("/ui", routes_web.page_files(), name="ui")

    @app.get("/v1/health", response_model=HealthOut, tags=["system"])
    def health(svc: Service = Depends(get_service)):
        return svc.health()

    @app.get("/v1/models", tags=["system"])
    def models(svc: Service = Depends(get_service)) -> dict:
        """The models every analysis records, and the catalogue's embedding space."""
        return svc.models()

    return app


def _seed(service: Service, sources: tuple[str, ...]) -> None:
    from fashionlens.images import find_files

    files, _ = find_files(list(sources))
    with service.catalog_lock:
        report = service.catalog.ingest(files)
    log.info("catalogue seeded: %s", report.to_json())
