"""The app factory every service uses: errors, auth, health, metrics, request ids."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI

from artstore.common.auth import TOKEN_PATH, JwksCache, TokenVerifier, document_security
from artstore.common.docs import docs_router
from artstore.common.errors import install_error_handlers
from artstore.common.health import health_router
from artstore.common.limits import DEFAULT_MAX_BODY_BYTES, BodyLimitMiddleware
from artstore.common.logs import configure_logging
from artstore.common.observability import Metrics, RequestContextMiddleware
from artstore.common.revocation import service_feed
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
    own_audience: str | None = None,
    streaming: Iterable[tuple[str, str]] = (),
    **kwargs: Any,
) -> FastAPI:
    """``service`` is the metrics/log label: admin, storage_element, ingester or query.
    ``own_audience``: a storage element's id, which it accepts as ``aud`` besides the
    common audience (SE-bound tokens, architecture §10).
    ``streaming``: the ``(method, path template)`` routes whose request bodies are
    streamed and bounded by the route itself; every other body is bounded by the
    service's ``max_body_bytes`` setting (limits.py)."""
    configure_logging(service, settings.log_level, settings.log_format)

    @asynccontextmanager
    async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
        jwks = JwksCache(settings.jwks_url, ttl=settings.jwks_cache_seconds)
        app.state.token_verifier = TokenVerifier(
            jwks, settings.jwt_issuer, settings.jwt_audience, own_audience=own_audience
        )
        # The admin feeds its own verifier from its database (admin/auth/revocations.py).
        revocations = None if service == "admin" else service_feed(settings)
        if revocations is not None:
            app.state.token_verifier.revocations = revocations.list
            revocations.start()
        try:
            if lifespan is None:
                yield
            else:
                async with lifespan(app):
                    yield
        finally:
            if revocations is not None:
                await revocations.close()
            await jwks.close()

    app = FastAPI(
        title=title,
        version=VERSION,
        description=description,
        lifespan=_lifespan,
        # Our figures are Prometheus (observability.py); FastAPI's OpenTelemetry hooks
        # would only ask, on every request, whether a provider was configured.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        # Swagger UI from the service's own files (docs.py), never a CDN; ReDoc has no
        # such files and is off rather than a blank page.
        docs_url=None,
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        **kwargs,
    )
    metrics = Metrics(service)
    app.state.metrics = metrics
    app.state.health_checks = {}
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=int(getattr(settings, "max_body_bytes", DEFAULT_MAX_BODY_BYTES)),
        streaming=list(streaming),
    )
    # Added last, so outermost: a refused body still gets a request id and its metrics.
    app.add_middleware(RequestContextMiddleware, metrics=metrics)
    app.include_router(health_router(service, VERSION))
    app.include_router(docs_router(title))
    _point_authorize_at_admin(app, settings.admin_url.rstrip("/") + TOKEN_PATH)
    return app


def _point_authorize_at_admin(app: FastAPI, token_url: str) -> None:
    """Swagger's Authorize button must get its token from the admin, wherever it runs
    (its OAuth2 flows; the HTTP bearer scheme beside them takes a pasted token, auth.py);
    and the document states the errors as they are answered (:func:`_document_errors`)."""
    plain_openapi = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = plain_openapi()
            document_security(app.routes, schema)
            schemes = schema.get("components", {}).get("securitySchemes", {})
            for scheme in schemes.values():
                for flow in scheme.get("flows", {}).values():
                    if flow.get("tokenUrl") == TOKEN_PATH:
                        flow["tokenUrl"] = token_url
            _document_errors(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


_ENVELOPE = {
    "title": "ErrorEnvelope",
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {"type": "object"},
            },
        }
    },
}
_ENVELOPE_REF = {"$ref": "#/components/schemas/ErrorEnvelope"}


def _document_errors(schema: dict[str, Any]) -> None:
    """A request that fails validation is answered 400 ``VALIDATION_ERROR`` (errors.py),
    not FastAPI's 422: every operation documents 400 with the error envelope, and a
    ``default`` response (the envelope) covers the other errors any route can give
    (401, 403, 404, 413, 429, 503...). A 422 an operation documents on purpose (the
    SE's ``CHECKSUM_MISMATCH``) keeps its own description but the envelope schema."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["ErrorEnvelope"] = _ENVELOPE
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    envelope = {"application/json": {"schema": _ENVELOPE_REF}}
    for ops in schema.get("paths", {}).values():
        for method, op in ops.items():
            if method not in ("get", "put", "post", "patch", "delete", "head", "options"):
                continue
            responses = op.setdefault("responses", {})
            fastapi_422 = responses.get("422", {})
            if _is_fastapi_validation(fastapi_422):
                del responses["422"]
            elif "422" in responses:
                responses["422"]["content"] = envelope
            responses.setdefault(
                "400", {"description": "The request is not valid", "content": envelope}
            )
            responses.setdefault(
                "default", {"description": "An error (the envelope)", "content": envelope}
            )


def _is_fastapi_validation(response: dict[str, Any]) -> bool:
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    return str(schema.get("$ref", "")).endswith("/HTTPValidationError")
