"""All SQL of authorization codes (``admin.authorization_codes``)."""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, select
from sqlalchemy.ext.asyncio import AsyncSession

from artstore.contracts.admin_tables import authorization_codes


@dataclass(frozen=True, slots=True)
class CodeRow:
    """One issued code: only its SHA-256 is stored."""

    code_hash: str
    client_id: str
    redirect_uri: str
    code_challenge: str
    user_id: str
    scope: str
    family_id: str | None
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None

    @classmethod
    def of(cls, row: RowMapping) -> CodeRow:
        return cls(**{f.name: row[f.name] for f in fields(cls)})


async def insert(session: AsyncSession, row: dict[str, Any]) -> None:
    await session.execute(authorization_codes.insert().values(**row))


async def by_hash(session: AsyncSession, code_hash: str) -> CodeRow | None:
    """Locked: two redemptions of one code are serialized, so only one can win."""
    stmt = (
        select(authorization_codes)
        .where(authorization_codes.c.code_hash == code_hash)
        .with_for_update()
    )
    row = (await session.execute(stmt)).mappings().first()
    return None if row is None else CodeRow.of(row)


async def mark_used(
    session: AsyncSession, code_hash: str, at: datetime, family_id: str | None
) -> None:
    await session.execute(
        authorization_codes.update()
        .where(authorization_codes.c.code_hash == code_hash)
        .values(used_at=at, family_id=family_id)
    )


async def delete_expired(session: AsyncSession, before: datetime) -> None:
    await session.execute(
        authorization_codes.delete().where(authorization_codes.c.expires_at < before)
    )
