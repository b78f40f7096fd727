"""All SQL of refresh tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from artstore.admin.tables import refresh_tokens


async def insert(session: AsyncSession, row: dict[str, Any]) -> None:
    await session.execute(refresh_tokens.insert().values(**row))


async def by_hash(session: AsyncSession, token_hash: str) -> Any:
    stmt = select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash).with_for_update()
    return (await session.execute(stmt)).mappings().first()


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
