"""All SQL of the files view: reads of ``catalog.files`` (written only by the SEs).

The table and the choice of the copy that speaks for a file are declared once in
``artstore.contracts.catalog``, shared with the query module. A quarantined row records
damage, not a copy: it never speaks for a file nor is listed among its copies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import exists, func, select
from sqlalchemy.engine import RowMapping
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from artstore.contracts.catalog import (
    FILE_COLUMNS,
    files,
    not_quarantined,
    preference_order,
    speaks_for_file,
)
from artstore.contracts.files import FileMetadata, FileStatus, RetentionPolicy


@dataclass(frozen=True)
class FileFilters:
    statuses: Sequence[FileStatus]
    retention_policy: RetentionPolicy | None = None
    storage_element_id: str | None = None
    uploaded_by: str | None = None


def _copy(row: RowMapping) -> FileMetadata:
    return FileMetadata.model_validate({**row, "file_id": str(row["file_id"])})


def _where(f: FileFilters) -> list[ColumnElement[bool]]:
    where = [not_quarantined(files), files.c.status.in_(list(f.statuses))]
    if f.retention_policy is not None:
        where.append(files.c.retention_policy == f.retention_policy)
    if f.uploaded_by is not None:
        where.append(files.c.uploaded_by == f.uploaded_by)
    if f.storage_element_id is not None:
        copy = files.alias("copy")
        where.append(
            exists().where(
                copy.c.file_id == files.c.file_id,
                copy.c.storage_element_id == f.storage_element_id,
                not_quarantined(copy),
            )
        )
    # Last: filters above first narrow the rows the representative probe runs for.
    where.append(speaks_for_file(files))
    return where


async def page(
    session: AsyncSession, filters: FileFilters, limit: int, offset: int
) -> tuple[list[FileMetadata], int]:
    """The representative copy of each file matching ``filters``, newest upload first."""
    where = _where(filters)
    stmt = (
        select(*FILE_COLUMNS)
        .where(*where)
        .order_by(files.c.uploaded_at.desc(), files.c.file_id.desc())
        .limit(limit)
        .offset(offset)
    )
    count = select(func.count()).select_from(files).where(*where)
    rows = (await session.execute(stmt)).mappings().all()
    total = (await session.execute(count)).scalar_one()
    return [_copy(r) for r in rows], int(total)


async def copies(session: AsyncSession, file_ids: Sequence[str]) -> list[FileMetadata]:
    """Every copy of these files that is not quarantined, each file's speaker first."""
    if not file_ids:
        return []
    stmt = (
        select(*FILE_COLUMNS)
        .where(files.c.file_id.in_(list(file_ids)), not_quarantined(files))
        .order_by(files.c.file_id, *preference_order(files))
    )
    return [_copy(r) for r in (await session.execute(stmt)).mappings().all()]
