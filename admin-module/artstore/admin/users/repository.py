"""All SQL of users."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, Literal

from sqlalchemy import RowMapping, any_, func, literal, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from artstore.admin.tables import users
from artstore.common.errors import Conflict


@dataclass(frozen=True, slots=True)
class UserRow:
    """One row of ``admin.users``."""

    id: str
    username: str
    email: str | None
    full_name: str | None
    roles: list[str]
    status: Literal["active", "disabled"]
    password_hash: str
    failed_logins: int
    locked_until: datetime | None
    created_at: datetime
    updated_at: datetime
    last_login_at: datetime | None

    @classmethod
    def of(cls, row: RowMapping) -> UserRow:
        return cls(**{f.name: row[f.name] for f in fields(cls)})


def _one(row: RowMapping | None) -> UserRow | None:
    return None if row is None else UserRow.of(row)


async def insert(session: AsyncSession, row: dict[str, Any]) -> None:
    try:
        async with session.begin_nested():
            await session.execute(users.insert().values(**row))
    except IntegrityError:
        raise Conflict(
            f"username {row['username']!r} is taken", details={"username": row["username"]}
        ) from None


async def get(session: AsyncSession, user_id: str, *, for_update: bool = False) -> UserRow | None:
    stmt = select(users).where(users.c.id == user_id)
    if for_update:
        stmt = stmt.with_for_update()
    return _one((await session.execute(stmt)).mappings().first())


async def by_username(
    session: AsyncSession, username: str, *, for_update: bool = False
) -> UserRow | None:
    stmt = select(users).where(users.c.username == username)
    if for_update:
        stmt = stmt.with_for_update()
    return _one((await session.execute(stmt)).mappings().first())


async def page(session: AsyncSession, limit: int, offset: int) -> tuple[list[UserRow], int]:
    rows = await session.execute(
        select(users).order_by(users.c.username).limit(limit).offset(offset)
    )
    total = (await session.execute(select(func.count()).select_from(users))).scalar_one()
    return [UserRow.of(r) for r in rows.mappings().all()], int(total)


async def update(session: AsyncSession, user_id: str, values: dict[str, Any]) -> UserRow | None:
    row = await session.execute(
        users.update().where(users.c.id == user_id).values(**values).returning(users)
    )
    return _one(row.mappings().first())


async def delete(session: AsyncSession, user_id: str) -> bool:
    result = await session.execute(users.delete().where(users.c.id == user_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def exists(session: AsyncSession, username: str) -> bool:
    found = await session.execute(select(users.c.id).where(users.c.username == username))
    return found.first() is not None


async def count_failure(session: AsyncSession, user_id: str) -> None:
    """One more failed sign-in, counted in SQL: no row read and locked beforehand."""
    await session.execute(
        users.update().where(users.c.id == user_id).values(failed_logins=users.c.failed_logins + 1)
    )


async def set_password_if(
    session: AsyncSession, user_id: str, old_hash: str, new_hash: str, at: datetime
) -> bool:
    """Compare-and-set: the hash checked outside the transaction must still be the one
    stored (no row lock is held while Argon2 runs)."""
    result = await session.execute(
        users.update()
        .where(users.c.id == user_id, users.c.password_hash == old_hash)
        .values(password_hash=new_hash, updated_at=at)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def lock_active_admins(session: AsyncSession) -> list[str]:
    """Ids of the active admins, their rows locked in one order: two concurrent
    demotions of the last two admins wait for each other, and the second sees the
    first's outcome (its row no longer matches once re-checked)."""
    rows = await session.execute(
        select(users.c.id)
        .where(users.c.status == "active", literal("admin") == any_(users.c.roles))
        .order_by(users.c.id)
        .with_for_update()
    )
    return [str(r) for r in rows.scalars()]


def now_locked(row: UserRow, now: datetime) -> bool:
    return row.locked_until is not None and row.locked_until > now
