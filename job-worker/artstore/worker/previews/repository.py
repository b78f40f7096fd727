"""All SQL of the preview jobs: the catalog rows they look at (docs/previews.md).

The worker only reads the catalog: the ``previews`` column is written by the SEs' catalog
sync once a preview is stored next to its original."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Row, Select, func, or_, select
from sqlalchemy.ext.asyncio import AsyncConnection

from artstore.contracts.catalog import files, not_quarantined, preference_order, speaks_for_file


@dataclass(frozen=True)
class FileRow:
    """A file as the copy that speaks for it says."""

    file_id: str
    content_type: str
    size: int
    previews: tuple[int, ...]


@dataclass(frozen=True)
class CopyRow:
    storage_element_id: str
    status: str
    checksum: str
    size: int
    content_type: str
    previews: tuple[int, ...]


def _base_type(column: ColumnElement[str]) -> ColumnElement[str]:
    """``image/JPEG; q=1`` → ``image/jpeg`` (as ``is_previewable`` reads it)."""
    return func.lower(func.btrim(func.split_part(column, ";", 1)))


def _page(
    after: str | None, limit: int, types: Iterable[str], max_bytes: int
) -> tuple[FromClause, Select[Any]]:
    s = files.alias("s")
    stmt = select(s.c.file_id, s.c.content_type, s.c.size, s.c.previews).where(
        not_quarantined(s),
        speaks_for_file(s),
        s.c.status == "active",
        _base_type(s.c.content_type).in_(sorted(types)),
        s.c.size <= max_bytes,
    )
    if after is not None:
        stmt = stmt.where(s.c.file_id > after)
    return s, stmt.order_by(s.c.file_id).limit(limit)


def _rows(result: Iterable[Row[Any]]) -> list[FileRow]:
    out = []
    for r in result:
        m = r._mapping
        out.append(
            FileRow(
                str(m["file_id"]), m["content_type"], int(m["size"]), tuple(m["previews"] or ())
            )
        )
    return out


async def recent_without_previews(
    conn: AsyncConnection,
    since: datetime,
    after: str | None,
    limit: int,
    types: Iterable[str],
    max_bytes: int,
) -> list[FileRow]:
    """The next ``limit`` live files (by id, after ``after``) of a previewable type and
    size, uploaded or finalized at or after ``since``, that have no preview at all."""
    s, stmt = _page(after, limit, types, max_bytes)
    stmt = stmt.where(
        or_(s.c.uploaded_at >= since, s.c.finalized_at >= since),
        func.cardinality(s.c.previews) == 0,
    )
    return _rows(await conn.execute(stmt))


async def page(
    conn: AsyncConnection, after: str | None, limit: int, types: Iterable[str], max_bytes: int
) -> list[FileRow]:
    """The next ``limit`` live files (by id, after ``after``) of a previewable type and
    size, with or without previews (the backfill decides)."""
    _, stmt = _page(after, limit, types, max_bytes)
    return _rows(await conn.execute(stmt))


async def copies(conn: AsyncConnection, file_id: str) -> list[CopyRow]:
    """The copies of ``file_id`` that are not quarantined, the one that speaks for the
    file first."""
    stmt = (
        select(
            files.c.storage_element_id,
            files.c.status,
            files.c.checksum,
            files.c.size,
            files.c.content_type,
            files.c.previews,
        )
        .where(files.c.file_id == file_id, not_quarantined(files))
        .order_by(*preference_order(files))
    )
    return [
        CopyRow(
            str(r.storage_element_id),
            r.status,
            r.checksum,
            int(r.size),
            r.content_type,
            tuple(r.previews or ()),
        )
        for r in await conn.execute(stmt)
    ]
