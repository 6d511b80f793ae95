"""What an operator sees: Prometheus metrics at `/metrics`, and one JSON access-log line per request with its id.

Each app has its own registry (tests and replicas in one process never share counters). Requests are labelled
by their route template (`/v1/items/{item_id}`), never the raw path, so the number of series stays bounded.
The request id is the client's `X-Request-ID` when it is a sane token, else a new one; it is echoed back.
"""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from datetime import datetime, timezone

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

access_log = logging.getLogger("fashionlens.access")
REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("fashionlens_http_requests", "HTTP requests answered, by route and status",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("fashionlens_http_request_duration_seconds", "Time to answer a request",
                                 ["method", "route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.stages = Histogram("fashionlens_analysis_stage_seconds", "Time of each stage of a new analysis",
                                ["stage"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.queue_depth = Gauge("fashionlens_model_queue_depth", "Requests running or waiting for the models",
                                 registry=self.registry)
        self.queue_limit = Gauge("fashionlens_model_queue_limit", "FASHIONLENS_MAX_QUEUE", registry=self.registry)
        self.models = Gauge("fashionlens_model_info", "The loaded models (value 1), one series a model",
                            ["role", "name", "sha256"], registry=self.registry)

    def watch_service(self, service) -> None:
        """Queue depth read at scrape time, and the models' versions."""
        self.queue_depth.set_function(lambda: service.queue.depth)
        self.queue_limit.set(service.queue.limit)
        for role, model in service.analyzer.models.items():  # role -> {"name", "sha256", ...}
            self.models.labels(role, str(model.get("name", "")), str(model.get("sha256", ""))).set(1)

    def observe_stages(self, timings_ms: dict[str, float]) -> None:
        for stage, ms in timings_ms.items():
            self.stages.labels(stage).observe(ms / 1000)

    def exposition(self, accept: str | None) -> tuple[bytes, str]:
        """(body, content type) in the format the scraper asks for: Prometheus text, or OpenMetrics."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


class Observe:
    """ASGI middleware: request id, metrics and the access-log line for every HTTP request."""

    def __init__(self, app: ASGIApp, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = Headers(scope=scope).get("x-request-id", "")
        request_id = given if REQUEST_ID.match(given) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        start = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message)["X-Request-ID"] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - start
            route = getattr(scope.get("route"), "path", None) or "(unmatched)"
            self.metrics.requests.labels(scope["method"], route, str(status)).inc()
            self.metrics.latency.labels(scope["method"], route).observe(seconds)
            client = scope.get("client")
            access_log.info(json.dumps({
                "time": datetime.now(timezone.utc).isoformat(timespec="milliseconds"), "request_id": request_id,
                "method": scope["method"], "path": scope["path"], "route": route, "status": status,
                "duration_ms": round(seconds * 1000, 2), "client": client[0] if client else None,
                "client_key": scope["state"].get("client_key")}))
