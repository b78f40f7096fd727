"""Sign-in throttling and lockout (issue 13; the rules are in docs/security.md).

Three budgets, each a token bucket, checked before any Argon2 work:

- per client address, for password sign-ins (token endpoint, change-password): one
  token per attempt, given back when the attempt succeeds, so only failures spend it;
- per client address, for ``client_credentials``: the same, in a separate bucket so
  guesses at passwords never spend a service account's budget;
- per username (whatever address): spent by failures; while it is empty, an address
  that has already failed for that username is refused (429), one that has not may
  still try, so a distributed attacker cannot keep the real user out.

Lockout is per (username, address): ``AM_LOGIN_MAX_FAILURES`` failures in a row from
one address lock that pair for ``AM_LOGIN_LOCKOUT_SECONDS``. An attacker without the
password can lock only the addresses they send from; the real user signs in from
theirs. Keys hold a hash of the username, never the name itself (any length, any text).

The state lives in Redis when ``REDIS_URL`` is set (shared by every admin replica),
in this process otherwise (bounded; each replica then counts on its own).
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as redis
from fastapi import Request

from artstore.admin.passwords import RateLimited
from artstore.admin.settings import AMSettings

log = logging.getLogger("artstore.admin.throttle")

PREFIX = "artstore:login:"


class Store(Protocol):
    async def bucket(self, key: str, capacity: int, per_second: float, cost: int) -> float:
        """Take ``cost`` tokens (1), give one back (-1) or only look (0); the answer is
        how many seconds until a token is there (0: taken, or one is there now)."""
        ...

    async def count(self, key: str, ttl: float) -> int:
        """Add one to a counter that is forgotten ``ttl`` seconds after its last change."""
        ...

    async def get(self, key: str) -> int: ...

    async def lock(self, key: str, seconds: float) -> None: ...

    async def locked_for(self, key: str) -> float: ...

    async def delete(self, *keys: str) -> None: ...

    async def delete_prefix(self, prefix: str) -> None: ...


class MemoryStore:
    """One process's view; bounded so a stream of made-up names cannot fill memory."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self.max_keys = max_keys
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()
        self._counts: OrderedDict[str, tuple[int, float]] = OrderedDict()  # value, expires
        self._locks: OrderedDict[str, float] = OrderedDict()  # until (monotonic)

    def _trim(self, table: OrderedDict[str, object]) -> None:
        while len(table) > self.max_keys:
            table.popitem(last=False)

    async def bucket(self, key: str, capacity: int, per_second: float, cost: int) -> float:
        now = time.monotonic()
        tokens, at = self._buckets.pop(key, (float(capacity), now))
        tokens = min(float(capacity), tokens + (now - at) * per_second)
        wait = 0.0
        if cost > 0:
            if tokens >= cost:
                tokens -= cost
            else:
                wait = (cost - tokens) / per_second
        elif cost < 0:
            tokens = min(float(capacity), tokens - cost)
        elif tokens < 1:
            wait = (1 - tokens) / per_second
        if tokens < capacity:
            self._buckets[key] = (tokens, now)
            self._trim(self._buckets)  # type: ignore[arg-type]
        return wait

    async def count(self, key: str, ttl: float) -> int:
        now = time.monotonic()
        value, expires = self._counts.pop(key, (0, now))
        value = (value if expires > now else 0) + 1
        self._counts[key] = (value, now + ttl)
        self._trim(self._counts)  # type: ignore[arg-type]
        return value

    async def get(self, key: str) -> int:
        value, expires = self._counts.get(key, (0, 0.0))
        return value if expires > time.monotonic() else 0

    async def lock(self, key: str, seconds: float) -> None:
        self._locks.pop(key, None)
        self._locks[key] = time.monotonic() + seconds
        self._trim(self._locks)  # type: ignore[arg-type]

    async def locked_for(self, key: str) -> float:
        until = self._locks.get(key)
        if until is None:
            return 0.0
        left = until - time.monotonic()
        if left <= 0:
            del self._locks[key]
            return 0.0
        return left

    async def delete(self, *keys: str) -> None:
        for key in keys:
            for table in (self._buckets, self._counts, self._locks):
                table.pop(key, None)

    async def delete_prefix(self, prefix: str) -> None:
        for table in (self._buckets, self._counts, self._locks):
            for key in [k for k in table if k.startswith(prefix)]:
                del table[key]


# The bucket as one atomic step in Redis: refill by elapsed time, then take, give back
# or look. The server's clock is used, so every admin replica agrees.
_BUCKET = """
local cap = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local cost = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local v = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(v[1]) or cap
local at = tonumber(v[2]) or now
tokens = math.min(cap, tokens + (now - at) * rate)
local wait = 0
if cost > 0 then
  if tokens >= cost then tokens = tokens - cost else wait = (cost - tokens) / rate end
elseif cost < 0 then
  tokens = math.min(cap, tokens - cost)
elseif tokens < 1 then
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(cap / rate) + 1)
return tostring(wait)
"""


class RedisStore:
    def __init__(self, url: str) -> None:
        self._redis = redis.Redis.from_url(url, socket_timeout=2.0, socket_connect_timeout=2.0)
        self._bucket = self._redis.register_script(_BUCKET)

    async def close(self) -> None:
        await self._redis.aclose()

    async def bucket(self, key: str, capacity: int, per_second: float, cost: int) -> float:
        return float(await self._bucket(keys=[key], args=[capacity, per_second, cost]))

    async def count(self, key: str, ttl: float) -> int:
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.incr(key)
            pipe.expire(key, max(1, int(ttl)))
            value, _ = await pipe.execute()
        return int(value)

    async def get(self, key: str) -> int:
        value = await self._redis.get(key)
        return int(value) if value is not None else 0

    async def lock(self, key: str, seconds: float) -> None:
        await self._redis.set(key, b"1", px=max(1, int(seconds * 1000)))

    async def locked_for(self, key: str) -> float:
        left = int(await self._redis.pttl(key))
        return left / 1000 if left > 0 else 0.0

    async def delete(self, *keys: str) -> None:
        await self._redis.delete(*keys)

    async def delete_prefix(self, prefix: str) -> None:
        async for key in self._redis.scan_iter(match=prefix + "*", count=500):
            await self._redis.delete(key)


def _name(username: str) -> str:
    return hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()[:32]


@dataclass(frozen=True)
class Attempt:
    """One sign-in under way: what to charge or give back when its outcome is known."""

    username: str
    address: str
    address_key: str
    # Seconds this (username, address) pair stays locked; > 0: refuse, no Argon2 work.
    locked_for: float = 0.0

    @property
    def locked(self) -> bool:
        return self.locked_for > 0


class LoginThrottle:
    def __init__(self, settings: AMSettings, store: Store) -> None:
        self.settings = settings
        self.store = store
        self._addr_rate = settings.login_address_per_minute / 60.0
        self._user_rate = settings.login_username_per_minute / 60.0

    @classmethod
    def of(cls, settings: AMSettings) -> LoginThrottle:
        store: Store = RedisStore(settings.redis_url) if settings.redis_url else MemoryStore()
        return cls(settings, store)

    async def close(self) -> None:
        if isinstance(self.store, RedisStore):
            await self.store.close()

    def _pair(self, username: str, address: str) -> str:
        return f"{PREFIX}user:{_name(username)}:pair:{address}"

    def _user(self, username: str) -> str:
        return f"{PREFIX}user:{_name(username)}:bucket"

    async def begin_password(self, username: str, address: str) -> Attempt:
        """Raises :class:`RateLimited` when this address or this username is over budget."""
        key = f"{PREFIX}addr:password:{address}"
        burst = self.settings.login_address_burst
        wait = await self.store.bucket(key, burst, self._addr_rate, 1)
        if wait > 0:
            raise RateLimited("too many failed sign-ins from this address", wait)
        pair = self._pair(username, address)
        locked_for = await self.store.locked_for(pair + ":lock")
        if locked_for > 0:
            return Attempt(username, address, key, locked_for)
        user_burst = self.settings.login_username_burst
        wait = await self.store.bucket(self._user(username), user_burst, self._user_rate, 0)
        if wait > 0 and await self.store.get(pair) > 0:
            # The name is under attack and this address has already failed for it.
            await self.store.bucket(key, burst, self._addr_rate, -1)
            raise RateLimited("too many failed sign-ins for this account", wait)
        return Attempt(username, address, key)

    async def failed(self, attempt: Attempt) -> None:
        if attempt.locked:
            return  # nothing was tried: a locked pair does not extend its own lock
        s = self.settings
        await self.store.bucket(self._user(attempt.username), s.login_username_burst,
                                self._user_rate, 1)  # fmt: skip
        pair = self._pair(attempt.username, attempt.address)
        if await self.store.count(pair, s.login_lockout_seconds) >= s.login_max_failures:
            await self.store.lock(pair + ":lock", s.login_lockout_seconds)
            await self.store.delete(pair)

    async def succeeded(self, attempt: Attempt) -> None:
        s = self.settings
        await self.store.bucket(attempt.address_key, s.login_address_burst, self._addr_rate, -1)
        await self.store.delete(self._pair(attempt.username, attempt.address))

    async def abandon(self, attempt: Attempt) -> None:
        """Not the caller's failure (the Argon2 lanes were full): give the token back."""
        s = self.settings
        await self.store.bucket(attempt.address_key, s.login_address_burst, self._addr_rate, -1)

    async def begin_client(self, address: str) -> str:
        key = f"{PREFIX}addr:client:{address}"
        wait = await self.store.bucket(key, self.settings.login_address_burst, self._addr_rate, 1)
        if wait > 0:
            raise RateLimited("too many failed client authentications from this address", wait)
        return key

    async def client_succeeded(self, key: str) -> None:
        await self.store.bucket(key, self.settings.login_address_burst, self._addr_rate, -1)

    async def unlock(self, username: str) -> None:
        """An admin's unlock: every address's lock and count for this user."""
        await self.store.delete_prefix(f"{PREFIX}user:{_name(username)}:")


def client_address(request: Request) -> str:
    """The caller's address as uvicorn resolved it: behind a proxy, uvicorn takes it from
    ``X-Forwarded-For`` only when the proxy's address is in ``FORWARDED_ALLOW_IPS``
    (docs/security.md), so a client cannot choose its own budget."""
    return request.client.host if request.client is not None else "unknown"
