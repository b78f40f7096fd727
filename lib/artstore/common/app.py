"""The app factory every service uses: errors, auth, health, metrics, request ids."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI

from artstore.common.auth import TOKEN_PATH, JwksCache, TokenVerifier
from artstore.common.errors import install_error_handlers
from artstore.common.health import health_router
from artstore.common.logs import configure_logging
from artstore.common.observability import Metrics, RequestContextMiddleware
from artstore.common.settings import ServiceSettings

VERSION = "0.1.0"

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_service_app(
    *,
    service: str,
    title: str,
    settings: ServiceSettings,
    lifespan: Lifespan | None = None,
    description: str = "",
    **kwargs: Any,
) -> FastAPI:
    """``service`` is the metrics/log label: admin, storage_element, ingester or query."""
    configure_logging(service, settings.log_level, settings.log_format)

    @asynccontextmanager
    async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
        jwks = JwksCache(settings.jwks_url, ttl=settings.jwks_cache_seconds)
        app.state.token_verifier = TokenVerifier(jwks, settings.jwt_issuer, settings.jwt_audience)
        try:
            if lifespan is None:
                yield
            else:
                async with lifespan(app):
                    yield
        finally:
            await jwks.close()

    app = FastAPI(
        title=title,
        version=VERSION,
        description=description,
        lifespan=_lifespan,
        # Our figures are Prometheus (observability.py); FastAPI's OpenTelemetry hooks
        # would only ask, on every request, whether a provider was configured.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        **kwargs,
    )
    metrics = Metrics(service)
    app.state.metrics = metrics
    app.state.health_checks = {}
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    app.include_router(health_router(service, VERSION))
    _point_authorize_at_admin(app, settings.admin_url.rstrip("/") + TOKEN_PATH)
    return app


def _point_authorize_at_admin(app: FastAPI, token_url: str) -> None:
    """Swagger's Authorize button must get its token from the admin, wherever it runs."""
    plain_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = plain_openapi()
            schemes = schema.get("components", {}).get("securitySchemes", {})
            for scheme in schemes.values():
                for flow in scheme.get("flows", {}).values():
                    if flow.get("tokenUrl") == TOKEN_PATH:
                        flow["tokenUrl"] = token_url
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
