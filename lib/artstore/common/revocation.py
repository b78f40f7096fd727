"""Per-subject revocation: access tokens issued before a not-before time are refused.

Disabling, deleting or demoting a user, changing or resetting its password, and
suspending, deleting, narrowing or rotating the secret of a service account make the
admin record ``not_before`` for that subject (issue 13; docs/security.md lists them).
The verifier refuses a token whose ``sub`` or acting service (``act``) is revoked.
Every service keeps the entries in memory (:class:`RevocationList`, consulted by the
token verifier on every request: one dict probe when empty) and learns of new ones two
ways:

- pushed: the admin publishes each entry on Redis (``artstore:revocations``) when
  ``REDIS_URL`` is set, so services that share the Redis hear of it at once;
- polled: every ``REVOCATION_POLL_SECONDS`` the whole list is fetched from the admin
  (``GET /api/v1/auth/revocations``), which also covers a missed message and services
  without Redis. The default (10 s) keeps the promise "refused within 30 s".

An entry is needed only while tokens issued before it can still be alive, so the admin
drops it after the access-token lifetime (plus a margin). A subject is named by the
SHA-256 of its ``sub`` (hex): the list is public, the usernames in it need not be. A
poll that fails keeps the entries already known (a revocation is a tightening on top
of expiry: the tokens still expire).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as redis

from artstore.common.httpclient import make_async_client
from artstore.common.settings import ServiceSettings
from artstore.contracts import events

log = logging.getLogger("artstore.revocation")

CHANNEL = events.REVOCATIONS_CHANNEL
PATH = "/api/v1/auth/revocations"


def subject_key(sub: str) -> str:
    return hashlib.sha256(sub.encode("utf-8", "surrogatepass")).hexdigest()


class RevocationList:
    """subject key -> (not_before, expires_at), epoch seconds."""

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, float]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def refuses(self, sub: str, issued_at: float | None) -> bool:
        """True when a token of ``sub`` issued at ``issued_at`` (None: unknown) is revoked."""
        if not self._entries:
            return False
        entry = self._entries.get(subject_key(sub))
        if entry is None:
            return False
        not_before, expires_at = entry
        if expires_at <= time.time():
            return False
        return issued_at is None or issued_at < not_before

    def add(self, entries: Iterable[dict[str, Any]]) -> None:
        """Merge entries (``subject``, ``not_before``, ``expires_at``); later wins."""
        now = time.time()
        for entry in entries:
            try:
                key = str(entry["subject"])
                nbf, until = float(entry["not_before"]), float(entry["expires_at"])
            except (KeyError, TypeError, ValueError):
                continue  # a malformed entry is skipped, never fatal
            old = self._entries.get(key)
            if old is not None:
                nbf, until = max(nbf, old[0]), max(until, old[1])
            self._entries[key] = (nbf, until)
        for key in [k for k, (_, until) in self._entries.items() if until <= now]:
            del self._entries[key]


Fetch = Callable[[], Awaitable[list[dict[str, Any]]]]


def revocations_url(jwks_url: str, configured: str = "") -> str:
    """The issuer serves its revocations beside its keys unless told otherwise."""
    if configured:
        return configured
    parts = urlsplit(jwks_url)
    return f"{parts.scheme}://{parts.netloc}{PATH}"


def http_fetch(url: str) -> tuple[Fetch, Callable[[], Awaitable[None]]]:
    client = make_async_client(timeout=5.0, connect_timeout=2.0)

    async def fetch() -> list[dict[str, Any]]:
        resp = await client.get(url)
        resp.raise_for_status()
        items = resp.json().get("revocations", [])
        return [i for i in items if isinstance(i, dict)]

    return fetch, client.aclose


class RevocationFeed:
    """Keeps a :class:`RevocationList` current: Redis pushes plus periodic polls."""

    def __init__(
        self,
        fetch: Fetch,
        redis_url: str = "",
        poll_seconds: float = 10.0,
        on_close: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.list = RevocationList()
        self._fetch = fetch
        self._on_close = on_close
        self._redis_url = redis_url
        self._poll = max(0.2, poll_seconds)
        self._tasks: list[asyncio.Task[None]] = []
        self._failing = False

    async def refresh(self) -> bool:
        try:
            self.list.add(await self._fetch())
        # Whatever the source raises (HTTP, JSON, the admin's database): keep what is
        # known and say so once, not on every poll.
        except Exception as exc:
            if not self._failing:
                log.warning("revocation list fetch failed (%r); keeping what is known", exc)
            self._failing = True
            return False
        if self._failing:
            log.info("revocation list fetched again")
        self._failing = False
        return True

    def start(self) -> None:
        self._tasks.append(asyncio.create_task(self._polling(), name="revocation-poll"))
        if self._redis_url:
            self._tasks.append(asyncio.create_task(self._listening(), name="revocation-sub"))

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._on_close is not None:
            await self._on_close()

    async def _polling(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self._poll)

    async def _listening(self) -> None:
        while True:
            client = redis.Redis.from_url(self._redis_url, socket_connect_timeout=2.0)
            try:
                async with client.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    # Whatever was published while we were not listening: fetch it.
                    await self.refresh()
                    async for message in pubsub.listen():
                        self._on_message(message.get("data"))
            except (redis.RedisError, OSError) as exc:
                log.warning("revocation subscription lost (%s); polling meanwhile", exc)
            finally:
                await client.aclose()
            await asyncio.sleep(self._poll)

    def _on_message(self, data: object) -> None:
        try:
            entry = json.loads(data if isinstance(data, str | bytes) else b"")
        except ValueError:
            return
        if isinstance(entry, dict):
            self.list.add([entry])


def service_feed(settings: ServiceSettings) -> RevocationFeed:
    """The feed of a service that trusts the admin's tokens (not the admin itself)."""
    fetch, close = http_fetch(revocations_url(settings.jwks_url, settings.revocations_url))
    return RevocationFeed(fetch, settings.redis_url, settings.revocation_poll_seconds, close)
