"""OAuth2 errors: the token endpoint alone answers in RFC 6749 form (architecture §3)."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import InterfaceError, OperationalError

from artstore.common.errors import ArtStoreError, error_body
from artstore.common.observability import route_of

log = logging.getLogger("artstore.admin")

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


class OAuthError(ArtStoreError):
    """``error`` is the RFC 6749 §5.2 code; ``invalid_client`` is 401, the rest 400."""

    def __init__(self, error: str, description: str, status: int | None = None) -> None:
        super().__init__(description)
        self.error = error
        self.status = status or (401 if error == "invalid_client" else 400)
        self.code = error.upper()


def install_oauth_handler(app: FastAPI) -> None:
    async def on_oauth_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, OAuthError)
        headers = {**NO_STORE, **(exc.headers or {})}  # Retry-After of a 429
        if exc.status == 401:
            headers["WWW-Authenticate"] = 'Basic realm="artstore"'
        return JSONResponse(
            {"error": exc.error, "error_description": exc.message},
            status_code=exc.status,
            headers=headers,
        )

    async def on_database_error(request: Request, exc: Exception) -> JSONResponse:
        # PostgreSQL away is an outage to wait out, not a bug: 503, and nothing was
        # half-written because every change (with its audit entry) is one transaction.
        log.error("database error on %s %s: %s", request.method, route_of(request.scope), exc)
        return JSONResponse(
            error_body("SERVICE_UNAVAILABLE", "the database is unavailable"),
            status_code=503,
            headers={"Retry-After": "5"},
        )

    app.add_exception_handler(OAuthError, on_oauth_error)
    for lost in (OperationalError, InterfaceError):
        app.add_exception_handler(lost, on_database_error)
