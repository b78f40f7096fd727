"""Request ids, access logs and HTTP metrics in one pure ASGI middleware.

Pure ASGI (not BaseHTTPMiddleware) so streamed bodies pass through untouched.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from artstore.common.logs import request_id_var

log = logging.getLogger("artstore.access")

_RID_OK = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


class _RequestIds:
    """32 hex characters per request, unique without a syscall each: 64 random bits
    drawn once per process (again in a forked child) and a counter. ``uuid4`` reads
    ``os.urandom`` per request, which the profile showed at 3-6 % of a small GET
    (issue 19); an id names a request, it is no secret, so a counter is enough."""

    def __init__(self) -> None:
        self._reseed()
        os.register_at_fork(after_in_child=self._reseed)

    def _reseed(self) -> None:
        self._prefix = os.urandom(8).hex()
        self._count = itertools.count(1)

    def next(self) -> str:
        return f"{self._prefix}{next(self._count) & 0xFFFFFFFFFFFFFFFF:016x}"


new_request_id = _RequestIds().next


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

        # One pair of label children per (method, route, status), made on first use:
        # ``labels()`` checks and looks up its label values on every call otherwise.
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    def prefix(self) -> str:
        return f"artstore_{self.service}_"

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Count one request and its duration."""
        key = (method, route, status)
        pair = self._children.get(key)
        if pair is None:
            labels = (self.service, method, route, str(status))
            pair = (self.requests.labels(*labels), self.duration.labels(*labels))
            self._children[key] = pair
        pair[0].inc()
        pair[1].observe(seconds)


def route_of(scope: Scope) -> str:
    """The matched route's template (``/api/v1/links/{token}``), never the path itself:
    a path may be a credential, and an unmatched one is whatever a client sent."""
    route: Any = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


_QUIET = frozenset(("/health/live", "/health/ready", "/metrics"))


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
            rid = new_request_id()
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
            self.metrics.observe(scope["method"], template, status, elapsed)
            if template not in _QUIET and log.isEnabledFor(logging.INFO):
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
