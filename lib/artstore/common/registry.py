"""How the ingester and the query module find storage elements (architecture §7, §8).

They read the admin's registry (``GET /api/v1/storage-elements``, scope storage:read)
with their own service account, keep the last good copy when the admin is away, refresh
it every ``poll_interval`` seconds, and at once when the admin announces a change on
Redis (channel ``artstore:storage-elements``) if Redis is configured.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from artstore.common.httpclient import make_async_client
from artstore.common.redact import describe
from artstore.contracts import events

log = logging.getLogger("artstore.registry")

SE_CHANNEL = events.SE_CHANNEL
KIND_MODE = {"temporary": "edit", "permanent": "rw"}


@dataclass(frozen=True)
class StorageElementRef:
    storage_id: str
    name: str
    url: str
    mode: str
    status: str
    backend: str
    total_bytes: int
    used_bytes: int
    available_bytes: int
    file_count: int

    @classmethod
    def of(cls, item: dict[str, Any]) -> StorageElementRef:
        cap = item.get("capacity") or {}
        return cls(
            storage_id=str(item["storage_id"]),
            name=str(item.get("name") or item["storage_id"]),
            url=str(item["url"]).rstrip("/"),
            mode=str(item.get("mode", "")),
            status=str(item.get("status", "offline")),
            backend=str(item.get("backend", "")),
            total_bytes=int(cap.get("total_bytes", 0)),
            used_bytes=int(cap.get("used_bytes", 0)),
            available_bytes=int(cap.get("available_bytes", 0)),
            file_count=int(cap.get("file_count", 0)),
        )


class ServiceToken:
    """An access token for this service's own account (client_credentials), renewed
    shortly before it expires."""

    def __init__(self, token_url: str, client_id: str, client_secret: str) -> None:
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self._token = ""
        self._expires_at = 0.0
        self._lock = asyncio.Lock()

    @property
    def configured(self) -> bool:
        return bool(self.client_id and self.client_secret)

    async def get(self, client: httpx.AsyncClient) -> str:
        if self._token and time.monotonic() < self._expires_at - 60:
            return self._token
        async with self._lock:
            if self._token and time.monotonic() < self._expires_at - 60:
                return self._token
            resp = await client.post(
                self.token_url,
                data={"grant_type": "client_credentials"},
                auth=(self.client_id, self.client_secret),
            )
            resp.raise_for_status()
            body = resp.json()
            self._token = str(body["access_token"])
            self._expires_at = time.monotonic() + float(body.get("expires_in", 300))
            return self._token

    def invalidate(self) -> None:
        self._token = ""


class StorageRegistry:
    def __init__(
        self,
        admin_url: str,
        token: ServiceToken,
        *,
        poll_interval: float = 10.0,
        redis_url: str = "",
    ) -> None:
        self.admin_url = admin_url.rstrip("/")
        self.token = token
        self.poll_interval = poll_interval
        self.redis_url = redis_url
        self._items: dict[str, StorageElementRef] = {}
        self.loaded_at: float | None = None
        self.last_error: str | None = "not read yet"
        self._client: httpx.AsyncClient | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._changed = asyncio.Event()

    # -- reading ------------------------------------------------------------------------
    @property
    def ever_loaded(self) -> bool:
        return self.loaded_at is not None

    @property
    def reachable(self) -> bool:
        return self.last_error is None

    def all(self) -> list[StorageElementRef]:
        return list(self._items.values())

    def get(self, storage_id: str) -> StorageElementRef | None:
        return self._items.get(storage_id)

    def writable(self, retention: str) -> list[StorageElementRef]:
        """Online SEs that take files of this retention policy (edit: temporary, rw:
        permanent)."""
        mode = KIND_MODE[retention]
        return [se for se in self._items.values() if se.mode == mode and se.status == "online"]

    def readable(self, storage_id: str) -> StorageElementRef | None:
        se = self._items.get(storage_id)
        if se is None or se.status not in ("online", "degraded") or se.mode == "ar":
            return None
        return se

    # -- refreshing ----------------------------------------------------------------------
    async def refresh(self) -> bool:
        """Read the registry now; on failure keep the last good copy. True on success."""
        client = self._http()
        try:
            token = await self.token.get(client)
            resp = await client.get(
                f"{self.admin_url}/api/v1/storage-elements",
                params={"limit": 1000},
                headers={"Authorization": f"Bearer {token}"},
            )
            if resp.status_code == 401:
                self.token.invalidate()
            resp.raise_for_status()
            items = resp.json()["items"]
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            if self.last_error is None:
                log.warning("registry unreachable, keeping the last copy: %s", exc)
            self.last_error = describe(exc)  # shown by /health/ready: class and reason only
            return False
        self._items = {i["storage_id"]: StorageElementRef.of(i) for i in items}
        self.loaded_at = time.monotonic()
        self.last_error = None
        return True

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = make_async_client(timeout=5.0, connect_timeout=2.0)
        return self._client

    async def start(self) -> None:
        await self.refresh()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._poll_forever()))
        if self.redis_url:
            self._tasks.append(loop.create_task(self._listen_forever()))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._client is not None:
            await self._client.aclose()

    async def _poll_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), self.poll_interval)
            self._changed.clear()
            await self.refresh()

    async def _listen_forever(self) -> None:
        import redis.asyncio as redis

        while True:
            try:
                conn = redis.Redis.from_url(self.redis_url, socket_connect_timeout=2.0)
                async with conn.pubsub() as pubsub:
                    await pubsub.subscribe(SE_CHANNEL)
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            self._changed.set()
            except (redis.RedisError, OSError) as exc:
                log.warning("registry notifications unavailable, polling only: %s", exc)
                await asyncio.sleep(self.poll_interval)


def service_credentials(
    client_id: str, client_secret: str, credentials_file: Path, account: str
) -> tuple[str, str]:
    """A service's own account: its ``*_CLIENT_ID``/``*_CLIENT_SECRET`` settings, else the
    ``account`` entry of the admin's ``bootstrap-credentials.json`` (local runs, compose).

    Blocking file read: call it from a thread.
    """
    if client_id:
        return client_id, client_secret
    if str(credentials_file) in ("", "."):
        log.warning("no service account configured: the SE registry cannot be read")
        return "", ""
    try:
        entry = json.loads(credentials_file.read_text()).get(account) or {}
        return str(entry["client_id"]), str(entry["client_secret"])
    except (OSError, ValueError, KeyError, AttributeError) as exc:
        log.warning("cannot read the %s credentials from %s: %s", account, credentials_file, exc)
        return "", ""
