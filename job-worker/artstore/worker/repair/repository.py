"""All SQL of repair: the SE registry as the admin's poller wrote it, the copies of files
in the catalog, and the per-file advisory lock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import and_, func, literal, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from artstore.common.registry import StorageElementRef
from artstore.contracts.admin_tables import storage_elements as ses
from artstore.contracts.catalog import files, not_quarantined, preference_order, speaks_for_file

# The first key of the two-key advisory lock: repairs of one file ("RP").
LOCK_CLASS: Final = 0x5250


@dataclass(frozen=True)
class SeRow(StorageElementRef):
    """A registered SE as the registry client knows it, read from the admin's table."""

    # Offline for longer than the grace period (by the database's clock): its copies
    # no longer count.
    lapsed: bool


@dataclass(frozen=True)
class FileHealth:
    """A file as the copy that speaks for it says, and how many healthy copies it has."""

    file_id: str
    retention_policy: str
    status: str
    size: int
    healthy: int


@dataclass(frozen=True)
class CopyRow:
    storage_element_id: str
    status: str
    checksum: str
    size: int
    retention_policy: str
    quarantined: bool
    updated_at: datetime
    version: int


async def storage_elements(conn: AsyncConnection, grace_seconds: float) -> list[SeRow]:
    """Every registered SE; ``lapsed`` when it has been offline (not reached by the
    admin's poller) for longer than ``grace_seconds``: since it was last seen, or since
    it was registered when it never was."""
    since = func.coalesce(ses.c.last_seen_at, ses.c.created_at)
    lapsed = and_(
        ses.c.status == "offline",
        since < func.now() - literal(timedelta(seconds=grace_seconds)),
    )
    stmt = select(
        ses.c.storage_id,
        ses.c.name,
        ses.c.url,
        ses.c.mode,
        ses.c.status,
        ses.c.backend,
        ses.c.total_bytes,
        ses.c.used_bytes,
        ses.c.available_bytes,
        ses.c.file_count,
        lapsed.label("lapsed"),
    ).order_by(ses.c.storage_id)
    rows = (await conn.execute(stmt)).all()
    return [SeRow(**r._mapping) for r in rows]


def _healthy_count(speaker: Any, counted: Sequence[str]) -> Any:
    """Copies of ``speaker``'s file that are healthy (docs/repair.md): not quarantined,
    the speaker's bytes, live, on an SE that counts."""
    c = files.alias("c")
    return (
        select(func.count())
        .where(
            c.c.file_id == speaker.c.file_id,
            not_quarantined(c),
            c.c.checksum == speaker.c.checksum,
            c.c.status == speaker.c.status,
            c.c.storage_element_id.in_(list(counted)),
        )
        .scalar_subquery()
    )


async def scan_batch(
    conn: AsyncConnection, counted: Sequence[str], after: str | None, limit: int
) -> list[FileHealth]:
    """The next ``limit`` files (by id, after ``after``) with their healthy copies:
    keyset pages, so a scan holds one page at a time whatever the catalog's size."""
    s = files.alias("s")
    stmt = select(
        s.c.file_id,
        s.c.retention_policy,
        s.c.status,
        s.c.size,
        _healthy_count(s, counted).label("healthy"),
    ).where(not_quarantined(s), speaks_for_file(s))
    if after is not None:
        stmt = stmt.where(s.c.file_id > after)
    stmt = stmt.order_by(s.c.file_id).limit(limit)
    rows = (await conn.execute(stmt)).all()
    return [
        FileHealth(str(r.file_id), r.retention_policy, r.status, int(r.size), int(r.healthy))
        for r in rows
    ]


async def copies(conn: AsyncConnection, file_id: str) -> list[CopyRow]:
    """Every catalog row of ``file_id``: the copies that are not quarantined first, in
    the order that makes the first one speak for the file."""
    stmt = (
        select(
            files.c.storage_element_id,
            files.c.status,
            files.c.checksum,
            files.c.size,
            files.c.retention_policy,
            files.c.quarantined_at.is_not(None).label("quarantined"),
            files.c.updated_at,
            files.c.version,
        )
        .where(files.c.file_id == file_id)
        .order_by(files.c.quarantined_at.is_not(None), *preference_order(files))
    )
    rows = (await conn.execute(stmt)).all()
    return [CopyRow(**r._mapping) for r in rows]


@asynccontextmanager
async def file_lock(engine: AsyncEngine, file_id: str, poll: float = 0.25) -> AsyncIterator[None]:
    """Held while one file is repaired, by one worker at a time across every worker
    process: a PostgreSQL session advisory lock on a connection of its own. Waits for
    a repair of the same file to end (asked again every ``poll`` seconds: a blocking
    lock would outlast the engine's statement timeout during a long copy); a worker
    that dies releases it with its connection."""
    args = {"cls": LOCK_CLASS, "file_id": file_id}
    async with engine.connect() as conn:
        while True:
            got = await conn.scalar(
                text("SELECT pg_try_advisory_lock(:cls, hashtext(:file_id))"), args
            )
            await conn.commit()
            if got:
                break
            await asyncio.sleep(poll)
        try:
            yield
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(:cls, hashtext(:file_id))"), args)
            await conn.commit()
