"""All SQL of the quarantine view: reads of ``catalog.files`` (copies), ``jobs.runs``
(repairs waiting or running) and the registry."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from artstore.contracts.admin_tables import storage_elements as ses
from artstore.contracts.catalog import files, not_quarantined
from artstore.contracts.jobs import REPAIR_FILE, runs

# A copy that counts: not quarantined, and not a tombstone.
LIVE_STATUSES = ("active", "expired")


async def storage_elements(session: AsyncSession) -> list[Any]:
    """Every registered SE, in id order (the order of the merged listing)."""
    stmt = select(ses.c.storage_id, ses.c.url).order_by(ses.c.storage_id)
    return list((await session.execute(stmt)).mappings().all())


async def storage_element(session: AsyncSession, storage_id: str) -> Any:
    stmt = select(ses.c.storage_id, ses.c.url).where(ses.c.storage_id == storage_id)
    return (await session.execute(stmt)).mappings().first()


async def healthy_copies(session: AsyncSession, file_ids: Sequence[str]) -> dict[str, set[str]]:
    """file id -> the SEs holding a healthy copy of it (see LIVE_STATUSES)."""
    if not file_ids:
        return {}
    stmt = select(files.c.file_id, files.c.storage_element_id).where(
        files.c.file_id.in_(list(file_ids)),
        not_quarantined(files),
        files.c.status.in_(LIVE_STATUSES),
    )
    out: dict[str, set[str]] = {}
    for r in (await session.execute(stmt)).all():
        out.setdefault(str(r.file_id), set()).add(str(r.storage_element_id))
    return out


async def pending_repairs(session: AsyncSession, file_ids: Sequence[str]) -> dict[str, int]:
    """file id -> the newest ``repair.file`` run of it that is queued or running."""
    if not file_ids:
        return {}
    stmt = (
        select(runs.c.target, runs.c.id)
        .where(
            runs.c.kind == REPAIR_FILE,
            runs.c.state.in_(("queued", "running")),
            runs.c.target.in_(list(file_ids)),
        )
        .order_by(runs.c.id)
    )
    return {str(r.target): int(r.id) for r in (await session.execute(stmt)).all()}
