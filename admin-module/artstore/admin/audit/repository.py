"""All SQL of the audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from artstore.admin.tables import audit_checkpoints, audit_log, signing_keys

_CHAIN_LOCK = 727275  # pg advisory lock: one writer extends the chain at a time


async def lock_chain(session: AsyncSession) -> None:
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK})


async def last_link(session: AsyncSession) -> tuple[int, str] | None:
    row = (
        await session.execute(
            select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
        )
    ).first()
    return (int(row.seq), str(row.hash)) if row is not None else None


async def insert(session: AsyncSession, row: dict[str, Any]) -> None:
    await session.execute(audit_log.insert().values(**row))


async def search(
    session: AsyncSession, filters: dict[str, Any], limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    where = []
    for name in ("actor", "action", "target_type", "target_id"):
        if filters.get(name) is not None:
            where.append(audit_log.c[name] == filters[name])
    since: datetime | None = filters.get("since")
    until: datetime | None = filters.get("until")
    if since is not None:
        where.append(audit_log.c.at >= since)
    if until is not None:
        where.append(audit_log.c.at <= until)
    page = (
        select(audit_log).where(*where).order_by(audit_log.c.seq.desc()).limit(limit).offset(offset)
    )
    count = select(func.count()).select_from(audit_log).where(*where)
    rows = (await session.execute(page)).mappings().all()
    total = (await session.execute(count)).scalar_one()
    return [dict(r) for r in rows], int(total)


async def walk(session: AsyncSession, batch: int = 1000) -> AsyncIterator[dict[str, Any]]:
    """Every entry in chain order, read in batches (the log may be long)."""
    after = -1
    while True:
        rows = (
            (
                await session.execute(
                    select(audit_log)
                    .where(audit_log.c.seq > after)
                    .order_by(audit_log.c.seq)
                    .limit(batch)
                )
            )
            .mappings()
            .all()
        )
        if not rows:
            return
        for row in rows:
            yield dict(row)
        after = int(rows[-1]["seq"])


# -- checkpoints ------------------------------------------------------------------------
async def last_checkpoint(session: AsyncSession) -> dict[str, Any] | None:
    row = (
        (
            await session.execute(
                select(audit_checkpoints).order_by(audit_checkpoints.c.seq.desc()).limit(1)
            )
        )
        .mappings()
        .first()
    )
    return dict(row) if row is not None else None


async def insert_checkpoint(session: AsyncSession, row: dict[str, Any]) -> None:
    await session.execute(audit_checkpoints.insert().values(**row))


async def checkpoints(session: AsyncSession) -> list[dict[str, Any]]:
    """Every checkpoint, oldest first (one a minute at most: a year is ~500k small rows)."""
    rows = await session.execute(select(audit_checkpoints).order_by(audit_checkpoints.c.seq))
    return [dict(r) for r in rows.mappings().all()]


async def public_keys(session: AsyncSession) -> dict[str, dict[str, Any]]:
    """kid -> public JWK of every signing key ever made, retired ones included: an old
    checkpoint stays verifiable after its key stopped signing tokens."""
    rows = await session.execute(select(signing_keys.c.kid, signing_keys.c.public_jwk))
    return {str(r.kid): dict(r.public_jwk) for r in rows.all()}
