"""One error hierarchy for every service, mapped to the architecture §3 envelope in one place."""

from __future__ import annotations

import errno
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import StatementError
from starlette.exceptions import HTTPException as StarletteHTTPException

from artstore.common.dberrors import is_connection_error, is_data_error, safe_reason
from artstore.common.observability import route_of

log = logging.getLogger("artstore.errors")


class ArtStoreError(Exception):
    """Base of every expected failure. Subclasses fix ``status`` and ``code``."""

    status: int = 500
    code: str = "INTERNAL_ERROR"

    def __init__(
        self,
        message: str,
        *,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.headers = headers


class ValidationFailed(ArtStoreError):
    status, code = 400, "VALIDATION_ERROR"


class Unauthorized(ArtStoreError):
    status, code = 401, "UNAUTHORIZED"

    def __init__(self, message: str = "authentication required", **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        super().__init__(message, **kw)


class Forbidden(ArtStoreError):
    status, code = 403, "FORBIDDEN"


class NotFound(ArtStoreError):
    status, code = 404, "NOT_FOUND"


class Conflict(ArtStoreError):
    status, code = 409, "CONFLICT"


class ModeNotAllowed(ArtStoreError):
    status, code = 409, "MODE_NOT_ALLOWED"


class InvalidTransition(ArtStoreError):
    status, code = 409, "INVALID_TRANSITION"


class ConfirmationRequired(ArtStoreError):
    status, code = 409, "CONFIRMATION_REQUIRED"


class FileGone(ArtStoreError):
    status, code = 410, "FILE_GONE"


class FileTooLarge(ArtStoreError):
    status, code = 413, "FILE_TOO_LARGE"


class AttrTooLarge(ArtStoreError):
    status, code = 413, "ATTR_TOO_LARGE"


class InvalidRange(ArtStoreError):
    status, code = 416, "INVALID_RANGE"


class ChecksumMismatch(ArtStoreError):
    status, code = 422, "CHECKSUM_MISMATCH"


class UpstreamUnavailable(ArtStoreError):
    status, code = 502, "UPSTREAM_UNAVAILABLE"


class ServiceUnavailable(ArtStoreError):
    status, code = 503, "SERVICE_UNAVAILABLE"


class StorageFull(ArtStoreError):
    status, code = 507, "STORAGE_FULL"


_STATUS_CODES = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    403: "FORBIDDEN",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    411: "LENGTH_REQUIRED",
    413: "FILE_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    416: "INVALID_RANGE",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMITED",
}


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


def _validation_details(exc: RequestValidationError) -> dict[str, Any]:
    fields = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        fields.append({"field": ".".join(loc), "message": err.get("msg", "invalid")})
    return {"fields": fields}


def install_error_handlers(app: FastAPI) -> None:
    """Map every failure to the error envelope; unexpected ones become a logged 500."""

    async def on_artstore_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ArtStoreError)
        return JSONResponse(
            error_body(exc.code, exc.message, exc.details),
            status_code=exc.status,
            headers=exc.headers,
        )

    async def on_validation_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse(
            error_body("VALIDATION_ERROR", "request is not valid", _validation_details(exc)),
            status_code=400,
        )

    async def on_http_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = _STATUS_CODES.get(
            exc.status_code, "INTERNAL_ERROR" if exc.status_code >= 500 else "ERROR"
        )
        return JSONResponse(
            error_body(code, str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    async def on_os_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, OSError)
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            # A full disk anywhere on a write path is the caller's 507, not our 500.
            log.error("disk full on %s %s: %s", request.method, route_of(request.scope), exc)
            return JSONResponse(error_body("STORAGE_FULL", "the disk is full"), status_code=507)
        return await on_unexpected(request, exc)

    async def on_database_error(request: Request, exc: Exception) -> JSONResponse:
        # The last line of defence (routes validate first): a value the database refuses
        # is the client's mistake, never an outage; only a connection-class error is 503.
        reason = safe_reason(exc)
        if is_data_error(exc):
            unique = "SQLSTATE 23505" in reason
            return JSONResponse(
                error_body(
                    "CONFLICT" if unique else "VALIDATION_ERROR",
                    "the request conflicts with a stored value"
                    if unique
                    else "the database refused a value of this request",
                    {"reason": reason},
                ),
                status_code=409 if unique else 400,
            )
        if is_connection_error(exc):
            log.warning(
                "database unavailable on %s %s: %s", request.method, route_of(request.scope), reason
            )
            return JSONResponse(
                error_body(
                    "SERVICE_UNAVAILABLE", "the database cannot answer now", {"reason": reason}
                ),
                status_code=503,
            )
        return await on_unexpected(request, exc)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, route_of(request.scope))
        return JSONResponse(error_body("INTERNAL_ERROR", "internal error"), status_code=500)

    app.add_exception_handler(ArtStoreError, on_artstore_error)
    app.add_exception_handler(RequestValidationError, on_validation_error)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(OSError, on_os_error)
    app.add_exception_handler(StatementError, on_database_error)
    app.add_exception_handler(Exception, on_unexpected)
