"""Best-effort notifications on Redis (architecture §6); without REDIS_URL nothing is sent."""

from __future__ import annotations

import json
import logging
from typing import Any

import redis.asyncio as redis

from artstore.contracts.events import FILES_CHANNEL, SE_CHANNEL

log = logging.getLogger("artstore.admin.events")

__all__ = ["FILES_CHANNEL", "SE_CHANNEL", "Events"]


class Events:
    def __init__(self, url: str) -> None:
        self._redis: redis.Redis | None = (
            redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
            if url
            else None
        )

    @property
    def enabled(self) -> bool:
        return self._redis is not None

    async def publish(self, channel: str, message: dict[str, Any]) -> None:
        if self._redis is None:
            return
        try:
            await self._redis.publish(channel, json.dumps(message, default=str))
        except (redis.RedisError, OSError) as exc:
            # Subscribers fall back to polling the admin API, so a lost message is
            # late news, never lost data.
            log.warning("publish on %s failed: %s", channel, exc)

    async def ping(self) -> bool:
        if self._redis is None:
            return True
        try:
            return bool(await self._redis.ping())
        except (redis.RedisError, OSError):
            return False

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
