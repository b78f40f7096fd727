"""Per-file locks and the publish gate.

``FileLocks`` serialises every change of one key (a file id, or ``path:<storage path>``
for checks that know only a path); an entry lives only while someone holds or waits.

``PublishGate`` is a shared/exclusive lock around commit points. A write holds it shared
from its mode re-check to its commit point; a mode transition holds it exclusively while
it switches. So once a transition has answered, no write checked under the old mode can
still reach its commit point: it finds the new mode and is undone. A waiting transition
stops new shared holders, so a stream of writes cannot starve it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass


@dataclass
class _Entry:
    lock: asyncio.Lock
    users: int = 0


class FileLocks:
    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = _Entry(asyncio.Lock())
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if entry.users == 0:
                del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)


class PublishGate:
    def __init__(self) -> None:
        self._shared = 0
        self._exclusive = False
        self._waiting_exclusive = 0
        self._changed: asyncio.Event | None = None

    async def _until(self, ready: Callable[[], bool]) -> None:
        # One event loop: nothing changes between the check and the wait.
        while not ready():
            if self._changed is None:
                self._changed = asyncio.Event()
            await self._changed.wait()

    def _notify(self) -> None:
        changed, self._changed = self._changed, None
        if changed is not None:
            changed.set()

    @asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        await self._until(lambda: not self._exclusive and not self._waiting_exclusive)
        self._shared += 1
        try:
            yield
        finally:
            self._shared -= 1
            self._notify()

    @asynccontextmanager
    async def exclusive(self) -> AsyncIterator[None]:
        self._waiting_exclusive += 1
        try:
            await self._until(lambda: not self._exclusive and not self._shared)
        finally:
            self._waiting_exclusive -= 1
            self._notify()  # shared waiters held back by this one may go on (if it gave up)
        self._exclusive = True
        try:
            yield
        finally:
            self._exclusive = False
            self._notify()

    @property
    def holders(self) -> int:
        return self._shared
