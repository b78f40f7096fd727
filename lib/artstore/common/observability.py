"""Request ids, access logs and HTTP metrics in one pure ASGI middleware.

Pure ASGI (not BaseHTTPMiddleware) so streamed bodies pass through untouched.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from artstore.common.logs import request_id_var

log = logging.getLogger("artstore.access")

_RID_OK = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class Metrics:
    """The per-service Prometheus registry with the shared HTTP metrics of architecture §3."""

    def __init__(self, service: str) -> None:
        self.service = service
        self.registry = CollectorRegistry()
        labels = ("service", "method", "route", "status")
        self.requests = Counter(
            "artstore_http_requests_total", "HTTP requests", labels, registry=self.registry
        )
        self.duration = Histogram(
            "artstore_http_request_duration_seconds",
            "HTTP request duration",
            labels,
            registry=self.registry,
            buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )

    def prefix(self) -> str:
        return f"artstore_{self.service}_"


def route_of(scope: Scope) -> str:
    """The matched route's template (``/api/v1/links/{token}``), never the path itself:
    a path may be a credential, and an unmatched one is whatever a client sent."""
    route: Any = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = ""
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                rid = value.decode("latin-1")
                break
        if not _RID_OK.match(rid):
            rid = uuid.uuid4().hex
        token = request_id_var.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            template = route_of(scope)
            labels = (self.metrics.service, scope["method"], template, str(status))
            self.metrics.requests.labels(*labels).inc()
            self.metrics.duration.labels(*labels).observe(elapsed)
            if template not in ("/health/live", "/health/ready", "/metrics"):
                log.info(
                    "%s %s %s",
                    scope["method"],
                    template,
                    status,
                    extra={
                        "fields": {
                            "status": status,
                            "duration_ms": round(elapsed * 1000, 2),
                            "route": template,
                        }
                    },
                )
            request_id_var.reset(token)
