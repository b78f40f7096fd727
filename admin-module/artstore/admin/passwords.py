"""Argon2id hashing of passwords and client secrets, on bounded pools of their own.

Argon2 is deliberately expensive (about 0.3 s of CPU per check here). Run on the
default executor without a bound, 60 anonymous guesses queue every other use of that
executor and every service account's token request behind them (issue 13). So:

- each *lane* has its own thread pool sized to the CPUs and a bound on how many
  checks may wait for it; beyond that the caller gets :class:`Busy` (answered 429)
  at once instead of a place in an ever longer queue;
- user passwords (``password`` lane) and service-account secrets (``client`` lane)
  never share a queue, so guesses at passwords cannot starve ``client_credentials``;
- a client secret is 256 random bits: once one has been checked with Argon2, a
  SHA-256 of it (kept in memory, keyed by the stored hash, so rotation forgets it)
  proves the next presentation as well as Argon2 would. Passwords are never cached.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import os
import secrets
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from artstore.common.errors import ArtStoreError

_hasher = PasswordHasher()  # argon2id, the library's (RFC 9106 low-memory) defaults

# Verified against when the account does not exist, so the answer takes as long as a
# real check and does not tell which usernames exist.
_DUMMY = _hasher.hash(secrets.token_urlsafe(16))

MIN_PASSWORD_LENGTH = 12

T = TypeVar("T")


class RateLimited(ArtStoreError):
    """429 with ``Retry-After`` (seconds): sign-in throttling and full Argon2 lanes."""

    status, code = 429, "RATE_LIMITED"

    def __init__(self, message: str, retry_after: float) -> None:
        self.retry_after = max(1, int(retry_after + 0.999))
        super().__init__(message, headers={"Retry-After": str(self.retry_after)})


class Busy(RateLimited):
    """Too many checks already wait for this lane: try again shortly."""

    def __init__(self) -> None:
        super().__init__("too many sign-in attempts are being checked; try again shortly", 1)


class Lane:
    """A bounded pool for one kind of Argon2 work."""

    def __init__(self, name: str, slots: int, max_waiting: int) -> None:
        self.name = name
        self.slots = max(1, slots)
        self.max_waiting = max(0, max_waiting)
        self._pool = ThreadPoolExecutor(self.slots, thread_name_prefix=f"argon2-{name}")
        self._sem: asyncio.Semaphore | None = None
        self._waiting = 0

    def resize(self, slots: int, max_waiting: int) -> None:
        """At start, from the settings (before any check ran)."""
        self._pool.shutdown(wait=False)
        self.slots = max(1, slots)
        self.max_waiting = max(0, max_waiting)
        self._pool = ThreadPoolExecutor(self.slots, thread_name_prefix=f"argon2-{self.name}")
        self._sem = None

    async def run(self, fn: Callable[..., T], *args: object) -> T:
        if self._sem is None:
            self._sem = asyncio.Semaphore(self.slots)
        sem = self._sem
        if sem.locked() and self._waiting >= self.max_waiting:
            raise Busy()
        self._waiting += 1
        try:
            await sem.acquire()
        finally:
            self._waiting -= 1
        # The slot is freed when the thread is done, not when a caller gives up
        # waiting for it: the CPU is busy until then either way.
        done = asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)
        done.add_done_callback(lambda _: sem.release())
        return await asyncio.shield(done)


_CPUS = os.cpu_count() or 1
# One CPU is left to the event loop (and the client lane): Argon2 threads on every
# CPU would slow every other request, the service accounts' included.
_PASSWORD_SLOTS = max(1, _CPUS - 1)
PASSWORDS = Lane("password", _PASSWORD_SLOTS, 16)
CLIENTS = Lane("client", _CPUS, 16)

# stored hash -> SHA-256 of the secret it was verified against (client lane only)
_known_clients: OrderedDict[str, bytes] = OrderedDict()
_KNOWN_MAX = 4096


def configure(slots: int, max_waiting: int) -> None:
    """Size both lanes (``AM_PASSWORD_HASH_THREADS``, ``AM_PASSWORD_HASH_QUEUE``)."""
    PASSWORDS.resize(slots or _PASSWORD_SLOTS, max_waiting)
    CLIENTS.resize(slots or _CPUS, max_waiting)


def _verify(hashed: str, secret: str) -> bool:
    try:
        return _hasher.verify(hashed, secret)
    except (VerificationError, InvalidHashError):
        return False


async def hash_secret(secret: str) -> str:
    return await PASSWORDS.run(_hasher.hash, secret)


async def verify_password(hashed: str | None, password: str) -> bool:
    """A user's password; an unknown user (``hashed`` None) costs the same work."""
    if hashed is None:
        await PASSWORDS.run(_verify, _DUMMY, password)
        return False
    return await PASSWORDS.run(_verify, hashed, password)


async def verify_secret(hashed: str | None, secret: str) -> bool:
    """A service account's client secret (its own lane; see the module doc)."""
    if hashed is None:
        await CLIENTS.run(_verify, _DUMMY, secret)
        return False
    digest = hashlib.sha256(secret.encode()).digest()
    known = _known_clients.get(hashed)
    if known is not None:
        return hmac.compare_digest(known, digest)
    ok = await CLIENTS.run(_verify, hashed, secret)
    if ok:
        _known_clients[hashed] = digest
        if len(_known_clients) > _KNOWN_MAX:
            _known_clients.popitem(last=False)
    return ok


def new_secret() -> str:
    return secrets.token_urlsafe(32)
