"""All SQL of service accounts."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from artstore.admin.tables import service_accounts as sa_table
from artstore.common.errors import Conflict


def _taken(name: str) -> Conflict:
    return Conflict(f"service account name {name!r} is taken", details={"name": name})


async def insert(session: AsyncSession, row: dict[str, Any]) -> None:
    try:
        async with session.begin_nested():
            await session.execute(sa_table.insert().values(**row))
    except IntegrityError:
        raise _taken(row["name"]) from None


async def get(session: AsyncSession, sa_id: str, *, for_update: bool = False) -> Any:
    stmt = select(sa_table).where(sa_table.c.id == sa_id)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).mappings().first()


async def by_client_id(session: AsyncSession, client_id: str) -> Any:
    stmt = select(sa_table).where(sa_table.c.client_id == client_id)
    return (await session.execute(stmt)).mappings().first()


async def by_name(session: AsyncSession, name: str, *, for_update: bool = False) -> Any:
    stmt = select(sa_table).where(sa_table.c.name == name)
    if for_update:
        stmt = stmt.with_for_update()
    return (await session.execute(stmt)).mappings().first()


async def page(session: AsyncSession, limit: int, offset: int) -> tuple[list[Any], int]:
    rows = await session.execute(
        select(sa_table).order_by(sa_table.c.name).limit(limit).offset(offset)
    )
    total = (await session.execute(select(func.count()).select_from(sa_table))).scalar_one()
    return list(rows.mappings().all()), int(total)


async def update(session: AsyncSession, sa_id: str, values: dict[str, Any]) -> Any:
    try:
        async with session.begin_nested():
            row = await session.execute(
                sa_table.update().where(sa_table.c.id == sa_id).values(**values).returning(sa_table)
            )
            return row.mappings().first()
    except IntegrityError:
        raise _taken(str(values.get("name"))) from None


async def delete(session: AsyncSession, sa_id: str) -> None:
    await session.execute(sa_table.delete().where(sa_table.c.id == sa_id))
