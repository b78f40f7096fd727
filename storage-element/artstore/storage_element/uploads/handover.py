"""A newer request for a session takes it over from an append still streaming.

A client whose connection died without a close (a phone changing networks, a half-open
TCP connection) leaves its append waiting for bytes that never come, holding the
session's lock. Its resuming HEAD, PATCH or DELETE asks that append to stop; the append
keeps what arrived, as for a cut body, and lets go (tus servers do the same: tusd's
lock release request).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator, Iterator
from pathlib import Path


class Superseded(Exception):
    """A newer request for the session asked this append to stop."""


class Handover:
    """The stop signals of the appends running in this process, by session."""

    def __init__(self) -> None:
        self._running: dict[tuple[Path, str], asyncio.Event] = {}

    @contextlib.contextmanager
    def running(self, root: Path, sid: str) -> Iterator[asyncio.Event]:
        """Held by an append (under the session's lock) while it reads its body."""
        stop = self._running[(root, sid)] = asyncio.Event()
        try:
            yield stop
        finally:
            self._running.pop((root, sid), None)

    def ask_to_stop(self, root: Path, sid: str) -> None:
        stop = self._running.get((root, sid))
        if stop is not None:
            stop.set()


HANDOVER = Handover()


async def chunks(body: AsyncIterator[bytes], stop: asyncio.Event) -> AsyncGenerator[bytes, None]:
    """``body``'s chunks until it ends, or :class:`Superseded` once ``stop`` is set
    (also while waiting for a chunk that may never come)."""
    it = aiter(body)
    waiter = asyncio.ensure_future(stop.wait())
    try:
        while True:
            nxt = asyncio.ensure_future(anext(it))
            try:
                await asyncio.wait({nxt, waiter}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                if not nxt.done():
                    nxt.cancel()
                    with contextlib.suppress(BaseException):
                        await nxt
            if nxt.cancelled():
                raise Superseded
            try:
                chunk = nxt.result()
            except StopAsyncIteration:
                return
            yield chunk
            if stop.is_set():
                raise Superseded
    finally:
        waiter.cancel()
