"""All SQL of the signing keys."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from artstore.admin.tables import signing_keys

_KEYS_LOCK = 727276  # pg advisory lock: one replica creates or rotates keys at a time


@dataclass(frozen=True, slots=True)
class SigningKeyRow:
    """One row of ``admin.signing_keys``: ``private_key`` is AES-GCM (nonce + ciphertext)."""

    kid: str
    private_key: bytes
    public_jwk: dict[str, Any]
    status: str  # active | retired
    created_at: datetime
    retired_at: datetime | None = None
    verify_until: datetime | None = None

    @classmethod
    def of(cls, row: RowMapping) -> SigningKeyRow:
        return cls(**{f.name: row[f.name] for f in fields(cls)})


async def lock(session: AsyncSession) -> None:
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _KEYS_LOCK})


async def all_keys(session: AsyncSession) -> list[SigningKeyRow]:
    rows = await session.execute(select(signing_keys).order_by(signing_keys.c.created_at.desc()))
    return [SigningKeyRow.of(r) for r in rows.mappings().all()]


async def insert(session: AsyncSession, row: SigningKeyRow) -> None:
    await session.execute(signing_keys.insert().values(**asdict(row)))


async def retire_active(session: AsyncSession, at: datetime, verify_until: datetime) -> list[str]:
    rows = await session.execute(
        signing_keys.update()
        .where(signing_keys.c.status == "active")
        .values(status="retired", retired_at=at, verify_until=verify_until)
        .returning(signing_keys.c.kid)
    )
    return [str(r[0]) for r in rows.all()]
