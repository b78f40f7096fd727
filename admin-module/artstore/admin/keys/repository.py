"""All SQL of the signing keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from artstore.admin.tables import signing_keys

_KEYS_LOCK = 727276  # pg advisory lock: one replica creates or rotates keys at a time


async def lock(session: AsyncSession) -> None:
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _KEYS_LOCK})


async def all_keys(session: AsyncSession) -> list[dict[str, Any]]:
    rows = await session.execute(select(signing_keys).order_by(signing_keys.c.created_at.desc()))
    return [dict(r) for r in rows.mappings().all()]


async def insert(session: AsyncSession, row: dict[str, Any]) -> None:
    await session.execute(signing_keys.insert().values(**row))


async def retire_active(session: AsyncSession, at: datetime, verify_until: datetime) -> list[str]:
    rows = await session.execute(
        signing_keys.update()
        .where(signing_keys.c.status == "active")
        .values(status="retired", retired_at=at, verify_until=verify_until)
        .returning(signing_keys.c.kid)
    )
    return [str(r[0]) for r in rows.all()]
