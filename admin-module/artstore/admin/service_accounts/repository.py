"""All SQL of service accounts."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import RowMapping, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from artstore.admin.tables import service_accounts as sa_table
from artstore.common.errors import Conflict


@dataclass(frozen=True, slots=True)
class ServiceAccountRow:
    """One row of ``admin.service_accounts``."""

    id: str
    client_id: str
    name: str
    description: str
    scopes: list[str]
    status: Literal["active", "suspended"]
    secret_hash: str
    secret_expires_at: datetime
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, row: RowMapping) -> ServiceAccountRow:
        return cls(**{f.name: row[f.name] for f in fields(cls)})


def _one(row: RowMapping | None) -> ServiceAccountRow | None:
    return None if row is None else ServiceAccountRow.of(row)


def _taken(name: str) -> Conflict:
    return Conflict(f"service account name {name!r} is taken", details={"name": name})


async def insert(session: AsyncSession, row: dict[str, Any]) -> None:
    try:
        async with session.begin_nested():
            await session.execute(sa_table.insert().values(**row))
    except IntegrityError:
        raise _taken(row["name"]) from None


async def get(
    session: AsyncSession, sa_id: str, *, for_update: bool = False
) -> ServiceAccountRow | None:
    stmt = select(sa_table).where(sa_table.c.id == sa_id)
    if for_update:
        stmt = stmt.with_for_update()
    return _one((await session.execute(stmt)).mappings().first())


async def by_client_id(session: AsyncSession, client_id: str) -> ServiceAccountRow | None:
    stmt = select(sa_table).where(sa_table.c.client_id == client_id)
    return _one((await session.execute(stmt)).mappings().first())


async def by_name(
    session: AsyncSession, name: str, *, for_update: bool = False
) -> ServiceAccountRow | None:
    stmt = select(sa_table).where(sa_table.c.name == name)
    if for_update:
        stmt = stmt.with_for_update()
    return _one((await session.execute(stmt)).mappings().first())


async def page(
    session: AsyncSession, limit: int, offset: int
) -> tuple[list[ServiceAccountRow], int]:
    rows = await session.execute(
        select(sa_table).order_by(sa_table.c.name).limit(limit).offset(offset)
    )
    total = (await session.execute(select(func.count()).select_from(sa_table))).scalar_one()
    return [ServiceAccountRow.of(r) for r in rows.mappings().all()], int(total)


async def update(
    session: AsyncSession, sa_id: str, values: dict[str, Any]
) -> ServiceAccountRow | None:
    try:
        async with session.begin_nested():
            row = await session.execute(
                sa_table.update().where(sa_table.c.id == sa_id).values(**values).returning(sa_table)
            )
            return _one(row.mappings().first())
    except IntegrityError:
        raise _taken(str(values.get("name"))) from None


async def delete(session: AsyncSession, sa_id: str) -> None:
    await session.execute(sa_table.delete().where(sa_table.c.id == sa_id))
