"""Liveness, readiness and metrics endpoints shared by every service (architecture §3)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from artstore.common.redact import describe

Status = Literal["ok", "degraded", "fail"]


@dataclass(frozen=True)
class CheckResult:
    status: Status
    message: str | None = None


HealthCheck = Callable[[], Awaitable[CheckResult]]

_RANK = {"ok": 0, "degraded": 1, "fail": 2}


async def _timed(check: HealthCheck, limit: float) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        result = await asyncio.wait_for(check(), limit)
    except TimeoutError:
        result = CheckResult("fail", "check timed out")
    except Exception as exc:  # a broken check must report, not crash readiness
        result = CheckResult("fail", f"check failed: {describe(exc)}")
    out: dict[str, Any] = {
        "status": result.status,
        "latency_ms": round((time.perf_counter() - started) * 1000, 2),
    }
    if result.message:
        out["message"] = result.message
    return out


def health_router(service: str, version: str, check_timeout: float = 3.0) -> APIRouter:
    """Checks are read from ``app.state.health_checks`` (name -> async callable)."""
    router = APIRouter(tags=["health"])

    @router.get("/health/live")
    async def live() -> dict[str, str]:
        return {
            "status": "ok",
            "service": service,
            "version": version,
            "timestamp": datetime.now(UTC).isoformat(),
        }

    @router.get("/health/ready")
    async def ready(request: Request) -> JSONResponse:
        checks: dict[str, HealthCheck] = getattr(request.app.state, "health_checks", {})
        names = list(checks)
        results = await asyncio.gather(*(_timed(checks[n], check_timeout) for n in names))
        report = dict(zip(names, results, strict=True))
        worst = max((r["status"] for r in results), key=_RANK.__getitem__, default="ok")
        return JSONResponse(
            {"status": worst, "checks": report}, status_code=503 if worst == "fail" else 200
        )

    @router.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        return Response(
            generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
        )

    return router
