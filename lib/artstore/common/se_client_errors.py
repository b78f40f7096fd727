"""What a storage element answered, as our errors: the one mapping every service uses.

- An SE's 4xx or 507 is the caller's business: it is passed on with the SE's status,
  code, message and details, as a :class:`Relayed`. When our hierarchy has a class for
  the code (``docs/architecture.md`` §3), the error is an instance of that class too, so
  ``except StorageFull`` or ``isinstance(err, ModeNotAllowed)`` work on SE answers.
- Anything else the SE answered (5xx, an unexpected status) is our 502.
- An SE that could not be asked (connection refused, timeout, broken connection) is
  :class:`Unreachable`, a 502 as well.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from artstore.common.errors import (
    ArtStoreError,
    AttrTooLarge,
    ChecksumMismatch,
    ConfirmationRequired,
    Conflict,
    FileGone,
    FileTooLarge,
    Forbidden,
    InvalidRange,
    InvalidTransition,
    ModeNotAllowed,
    NotFound,
    StorageFull,
    Unauthorized,
    UpstreamUnavailable,
    ValidationFailed,
)

log = logging.getLogger("artstore.se_client")


class Relayed(ArtStoreError):
    """An SE's own 4xx or 507 answer, passed on with its status, code and message."""

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None
    ) -> None:
        super().__init__(message, details=details)
        self.status = status
        self.code = code


class Unreachable(UpstreamUnavailable):
    """The SE could not be asked, or did not answer (``reason``: the failure's class)."""

    def __init__(self, where: str, details: dict[str, Any], reason: str) -> None:
        super().__init__(f"storage element {where} unreachable: {reason}", details=details)
        self.reason = reason


_KNOWN: tuple[type[ArtStoreError], ...] = (
    ValidationFailed,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    ModeNotAllowed,
    InvalidTransition,
    ConfirmationRequired,
    FileGone,
    FileTooLarge,
    AttrTooLarge,
    InvalidRange,
    ChecksumMismatch,
    StorageFull,
)


def _relayed(base: type[ArtStoreError]) -> type[Relayed]:
    # Relayed first in the MRO: its __init__ takes the SE's status and code.
    made: type[Relayed] = type(f"Relayed{base.__name__}", (Relayed, base), {})
    return made


# SE error code -> the class its answer becomes (both Relayed and ours).
RELAYED_BY_CODE: dict[str, type[Relayed]] = {cls.code: _relayed(cls) for cls in _KNOWN}


def error_of(
    where: str,
    details: dict[str, Any],
    status: int,
    content: bytes,
    www_authenticate: str | None = None,
) -> ArtStoreError:
    """The error for an SE's answer ``status`` with body ``content`` (an error
    envelope, or anything). ``where`` names the SE in messages, ``details`` too."""
    try:
        error = json.loads(content)["error"]
        code, message = str(error["code"]), str(error["message"])
        extra = error.get("details") if isinstance(error.get("details"), dict) else None
    except (ValueError, KeyError, TypeError):
        code, message, extra = "UPSTREAM_ERROR", content[:200].decode(errors="replace"), None
    if 400 <= status < 500 or status == 507:
        err = RELAYED_BY_CODE.get(code, Relayed)(status, code, message, extra)
        err.headers = None
        if status == 401:
            err.headers = {"WWW-Authenticate": www_authenticate or "Bearer"}
        return err
    log.warning("storage element answered %s", status, extra={"fields": {"se": where}})
    return UpstreamUnavailable(
        f"storage element {where} failed: {message}", details={**details, "status": status}
    )


def status_of(exc: BaseException) -> int | None:
    """The HTTP status an SE answered, for errors made from an answer; None otherwise."""
    if isinstance(exc, Relayed):
        return exc.status
    if isinstance(exc, UpstreamUnavailable) and exc.details:
        status = exc.details.get("status")
        return status if isinstance(status, int) else None
    return None
