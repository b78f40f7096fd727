"""All SQL of the storage-element registry and the poller's lease."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from artstore.admin.tables import leases
from artstore.admin.tables import storage_elements as ses


async def insert(session: AsyncSession, row: dict[str, Any]) -> bool:
    """False when the url or storage id is already registered."""
    stmt = pg_insert(ses).values(**row).on_conflict_do_nothing().returning(ses.c.storage_id)
    return (await session.execute(stmt)).first() is not None


async def get(session: AsyncSession, storage_id: str, *, for_update: bool = False) -> Any:
    stmt = select(ses).where(ses.c.storage_id == storage_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).mappings().first()


async def find_conflict(
    session: AsyncSession, url: str, storage_id: str, *, exclude: str | None = None
) -> Any:
    stmt = select(ses).where(or_(ses.c.url == url, ses.c.storage_id == storage_id))
    if exclude is not None:
        stmt = stmt.where(ses.c.storage_id != exclude)
    return (await session.execute(stmt.limit(1))).mappings().first()


async def page(
    session: AsyncSession, mode: str | None, status: str | None, limit: int, offset: int
) -> tuple[list[Any], int]:
    where = []
    if mode is not None:
        where.append(ses.c.mode == mode)
    if status is not None:
        where.append(ses.c.status == status)
    rows = await session.execute(
        select(ses).where(*where).order_by(ses.c.storage_id).limit(limit).offset(offset)
    )
    total = await session.execute(select(func.count()).select_from(ses).where(*where))
    return list(rows.mappings().all()), int(total.scalar_one())


async def all_rows(session: AsyncSession) -> list[Any]:
    return list((await session.execute(select(ses))).mappings().all())


async def by_ids(session: AsyncSession, storage_ids: list[str]) -> dict[str, Any]:
    rows = await session.execute(select(ses).where(ses.c.storage_id.in_(storage_ids)))
    return {r["storage_id"]: r for r in rows.mappings().all()}


async def update(
    session: AsyncSession,
    storage_id: str,
    values: dict[str, Any],
    unchanged_since: datetime | None = None,
) -> Any:
    """Update the row; with ``unchanged_since``, only if nobody updated it after that
    (None when it was changed meanwhile, or is gone)."""
    stmt = ses.update().where(ses.c.storage_id == storage_id)
    if unchanged_since is not None:
        stmt = stmt.where(ses.c.updated_at == unchanged_since)
    row = await session.execute(stmt.values(**values).returning(ses))
    return row.mappings().first()


async def delete(session: AsyncSession, storage_id: str) -> None:
    await session.execute(ses.delete().where(ses.c.storage_id == storage_id))


async def take_lease(session: AsyncSession, name: str, holder: str, ttl: float) -> bool:
    """Hold (or keep holding) ``name`` for ``ttl`` seconds unless another live holder has it."""
    expires = func.now() + timedelta(seconds=ttl)
    insert = pg_insert(leases).values(name=name, holder=holder, expires_at=expires)
    stmt = insert.on_conflict_do_update(
        index_elements=[leases.c.name],
        set_={"holder": holder, "expires_at": expires},
        where=or_(leases.c.holder == holder, leases.c.expires_at < func.now()),
    ).returning(leases.c.holder)
    return (await session.execute(stmt)).first() is not None
