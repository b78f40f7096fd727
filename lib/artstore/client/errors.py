"""One error hierarchy for everything the client can fail with.

A server error carries the architecture §3 envelope (``code``, ``message``, ``details``) and
the HTTP status; the OAuth2 token endpoint's RFC 6749 form is mapped onto the same
fields (``invalid_grant`` → ``INVALID_GRANT``) so callers handle one shape.
"""

from __future__ import annotations

from typing import Any

import httpx


class ArtStoreClientError(Exception):
    """Base of every failure the client reports. ``str()`` is the message alone."""

    default_code = "CLIENT_ERROR"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        status: int | None = None,
        details: dict[str, Any] | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.status = status
        self.details = details or {}
        self.request_id = request_id

    def one_line(self) -> str:
        """``<message> (<CODE>)`` on one line, as the CLI prints it."""
        text = " ".join(self.message.split())
        return f"{text} ({self.code})"


class ApiError(ArtStoreClientError):
    """The service answered with an error status."""

    default_code = "API_ERROR"


class BadRequestError(ApiError):
    default_code = "VALIDATION_ERROR"


class AuthenticationError(ApiError):
    """401, or a token request refused (wrong credentials, expired session)."""

    default_code = "UNAUTHORIZED"


class PermissionDeniedError(ApiError):
    default_code = "FORBIDDEN"


class NotFoundError(ApiError):
    default_code = "NOT_FOUND"


class ConflictError(ApiError):
    default_code = "CONFLICT"


class GoneError(ApiError):
    default_code = "FILE_GONE"


class ServiceUnavailableError(ApiError):
    """503 after the retries ran out (or on a request that is not retried)."""

    default_code = "SERVICE_UNAVAILABLE"


class ServiceConnectionError(ArtStoreClientError):
    """The service could not be reached at all (refused, DNS, timeout, dropped)."""

    default_code = "CONNECTION_FAILED"


class ChecksumMismatchError(ArtStoreClientError):
    """What arrived (or what the server stored) does not hash to what was expected."""

    default_code = "CHECKSUM_MISMATCH"


class NotLoggedInError(ArtStoreClientError):
    default_code = "NOT_LOGGED_IN"


_BY_STATUS: dict[int, type[ApiError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    410: GoneError,
    503: ServiceUnavailableError,
}


def error_from_response(response: httpx.Response, service: str) -> ApiError:
    """Build the error for an answer >= 400; the body must already be read."""
    status = response.status_code
    code, message, details = _decode_envelope(response)
    if code is None:
        code = _fallback_code(status)
        message = message or f"{service} answered {status} {response.reason_phrase}".strip()
    cls: type[ApiError] = _BY_STATUS.get(status, ApiError)
    if code in ("INVALID_GRANT", "INVALID_CLIENT"):
        cls = AuthenticationError
    return cls(
        message or code,
        code=code,
        status=status,
        details=details,
        request_id=response.headers.get("x-request-id"),
    )


def _decode_envelope(response: httpx.Response) -> tuple[str | None, str, dict[str, Any]]:
    try:
        body = response.json()
    except ValueError:
        return None, "", {}
    if not isinstance(body, dict):
        return None, "", {}
    err = body.get("error")
    if isinstance(err, dict):  # architecture §3 envelope
        details = err.get("details")
        message = str(err.get("message") or "")
        if isinstance(details, dict) and details.get("fields") and message:
            message = f"{message}: {_summarise_fields(details['fields'])}"
        return (
            str(err.get("code") or _fallback_code(response.status_code)),
            message,
            details if isinstance(details, dict) else {},
        )
    if isinstance(err, str):  # RFC 6749 token endpoint form
        return err.upper(), str(body.get("error_description") or err), {}
    return None, "", {}


def _summarise_fields(fields: Any) -> str:
    """Validation details name the bad fields; one line keeps them readable."""
    if not isinstance(fields, list):
        return str(fields)
    parts = []
    for f in fields[:3]:
        if isinstance(f, dict):
            name = str(f.get("field", "")).removeprefix("body.").removeprefix("query.")
            parts.append(f"{name}: {f.get('message', '')}".strip(": "))
        else:
            parts.append(str(f))
    return "; ".join(parts)


def _fallback_code(status: int) -> str:
    cls = _BY_STATUS.get(status)
    if cls is not None:
        return cls.default_code
    return "INTERNAL_ERROR" if status >= 500 else "API_ERROR"
