"""The copies a download may use, read with one round trip (issue 7).

Every download asks the catalog (never the cache, so a delete is honoured at once).
Through the SQLAlchemy engine that is four round trips (the pool's pre-ping, BEGIN, the
SELECT, ROLLBACK) plus statement compilation; here it is one prepared statement on a
small asyncpg pool of its own, in autocommit, with no reset on release. A connection
the server dropped (restart) is retried once on a fresh one, which is what the pre-ping
would have bought.

A download may also take the copies read for another download of the same file in the
last ``RECENT_SECONDS`` (one second): under a burst of reads of the same files that read
was half of the query module's CPU per 4 KiB download (py-spy, issue 19). Safe because the
catalog only says where to ask: the SE decides. A deleted copy answers 410 (its
tombstone), a quarantined or missing one 404, and either drops the entry here (the next
download reads the catalog again); the caller's token is checked on every request and
exchanged for the SE's, so revocation is untouched; expiry is judged from
``expires_at`` at each request. What a second can hide is a copy added in it (a new
replica is used a second later). Only non-empty answers are kept (an unknown file is
asked again, so an upload is found at once), and only downloads use them: metadata and
links read the catalog.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy import literal_column, select
from sqlalchemy.dialects.postgresql.base import PGDialect

from artstore.contracts.catalog import files, not_quarantined, preference_order


def _copies_sql() -> str:
    """Same rows and order as search.repository.copies_of (the copy that speaks for the
    file first), from the one definition in artstore.contracts.catalog, rendered once to
    plain SQL for asyncpg with the file id as ``$1``."""
    stmt = (
        select(files.c.storage_element_id, files.c.status, files.c.expires_at)
        .where(files.c.file_id == literal_column("$1"), not_quarantined(files))
        .order_by(*preference_order(files))
    )
    dialect = PGDialect()  # type: ignore[no-untyped-call]  # SQLAlchemy leaves it untyped
    return str(stmt.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


COPIES_SQL = _copies_sql()
RECENT_SECONDS = 1.0
RECENT_MAX = 10_000


def plain_dsn(url: str) -> str:
    for prefix in ("postgresql+asyncpg://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return url


async def _keep_as_is(conn: asyncpg.Connection) -> None:
    """The pool's default reset (``RESET ALL; UNLISTEN *; ...``) is a round trip per
    release; this pool only runs one read-only SELECT in autocommit: nothing to reset."""


class CopyReader:
    def __init__(
        self,
        database_url: str,
        max_size: int = 10,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.dsn = plain_dsn(database_url)
        self.max_size = max_size
        self.timeout = timeout
        self._pool: asyncpg.Pool | None = None
        self._lock = asyncio.Lock()
        self._recent: dict[str, tuple[float, list[dict[str, Any]]]] = {}
        self._clock = clock

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is None:
            async with self._lock:
                if self._pool is None:
                    # min_size 0: nothing connects before the first download (a catalog
                    # that is down at start fails downloads with 503, not the start).
                    self._pool = await asyncpg.create_pool(
                        self.dsn,
                        min_size=0,
                        max_size=self.max_size,
                        timeout=self.timeout,
                        command_timeout=self.timeout,
                        max_inactive_connection_lifetime=300,
                        reset=_keep_as_is,
                    )
        return self._pool

    async def copies(self, file_id: str, recent: bool = False) -> list[dict[str, Any]]:
        """Rows ``{storage_element_id, status, expires_at}``, the representative first;
        with ``recent``, possibly as read up to ``RECENT_SECONDS`` ago (see above).
        Raises ``OSError``/``TimeoutError``/``asyncpg`` errors when the catalog fails."""
        if recent:
            kept = self._recent.get(file_id)
            if kept is not None and kept[0] > self._clock():
                return list(kept[1])
        rows = await self._read(file_id)
        if recent and rows:
            if len(self._recent) >= RECENT_MAX:
                self._evict()
            self._recent[file_id] = (self._clock() + RECENT_SECONDS, rows)
        return list(rows)

    def forget(self, file_id: str) -> None:
        """An SE said the copies read for ``file_id`` are wrong (404/409/410)."""
        self._recent.pop(file_id, None)

    def _evict(self) -> None:
        now = self._clock()
        self._recent = {k: v for k, v in self._recent.items() if v[0] > now}
        while len(self._recent) >= RECENT_MAX:
            self._recent.pop(next(iter(self._recent)))

    async def _read(self, file_id: str) -> list[dict[str, Any]]:
        pool = await self._get_pool()
        for attempt in (1, 2):
            try:
                async with pool.acquire() as conn:
                    rows = await conn.fetch(COPIES_SQL, file_id)
                return [dict(r) for r in rows]
            except (asyncpg.ConnectionDoesNotExistError, ConnectionResetError):
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def close(self) -> None:
        self._recent.clear()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
