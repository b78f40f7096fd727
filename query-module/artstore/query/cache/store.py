"""Metadata cache (architecture §8): Redis when configured (TTL ≤ 60 s), else in-process (≤ 5 s).

Values are the JSON of a metadata answer. A cache that fails is a miss, never an
error: the catalog is the source and is always asked when the cache cannot answer.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from typing import Protocol

import redis.asyncio as redis

from artstore.query.search.schemas import FileItem

log = logging.getLogger("artstore.query.cache")


def answer_shape() -> str:
    """12 hex digits of a hash of the metadata answer's JSON schema."""
    schema = json.dumps(FileItem.model_json_schema(mode="serialization"), sort_keys=True)
    return hashlib.sha256(schema.encode()).hexdigest()[:12]


# Entries are answers sent as they are (no parse on a hit), so the key names the answer's
# shape: a query module of another version (another FileItem) never reads them.
KEY_PREFIX = f"artstore:query:file:{answer_shape()}:"
LOCAL_MAX_ENTRIES = 10_000


class MetadataCache(Protocol):
    async def get(self, file_id: str) -> str | None: ...
    async def put(self, file_id: str, value: str) -> None: ...
    async def drop(self, file_id: str) -> None: ...
    async def close(self) -> None: ...


class NoCache:
    async def get(self, file_id: str) -> str | None:
        return None

    async def put(self, file_id: str, value: str) -> None:
        return None

    async def drop(self, file_id: str) -> None:
        return None

    async def close(self) -> None:
        return None


class LocalCache:
    """Per-process TTL cache; other instances' entries expire on their own within ttl."""

    def __init__(self, ttl: float) -> None:
        self.ttl = ttl
        self._entries: dict[str, tuple[float, str]] = {}

    async def get(self, file_id: str) -> str | None:
        entry = self._entries.get(file_id)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            self._entries.pop(file_id, None)
            return None
        return entry[1]

    async def put(self, file_id: str, value: str) -> None:
        if len(self._entries) >= LOCAL_MAX_ENTRIES:
            self._evict()
        self._entries[file_id] = (time.monotonic() + self.ttl, value)

    def _evict(self) -> None:
        now = time.monotonic()
        self._entries = {k: v for k, v in self._entries.items() if v[0] > now}
        while len(self._entries) >= LOCAL_MAX_ENTRIES:  # still full: oldest insertions go
            self._entries.pop(next(iter(self._entries)))

    async def drop(self, file_id: str) -> None:
        self._entries.pop(file_id, None)

    async def close(self) -> None:
        self._entries.clear()


class RedisCache:
    def __init__(self, url: str, ttl: float) -> None:
        self.ttl_ms = max(1, int(ttl * 1000))
        self._redis = redis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)

    async def get(self, file_id: str) -> str | None:
        try:
            value = await self._redis.get(KEY_PREFIX + file_id)
        except (redis.RedisError, OSError) as exc:
            log.warning("cache read failed, asking the catalog: %s", exc)
            return None
        return value.decode() if isinstance(value, bytes) else None

    async def put(self, file_id: str, value: str) -> None:
        try:
            await self._redis.set(KEY_PREFIX + file_id, value, px=self.ttl_ms)
        except (redis.RedisError, OSError) as exc:
            log.warning("cache write failed: %s", exc)

    async def drop(self, file_id: str) -> None:
        try:
            await self._redis.delete(KEY_PREFIX + file_id)
        except (redis.RedisError, OSError) as exc:
            # The entry still expires within the TTL (≤ 60 s).
            log.warning("cache drop failed: %s", exc)

    async def ping(self) -> bool:
        try:
            return bool(await self._redis.ping())
        except (redis.RedisError, OSError):
            return False

    async def close(self) -> None:
        await self._redis.aclose()


def make_cache(redis_url: str, ttl: float) -> MetadataCache:
    if ttl <= 0:
        return NoCache()
    if redis_url:
        return RedisCache(redis_url, ttl)
    return LocalCache(ttl)
