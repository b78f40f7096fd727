"""All SQL of refresh tokens."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, select
from sqlalchemy.ext.asyncio import AsyncSession

from artstore.admin.tables import refresh_tokens


@dataclass(frozen=True, slots=True)
class RefreshTokenRow:
    """One row of ``admin.refresh_tokens``: only the SHA-256 of the token is stored."""

    id: str
    token_hash: str
    family_id: str
    user_id: str
    scope: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, row: RowMapping) -> RefreshTokenRow:
        return cls(**{f.name: row[f.name] for f in fields(cls)})


async def insert(session: AsyncSession, row: dict[str, Any]) -> None:
    await session.execute(refresh_tokens.insert().values(**row))


async def by_hash(session: AsyncSession, token_hash: str) -> RefreshTokenRow | None:
    stmt = select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash).with_for_update()
    row = (await session.execute(stmt)).mappings().first()
    return None if row is None else RefreshTokenRow.of(row)


async def mark_used(session: AsyncSession, token_id: str, at: datetime) -> None:
    await session.execute(
        refresh_tokens.update().where(refresh_tokens.c.id == token_id).values(used_at=at)
    )


async def revoke_family(session: AsyncSession, family_id: str, at: datetime) -> None:
    await session.execute(
        refresh_tokens.update()
        .where(refresh_tokens.c.family_id == family_id, refresh_tokens.c.revoked_at.is_(None))
        .values(revoked_at=at)
    )


async def revoke_user(session: AsyncSession, user_id: str, at: datetime) -> None:
    await session.execute(
        refresh_tokens.update()
        .where(refresh_tokens.c.user_id == user_id, refresh_tokens.c.revoked_at.is_(None))
        .values(revoked_at=at)
    )
