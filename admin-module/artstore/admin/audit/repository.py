"""All SQL of the audit log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession

from artstore.admin.tables import audit_checkpoints, audit_log, signing_keys

_CHAIN_LOCK = 727275  # pg advisory lock: one writer extends the chain at a time


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One entry of ``admin.audit_log``: ``hash`` covers every other field and
    ``prev_hash`` (service.entry_hash)."""

    seq: int
    at: datetime
    actor: str
    actor_kind: str
    action: str
    target_type: str | None
    target_id: str | None
    outcome: str
    request_id: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str

    @classmethod
    def of(cls, row: RowMapping) -> AuditRow:
        return cls(**{f.name: row[f.name] for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class CheckpointRow:
    """One of ``admin.audit_checkpoints``: ``signature`` is a compact JWS by key ``kid``
    over ``{seq, hash, at}`` (checkpoint.payload)."""

    seq: int
    hash: str
    signature: str
    kid: str
    at: datetime

    @classmethod
    def of(cls, row: RowMapping) -> CheckpointRow:
        return cls(**{f.name: row[f.name] for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class AuditFilters:
    """What ``GET /api/v1/audit`` may narrow by (None: any); times inclusive."""

    actor: str | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


async def lock_chain(session: AsyncSession) -> None:
    await session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _CHAIN_LOCK})


async def last_link(session: AsyncSession) -> tuple[int, str] | None:
    row = (
        await session.execute(
            select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
        )
    ).first()
    return (int(row.seq), str(row.hash)) if row is not None else None


async def insert(session: AsyncSession, row: AuditRow) -> None:
    await session.execute(audit_log.insert().values(**asdict(row)))


async def search(
    session: AsyncSession, filters: AuditFilters, limit: int, offset: int
) -> tuple[list[AuditRow], int]:
    where = []
    for name in ("actor", "action", "target_type", "target_id"):
        value = getattr(filters, name)
        if value is not None:
            where.append(audit_log.c[name] == value)
    if filters.since is not None:
        where.append(audit_log.c.at >= filters.since)
    if filters.until is not None:
        where.append(audit_log.c.at <= filters.until)
    page = (
        select(audit_log).where(*where).order_by(audit_log.c.seq.desc()).limit(limit).offset(offset)
    )
    count = select(func.count()).select_from(audit_log).where(*where)
    rows = (await session.execute(page)).mappings().all()
    total = (await session.execute(count)).scalar_one()
    return [AuditRow.of(r) for r in rows], int(total)


async def walk(session: AsyncSession, batch: int = 1000) -> AsyncIterator[AuditRow]:
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
            yield AuditRow.of(row)
        after = int(rows[-1]["seq"])


# -- checkpoints ------------------------------------------------------------------------
async def last_checkpoint(session: AsyncSession) -> CheckpointRow | None:
    row = (
        (
            await session.execute(
                select(audit_checkpoints).order_by(audit_checkpoints.c.seq.desc()).limit(1)
            )
        )
        .mappings()
        .first()
    )
    return CheckpointRow.of(row) if row is not None else None


async def insert_checkpoint(session: AsyncSession, row: CheckpointRow) -> None:
    await session.execute(audit_checkpoints.insert().values(**asdict(row)))


async def checkpoints(session: AsyncSession) -> list[CheckpointRow]:
    """Every checkpoint, oldest first (one a minute at most: a year is ~500k small rows)."""
    rows = await session.execute(select(audit_checkpoints).order_by(audit_checkpoints.c.seq))
    return [CheckpointRow.of(r) for r in rows.mappings().all()]


async def public_keys(session: AsyncSession) -> dict[str, dict[str, Any]]:
    """kid -> public JWK of every signing key ever made, retired ones included: an old
    checkpoint stays verifiable after its key stopped signing tokens."""
    rows = await session.execute(select(signing_keys.c.kid, signing_keys.c.public_jwk))
    return {str(r.kid): dict(r.public_jwk) for r in rows.all()}
