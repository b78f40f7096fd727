"""Drops cached metadata when the admin announces a change on ``artstore:files``."""

from __future__ import annotations

import asyncio
import json
import logging

import redis.asyncio as redis

from artstore.contracts.events import FILES_CHANNEL
from artstore.query.cache.store import MetadataCache

log = logging.getLogger("artstore.query.cache")

RETRY_SECONDS = 2.0


def file_id_of(data: bytes | str) -> str | None:
    try:
        message = json.loads(data)
    except (ValueError, TypeError):
        return None
    fid = message.get("file_id") if isinstance(message, dict) else None
    return fid if isinstance(fid, str) and fid else None


async def listen(redis_url: str, cache: MetadataCache) -> None:
    """Runs until cancelled; reconnects after Redis errors (the TTL bounds staleness)."""
    while True:
        try:
            conn = redis.Redis.from_url(redis_url, socket_connect_timeout=2.0)
            async with conn.pubsub() as pubsub:
                await pubsub.subscribe(FILES_CHANNEL)
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    fid = file_id_of(message.get("data", b""))
                    if fid is not None:
                        await cache.drop(fid)
        except (redis.RedisError, OSError) as exc:
            log.warning("file invalidations unavailable, relying on the TTL: %s", exc)
            await asyncio.sleep(RETRY_SECONDS)
