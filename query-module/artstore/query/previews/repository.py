"""SQL of the preview route: the copies of a file with their previews, and the last
``preview.make`` run of it (both read straight from the database, never the cache)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from artstore.contracts.catalog import files, not_quarantined, preference_order
from artstore.jobs import repository as runs_repo
from artstore.jobs.repository import RunRow

PREVIEW_MAKE = "preview.make"  # the worker's job kind (docs/previews.md)


async def copies(conn: AsyncConnection, file_id: str) -> list[dict[str, Any]]:
    """Copies that are not quarantined, the one that speaks for the file first."""
    stmt = (
        select(
            files.c.storage_element_id,
            files.c.status,
            files.c.expires_at,
            files.c.content_type,
            files.c.previews,
        )
        .where(files.c.file_id == file_id, not_quarantined(files))
        .order_by(*preference_order(files))
    )
    return [dict(r) for r in (await conn.execute(stmt)).mappings().all()]


async def last_make(conn: AsyncConnection, file_id: str) -> RunRow | None:
    return (await runs_repo.latest_by_target(conn, PREVIEW_MAKE, [file_id])).get(file_id)
