"""Calls from the admin to storage elements (the SE stays the authority)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx

from artstore.common.errors import UpstreamUnavailable


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


def _base(url: str) -> str:
    return url.rstrip("/")


async def info(http: httpx.AsyncClient, url: str) -> dict[str, Any]:
    """The SE's ``/api/v1/info``, or UPSTREAM_UNAVAILABLE."""
    try:
        resp = await http.get(f"{_base(url)}/api/v1/info")
        resp.raise_for_status()
        data = resp.json()
    except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
        raise UpstreamUnavailable(
            f"storage element at {url} did not answer /api/v1/info: {exc}",
            details={"url": url},
        ) from exc
    sid = data.get("storage_id") if isinstance(data, dict) else None
    if not isinstance(sid, str) or not 0 < len(sid) <= 200:
        raise UpstreamUnavailable(f"{url} is not a storage element", details={"url": url})
    found: dict[str, Any] = data
    return found


async def _ready(http: httpx.AsyncClient, url: str) -> str | None:
    try:
        resp = await http.get(f"{_base(url)}/health/ready")
        status = resp.json().get("status")
    except (httpx.HTTPError, ValueError, AttributeError):
        return None
    return status if isinstance(status, str) else None


async def observe(http: httpx.AsyncClient, url: str) -> Observation:
    """``/info`` and ``/health/ready`` at once."""
    got_info, ready = await asyncio.gather(
        info(http, url), _ready(http, url), return_exceptions=True
    )
    if isinstance(got_info, BaseException):
        return Observation(None, None)
    return Observation(got_info, ready if isinstance(ready, str) else None)


async def forward(
    http: httpx.AsyncClient, method: str, base_url: str, path: str, token: str, json: Any = None
) -> httpx.Response:
    """A call on behalf of the caller with ``token``: the caller's token bound to that
    SE alone (auth/exchange.py ``bound_for``), so the SE checks their scopes and records
    them, and nothing the SE sees is good anywhere else."""
    try:
        return await http.request(
            method,
            f"{_base(base_url)}{path}",
            headers={"Authorization": f"Bearer {token}"},
            json=json,
        )
    except httpx.HTTPError as exc:
        raise UpstreamUnavailable(
            f"storage element at {base_url} unreachable: {exc}", details={"url": base_url}
        ) from exc
