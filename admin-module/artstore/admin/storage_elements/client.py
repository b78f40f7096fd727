"""Calls from the admin to storage elements (the SE stays the authority)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx

from artstore.common.errors import ArtStoreError, error_body
from artstore.common.se_client import StorageElementClient, Unreachable, bearer
from artstore.common.se_client_errors import status_of


@dataclass(frozen=True)
class Observation:
    """What one look at an SE showed; ``info`` is None when it could not be reached."""

    info: dict[str, Any] | None
    ready: str | None

    @property
    def status(self) -> str:
        if self.info is None:
            return "offline"
        if self.info.get("status") == "maintenance":
            return "maintenance"
        if self.info.get("status") == "degraded" or self.ready != "ok":
            return "degraded"
        return "online"


async def info(http: httpx.AsyncClient, url: str) -> dict[str, Any]:
    """The SE's ``/api/v1/info`` as it sent it, or UPSTREAM_UNAVAILABLE."""
    return await StorageElementClient(http).info_document(url)


async def observe(http: httpx.AsyncClient, url: str) -> Observation:
    """``/info`` and ``/health/ready`` at once."""
    se = StorageElementClient(http)
    got_info, ready = await asyncio.gather(
        se.info_document(url), se.ready(url), return_exceptions=True
    )
    if isinstance(got_info, BaseException):
        return Observation(None, None)
    return Observation(got_info, ready if isinstance(ready, str) else None)


async def transition_mode(
    http: httpx.AsyncClient, url: str, body: dict[str, Any], token: str
) -> tuple[int, Any]:
    """The mode change asked of the SE, on behalf of the caller with ``token``: the
    caller's token bound to that SE alone (auth/exchange.py ``bound_for``), so the SE
    checks their scopes and records them, and nothing the SE sees is good anywhere
    else. The SE's status and answer, to relay."""
    try:
        return 200, await StorageElementClient(http).transition_mode(url, body, bearer(token))
    except Unreachable:
        raise
    except ArtStoreError as exc:
        status = status_of(exc)
        if status is None:
            raise
        return status, error_body(exc.code, exc.message, exc.details)


async def delete_copy(http: httpx.AsyncClient, url: str, file_id: str, token: str) -> int:
    """Tombstone one copy on behalf of the caller (``token`` as above): the SE's status
    (204; 410 a tombstone already; 404 the catalog was ahead of the SE; others refused).
    UPSTREAM_UNAVAILABLE when the SE cannot be asked."""
    try:
        return await StorageElementClient(http).delete_file(
            url, file_id, bearer(token), accept=(204, 404, 410)
        )
    except Unreachable:
        raise
    except ArtStoreError as exc:
        status = status_of(exc)
        if status is None:
            raise
        return status
