"""Talking to storage elements: their answers become our errors in one place."""

from __future__ import annotations

import logging
from typing import Any

import httpx

from artstore.common.errors import ArtStoreError, UpstreamUnavailable
from artstore.common.registry import StorageElementRef

log = logging.getLogger("artstore.ingester.upstream")


class Relayed(ArtStoreError):
    """An SE's own 4xx or 507 answer, passed on with its status, code and message."""

    def __init__(
        self, status: int, code: str, message: str, details: dict[str, Any] | None
    ) -> None:
        super().__init__(message, details=details)
        self.status = status
        self.code = code


class BeforeBody(UpstreamUnavailable):
    """The SE failed before any byte of the body left: the upload may go elsewhere."""

    def __init__(self, se: StorageElementRef, reason: str) -> None:
        super().__init__(
            f"storage element {se.storage_id} unreachable: {reason}",
            details={"storage_element_id": se.storage_id},
        )
        self.se = se


def error_from(se: StorageElementRef, resp: httpx.Response) -> ArtStoreError:
    """An SE's error answer: 4xx and 507 are the caller's business and keep their code;
    anything else from the SE is our 502."""
    try:
        error = resp.json()["error"]
        code, message = str(error["code"]), str(error["message"])
        details = error.get("details") if isinstance(error.get("details"), dict) else None
    except (ValueError, KeyError, TypeError):
        code, message, details = "UPSTREAM_ERROR", resp.text[:200], None
    if 400 <= resp.status_code < 500 or resp.status_code == 507:
        headers = None
        if resp.status_code == 401:
            headers = {"WWW-Authenticate": resp.headers.get("www-authenticate", "Bearer")}
        err = Relayed(resp.status_code, code, message, details)
        err.headers = headers
        return err
    log.warning(
        "storage element answered %s", resp.status_code, extra={"fields": {"se": se.storage_id}}
    )
    return UpstreamUnavailable(
        f"storage element {se.storage_id} failed: {message}",
        details={"storage_element_id": se.storage_id, "status": resp.status_code},
    )


def unreachable(se: StorageElementRef, exc: Exception) -> UpstreamUnavailable:
    return UpstreamUnavailable(
        f"storage element {se.storage_id} unreachable: {type(exc).__name__}",
        details={"storage_element_id": se.storage_id},
    )
